//! The variables capability: Spin's `fermyon:spin/variables` and `wasi:config/store`, both
//! reading the component's own variables (its `variables` table, rendered at start).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::bindings::fermyon::spin::variables as spin;
use super::bindings::wasi::config::store as config;
use crate::host::HostState;
use crate::variables::VariableValue;

/// A component's view of the variables: only those its manifest lists.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub values: Arc<BTreeMap<String, VariableValue>>,
}

/// Spin's rule for names: lowercase letters, digits and underscores, starting with a letter.
fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl spin::Host for HostState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, spin::Error>> {
        if !valid_name(&name) {
            return Ok(Err(spin::Error::InvalidName(format!(
                "`{name}` is not a variable name: use lowercase letters, digits and `_`"
            ))));
        }
        Ok(match self.variables.values.get(&name) {
            Some(v) => Ok(v.value.clone()),
            None => Err(spin::Error::Undefined(format!(
                "no variable `{name}` in this component's `variables`"
            ))),
        })
    }
}

impl config::Host for HostState {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, config::Error>> {
        Ok(Ok(self.variables.values.get(&key).map(|v| v.value.clone())))
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, config::Error>> {
        Ok(Ok(self
            .variables
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::valid_name("api_key2"));
        assert!(!super::valid_name("ApiKey"));
        assert!(!super::valid_name("2x"));
        assert!(!super::valid_name(""));
    }
}

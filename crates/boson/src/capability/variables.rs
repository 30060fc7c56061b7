//! The variables capability: Spin's `fermyon:spin/variables` and `wasi:config/store`, both
//! reading the component's own variables (its `variables` table, rendered at start).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::bindings::fermyon::spin2_0_0::variables as spin;
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
        Ok(lookup(&self.variables, &name).map_err(|e| match e {
            Lookup::InvalidName(m) => spin::Error::InvalidName(m),
            Lookup::Undefined(m) => spin::Error::Undefined(m),
        }))
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

// ---- spin:variables/variables@3.0.0 (asynchronous, spin-sdk 5)

use super::bindings_p3::spin::variables::variables as spin3;
use super::{SpinP3, with_state};

impl spin3::Host for HostState {}

impl<U> spin3::HostWithStore<U> for SpinP3 {
    async fn get(
        accessor: &wasmtime::component::Accessor<U, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, spin3::Error>> {
        Ok(
            with_state(accessor, |state| lookup(&state.variables, &name)).map_err(|e| match e {
                Lookup::InvalidName(m) => spin3::Error::InvalidName(m),
                Lookup::Undefined(m) => spin3::Error::Undefined(m),
            }),
        )
    }
}

/// Why a variable lookup failed (shared by every version of the interface).
enum Lookup {
    InvalidName(String),
    Undefined(String),
}

fn lookup(vars: &Variables, name: &str) -> Result<String, Lookup> {
    if !valid_name(name) {
        return Err(Lookup::InvalidName(format!(
            "`{name}` is not a variable name: use lowercase letters, digits and `_`"
        )));
    }
    vars.values
        .get(name)
        .map(|v| v.value.clone())
        .ok_or_else(|| {
            Lookup::Undefined(format!(
                "no variable `{name}` in this component's `variables`"
            ))
        })
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

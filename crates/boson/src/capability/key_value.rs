//! The key-value capability: Spin's `fermyon:spin/key-value` and `wasi:keyvalue` (store,
//! atomics, batch), over the backends of `boson-kv`.
//!
//! Runtime config: `[key_value_store.<label>]` with `type = "spin"` (embedded SQLite, optional
//! `path`) or `type = "redis"` (`url`). The `default` label is embedded SQLite in the state dir
//! unless configured. A component may open only the labels in its `key_value_stores`; any other
//! label is `access-denied`, whether or not a backend defines it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::Resource;

use super::bindings::fermyon::spin2_0_0::key_value as spin;
use super::bindings::wasi::keyvalue::{atomics, batch, store as wasi};
use crate::host::HostState;
use crate::runtime_config::{KeyValueStoreConfig, RuntimeConfig};

/// An open store, as a guest resource (Spin's `store`, WASI's `bucket`).
pub struct StoreHandle {
    label: String,
    store: boson_kv::Store,
}

/// A compare-and-swap handle: the value seen when it was created.
pub struct CasHandle {
    store: boson_kv::Store,
    key: String,
    current: Option<Vec<u8>>,
}

/// The stores one component may open, by label.
#[derive(Clone, Default)]
pub struct KeyValue {
    pub granted: Arc<BTreeMap<String, boson_kv::Store>>,
}

/// Every configured backend, opened once per app. Opening fails at start with the label.
pub async fn open_stores(
    labels: impl IntoIterator<Item = String>,
    runtime_config: Option<&RuntimeConfig>,
    state_dir: &Path,
) -> anyhow::Result<BTreeMap<String, boson_kv::Store>> {
    let mut stores = BTreeMap::new();
    for label in labels {
        if stores.contains_key(&label) {
            continue;
        }
        let config = runtime_config.and_then(|rc| rc.key_value_store.get(&label).map(|c| (rc, c)));
        let store = match config {
            Some((rc, KeyValueStoreConfig::Embedded { path })) => {
                let path = match path {
                    Some(p) => rc.resolve_path(p),
                    None => default_path(state_dir, &label),
                };
                boson_kv::Store::open_sqlite(&path)
                    .with_context(|| format!("key-value store `{label}` at {}", path.display()))?
            }
            Some((_, KeyValueStoreConfig::Redis { url })) => {
                boson_kv::Store::open_redis(url).await.with_context(|| {
                    format!(
                        "key-value store `{label}`: cannot reach Redis at {} — is it running?",
                        redact(url)
                    )
                })?
            }
            None if label == "default" => {
                let path = default_path(state_dir, &label);
                boson_kv::Store::open_sqlite(&path)
                    .with_context(|| format!("key-value store `default` at {}", path.display()))?
            }
            None => anyhow::bail!(
                "a component lists key-value store `{label}`, but no backend defines it — add [key_value_store.{label}] to the runtime config (--runtime-config-file)"
            ),
        };
        stores.insert(label, store);
    }
    Ok(stores)
}

fn default_path(state_dir: &Path, label: &str) -> std::path::PathBuf {
    state_dir.join("key_value").join(format!("{label}.db"))
}

/// Hides a password in a URL for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl HostState {
    fn open_store(&mut self, label: &str) -> Result<Resource<StoreHandle>, OpenError> {
        let Some(store) = self.key_value.granted.get(label) else {
            return Err(OpenError::Denied);
        };
        let handle = StoreHandle {
            label: label.to_string(),
            store: store.clone(),
        };
        self.table
            .push(handle)
            .map_err(|e| OpenError::Other(e.to_string()))
    }

    fn store_of(&self, handle: &Resource<StoreHandle>) -> wasmtime::Result<boson_kv::Store> {
        Ok(self.table.get(handle)?.store.clone())
    }

    fn kv_failure(&self, handle_label: &str, e: boson_kv::Error) -> String {
        tracing::warn!(component = %self.component_id(), store = handle_label, "key-value error: {e}");
        e.to_string()
    }
}

enum OpenError {
    Denied,
    Other(String),
}

// ---- fermyon:spin/key-value@2.0.0

impl spin::Host for HostState {}

impl spin::HostStore for HostState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, spin::Error>> {
        Ok(self.open_store(&label).map_err(|e| match e {
            OpenError::Denied => spin::Error::AccessDenied,
            OpenError::Other(m) => spin::Error::Other(m),
        }))
    }

    async fn get(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .get(&key)
            .await
            .map_err(|e| spin::Error::Other(self.kv_failure(&label(self, &h), e))))
    }

    async fn set(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .set(&key, &value)
            .await
            .map_err(|e| spin::Error::Other(self.kv_failure(&label(self, &h), e))))
    }

    async fn delete(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .delete(&key)
            .await
            .map_err(|e| spin::Error::Other(self.kv_failure(&label(self, &h), e))))
    }

    async fn exists(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, spin::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .exists(&key)
            .await
            .map_err(|e| spin::Error::Other(self.kv_failure(&label(self, &h), e))))
    }

    async fn get_keys(
        &mut self,
        h: Resource<StoreHandle>,
    ) -> wasmtime::Result<Result<Vec<String>, spin::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .keys()
            .await
            .map_err(|e| spin::Error::Other(self.kv_failure(&label(self, &h), e))))
    }

    async fn drop(&mut self, h: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

fn label(state: &HostState, h: &Resource<StoreHandle>) -> String {
    state
        .table
        .get(h)
        .map(|s| s.label.clone())
        .unwrap_or_default()
}

// ---- wasi:keyvalue@0.2.0-draft2

fn wasi_err(state: &HostState, h: &Resource<StoreHandle>, e: boson_kv::Error) -> wasi::Error {
    wasi::Error::Other(state.kv_failure(&label(state, h), e))
}

impl wasi::Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, wasi::Error>> {
        Ok(self.open_store(&identifier).map_err(|e| match e {
            OpenError::Denied => wasi::Error::AccessDenied,
            OpenError::Other(m) => wasi::Error::Other(m),
        }))
    }
}

impl wasi::HostBucket for HostState {
    async fn get(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store.get(&key).await.map_err(|e| wasi_err(self, &h, e)))
    }

    async fn set(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .set(&key, &value)
            .await
            .map_err(|e| wasi_err(self, &h, e)))
    }

    async fn delete(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store.delete(&key).await.map_err(|e| wasi_err(self, &h, e)))
    }

    async fn exists(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store.exists(&key).await.map_err(|e| wasi_err(self, &h, e)))
    }

    async fn list_keys(
        &mut self,
        h: Resource<StoreHandle>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<wasi::KeyResponse, wasi::Error>> {
        // All keys come back in one response, so there is never a next cursor.
        let store = self.store_of(&h)?;
        Ok(store
            .keys()
            .await
            .map(|keys| wasi::KeyResponse { keys, cursor: None })
            .map_err(|e| wasi_err(self, &h, e)))
    }

    async fn drop(&mut self, h: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .increment(&key, delta)
            .await
            .map_err(|e| wasi_err(self, &h, e)))
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let handle = self.table.get(&cas)?;
        let (store, key, expected) = (
            handle.store.clone(),
            handle.key.clone(),
            handle.current.clone(),
        );
        match store.compare_and_swap(&key, expected, value).await {
            Ok(true) => {
                self.table.delete(cas)?;
                Ok(Ok(()))
            }
            Ok(false) => {
                // Hand the guest a fresh handle with the value it lost to, so it can retry.
                let current = store.get(&key).await.ok().flatten();
                self.table.get_mut(&cas)?.current = current;
                Ok(Err(atomics::CasError::CasFailed(cas)))
            }
            Err(e) => {
                self.table.delete(cas)?;
                let msg = self.kv_failure("cas", e);
                Ok(Err(atomics::CasError::StoreError(wasi::Error::Other(msg))))
            }
        }
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<CasHandle>, wasi::Error>> {
        let store = self.store_of(&h)?;
        let current = match store.get(&key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(wasi_err(self, &h, e))),
        };
        Ok(Ok(self.table.push(CasHandle {
            store,
            key,
            current,
        })?))
    }

    async fn current(
        &mut self,
        cas: Resource<CasHandle>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, wasi::Error>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        h: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, wasi::Error>> {
        let store = self.store_of(&h)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match store.get(&key).await {
                Ok(v) => out.push((key, v)),
                Err(e) => return Ok(Err(wasi_err(self, &h, e))),
            }
        }
        Ok(Ok(out))
    }

    async fn set_many(
        &mut self,
        h: Resource<StoreHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .set_many(key_values)
            .await
            .map_err(|e| wasi_err(self, &h, e)))
    }

    async fn delete_many(
        &mut self,
        h: Resource<StoreHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), wasi::Error>> {
        let store = self.store_of(&h)?;
        Ok(store
            .delete_many(keys)
            .await
            .map_err(|e| wasi_err(self, &h, e)))
    }
}

// ---- spin:key-value/key-value@3.0.0 (asynchronous, spin-sdk 5)

use super::bindings_p3::spin::key_value::key_value as spin3;
use super::{SpinP3, with_state};
use wasmtime::component::{Accessor, FutureReader, StreamReader};

fn store_of3<U>(
    accessor: &Accessor<U, SpinP3>,
    h: &Resource<StoreHandle>,
) -> wasmtime::Result<(boson_kv::Store, String)> {
    with_state(accessor, |state| {
        let handle = state.table.get(h)?;
        Ok((handle.store.clone(), handle.label.clone()))
    })
}

fn other3<U>(accessor: &Accessor<U, SpinP3>, label: &str, e: boson_kv::Error) -> spin3::Error {
    let message = with_state(accessor, |state| state.kv_failure(label, e));
    spin3::Error::Other(message)
}

impl spin3::Host for HostState {}

impl spin3::HostStore for HostState {
    fn drop(&mut self, h: Resource<StoreHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl<U> spin3::HostStoreWithStore<U> for SpinP3 {
    async fn open(
        accessor: &Accessor<U, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<StoreHandle>, spin3::Error>> {
        Ok(with_state(accessor, |state| {
            state.open_store(&label).map_err(|e| match e {
                OpenError::Denied => spin3::Error::AccessDenied,
                OpenError::Other(m) => spin3::Error::Other(m),
            })
        }))
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin3::Error>> {
        let (store, label) = store_of3(accessor, &h)?;
        Ok(match store.get(&key).await {
            Ok(v) => Ok(v),
            Err(e) => Err(other3(accessor, &label, e)),
        })
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        h: Resource<StoreHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin3::Error>> {
        let (store, label) = store_of3(accessor, &h)?;
        Ok(match store.set(&key, &value).await {
            Ok(()) => Ok(()),
            Err(e) => Err(other3(accessor, &label, e)),
        })
    }

    async fn delete(
        accessor: &Accessor<U, Self>,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<(), spin3::Error>> {
        let (store, label) = store_of3(accessor, &h)?;
        Ok(match store.delete(&key).await {
            Ok(()) => Ok(()),
            Err(e) => Err(other3(accessor, &label, e)),
        })
    }

    async fn exists(
        accessor: &Accessor<U, Self>,
        h: Resource<StoreHandle>,
        key: String,
    ) -> wasmtime::Result<Result<bool, spin3::Error>> {
        let (store, label) = store_of3(accessor, &h)?;
        Ok(match store.exists(&key).await {
            Ok(v) => Ok(v),
            Err(e) => Err(other3(accessor, &label, e)),
        })
    }

    async fn get_keys(
        accessor: &Accessor<U, Self>,
        h: Resource<StoreHandle>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), spin3::Error>>)> {
        let (store, label) = store_of3(accessor, &h)?;
        let (keys, result) = match store.keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(other3(accessor, &label, e))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(
                    &mut access,
                    async move { wasmtime::Result::<_>::Ok(result) },
                )?;
            Ok((stream, future))
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("redis://user:pw@host:6379"),
            "redis://***@host:6379"
        );
        assert_eq!(super::redact("redis://host:6379"), "redis://host:6379");
    }
}

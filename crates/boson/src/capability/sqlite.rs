//! The SQLite capability: Spin's `fermyon:spin/sqlite`, over `boson-sqlite`.
//!
//! Runtime config: `[sqlite_database.<label>]` with `type = "spin"` and an optional `path`. The
//! `default` label is a file in the state dir unless configured. A component may open only the
//! labels in its `sqlite_databases`; any other label is `access-denied`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::component::Resource;

use super::bindings::fermyon::spin::sqlite as spin;
use crate::host::HostState;
use crate::runtime_config::{RuntimeConfig, SqliteDatabaseConfig};

/// An open connection, as a guest resource.
pub struct ConnectionHandle {
    label: String,
    db: boson_sqlite::Database,
}

/// The databases one component may open, by label.
#[derive(Clone, Default)]
pub struct Sqlite {
    pub granted: Arc<BTreeMap<String, boson_sqlite::Database>>,
}

/// Opens every database the app's components list, once per app.
pub fn open_databases(
    labels: impl IntoIterator<Item = String>,
    runtime_config: Option<&RuntimeConfig>,
    state_dir: &Path,
) -> anyhow::Result<BTreeMap<String, boson_sqlite::Database>> {
    let mut dbs = BTreeMap::new();
    for label in labels {
        if dbs.contains_key(&label) {
            continue;
        }
        let path =
            match runtime_config.and_then(|rc| rc.sqlite_database.get(&label).map(|c| (rc, c))) {
                Some((rc, SqliteDatabaseConfig::File { path: Some(p) })) => rc.resolve_path(p),
                _ => default_path(state_dir, &label),
            };
        let db = boson_sqlite::Database::open(&path)
            .with_context(|| format!("SQLite database `{label}` at {}", path.display()))?;
        dbs.insert(label, db);
    }
    Ok(dbs)
}

/// Where a database without a configured path lives.
pub fn default_path(state_dir: &Path, label: &str) -> std::path::PathBuf {
    state_dir.join("sqlite").join(format!("{label}.db"))
}

fn to_guest(v: boson_sqlite::Value) -> spin::Value {
    match v {
        boson_sqlite::Value::Integer(i) => spin::Value::Integer(i),
        boson_sqlite::Value::Real(f) => spin::Value::Real(f),
        boson_sqlite::Value::Text(t) => spin::Value::Text(t),
        boson_sqlite::Value::Blob(b) => spin::Value::Blob(b),
        boson_sqlite::Value::Null => spin::Value::Null,
    }
}

fn from_guest(v: spin::Value) -> boson_sqlite::Value {
    match v {
        spin::Value::Integer(i) => boson_sqlite::Value::Integer(i),
        spin::Value::Real(f) => boson_sqlite::Value::Real(f),
        spin::Value::Text(t) => boson_sqlite::Value::Text(t),
        spin::Value::Blob(b) => boson_sqlite::Value::Blob(b),
        spin::Value::Null => boson_sqlite::Value::Null,
    }
}

impl spin::Host for HostState {}

impl spin::HostConnection for HostState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin::Error>> {
        let Some(db) = self.sqlite.granted.get(&database) else {
            return Ok(Err(spin::Error::AccessDenied));
        };
        let handle = ConnectionHandle {
            label: database.clone(),
            db: db.clone(),
        };
        Ok(Ok(self.table.push(handle)?))
    }

    async fn execute(
        &mut self,
        conn: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<spin::Value>,
    ) -> wasmtime::Result<Result<spin::QueryResult, spin::Error>> {
        let handle = self.table.get(&conn)?;
        let (db, label) = (handle.db.clone(), handle.label.clone());
        let params = parameters.into_iter().map(from_guest).collect();
        Ok(match db.execute(&statement, params).await {
            Ok(result) => Ok(spin::QueryResult {
                columns: result.columns,
                rows: result
                    .rows
                    .into_iter()
                    .map(|row| spin::RowResult {
                        values: row.into_iter().map(to_guest).collect(),
                    })
                    .collect(),
            }),
            Err(boson_sqlite::Error::Full) => Err(spin::Error::DatabaseFull),
            Err(e) => {
                tracing::debug!(component = %self.component_id(), database = label, "sqlite error: {e}");
                Err(spin::Error::Io(e.to_string()))
            }
        })
    }

    async fn drop(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

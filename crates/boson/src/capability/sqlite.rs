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

use super::bindings::fermyon::spin2_0_0::sqlite as spin;
use crate::host::HostState;
use crate::runtime_config::{RuntimeConfig, SqliteDatabaseConfig};

/// An open connection, as a guest resource.
pub struct ConnectionHandle {
    label: String,
    db: boson_sqlite::Database,
    /// From the last statement this connection ran (Spin 3.1's `last-insert-rowid`, `changes`).
    last_insert_rowid: i64,
    changes: u64,
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

impl HostState {
    fn open_database(&mut self, label: &str) -> Result<Resource<ConnectionHandle>, ()> {
        let db = self.sqlite.granted.get(label).ok_or(())?.clone();
        let handle = ConnectionHandle {
            label: label.to_string(),
            db,
            last_insert_rowid: 0,
            changes: 0,
        };
        self.table.push(handle).map_err(|_| ())
    }
}

impl spin::Host for HostState {}

impl spin::HostConnection for HostState {
    async fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin::Error>> {
        Ok(self
            .open_database(&database)
            .map_err(|()| spin::Error::AccessDenied))
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

// ---- spin:sqlite/sqlite@3.1.0 (spin-sdk 5: synchronous and asynchronous forms)

use super::bindings_p3::spin::sqlite::sqlite as spin3;
use super::{SpinP3, with_state};
use wasmtime::component::{Accessor, FutureReader, StreamReader};

fn to_guest3(v: boson_sqlite::Value) -> spin3::Value {
    match v {
        boson_sqlite::Value::Integer(i) => spin3::Value::Integer(i),
        boson_sqlite::Value::Real(f) => spin3::Value::Real(f),
        boson_sqlite::Value::Text(t) => spin3::Value::Text(t),
        boson_sqlite::Value::Blob(b) => spin3::Value::Blob(b),
        boson_sqlite::Value::Null => spin3::Value::Null,
    }
}

fn from_guest3(v: spin3::Value) -> boson_sqlite::Value {
    match v {
        spin3::Value::Integer(i) => boson_sqlite::Value::Integer(i),
        spin3::Value::Real(f) => boson_sqlite::Value::Real(f),
        spin3::Value::Text(t) => boson_sqlite::Value::Text(t),
        spin3::Value::Blob(b) => boson_sqlite::Value::Blob(b),
        spin3::Value::Null => boson_sqlite::Value::Null,
    }
}

fn error3(e: boson_sqlite::Error) -> spin3::Error {
    match e {
        boson_sqlite::Error::Full => spin3::Error::DatabaseFull,
        e => spin3::Error::Io(e.to_string()),
    }
}

fn rows3(rows: Vec<Vec<boson_sqlite::Value>>) -> Vec<spin3::RowResult> {
    rows.into_iter()
        .map(|row| spin3::RowResult {
            values: row.into_iter().map(to_guest3).collect(),
        })
        .collect()
}

impl spin3::Host for HostState {}

impl spin3::HostConnection for HostState {
    fn open(
        &mut self,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin3::Error>> {
        Ok(self
            .open_database(&database)
            .map_err(|()| spin3::Error::AccessDenied))
    }

    fn execute(
        &mut self,
        conn: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<spin3::Value>,
    ) -> wasmtime::Result<Result<spin3::QueryResult, spin3::Error>> {
        let db = self.table.get(&conn)?.db.clone();
        let params = parameters.into_iter().map(from_guest3).collect();
        // A synchronous guest call: SQLite runs on this thread, like any other guest work.
        Ok(match db.execute_blocking(&statement, params) {
            Ok(result) => {
                let handle = self.table.get_mut(&conn)?;
                handle.last_insert_rowid = result.last_insert_rowid;
                handle.changes = result.changes;
                Ok(spin3::QueryResult {
                    columns: result.columns,
                    rows: rows3(result.rows),
                })
            }
            Err(e) => Err(error3(e)),
        })
    }

    fn last_insert_rowid(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<i64> {
        Ok(self.table.get(&conn)?.last_insert_rowid)
    }

    fn changes(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&conn)?.changes)
    }

    fn drop(&mut self, conn: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

type RowStream = (
    Vec<String>,
    StreamReader<spin3::RowResult>,
    FutureReader<Result<(), spin3::Error>>,
);

impl<U> spin3::HostConnectionWithStore<U> for SpinP3 {
    async fn open_async(
        accessor: &Accessor<U, Self>,
        database: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin3::Error>> {
        Ok(with_state(accessor, |state| {
            state
                .open_database(&database)
                .map_err(|()| spin3::Error::AccessDenied)
        }))
    }

    async fn execute_async(
        accessor: &Accessor<U, Self>,
        conn: Resource<ConnectionHandle>,
        statement: String,
        parameters: Vec<spin3::Value>,
    ) -> wasmtime::Result<Result<RowStream, spin3::Error>> {
        let db = with_state(accessor, |state| {
            state.table.get(&conn).map(|h| h.db.clone())
        })?;
        let params = parameters.into_iter().map(from_guest3).collect();
        let result = match db.execute(&statement, params).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(error3(e))),
        };
        accessor.with(|mut access| {
            let state: &mut HostState = access.get();
            let handle = state.table.get_mut(&conn)?;
            handle.last_insert_rowid = result.last_insert_rowid;
            handle.changes = result.changes;
            let rows = StreamReader::new(&mut access, rows3(result.rows))?;
            let done = FutureReader::new(&mut access, async { wasmtime::Result::<_>::Ok(Ok(())) })?;
            Ok(Ok((result.columns, rows, done)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<U, Self>,
        conn: Resource<ConnectionHandle>,
    ) -> wasmtime::Result<i64> {
        with_state(accessor, |state| {
            Ok(state.table.get(&conn)?.last_insert_rowid)
        })
    }

    async fn changes_async(
        accessor: &Accessor<U, Self>,
        conn: Resource<ConnectionHandle>,
    ) -> wasmtime::Result<u64> {
        with_state(accessor, |state| Ok(state.table.get(&conn)?.changes))
    }
}

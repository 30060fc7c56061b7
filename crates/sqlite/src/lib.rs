//! SQLite databases for Boson's sqlite capability.
//!
//! A [`Database`] is one file, opened once per app, in WAL mode with full sync, shared by every
//! instance that may use it. Statements run on a blocking thread; parameters and results carry
//! SQLite's five value types unchanged.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), boson_sqlite::Error> {
//! use boson_sqlite::{Database, Value};
//! let dir = tempfile::tempdir().unwrap();
//! let db = Database::open(&dir.path().join("app.db"))?;
//! db.execute("CREATE TABLE t (x INTEGER, y TEXT)", vec![]).await?;
//! db.execute("INSERT INTO t VALUES (?, ?)", vec![Value::Integer(1), Value::Text("one".into())]).await?;
//! let result = db.execute("SELECT x, y FROM t", vec![]).await?;
//! assert_eq!(result.rows, vec![vec![Value::Integer(1), Value::Text("one".into())]]);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};

/// One SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

/// The columns and rows a statement produced (empty for statements that return no rows).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    /// `last_insert_rowid()` and `changes()` of this statement, read under the same lock.
    pub last_insert_rowid: i64,
    pub changes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the database is full")]
    Full,
    #[error("{0}")]
    Io(String),
}

/// An open database file.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

impl Database {
    pub fn open(path: &Path) -> Result<Self, Error> {
        let conn = open_durable(path)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs one statement with positional parameters.
    pub async fn execute(&self, statement: &str, params: Vec<Value>) -> Result<QueryResult, Error> {
        let conn = self.conn.clone();
        let statement = statement.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| Error::Io("the connection was poisoned".into()))?;
            execute_sync(&conn, &statement, &params)
        })
        .await
        .map_err(|e| Error::Io(format!("statement task failed: {e}")))?
    }

    /// Runs one statement on the calling thread (for synchronous guest calls).
    pub fn execute_blocking(
        &self,
        statement: &str,
        params: Vec<Value>,
    ) -> Result<QueryResult, Error> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| Error::Io("the connection was poisoned".into()))?;
        execute_sync(&conn, statement, &params)
    }

    /// Runs a script of `;`-separated statements (for `boson up --sqlite`).
    pub async fn execute_batch(&self, sql: &str) -> Result<(), Error> {
        let conn = self.conn.clone();
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| Error::Io("the connection was poisoned".into()))?;
            conn.execute_batch(&sql)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Io(format!("statement task failed: {e}")))?
    }
}

/// Opens (creating it and its folder if needed) a database file the way every embedded store
/// of Boson's uses it: WAL mode with full sync, so a committed write survives a crash, and a
/// busy timeout instead of an immediate `SQLITE_BUSY`.
pub fn open_durable(path: &Path) -> Result<rusqlite::Connection, Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Io(format!("creating {}: {e}", parent.display())))?;
    }
    let conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn execute_sync(
    conn: &rusqlite::Connection,
    statement: &str,
    params: &[Value],
) -> Result<QueryResult, Error> {
    use rusqlite::types::{ToSqlOutput, Value as Sql, ValueRef};
    let mut stmt = conn.prepare(statement).map_err(full_or)?;
    let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
    let bound: Vec<ToSqlOutput<'_>> = params
        .iter()
        .map(|p| {
            ToSqlOutput::Owned(match p {
                Value::Integer(i) => Sql::Integer(*i),
                Value::Real(f) => Sql::Real(*f),
                Value::Text(t) => Sql::Text(t.clone()),
                Value::Blob(b) => Sql::Blob(b.clone()),
                Value::Null => Sql::Null,
            })
        })
        .collect();
    let mut rows = stmt
        .query(rusqlite::params_from_iter(bound.iter()))
        .map_err(full_or)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(full_or)? {
        let mut values = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            values.push(match row.get_ref(i)? {
                ValueRef::Integer(i) => Value::Integer(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                ValueRef::Null => Value::Null,
            });
        }
        out.push(values);
    }
    drop(rows);
    Ok(QueryResult {
        columns,
        rows: out,
        last_insert_rowid: conn.last_insert_rowid(),
        changes: conn.changes(),
    })
}

fn full_or(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => Error::Full,
        _ => Error::Sqlite(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_value_type_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        db.execute_batch("CREATE TABLE t (i, r, s, b, n)")
            .await
            .unwrap();
        let values = vec![
            Value::Integer(i64::MIN),
            Value::Real(-1.25e300),
            Value::Text("héllo \u{0}".into()),
            Value::Blob(vec![0, 255, 1]),
            Value::Null,
        ];
        db.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", values.clone())
            .await
            .unwrap();
        let r = db.execute("SELECT * FROM t", vec![]).await.unwrap();
        assert_eq!(r.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(r.rows, vec![values]);
        let err = db.execute("SELEC 1", vec![]).await.unwrap_err().to_string();
        assert!(err.contains("syntax error"), "{err}");
    }
}

//! Key-value backends for Boson: embedded SQLite (durable, WAL) and Redis.
//!
//! One [`Store`] is one labelled store. Every operation the guest interfaces need — Spin's
//! key-value and `wasi:keyvalue` store, atomics and batch — is a method here, so a capability
//! binds to this type alone and the same guest runs against either backend.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), boson_kv::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = boson_kv::Store::open_sqlite(&dir.path().join("kv.db"))?;
//! store.set("greeting", b"hello").await?;
//! assert_eq!(store.get("greeting").await?, Some(b"hello".to_vec()));
//! assert_eq!(store.increment("visits", 2).await?, 2);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::{Arc, Mutex};

use redis::AsyncCommands as _;

/// What went wrong in a backend, in words a guest developer can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("the value of `{0}` is not an integer, so it cannot be incremented")]
    NotAnInteger(String),
    #[error("internal: {0}")]
    Internal(String),
}

/// One labelled store.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Redis(RedisStore),
}

/// A store in its own SQLite file, in WAL mode with full sync: a write returns only after it is
/// committed to disk.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<rusqlite::Connection>>,
}

/// A store in a Redis database (the whole database is the store).
#[derive(Clone)]
pub struct RedisStore {
    conn: redis::aio::ConnectionManager,
}

impl Store {
    /// Opens (creating if needed) an embedded store at `path`.
    pub fn open_sqlite(path: &Path) -> Result<Self, Error> {
        let conn = boson_sqlite::open_durable(path).map_err(|e| match e {
            boson_sqlite::Error::Sqlite(e) => Error::Sqlite(e),
            other => Error::Internal(other.to_string()),
        })?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL)",
        )?;
        Ok(Self::Sqlite(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        }))
    }

    /// Connects to Redis at `url` (reconnecting by itself when the server comes back).
    pub async fn open_redis(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)?;
        let conn = redis::aio::ConnectionManager::new(client).await?;
        Ok(Self::Redis(RedisStore { conn }))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        match self {
            Store::Sqlite(s) => {
                let key = key.to_string();
                s.with(move |c| {
                    use rusqlite::OptionalExtension as _;
                    Ok(
                        c.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0))
                            .optional()?,
                    )
                })
                .await
            }
            Store::Redis(r) => Ok(r.conn.clone().get(key).await?),
        }
    }

    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        match self {
            Store::Sqlite(s) => {
                let (key, value) = (key.to_string(), value.to_vec());
                s.with(move |c| {
                    c.execute(
                        "INSERT INTO kv (key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        rusqlite::params![key, value],
                    )?;
                    Ok(())
                })
                .await
            }
            Store::Redis(r) => Ok(r.conn.clone().set(key, value).await?),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self {
            Store::Sqlite(s) => {
                let key = key.to_string();
                s.with(move |c| {
                    c.execute("DELETE FROM kv WHERE key = ?1", [key])?;
                    Ok(())
                })
                .await
            }
            Store::Redis(r) => Ok(r.conn.clone().del(key).await?),
        }
    }

    pub async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self {
            Store::Sqlite(s) => {
                let key = key.to_string();
                s.with(move |c| {
                    Ok(c.query_row(
                        "SELECT EXISTS(SELECT 1 FROM kv WHERE key = ?1)",
                        [key],
                        |r| r.get(0),
                    )?)
                })
                .await
            }
            Store::Redis(r) => Ok(r.conn.clone().exists(key).await?),
        }
    }

    /// Every key, sorted.
    pub async fn keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Store::Sqlite(s) => {
                s.with(|c| {
                    let mut stmt = c.prepare("SELECT key FROM kv ORDER BY key")?;
                    let keys = stmt
                        .query_map([], |r| r.get(0))?
                        .collect::<Result<Vec<String>, _>>()?;
                    Ok(keys)
                })
                .await
            }
            Store::Redis(r) => {
                let mut conn = r.conn.clone();
                let mut keys: Vec<String> = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await?;
                    keys.extend(batch);
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                keys.sort();
                keys.dedup();
                Ok(keys)
            }
        }
    }

    /// Adds `delta` to the integer stored (as decimal text) at `key`, starting from 0; returns
    /// the new value. Atomic: concurrent increments never lose an update.
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        match self {
            Store::Sqlite(s) => {
                let key = key.to_string();
                s.with(move |c| {
                    let tx = c.transaction()?;
                    let current: Option<Vec<u8>> = {
                        use rusqlite::OptionalExtension as _;
                        tx.query_row("SELECT value FROM kv WHERE key = ?1", [&key], |r| r.get(0))
                            .optional()?
                    };
                    let current = match current {
                        None => 0,
                        Some(bytes) => std::str::from_utf8(&bytes)
                            .ok()
                            .and_then(|t| t.trim().parse::<i64>().ok())
                            .ok_or_else(|| Error::NotAnInteger(key.clone()))?,
                    };
                    let next = current.checked_add(delta).ok_or_else(|| {
                        Error::Internal(format!("incrementing `{key}` overflows"))
                    })?;
                    tx.execute(
                        "INSERT INTO kv (key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        rusqlite::params![key, next.to_string().into_bytes()],
                    )?;
                    tx.commit()?;
                    Ok(next)
                })
                .await
            }
            Store::Redis(r) => r.conn.clone().incr(key, delta).await.map_err(|e| {
                if e.to_string().contains("not an integer") {
                    Error::NotAnInteger(key.to_string())
                } else {
                    Error::Redis(e)
                }
            }),
        }
    }

    /// Sets `key` to `new` only if its value is still `expected` (`None`: the key must not
    /// exist). Returns whether the swap happened.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    ) -> Result<bool, Error> {
        match self {
            Store::Sqlite(s) => {
                let key = key.to_string();
                s.with(move |c| {
                    use rusqlite::OptionalExtension as _;
                    let tx = c.transaction()?;
                    let current: Option<Vec<u8>> = tx
                        .query_row("SELECT value FROM kv WHERE key = ?1", [&key], |r| r.get(0))
                        .optional()?;
                    if current != expected {
                        return Ok(false);
                    }
                    tx.execute(
                        "INSERT INTO kv (key, value) VALUES (?1, ?2)
                         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        rusqlite::params![key, new],
                    )?;
                    tx.commit()?;
                    Ok(true)
                })
                .await
            }
            Store::Redis(r) => {
                let script = redis::Script::new(
                    r"local cur = redis.call('GET', KEYS[1])
                      if ARGV[1] == '1' then
                        if cur ~= ARGV[2] then return 0 end
                      elseif cur then return 0 end
                      redis.call('SET', KEYS[1], ARGV[3])
                      return 1",
                );
                let (has, value) = match &expected {
                    Some(v) => ("1", v.as_slice()),
                    None => ("0", &[][..]),
                };
                let swapped: i64 = script
                    .key(key)
                    .arg(has)
                    .arg(value)
                    .arg(new)
                    .invoke_async(&mut r.conn.clone())
                    .await?;
                Ok(swapped == 1)
            }
        }
    }

    /// The values of those `keys` that exist.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let mut out = Vec::new();
        for key in keys {
            if let Some(v) = self.get(key).await? {
                out.push((key.clone(), v));
            }
        }
        Ok(out)
    }

    /// Sets every pair in one transaction (SQLite) or one `MSET` (Redis).
    pub async fn set_many(&self, pairs: Vec<(String, Vec<u8>)>) -> Result<(), Error> {
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| {
                    let tx = c.transaction()?;
                    for (k, v) in &pairs {
                        tx.execute(
                            "INSERT INTO kv (key, value) VALUES (?1, ?2)
                             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            rusqlite::params![k, v],
                        )?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await
            }
            Store::Redis(r) => {
                if pairs.is_empty() {
                    return Ok(());
                }
                Ok(r.conn.clone().mset(&pairs).await?)
            }
        }
    }

    pub async fn delete_many(&self, keys: Vec<String>) -> Result<(), Error> {
        match self {
            Store::Sqlite(s) => {
                s.with(move |c| {
                    let tx = c.transaction()?;
                    for k in &keys {
                        tx.execute("DELETE FROM kv WHERE key = ?1", [k])?;
                    }
                    tx.commit()?;
                    Ok(())
                })
                .await
            }
            Store::Redis(r) => {
                if keys.is_empty() {
                    return Ok(());
                }
                Ok(r.conn.clone().del(keys).await?)
            }
        }
    }
}

impl SqliteStore {
    /// Runs `f` on the connection on a blocking thread (SQLite calls block on disk).
    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| Error::Internal("the store's connection was poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Internal(format!("store task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exercise(store: &Store) {
        store
            .delete_many(vec!["a".into(), "b".into(), "n".into()])
            .await
            .unwrap();
        assert_eq!(store.get("a").await.unwrap(), None);
        store.set("a", b"1").await.unwrap();
        assert!(store.exists("a").await.unwrap());
        assert_eq!(store.get("a").await.unwrap(), Some(b"1".to_vec()));
        store.set("a", b"\x00\xffbinary").await.unwrap();
        assert_eq!(
            store.get("a").await.unwrap(),
            Some(b"\x00\xffbinary".to_vec())
        );
        store
            .set_many(vec![("b".into(), b"2".to_vec())])
            .await
            .unwrap();
        let many = store
            .get_many(&["a".into(), "b".into(), "zz".into()])
            .await
            .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(store.increment("n", 5).await.unwrap(), 5);
        assert_eq!(store.increment("n", -2).await.unwrap(), 3);
        assert_eq!(store.get("n").await.unwrap(), Some(b"3".to_vec()));
        assert!(matches!(
            store.increment("a", 1).await,
            Err(Error::NotAnInteger(_))
        ));
        let keys = store.keys().await.unwrap();
        assert!(
            ["a", "b", "n"]
                .iter()
                .all(|k| keys.contains(&k.to_string())),
            "{keys:?}"
        );
        assert!(
            !store
                .compare_and_swap("b", Some(b"x".to_vec()), b"y".to_vec())
                .await
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap("b", Some(b"2".to_vec()), b"y".to_vec())
                .await
                .unwrap()
        );
        assert_eq!(store.get("b").await.unwrap(), Some(b"y".to_vec()));
        assert!(
            !store
                .compare_and_swap("b", None, b"z".to_vec())
                .await
                .unwrap()
        );
        store.delete("cas-new").await.unwrap();
        assert!(
            store
                .compare_and_swap("cas-new", None, b"z".to_vec())
                .await
                .unwrap()
        );
        store.delete("cas-new").await.unwrap();
        store.delete("a").await.unwrap();
        assert!(!store.exists("a").await.unwrap());
    }

    #[tokio::test]
    async fn sqlite_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("kv.db")).unwrap();
        exercise(&store).await;
        assert_eq!(
            store.keys().await.unwrap(),
            vec!["b".to_string(), "n".to_string()]
        );
    }

    #[tokio::test]
    async fn redis_store() {
        // The real Redis on this machine; database 15 keeps the test away from other data.
        let store = Store::open_redis("redis://127.0.0.1:6379/15")
            .await
            .expect("Redis at 127.0.0.1:6379");
        exercise(&store).await;
    }

    #[tokio::test]
    async fn concurrent_increments_are_exact() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("kv.db")).unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.increment("c", 1).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.get("c").await.unwrap(), Some(b"50".to_vec()));
    }
}

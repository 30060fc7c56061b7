//! Outbound Redis: Spin's `fermyon:spin/redis`, allowed only to addresses the component's
//! `allowed_outbound_hosts` grants (`redis://host:port`), with the same private-address rule as
//! outbound HTTP. Connections are kept per component and address and shared by its instances.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::bindings::fermyon::spin::redis as spin;
use crate::host::HostState;

/// A guest's open connection.
pub struct ConnectionHandle {
    conn: redis::aio::ConnectionManager,
}

/// A component's connections, by address; shared by its instances.
#[derive(Clone, Default)]
pub struct RedisConnections {
    by_address: Arc<Mutex<HashMap<String, redis::aio::ConnectionManager>>>,
}

/// Most connections one component keeps open at once.
const MAX_CONNECTIONS_PER_COMPONENT: usize = 64;

impl HostState {
    async fn redis_connect(
        &mut self,
        address: &str,
    ) -> Result<redis::aio::ConnectionManager, spin::Error> {
        let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(address)
            .map_err(|_| spin::Error::InvalidAddress)?;
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            _ => {
                return Err(spin::Error::Other(format!(
                    "`{address}`: only redis://host:port addresses are supported"
                )));
            }
        };
        // Check the grant and resolve, then connect to the address that passed the check.
        let hosts = self.allowed_hosts();
        let addrs = hosts
            .resolve("redis", &host, port)
            .await
            .map_err(|denied| {
                tracing::warn!(component = %self.component_id(), "outbound Redis denied: {denied}");
                spin::Error::Other(format!("{denied}"))
            })?;
        let mut pool = self.redis.by_address.lock().await;
        if let Some(conn) = pool.get(address) {
            return Ok(conn.clone());
        }
        if pool.len() >= MAX_CONNECTIONS_PER_COMPONENT {
            return Err(spin::Error::TooManyConnections);
        }
        let ip = addrs[0].ip().to_string();
        let checked = info.set_addr(redis::ConnectionAddr::Tcp(ip, port));
        let client = redis::Client::open(checked).map_err(|e| spin::Error::Other(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| spin::Error::Other(format!("connecting to {host}:{port}: {e}")))?;
        pool.insert(address.to_string(), conn.clone());
        Ok(conn)
    }

    fn redis_conn(
        &self,
        h: &Resource<ConnectionHandle>,
    ) -> wasmtime::Result<redis::aio::ConnectionManager> {
        Ok(self.table.get(h)?.conn.clone())
    }
}

fn other(e: redis::RedisError) -> spin::Error {
    if e.kind() == redis::ErrorKind::UnexpectedReturnType {
        spin::Error::TypeError
    } else {
        spin::Error::Other(e.to_string())
    }
}

async fn run<T: redis::FromRedisValue>(
    mut conn: redis::aio::ConnectionManager,
    cmd: redis::Cmd,
) -> Result<T, spin::Error> {
    cmd.query_async(&mut conn).await.map_err(other)
}

impl spin::Host for HostState {}

impl spin::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin::Error>> {
        match self.redis_connect(&address).await {
            Ok(conn) => Ok(Ok(self.table.push(ConnectionHandle { conn })?)),
            Err(e) => Ok(Err(e)),
        }
    }

    async fn publish(
        &mut self,
        h: Resource<ConnectionHandle>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run::<i64>(
            conn,
            redis::cmd("PUBLISH").arg(channel).arg(payload).clone(),
        )
        .await
        .map(|_| ()))
    }

    async fn get(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run(conn, redis::cmd("GET").arg(key).clone()).await)
    }

    async fn set(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run::<()>(conn, redis::cmd("SET").arg(key).arg(value).clone()).await)
    }

    async fn incr(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<i64, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run(conn, redis::cmd("INCR").arg(key).clone()).await)
    }

    async fn del(
        &mut self,
        h: Resource<ConnectionHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run(conn, redis::cmd("DEL").arg(keys).clone()).await)
    }

    async fn sadd(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run(conn, redis::cmd("SADD").arg(key).arg(values).clone()).await)
    }

    async fn smembers(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run(conn, redis::cmd("SMEMBERS").arg(key).clone()).await)
    }

    async fn srem(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        Ok(run(conn, redis::cmd("SREM").arg(key).arg(values).clone()).await)
    }

    async fn execute(
        &mut self,
        h: Resource<ConnectionHandle>,
        command: String,
        arguments: Vec<spin::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<spin::RedisResult>, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        let mut cmd = redis::cmd(&command);
        for arg in arguments {
            match arg {
                spin::RedisParameter::Int64(i) => cmd.arg(i),
                spin::RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        let value: redis::Value = match run(conn, cmd).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(flatten(value)))
    }

    async fn drop(&mut self, h: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

/// Turns a Redis reply into Spin's flat result list (arrays are flattened, as Spin does).
fn flatten(value: redis::Value) -> Vec<spin::RedisResult> {
    match value {
        redis::Value::Nil => vec![spin::RedisResult::Nil],
        redis::Value::Int(i) => vec![spin::RedisResult::Int64(i)],
        redis::Value::BulkString(b) => vec![spin::RedisResult::Binary(b)],
        redis::Value::SimpleString(s) => vec![spin::RedisResult::Status(s)],
        redis::Value::Okay => vec![spin::RedisResult::Status("OK".into())],
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.into_iter().flat_map(flatten).collect()
        }
        redis::Value::Double(d) => vec![spin::RedisResult::Binary(d.to_string().into_bytes())],
        redis::Value::Boolean(b) => vec![spin::RedisResult::Int64(i64::from(b))],
        other => vec![spin::RedisResult::Binary(format!("{other:?}").into_bytes())],
    }
}

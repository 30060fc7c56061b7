//! Outbound Redis: Spin's `fermyon:spin/redis@2.0.0` and the asynchronous
//! `spin:redis/redis@3.0.0`, allowed only to addresses the component's `allowed_outbound_hosts`
//! grants (`redis://host:port`), with the same private-address rule as outbound HTTP.
//! Connections are kept per component and address and shared by its instances.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Mutex;
use wasmtime::component::{Accessor, Resource};

use super::bindings::fermyon::spin2_0_0::redis as spin;
use super::bindings_p3::spin::redis::redis as spin3;
use super::{SpinP3, with_state};
use crate::host::{HostState, OutboundGrant};
use crate::runtime_config::OutboundConnectionsConfig;

/// A guest's open connection.
pub struct ConnectionHandle {
    conn: redis::aio::ConnectionManager,
}

/// A component's connections, by address; shared by its instances.
#[derive(Clone)]
pub struct RedisConnections {
    by_address: Arc<Mutex<HashMap<String, redis::aio::ConnectionManager>>>,
    limits: OutboundConnectionsConfig,
}

impl RedisConnections {
    pub fn new(limits: OutboundConnectionsConfig) -> Self {
        Self {
            by_address: Arc::default(),
            limits,
        }
    }
}

/// A failure, before it becomes one interface version's error type.
enum Failure {
    InvalidAddress,
    TooManyConnections,
    TypeError,
    Other(String),
}

impl RedisConnections {
    async fn connect(
        &self,
        grant: &OutboundGrant,
        address: &str,
    ) -> Result<redis::aio::ConnectionManager, Failure> {
        let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(address)
            .map_err(|_| Failure::InvalidAddress)?;
        let (host, port) = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), *port),
            _ => {
                return Err(Failure::Other(format!(
                    "`{address}`: only redis://host:port addresses are supported"
                )));
            }
        };
        // Check the grant and resolve, then connect to the address that passed the check.
        let addrs = grant
            .hosts
            .resolve("redis", &host, port)
            .await
            .map_err(|denied| {
                tracing::warn!(component = %grant.component, "outbound Redis denied: {denied}");
                Failure::Other(denied.to_string())
            })?;
        let mut pool = self.by_address.lock().await;
        if let Some(conn) = pool.get(address) {
            return Ok(conn.clone());
        }
        if pool.len() >= self.limits.max_addresses {
            return Err(Failure::TooManyConnections);
        }
        let checked = info.set_addr(redis::ConnectionAddr::Tcp(addrs[0].ip().to_string(), port));
        let client = redis::Client::open(checked).map_err(|e| Failure::Other(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
            .set_number_of_retries(1);
        let conn = redis::aio::ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Failure::Other(format!("connecting to {host}:{port}: {e}")))?;
        pool.insert(address.to_string(), conn.clone());
        Ok(conn)
    }
}

async fn run<T: redis::FromRedisValue>(
    mut conn: redis::aio::ConnectionManager,
    cmd: redis::Cmd,
) -> Result<T, Failure> {
    cmd.query_async(&mut conn).await.map_err(|e| {
        if e.kind() == redis::ErrorKind::UnexpectedReturnType {
            Failure::TypeError
        } else {
            Failure::Other(e.to_string())
        }
    })
}

/// The commands both interface versions offer, on a connection.
enum Command {
    Publish(String, Vec<u8>),
    Get(String),
    Set(String, Vec<u8>),
    Incr(String),
    Del(Vec<String>),
    Sadd(String, Vec<String>),
    Smembers(String),
    Srem(String, Vec<String>),
}

impl Command {
    fn cmd(self) -> redis::Cmd {
        let mut c;
        match self {
            Command::Publish(channel, payload) => {
                c = redis::cmd("PUBLISH");
                c.arg(channel).arg(payload);
            }
            Command::Get(key) => {
                c = redis::cmd("GET");
                c.arg(key);
            }
            Command::Set(key, value) => {
                c = redis::cmd("SET");
                c.arg(key).arg(value);
            }
            Command::Incr(key) => {
                c = redis::cmd("INCR");
                c.arg(key);
            }
            Command::Del(keys) => {
                c = redis::cmd("DEL");
                c.arg(keys);
            }
            Command::Sadd(key, values) => {
                c = redis::cmd("SADD");
                c.arg(key).arg(values);
            }
            Command::Smembers(key) => {
                c = redis::cmd("SMEMBERS");
                c.arg(key);
            }
            Command::Srem(key, values) => {
                c = redis::cmd("SREM");
                c.arg(key).arg(values);
            }
        }
        c
    }
}

/// A raw command: `int64` arguments are sent as integers, `binary` ones as bytes.
fn raw_command(
    command: &str,
    arguments: impl IntoIterator<Item = Result<i64, Vec<u8>>>,
) -> redis::Cmd {
    let mut cmd = redis::cmd(command);
    for arg in arguments {
        match arg {
            Ok(i) => cmd.arg(i),
            Err(b) => cmd.arg(b),
        };
    }
    cmd
}

/// A Redis reply as Spin's flat result list (arrays are flattened, as Spin does):
/// `None` for nil, `Status`, `Int`, `Binary`.
enum Reply {
    Nil,
    Status(String),
    Int(i64),
    Binary(Vec<u8>),
}

fn flatten(value: redis::Value) -> Vec<Reply> {
    match value {
        redis::Value::Nil => vec![Reply::Nil],
        redis::Value::Int(i) => vec![Reply::Int(i)],
        redis::Value::BulkString(b) => vec![Reply::Binary(b)],
        redis::Value::SimpleString(s) => vec![Reply::Status(s)],
        redis::Value::Okay => vec![Reply::Status("OK".into())],
        redis::Value::Array(items) | redis::Value::Set(items) => {
            items.into_iter().flat_map(flatten).collect()
        }
        redis::Value::Double(d) => vec![Reply::Binary(d.to_string().into_bytes())],
        redis::Value::Boolean(b) => vec![Reply::Int(i64::from(b))],
        other => vec![Reply::Binary(format!("{other:?}").into_bytes())],
    }
}

// ---- fermyon:spin/redis@2.0.0

fn v2(f: Failure) -> spin::Error {
    match f {
        Failure::InvalidAddress => spin::Error::InvalidAddress,
        Failure::TooManyConnections => spin::Error::TooManyConnections,
        Failure::TypeError => spin::Error::TypeError,
        Failure::Other(m) => spin::Error::Other(m),
    }
}

impl HostState {
    fn redis_conn(
        &self,
        h: &Resource<ConnectionHandle>,
    ) -> wasmtime::Result<redis::aio::ConnectionManager> {
        Ok(self.table.get(h)?.conn.clone())
    }

    async fn redis_run<T: redis::FromRedisValue>(
        &mut self,
        h: &Resource<ConnectionHandle>,
        c: Command,
    ) -> wasmtime::Result<Result<T, spin::Error>> {
        let conn = self.redis_conn(h)?;
        Ok(run(conn, c.cmd()).await.map_err(v2))
    }
}

impl spin::Host for HostState {}

impl spin::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin::Error>> {
        let grant = self.outbound_grant();
        match self.redis.clone().connect(&grant, &address).await {
            Ok(conn) => Ok(Ok(self.table.push(ConnectionHandle { conn })?)),
            Err(e) => Ok(Err(v2(e))),
        }
    }

    async fn publish(
        &mut self,
        h: Resource<ConnectionHandle>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        Ok(self
            .redis_run::<i64>(&h, Command::Publish(channel, payload))
            .await?
            .map(|_| ()))
    }

    async fn get(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin::Error>> {
        self.redis_run(&h, Command::Get(key)).await
    }

    async fn set(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        self.redis_run(&h, Command::Set(key, value)).await
    }

    async fn incr(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<i64, spin::Error>> {
        self.redis_run(&h, Command::Incr(key)).await
    }

    async fn del(
        &mut self,
        h: Resource<ConnectionHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin::Error>> {
        self.redis_run(&h, Command::Del(keys)).await
    }

    async fn sadd(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin::Error>> {
        self.redis_run(&h, Command::Sadd(key, values)).await
    }

    async fn smembers(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, spin::Error>> {
        self.redis_run(&h, Command::Smembers(key)).await
    }

    async fn srem(
        &mut self,
        h: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin::Error>> {
        self.redis_run(&h, Command::Srem(key, values)).await
    }

    async fn execute(
        &mut self,
        h: Resource<ConnectionHandle>,
        command: String,
        arguments: Vec<spin::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<spin::RedisResult>, spin::Error>> {
        let conn = self.redis_conn(&h)?;
        let args = arguments.into_iter().map(|a| match a {
            spin::RedisParameter::Int64(i) => Ok(i),
            spin::RedisParameter::Binary(b) => Err(b),
        });
        Ok(run::<redis::Value>(conn, raw_command(&command, args))
            .await
            .map_err(v2)
            .map(|v| {
                flatten(v)
                    .into_iter()
                    .map(|r| match r {
                        Reply::Nil => spin::RedisResult::Nil,
                        Reply::Status(s) => spin::RedisResult::Status(s),
                        Reply::Int(i) => spin::RedisResult::Int64(i),
                        Reply::Binary(b) => spin::RedisResult::Binary(b),
                    })
                    .collect()
            }))
    }

    async fn drop(&mut self, h: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

// ---- spin:redis/redis@3.0.0 (asynchronous, spin-sdk 5)

fn v3(f: Failure) -> spin3::Error {
    match f {
        Failure::InvalidAddress => spin3::Error::InvalidAddress,
        Failure::TooManyConnections => spin3::Error::TooManyConnections,
        Failure::TypeError => spin3::Error::TypeError,
        Failure::Other(m) => spin3::Error::Other(m),
    }
}

fn conn3<U>(
    accessor: &Accessor<U, SpinP3>,
    h: &Resource<ConnectionHandle>,
) -> wasmtime::Result<redis::aio::ConnectionManager> {
    with_state(accessor, |state| state.redis_conn(h))
}

async fn run3<U, T: redis::FromRedisValue>(
    accessor: &Accessor<U, SpinP3>,
    h: &Resource<ConnectionHandle>,
    c: Command,
) -> wasmtime::Result<Result<T, spin3::Error>> {
    let conn = conn3(accessor, h)?;
    Ok(run(conn, c.cmd()).await.map_err(v3))
}

impl spin3::Host for HostState {}

impl spin3::HostConnection for HostState {
    fn drop(&mut self, h: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

impl<U> spin3::HostConnectionWithStore<U> for SpinP3 {
    async fn open(
        accessor: &Accessor<U, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin3::Error>> {
        let (pool, grant) = with_state(accessor, |state| {
            (state.redis.clone(), state.outbound_grant())
        });
        match pool.connect(&grant, &address).await {
            Ok(conn) => with_state(accessor, |state| {
                Ok(Ok(state.table.push(ConnectionHandle { conn })?))
            }),
            Err(e) => Ok(Err(v3(e))),
        }
    }

    async fn publish(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin3::Error>> {
        Ok(
            run3::<U, i64>(accessor, &h, Command::Publish(channel, payload))
                .await?
                .map(|_| ()),
        )
    }

    async fn get(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, spin3::Error>> {
        run3(accessor, &h, Command::Get(key)).await
    }

    async fn set(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), spin3::Error>> {
        run3(accessor, &h, Command::Set(key, value)).await
    }

    async fn incr(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<i64, spin3::Error>> {
        run3(accessor, &h, Command::Incr(key)).await
    }

    async fn del(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin3::Error>> {
        run3(accessor, &h, Command::Del(keys)).await
    }

    async fn sadd(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin3::Error>> {
        run3(accessor, &h, Command::Sadd(key, values)).await
    }

    async fn smembers(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, spin3::Error>> {
        run3(accessor, &h, Command::Smembers(key)).await
    }

    async fn srem(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, spin3::Error>> {
        run3(accessor, &h, Command::Srem(key, values)).await
    }

    async fn execute(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        command: String,
        arguments: Vec<spin3::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<spin3::RedisResult>, spin3::Error>> {
        let conn = conn3(accessor, &h)?;
        let args = arguments.into_iter().map(|a| match a {
            spin3::RedisParameter::Int64(i) => Ok(i),
            spin3::RedisParameter::Binary(b) => Err(b),
        });
        Ok(run::<redis::Value>(conn, raw_command(&command, args))
            .await
            .map_err(v3)
            .map(|v| {
                flatten(v)
                    .into_iter()
                    .map(|r| match r {
                        Reply::Nil => spin3::RedisResult::Nil,
                        Reply::Status(s) => spin3::RedisResult::Status(s),
                        Reply::Int(i) => spin3::RedisResult::Int64(i),
                        Reply::Binary(b) => spin3::RedisResult::Binary(b),
                    })
                    .collect()
            }))
    }
}

//! Outbound PostgreSQL and MySQL: Spin's `fermyon:spin/postgres`, `spin:postgres` (3.0.0 and
//! 4.2.0) and `fermyon:spin/mysql`, `spin:mysql` over `tokio-postgres` and `mysql_async`. A
//! connection is allowed only to an address the component's `allowed_outbound_hosts` grants
//! (`postgres://`, `mysql://`), with the same private-address rule as outbound HTTP, and goes to
//! the address that passed the check. Connections are kept per component and address (and, for
//! PostgreSQL over TLS, the CA the guest trusts) and shared by its instances.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::bindings::fermyon::spin2_0_0::rdbms_types as types;
use crate::host::{HostState, OutboundGrant};

mod mysql;
mod pg_codecs;
mod pg_tls;
mod pg_values;
mod postgres;
mod spin_postgres;
use crate::runtime_config::OutboundConnectionsConfig;
use pg_tls::CaRoots;

/// A guest's PostgreSQL connection.
pub struct PgHandle {
    client: Arc<tokio_postgres::Client>,
}

/// A guest's `spin:postgres@4.2.0` connection builder: the address and the CA it trusts.
pub struct PgBuilderHandle {
    address: String,
    ca: Option<Arc<CaRoots>>,
}

/// A guest's MySQL connection (a pool per address; each call takes a connection from it).
pub struct MysqlHandle {
    pool: mysql_async::Pool,
}

/// A component's database connections, by address; shared by its instances.
#[derive(Clone)]
pub struct RdbmsConnections {
    postgres: Arc<Mutex<HashMap<String, Arc<tokio_postgres::Client>>>>,
    mysql: Arc<Mutex<HashMap<String, mysql_async::Pool>>>,
    limits: OutboundConnectionsConfig,
}

impl RdbmsConnections {
    pub fn new(limits: OutboundConnectionsConfig) -> Self {
        Self {
            postgres: Arc::default(),
            mysql: Arc::default(),
            limits,
        }
    }
}

fn too_many(limit: usize) -> types::Error {
    types::Error::ConnectionFailed(format!(
        "too many connections: this component already has {limit} addresses open (raise [outbound_connections] max_addresses)"
    ))
}

fn failed(e: impl std::fmt::Display) -> types::Error {
    types::Error::ConnectionFailed(e.to_string())
}

/// A PostgreSQL connection failure with its causes ("error performing TLS handshake: invalid
/// peer certificate: UnknownIssuer"): tokio-postgres's own message stops at the first.
fn pg_connect_failed(e: tokio_postgres::Error) -> types::Error {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
        source = cause.source();
    }
    types::Error::ConnectionFailed(message)
}

/// Checks `scheme://host:port` against the grants and returns the address to connect to.
async fn checked_ip(
    grant: &OutboundGrant,
    scheme: &str,
    host: &str,
    port: u16,
) -> Result<IpAddr, types::Error> {
    let addrs = grant
        .hosts
        .resolve(scheme, host, port)
        .await
        .map_err(|denied| {
            tracing::warn!(component = %grant.component, "outbound {scheme} denied: {denied}");
            types::Error::ConnectionFailed(denied.to_string())
        })?;
    Ok(addrs[0].ip())
}

impl RdbmsConnections {
    /// The component's client for `address` (and `ca`), connecting on first use.
    async fn postgres_client(
        &self,
        grant: &OutboundGrant,
        address: &str,
        ca: Option<&CaRoots>,
    ) -> Result<Arc<tokio_postgres::Client>, types::Error> {
        let mut config: tokio_postgres::Config = address
            .parse()
            .map_err(|e| types::Error::ConnectionFailed(format!("invalid address: {e}")))?;
        let host = match config.get_hosts() {
            [tokio_postgres::config::Host::Tcp(h)] => h.clone(),
            _ => return Err(failed("the address must name exactly one TCP host")),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let ip = checked_ip(grant, "postgres", &host, port).await?;
        let key = match ca {
            Some(ca) => format!("{address}#ca={}", ca.fingerprint),
            None => address.to_string(),
        };
        let mut pool = self.postgres.lock().await;
        if let Some(client) = pool.get(&key)
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        if pool.len() >= self.limits.max_addresses && !pool.contains_key(&key) {
            return Err(too_many(self.limits.max_addresses));
        }
        config.hostaddr(ip);
        config.connect_timeout(std::time::Duration::from_secs(5));
        let client = if pg_tls::uses_tls(config.get_ssl_mode(), ca) {
            let (client, connection) = config
                .connect(pg_tls::MakeRustls::new(ca))
                .await
                .map_err(pg_connect_failed)?;
            tokio::spawn(drive_postgres(connection));
            client
        } else {
            let (client, connection) = config
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(pg_connect_failed)?;
            tokio::spawn(drive_postgres(connection));
            client
        };
        let client = Arc::new(client);
        pool.insert(key, client.clone());
        Ok(client)
    }

    async fn mysql_pool(
        &self,
        grant: &OutboundGrant,
        address: &str,
    ) -> Result<mysql_async::Pool, types::Error> {
        let opts = mysql_async::Opts::from_url(address)
            .map_err(|e| types::Error::ConnectionFailed(format!("invalid address: {e}")))?;
        let host = opts.ip_or_hostname().to_string();
        let port = opts.tcp_port();
        let ip = checked_ip(grant, "mysql", &host, port).await?;
        let mut pools = self.mysql.lock().await;
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        if pools.len() >= self.limits.max_addresses {
            return Err(too_many(self.limits.max_addresses));
        }
        let constraints = mysql_async::PoolConstraints::new(0, self.limits.mysql_pool_size.max(1))
            .unwrap_or_default();
        let opts = mysql_async::OptsBuilder::from_opts(opts)
            .ip_or_hostname(ip.to_string())
            .pool_opts(mysql_async::PoolOpts::default().with_constraints(constraints));
        let pool = mysql_async::Pool::new(opts);
        // Connect once now, so a bad address fails at open as the guest expects.
        pool.get_conn().await.map_err(failed)?;
        pools.insert(address.to_string(), pool.clone());
        Ok(pool)
    }
}

/// Runs a PostgreSQL connection's I/O until it closes.
async fn drive_postgres<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = connection.await {
        tracing::debug!("postgres connection ended: {e}");
    }
}

impl types::Host for HostState {}

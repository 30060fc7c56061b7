//! Outbound PostgreSQL and MySQL: Spin's `fermyon:spin/postgres` and `fermyon:spin/mysql` over
//! `tokio-postgres` and `mysql_async`. A connection is allowed only to an address the
//! component's `allowed_outbound_hosts` grants (`postgres://`, `mysql://`), with the same
//! private-address rule as outbound HTTP, and goes to the address that passed the check.
//! Connections are kept per component and address and shared by its instances.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Mutex;

use super::bindings::fermyon::spin2_0_0::rdbms_types as types;
use crate::host::{HostState, OutboundGrant};

mod mysql;
mod postgres;
use crate::runtime_config::OutboundConnectionsConfig;

/// A guest's PostgreSQL connection.
pub struct PgHandle {
    client: Arc<tokio_postgres::Client>,
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
    async fn postgres_client(
        &self,
        grant: &OutboundGrant,
        address: &str,
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
        let mut pool = self.postgres.lock().await;
        if let Some(client) = pool.get(address)
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        if pool.len() >= self.limits.max_addresses {
            return Err(too_many(self.limits.max_addresses));
        }
        config.hostaddr(ip);
        config.connect_timeout(std::time::Duration::from_secs(5));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(failed)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("postgres connection ended: {e}");
            }
        });
        let client = Arc::new(client);
        pool.insert(address.to_string(), client.clone());
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

impl types::Host for HostState {}

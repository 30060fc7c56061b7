//! Outbound MQTT: Spin's `fermyon:spin/mqtt`, over rumqttc. A connection is allowed only to an
//! address the component's `allowed_outbound_hosts` grants (`mqtt://host:port`), with the same
//! private-address rule as outbound HTTP, and goes to the address that passed the check.
//! Connections are kept per component, address and user, and shared by its instances.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::bindings::fermyon::spin2_0_0::mqtt as spin;
use super::bindings_p3::spin::mqtt::mqtt as spin3;
use super::{SpinP3, with_state};
use crate::host::{HostState, OutboundGrant};
use crate::runtime_config::OutboundConnectionsConfig;
use wasmtime::component::Accessor;

/// A guest's open connection.
pub struct ConnectionHandle {
    client: rumqttc::AsyncClient,
}

/// A component's broker connections; shared by its instances.
#[derive(Clone)]
pub struct MqttConnections {
    by_key: Arc<Mutex<HashMap<String, rumqttc::AsyncClient>>>,
    limits: OutboundConnectionsConfig,
}

impl MqttConnections {
    pub fn new(limits: OutboundConnectionsConfig) -> Self {
        Self {
            by_key: Arc::default(),
            limits,
        }
    }
}

/// A failure, before it becomes one interface version's error type.
enum Failure {
    InvalidAddress,
    TooManyConnections,
    ConnectionFailed(String),
}

impl MqttConnections {
    async fn connect(
        &self,
        grant: &OutboundGrant,
        address: &str,
        username: &str,
        password: &str,
        keep_alive_secs: u64,
    ) -> Result<rumqttc::AsyncClient, Failure> {
        let uri: http::Uri = address.parse().map_err(|_| Failure::InvalidAddress)?;
        if uri.scheme_str() != Some("mqtt") {
            return Err(Failure::InvalidAddress);
        }
        let host = uri.host().ok_or(Failure::InvalidAddress)?.to_string();
        let port = uri.port_u16().unwrap_or(1883);
        let addrs = grant
            .hosts
            .resolve("mqtt", &host, port)
            .await
            .map_err(|denied| {
                tracing::warn!(component = %grant.component, "outbound MQTT denied: {denied}");
                Failure::ConnectionFailed(denied.to_string())
            })?;
        let key = format!("{username}@{address}");
        let mut pool = self.by_key.lock().await;
        if let Some(client) = pool.get(&key) {
            return Ok(client.clone());
        }
        if pool.len() >= self.limits.max_addresses {
            return Err(Failure::TooManyConnections);
        }
        let client_id = format!("boson-{}-{}", grant.component, std::process::id());
        let mut options = rumqttc::MqttOptions::new(client_id, addrs[0].ip().to_string(), port);
        options.set_keep_alive(Duration::from_secs(keep_alive_secs.clamp(5, 3600)));
        if !username.is_empty() {
            options.set_credentials(username, password);
        }
        let (client, mut events) = rumqttc::AsyncClient::new(options, 64);
        // Wait for the broker's CONNACK, so an unreachable broker fails `open`.
        let connected = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .map_err(|_| "timed out".to_string())
        .and_then(|r| r);
        if let Err(e) = connected {
            return Err(Failure::ConnectionFailed(format!("{host}:{port}: {e}")));
        }
        // Drive the connection for as long as a client handle lives; rumqttc reconnects on the
        // next poll after an error.
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(_) => {}
                    Err(rumqttc::ConnectionError::RequestsDone) => break,
                    Err(e) => {
                        tracing::debug!("mqtt connection error: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        pool.insert(key, client.clone());
        Ok(client)
    }
}

fn qos(level: u8) -> rumqttc::QoS {
    match level {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

// ---- fermyon:spin/mqtt@2.0.0

fn v2(f: Failure) -> spin::Error {
    match f {
        Failure::InvalidAddress => spin::Error::InvalidAddress,
        Failure::TooManyConnections => spin::Error::TooManyConnections,
        Failure::ConnectionFailed(m) => spin::Error::ConnectionFailed(m),
    }
}

impl spin::Host for HostState {}

impl spin::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin::Error>> {
        let grant = self.outbound_grant();
        let pool = self.mqtt.clone();
        let connected = pool
            .connect(
                &grant,
                &address,
                &username,
                &password,
                keep_alive_interval_in_secs,
            )
            .await;
        Ok(match connected {
            Ok(client) => Ok(self.table.push(ConnectionHandle { client })?),
            Err(e) => Err(v2(e)),
        })
    }

    async fn publish(
        &mut self,
        h: Resource<ConnectionHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: spin::Qos,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        let client = self.table.get(&h)?.client.clone();
        let level = match qos {
            spin::Qos::AtMostOnce => 0,
            spin::Qos::AtLeastOnce => 1,
            spin::Qos::ExactlyOnce => 2,
        };
        Ok(client
            .publish(topic, self::qos(level), false, payload)
            .await
            .map_err(|e| spin::Error::Other(e.to_string())))
    }

    async fn drop(&mut self, h: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

// ---- spin:mqtt/mqtt@3.0.0 (asynchronous, spin-sdk 5)

fn v3(f: Failure) -> spin3::Error {
    match f {
        Failure::InvalidAddress => spin3::Error::InvalidAddress,
        Failure::TooManyConnections => spin3::Error::TooManyConnections,
        Failure::ConnectionFailed(m) => spin3::Error::ConnectionFailed(m),
    }
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
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin3::Error>> {
        let (pool, grant) = with_state(accessor, |state| {
            (state.mqtt.clone(), state.outbound_grant())
        });
        match pool
            .connect(
                &grant,
                &address,
                &username,
                &password,
                keep_alive_interval_in_secs,
            )
            .await
        {
            Ok(client) => with_state(accessor, |state| {
                Ok(Ok(state.table.push(ConnectionHandle { client })?))
            }),
            Err(e) => Ok(Err(v3(e))),
        }
    }

    async fn publish(
        accessor: &Accessor<U, Self>,
        h: Resource<ConnectionHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: spin3::Qos,
    ) -> wasmtime::Result<Result<(), spin3::Error>> {
        let client = with_state(accessor, |state| {
            state.table.get(&h).map(|c| c.client.clone())
        })?;
        let level = match qos {
            spin3::Qos::AtMostOnce => 0,
            spin3::Qos::AtLeastOnce => 1,
            spin3::Qos::ExactlyOnce => 2,
        };
        Ok(client
            .publish(topic, self::qos(level), false, payload)
            .await
            .map_err(|e| spin3::Error::Other(e.to_string())))
    }
}

//! Outbound MQTT: Spin's `fermyon:spin/mqtt`, over rumqttc. A connection is allowed only to an
//! address the component's `allowed_outbound_hosts` grants (`mqtt://host:port`), with the same
//! private-address rule as outbound HTTP, and goes to the address that passed the check.
//! Connections are kept per component, address and user, and shared by its instances.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use wasmtime::component::Resource;

use super::bindings::fermyon::spin::mqtt as spin;
use crate::host::HostState;

/// A guest's open connection.
pub struct ConnectionHandle {
    client: rumqttc::AsyncClient,
}

/// A component's broker connections; shared by its instances.
#[derive(Clone, Default)]
pub struct MqttConnections {
    by_key: Arc<Mutex<HashMap<String, rumqttc::AsyncClient>>>,
}

const MAX_CONNECTIONS_PER_COMPONENT: usize = 64;

impl HostState {
    async fn mqtt_connect(
        &mut self,
        address: &str,
        username: &str,
        password: &str,
        keep_alive_secs: u64,
    ) -> Result<rumqttc::AsyncClient, spin::Error> {
        let uri: http::Uri = address.parse().map_err(|_| spin::Error::InvalidAddress)?;
        if uri.scheme_str() != Some("mqtt") {
            return Err(spin::Error::InvalidAddress);
        }
        let host = uri.host().ok_or(spin::Error::InvalidAddress)?.to_string();
        let port = uri.port_u16().unwrap_or(1883);
        let addrs = self
            .allowed_hosts()
            .resolve("mqtt", &host, port)
            .await
            .map_err(|denied| {
                tracing::warn!(component = %self.component_id(), "outbound MQTT denied: {denied}");
                spin::Error::ConnectionFailed(denied.to_string())
            })?;
        let key = format!("{username}@{address}");
        let mut pool = self.mqtt.by_key.lock().await;
        if let Some(client) = pool.get(&key) {
            return Ok(client.clone());
        }
        if pool.len() >= MAX_CONNECTIONS_PER_COMPONENT {
            return Err(spin::Error::TooManyConnections);
        }
        let client_id = format!("boson-{}-{}", self.component_id(), std::process::id());
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
            return Err(spin::Error::ConnectionFailed(format!("{host}:{port}: {e}")));
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

impl spin::Host for HostState {}

impl spin::HostConnection for HostState {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, spin::Error>> {
        Ok(
            match self
                .mqtt_connect(&address, &username, &password, keep_alive_interval_in_secs)
                .await
            {
                Ok(client) => Ok(self.table.push(ConnectionHandle { client })?),
                Err(e) => Err(e),
            },
        )
    }

    async fn publish(
        &mut self,
        h: Resource<ConnectionHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: spin::Qos,
    ) -> wasmtime::Result<Result<(), spin::Error>> {
        let client = self.table.get(&h)?.client.clone();
        let qos = match qos {
            spin::Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            spin::Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
            spin::Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
        };
        Ok(client
            .publish(topic, qos, false, payload)
            .await
            .map_err(|e| spin::Error::Other(e.to_string())))
    }

    async fn drop(&mut self, h: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(h)?;
        Ok(())
    }
}

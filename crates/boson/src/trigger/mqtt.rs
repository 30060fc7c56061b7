//! The MQTT trigger: `[[trigger.mqtt]] topic = "…", qos = 1, component = "…"`, with the broker
//! in `[application.trigger.mqtt]` (`address`, `username`, `password`, `keep_alive_interval`),
//! as the Spin MQTT trigger plugin reads them. Each message runs a fresh instance through the
//! plugin's world-level export `handle-message(payload, metadata)`.
//!
//! Delivery: QoS 0 messages are taken as they come. QoS 1 and 2 messages are acknowledged only
//! after the guest returns success; a message whose guest fails, traps or times out is left
//! unacknowledged, and the broker delivers it again when the session reconnects (Boson uses a
//! persistent session with a stable client id for QoS ≥ 1, so a restart of Boson redelivers it
//! too). One connection per trigger; after a broker restart Boson reconnects and subscribes again.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::{AppTriggerSettings, Backoff, EventTarget, TriggerTable, redact};
use crate::host::HostState;
use crate::metrics::Metrics;
use crate::runtime::{Components, Runtime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "boson:platform/mqtt-trigger",
        exports: { default: async },
    });
}

const EXPORT: &str = "handle-message";

/// One `[[trigger.mqtt]]`.
#[derive(Debug, Clone)]
pub struct MqttSpec {
    pub component: String,
    /// `mqtt://host:port`.
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive: Duration,
    /// A topic filter (`+` and `#` wildcards allowed).
    pub topic: String,
    pub qos: QosLevel,
    /// The MQTT client id; derived from the component, topic and address when not given.
    pub client_id: String,
    pub concurrency: usize,
}

/// MQTT's delivery levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QosLevel {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl From<QosLevel> for QoS {
    fn from(q: QosLevel) -> Self {
        match q {
            QosLevel::AtMostOnce => QoS::AtMostOnce,
            QosLevel::AtLeastOnce => QoS::AtLeastOnce,
            QosLevel::ExactlyOnce => QoS::ExactlyOnce,
        }
    }
}

pub(super) fn resolve(
    table: &mut TriggerTable<'_>,
    app: &AppTriggerSettings<'_>,
) -> anyhow::Result<MqttSpec> {
    app.check_keys(&["address", "username", "password", "keep_alive_interval"])?;
    let component = table.component()?;
    let topic = table.required_string("topic", "sensors/+/temperature")?;
    let qos = match table.number("qos")?.unwrap_or(0) {
        0 => QosLevel::AtMostOnce,
        1 => QosLevel::AtLeastOnce,
        2 => QosLevel::ExactlyOnce,
        _ => return Err(table.error("`qos` must be 0, 1 or 2")),
    };
    let address = app.string("address")?.ok_or_else(|| {
        table.error(
            "no MQTT broker — add `address = \"mqtt://host:1883\"` to [application.trigger.mqtt]",
        )
    })?;
    host_and_port(&address).map_err(|e| table.error(e))?;
    let keep_alive = match app.string("keep_alive_interval")? {
        None => Duration::from_secs(30),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Duration::from_secs)
            .ok_or_else(|| {
                table.error(
                    "[application.trigger.mqtt] `keep_alive_interval` must be a number of seconds ≥ 1",
                )
            })?,
    };
    let client_id = match table.string("client_id")? {
        Some(id) => id,
        None => {
            let digest = Sha256::digest(format!("{component}\0{topic}\0{address}"));
            format!("boson-{component}-{}", &hex::encode(digest)[..12])
        }
    };
    let concurrency = table.concurrency()?;
    table.finish(&["component", "topic", "qos", "client_id", "concurrency"])?;
    Ok(MqttSpec {
        component,
        username: app.string("username")?.filter(|u| !u.is_empty()),
        password: app.string("password")?.filter(|p| !p.is_empty()),
        address,
        keep_alive,
        topic,
        qos,
        client_id,
        concurrency,
    })
}

/// `mqtt://host:port` → (host, port); the port defaults to 1883.
fn host_and_port(address: &str) -> Result<(String, u16), String> {
    let rest = address
        .strip_prefix("mqtt://")
        .or_else(|| address.strip_prefix("tcp://"))
        .ok_or_else(|| {
            format!(
                "MQTT `address` {} must start with mqtt:// (TLS brokers are not supported yet)",
                redact(address)
            )
        })?;
    let rest = rest.trim_end_matches('/');
    let authority = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    match authority.rsplit_once(':') {
        Some((host, port)) => port
            .parse()
            .map(|p| (host.trim_matches(['[', ']']).to_string(), p))
            .map_err(|_| format!("MQTT `address` {} has a bad port", redact(address))),
        None if !authority.is_empty() => Ok((authority.to_string(), 1883)),
        None => Err(format!("MQTT `address` {} has no host", redact(address))),
    }
}

/// The app's MQTT subscriptions, one connection each.
pub struct MqttTrigger {
    subscriptions: Vec<Subscription>,
}

struct Subscription {
    spec: MqttSpec,
    target: EventTarget,
    pre: bindings::MqttTriggerPre<HostState>,
}

impl MqttTrigger {
    pub fn new(
        specs: &[MqttSpec],
        runtime: &Arc<Runtime>,
        components: &Components,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let mut subscriptions = Vec::new();
        for spec in specs {
            let target = EventTarget::new(
                runtime,
                components,
                metrics,
                "mqtt",
                &spec.component,
                &spec.topic,
                spec.concurrency,
                &[EXPORT],
                "`handle-message` (the Spin MQTT trigger plugin's world `spin-mqtt`)",
            )?;
            let pre = bindings::MqttTriggerPre::new(target.component.pre.clone())?;
            subscriptions.push(Subscription {
                spec: spec.clone(),
                target,
                pre,
            });
        }
        Ok(Self { subscriptions })
    }

    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        for s in self.subscriptions {
            tasks.spawn(Arc::new(s).listen(shutdown.clone(), grace));
        }
        while tasks.join_next().await.is_some() {}
    }
}

impl Subscription {
    async fn listen(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        let spec = &self.spec;
        let shown = redact(&spec.address);
        let Ok((host, port)) = host_and_port(&spec.address) else {
            return; // checked when the spec was resolved
        };
        let mut options = MqttOptions::new(spec.client_id.clone(), host, port);
        options
            .set_keep_alive(spec.keep_alive)
            // QoS ≥ 1: the broker keeps the subscription and the unacknowledged messages while
            // Boson is away, and redelivers them.
            .set_clean_session(spec.qos == QosLevel::AtMostOnce)
            .set_manual_acks(true);
        if let Some(user) = &spec.username {
            options.set_credentials(user.clone(), spec.password.clone().unwrap_or_default());
        }
        let (client, mut events) = AsyncClient::new(options, 64);
        // The event loop must keep running (pings, acknowledgements) while guests run, so it
        // hands messages to a worker through a queue.
        let (queue, mut incoming) = tokio::sync::mpsc::channel::<Publish>(1024);
        let worker = {
            let this = self.clone();
            let client = client.clone();
            tokio::spawn(async move {
                while let Some(message) = incoming.recv().await {
                    let handler = this.clone();
                    let client = client.clone();
                    this.target
                        .dispatcher
                        .dispatch(async move { handler.handle(message, client).await })
                        .await;
                }
            })
        };
        let mut backoff = Backoff::default();
        loop {
            let event = tokio::select! {
                e = events.poll() => e,
                () = shutdown.cancelled() => break,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    // Subscribe on every connection: a restarted broker may have lost the session.
                    if let Err(e) = client.try_subscribe(spec.topic.clone(), spec.qos.into()) {
                        tracing::warn!("mqtt trigger: cannot subscribe to `{}`: {e}", spec.topic);
                    }
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    self.target.dispatcher.metrics.set_connected(true);
                    tracing::info!(
                        "mqtt trigger: subscribed at {shown} to `{}` (QoS {})",
                        spec.topic,
                        spec.qos as u8
                    );
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    let _ = queue.send(message).await;
                }
                Ok(_) => {}
                Err(e) => {
                    self.target.dispatcher.metrics.set_connected(false);
                    tracing::warn!(
                        "mqtt trigger: connection to {shown} failed: {e}; retrying in {:?}",
                        backoff.current()
                    );
                    if !backoff.wait(&shutdown).await {
                        break;
                    }
                }
            }
        }
        self.target.dispatcher.metrics.set_connected(false);
        // Messages still queued are not acknowledged: the broker redelivers those of QoS ≥ 1.
        worker.abort();
        self.target.dispatcher.drain(grace).await;
        // Let the event loop send the last acknowledgements and the DISCONNECT.
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while let Ok(event) = events.poll().await {
                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }

    async fn handle(&self, message: Publish, client: AsyncClient) -> Result<(), String> {
        let payload = message.payload.to_vec();
        let topic = message.topic.clone();
        let pre = self.pre.clone();
        let result = self
            .target
            .run(move |mut store| async move {
                let guest = pre.instantiate_async(&mut store).await?;
                let metadata = bindings::spin::mqtt_trigger::spin_mqtt_types::Metadata { topic };
                guest
                    .call_handle_message(&mut store, &payload, &metadata)
                    .await
                    .map(|r| r.map_err(|e| format!("the guest returned {e:?}")))
            })
            .await;
        match result {
            Ok(()) => {
                if message.qos != QoS::AtMostOnce {
                    client.ack(&message).await.map_err(|e| {
                        format!(
                            "component `{}`: cannot acknowledge: {e}",
                            self.target.component.spec.id
                        )
                    })?;
                }
                Ok(())
            }
            Err(cause) => Err(format!("{cause}{}", unacked(&message))),
        }
    }
}

fn unacked(message: &Publish) -> &'static str {
    if message.qos == QoS::AtMostOnce {
        ""
    } else {
        " (left unacknowledged: the broker redelivers it when the session reconnects)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_addresses() {
        assert_eq!(
            host_and_port("mqtt://127.0.0.1:1884").unwrap(),
            ("127.0.0.1".to_string(), 1884)
        );
        assert_eq!(
            host_and_port("mqtt://broker").unwrap(),
            ("broker".to_string(), 1883)
        );
        assert!(
            host_and_port("mqtts://broker:8883")
                .unwrap_err()
                .contains("mqtt://")
        );
        assert!(host_and_port("mqtt://broker:x").is_err());
    }
}

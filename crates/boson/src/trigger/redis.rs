//! The Redis trigger: `[[trigger.redis]] channel = "…", component = "…"`. Boson subscribes to
//! every channel the app names (one connection per Redis address), and each message runs a
//! fresh instance of every component subscribed to its channel, through Spin's
//! `fermyon:spin/inbound-redis` (spin-sdk 3.x and the other 2.0-era SDKs) or
//! `spin:redis/inbound-redis@3.0.0` (spin-sdk 5).
//!
//! Redis pub/sub keeps no messages: what is published while Boson is disconnected is lost.
//! Boson reconnects with backoff and subscribes again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AppTriggerSettings, Backoff, Dispatcher, EventTarget, TriggerTable, redact};
use crate::host::HostState;
use crate::metrics::Metrics;
use crate::runtime::{Components, Runtime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "boson:platform/redis-trigger",
        exports: { default: async },
    });
}

mod bindings_p3 {
    wasmtime::component::bindgen!({
        path: "wit-p3",
        world: "boson:platform-p3/redis-trigger",
        exports: { default: async | store },
    });
}

const EXPORT_V2: &str = "fermyon:spin/inbound-redis";
const EXPORT_V3: &str = "spin:redis/inbound-redis@3.0.0";

/// One `[[trigger.redis]]`.
#[derive(Debug, Clone)]
pub struct RedisSpec {
    pub component: String,
    /// `redis://…`, from the trigger or `[application.trigger.redis] address`.
    pub address: String,
    pub channel: String,
    pub concurrency: usize,
}

pub(super) fn resolve(
    table: &mut TriggerTable<'_>,
    app: &AppTriggerSettings<'_>,
) -> anyhow::Result<RedisSpec> {
    app.check_keys(&["address"])?;
    let component = table.component()?;
    let channel = table.required_string("channel", "orders")?;
    let address = match table.string("address")? {
        Some(a) => a,
        None => app.string("address")?.ok_or_else(|| {
            table.error(
                "no Redis address — add `address = \"redis://host:6379\"` to the trigger or to [application.trigger.redis]",
            )
        })?,
    };
    if !(address.starts_with("redis://") || address.starts_with("rediss://")) {
        return Err(table.error(format_args!(
            "`address` {} is not a redis:// or rediss:// URL",
            redact(&address)
        )));
    }
    let concurrency = table.concurrency()?;
    table.finish(&["component", "channel", "address", "concurrency"])?;
    Ok(RedisSpec {
        component,
        address,
        channel,
        concurrency,
    })
}

/// The export a component answers through.
enum Export {
    V2(bindings::RedisTriggerPre<HostState>),
    V3(bindings_p3::RedisTriggerPre<HostState>),
}

/// One component subscribed to one channel.
struct Subscriber {
    channel: String,
    queue: mpsc::Sender<Vec<u8>>,
}

/// All subscriptions at one address.
struct Connection {
    address: String,
    subscribers: Vec<Subscriber>,
    dispatchers: Vec<Dispatcher>,
}

/// The app's Redis subscriptions, grouped by address.
pub struct RedisTrigger {
    connections: Vec<Connection>,
    workers: Vec<(mpsc::Receiver<Vec<u8>>, Worker)>,
}

/// Runs each message of one subscription in a fresh instance of its component.
#[derive(Clone)]
struct Worker {
    target: Arc<EventTarget>,
    export: Arc<Export>,
}

impl RedisTrigger {
    pub fn new(
        specs: &[RedisSpec],
        runtime: &Arc<Runtime>,
        components: &Components,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let mut by_address: BTreeMap<String, Connection> = BTreeMap::new();
        let mut workers = Vec::new();
        for spec in specs {
            let target = EventTarget::new(
                runtime,
                components,
                metrics,
                "redis",
                &spec.component,
                &spec.channel,
                spec.concurrency,
                &[EXPORT_V2, EXPORT_V3],
                &format!("`{EXPORT_V2}` or `{EXPORT_V3}`"),
            )?;
            let pre = target.component.pre.clone();
            let export = if target.exports(EXPORT_V3) {
                Export::V3(bindings_p3::RedisTriggerPre::new(pre)?)
            } else {
                Export::V2(bindings::RedisTriggerPre::new(pre)?)
            };
            let dispatcher = target.dispatcher.clone();
            // A queue per subscriber: a slow component does not hold up the others.
            let (tx, rx) = mpsc::channel(1024);
            let connection = by_address
                .entry(spec.address.clone())
                .or_insert_with(|| Connection {
                    address: spec.address.clone(),
                    subscribers: Vec::new(),
                    dispatchers: Vec::new(),
                });
            connection.subscribers.push(Subscriber {
                channel: spec.channel.clone(),
                queue: tx,
            });
            connection.dispatchers.push(dispatcher.clone());
            workers.push((
                rx,
                Worker {
                    target: Arc::new(target),
                    export: Arc::new(export),
                },
            ));
        }
        Ok(Self {
            connections: by_address.into_values().collect(),
            workers,
        })
    }

    /// Subscribes and delivers until `shutdown`, then lets running handlers finish.
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        let mut dispatchers = Vec::new();
        for (rx, worker) in self.workers {
            dispatchers.push(worker.target.dispatcher.clone());
            tasks.spawn(worker.run(rx, shutdown.clone()));
        }
        for connection in self.connections {
            tasks.spawn(connection.listen(shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
        for d in dispatchers {
            d.drain(grace).await;
        }
    }
}

impl Connection {
    async fn listen(self, shutdown: CancellationToken) {
        let shown = redact(&self.address);
        let mut channels: Vec<&str> = self
            .subscribers
            .iter()
            .map(|s| s.channel.as_str())
            .collect();
        channels.sort_unstable();
        channels.dedup();
        let mut backoff = Backoff::default();
        loop {
            let subscribed = tokio::select! {
                r = subscribe(&self.address, &channels) => r,
                () = shutdown.cancelled() => return,
            };
            let pubsub = match subscribed {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(
                        "redis trigger: cannot subscribe at {shown}: {e:#}; retrying in {:?}",
                        backoff.current()
                    );
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            backoff.reset();
            self.set_connected(true);
            tracing::info!(
                "redis trigger: subscribed at {shown} to {}",
                channels.join(", ")
            );
            let mut messages = pubsub.into_on_message();
            loop {
                let message = tokio::select! {
                    m = messages.next() => m,
                    () = shutdown.cancelled() => {
                        self.set_connected(false);
                        return;
                    }
                };
                let Some(message) = message else { break };
                let channel = message.get_channel_name();
                for s in self.subscribers.iter().filter(|s| s.channel == channel) {
                    // Waits when the queue is full: back-pressure onto the Redis connection.
                    let _ = s.queue.send(message.get_payload_bytes().to_vec()).await;
                }
            }
            self.set_connected(false);
            tracing::warn!("redis trigger: lost the connection to {shown}; reconnecting");
        }
    }

    fn set_connected(&self, connected: bool) {
        for d in &self.dispatchers {
            d.metrics.set_connected(connected);
        }
    }
}

async fn subscribe(address: &str, channels: &[&str]) -> anyhow::Result<redis::aio::PubSub> {
    let client = redis::Client::open(address)?;
    let mut pubsub = tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub())
        .await
        .map_err(|_| anyhow::anyhow!("connecting timed out"))??;
    for channel in channels {
        pubsub.subscribe(*channel).await?;
    }
    Ok(pubsub)
}

impl Worker {
    async fn run(self, mut queue: mpsc::Receiver<Vec<u8>>, shutdown: CancellationToken) {
        loop {
            let payload = tokio::select! {
                p = queue.recv() => match p { Some(p) => p, None => return },
                () = shutdown.cancelled() => return,
            };
            let this = self.clone();
            self.target
                .dispatcher
                .dispatch(async move { this.handle(payload).await })
                .await;
        }
    }

    async fn handle(&self, payload: Vec<u8>) -> Result<(), String> {
        match &*self.export {
            Export::V2(pre) => {
                let pre = pre.clone();
                self.target
                    .run(move |mut store| async move {
                        let guest = pre.instantiate_async(&mut store).await?;
                        guest
                            .fermyon_spin_inbound_redis()
                            .call_handle_message(&mut store, &payload)
                            .await
                            .map(|r| r.map_err(|e| format!("the guest returned {e:?}")))
                    })
                    .await
            }
            Export::V3(pre) => {
                let pre = pre.clone();
                self.target
                    .run(move |mut store| async move {
                        let guest = pre.instantiate_async(&mut store).await?;
                        store
                            .run_concurrent(async move |accessor| {
                                guest
                                    .spin_redis_inbound_redis()
                                    .call_handle_message(accessor, payload)
                                    .await
                                    .map(|r| r.map_err(|e| format!("the guest returned {e:?}")))
                            })
                            .await?
                    })
                    .await
            }
        }
    }
}

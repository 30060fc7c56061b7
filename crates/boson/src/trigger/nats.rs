//! The NATS trigger: `[[trigger.nats]] subject = "…", queue_group = "…", component = "…"`, with
//! the server in `[application.trigger.nats]` (`address`, and `token` or `username`/`password`).
//! Each message runs a fresh instance through Boson's `boson:nats/inbound-nats@0.1.0`; when the
//! message has a reply subject and the guest returns a body, Boson publishes it there
//! (request-reply).
//!
//! With a queue group, NATS hands each message to one member of the group: several Boson
//! processes with the same app share the work. One connection per server address; the client
//! reconnects and resubscribes by itself after a server restart (core NATS keeps no messages, so
//! what is published meanwhile is lost).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use super::{AppTriggerSettings, Backoff, EventTarget, TriggerTable, redact};
use crate::host::HostState;
use crate::metrics::Metrics;
use crate::runtime::{Components, Runtime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "boson:platform/nats-trigger",
        exports: { default: async },
    });
}

use bindings::exports::boson::nats::inbound_nats::Message as GuestMessage;

const EXPORT: &str = "boson:nats/inbound-nats@0.1.0";

/// One `[[trigger.nats]]`.
#[derive(Debug, Clone)]
pub struct NatsSpec {
    pub component: String,
    /// `nats://host:4222` (several servers separated by commas).
    pub address: String,
    pub auth: NatsAuth,
    pub subject: String,
    pub queue_group: Option<String>,
    pub concurrency: usize,
}

/// How Boson authenticates to the NATS server.
#[derive(Clone, Default, PartialEq)]
pub enum NatsAuth {
    #[default]
    None,
    Token(String),
    UserPassword(String, String),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token(_) => f.write_str("Token(***)"),
            Self::UserPassword(user, _) => write!(f, "UserPassword({user:?}, ***)"),
        }
    }
}

pub(super) fn resolve(
    table: &mut TriggerTable<'_>,
    app: &AppTriggerSettings<'_>,
) -> anyhow::Result<NatsSpec> {
    app.check_keys(&["address", "token", "username", "password"])?;
    let component = table.component()?;
    let subject = table.required_string("subject", "orders.>")?;
    let queue_group = table.string("queue_group")?.filter(|g| !g.is_empty());
    let address = app.string("address")?.ok_or_else(|| {
        table.error(
            "no NATS server — add `address = \"nats://host:4222\"` to [application.trigger.nats]",
        )
    })?;
    let auth = match (
        app.string("token")?,
        app.string("username")?,
        app.string("password")?,
    ) {
        (Some(token), None, None) => NatsAuth::Token(token),
        (None, Some(user), password) => NatsAuth::UserPassword(user, password.unwrap_or_default()),
        (None, None, None) => NatsAuth::None,
        _ => {
            return Err(table.error(
                "[application.trigger.nats] takes either `token` or `username` and `password`, not both",
            ));
        }
    };
    let concurrency = table.concurrency()?;
    table.finish(&["component", "subject", "queue_group", "concurrency"])?;
    Ok(NatsSpec {
        component,
        address,
        auth,
        subject,
        queue_group,
        concurrency,
    })
}

/// The app's NATS subscriptions, one connection per server address.
pub struct NatsTrigger {
    servers: Vec<Server>,
}

struct Server {
    address: String,
    auth: NatsAuth,
    subscriptions: Vec<Arc<Subscription>>,
}

struct Subscription {
    spec: NatsSpec,
    target: EventTarget,
    pre: bindings::NatsTriggerPre<HostState>,
}

impl NatsTrigger {
    pub fn new(
        specs: &[NatsSpec],
        runtime: &Arc<Runtime>,
        components: &Components,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let mut servers: BTreeMap<String, Server> = BTreeMap::new();
        for spec in specs {
            let target = EventTarget::new(
                runtime,
                components,
                metrics,
                "nats",
                &spec.component,
                &spec.subject,
                spec.concurrency,
                &[EXPORT],
                &format!("`{EXPORT}`"),
            )?;
            let pre = bindings::NatsTriggerPre::new(target.component.pre.clone())?;
            servers
                .entry(spec.address.clone())
                .or_insert_with(|| Server {
                    address: spec.address.clone(),
                    auth: spec.auth.clone(),
                    subscriptions: Vec::new(),
                })
                .subscriptions
                .push(Arc::new(Subscription {
                    spec: spec.clone(),
                    target,
                    pre,
                }));
        }
        Ok(Self {
            servers: servers.into_values().collect(),
        })
    }

    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        for server in self.servers {
            tasks.spawn(server.run(shutdown.clone(), grace));
        }
        while tasks.join_next().await.is_some() {}
    }
}

impl Server {
    async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let shown = redact(&self.address);
        let mut backoff = Backoff::default();
        // The client reconnects (and resubscribes) by itself once it has connected; until the
        // first connection succeeds, Boson retries here.
        let client = loop {
            let connected = tokio::select! {
                c = self.connect() => c,
                () = shutdown.cancelled() => return,
            };
            match connected {
                Ok(client) => break client,
                Err(e) => {
                    tracing::warn!(
                        "nats trigger: cannot connect to {shown}: {e:#}; retrying in {:?}",
                        backoff.current()
                    );
                    if !backoff.wait(&shutdown).await {
                        return;
                    }
                }
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for subscription in &self.subscriptions {
            let s = &subscription.spec;
            let subscribed = match &s.queue_group {
                Some(group) => {
                    client
                        .queue_subscribe(s.subject.clone(), group.clone())
                        .await
                }
                None => client.subscribe(s.subject.clone()).await,
            };
            let subscriber = match subscribed {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::error!("nats trigger: cannot subscribe to `{}`: {e}", s.subject);
                    continue;
                }
            };
            tasks.spawn(
                subscription
                    .clone()
                    .consume(subscriber, client.clone(), shutdown.clone()),
            );
        }
        // The subscriptions are live on the server once a flush round-trip has completed.
        if client.flush().await.is_ok() {
            for s in &self.subscriptions {
                s.target.dispatcher.metrics.set_connected(true);
            }
            tracing::info!("nats trigger: subscribed at {shown}");
        }
        while tasks.join_next().await.is_some() {}
        for s in &self.subscriptions {
            s.target.dispatcher.drain(grace).await;
        }
        let _ = client.flush().await;
    }

    async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        let shown = redact(&self.address);
        let subscriptions = self.subscriptions.clone();
        let mut options = async_nats::ConnectOptions::new()
            .name("boson")
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis(100u64 << attempts.min(5)).min(Duration::from_secs(2))
            })
            .event_callback(move |event| {
                let subscriptions = subscriptions.clone();
                let shown = shown.clone();
                async move {
                    let up = match event {
                        async_nats::Event::Connected => true,
                        async_nats::Event::Disconnected => false,
                        other => {
                            tracing::info!("nats trigger: {shown}: {other}");
                            return;
                        }
                    };
                    if up {
                        tracing::info!("nats trigger: reconnected to {shown}");
                    } else {
                        tracing::warn!(
                            "nats trigger: lost the connection to {shown}; reconnecting"
                        );
                    }
                    for s in &subscriptions {
                        s.target.dispatcher.metrics.set_connected(up);
                    }
                }
            });
        options = match &self.auth {
            NatsAuth::None => options,
            NatsAuth::Token(t) => options.token(t.clone()),
            NatsAuth::UserPassword(u, p) => options.user_and_password(u.clone(), p.clone()),
        };
        Ok(options.connect(self.address.as_str()).await?)
    }
}

impl Subscription {
    async fn consume(
        self: Arc<Self>,
        mut subscriber: async_nats::Subscriber,
        client: async_nats::Client,
        shutdown: CancellationToken,
    ) {
        loop {
            let message = tokio::select! {
                m = subscriber.next() => match m { Some(m) => m, None => break },
                () = shutdown.cancelled() => break,
            };
            let this = self.clone();
            let client = client.clone();
            self.target
                .dispatcher
                .dispatch(async move { this.handle(message, client).await })
                .await;
        }
        // Stop the server sending more; messages it already sent are dropped.
        let _ = subscriber.unsubscribe().await;
    }

    async fn handle(
        &self,
        message: async_nats::Message,
        client: async_nats::Client,
    ) -> Result<(), String> {
        let reply_to = message.reply.as_ref().map(|r| r.to_string());
        let mut headers = Vec::new();
        if let Some(map) = &message.headers {
            for (name, values) in map.iter() {
                for value in values {
                    headers.push((name.to_string(), value.to_string()));
                }
            }
        }
        let guest_message = GuestMessage {
            subject: message.subject.to_string(),
            payload: message.payload.to_vec(),
            reply_to: reply_to.clone(),
            headers,
        };
        let pre = self.pre.clone();
        let reply = self
            .target
            .run(move |mut store| async move {
                let guest = pre.instantiate_async(&mut store).await?;
                guest
                    .boson_nats_inbound_nats()
                    .call_handle_message(&mut store, &guest_message)
                    .await
                    .map(|r| r.map_err(|e| format!("the guest returned {e:?}")))
            })
            .await?;
        if let (Some(to), Some(body)) = (reply_to, reply) {
            client.publish(to, body.into()).await.map_err(|e| {
                format!(
                    "component `{}`: cannot send the reply: {e}",
                    self.target.component.spec.id
                )
            })?;
        }
        Ok(())
    }
}

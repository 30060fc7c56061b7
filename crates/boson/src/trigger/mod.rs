//! Message and schedule triggers: Redis pub/sub, MQTT, NATS and cron (HTTP is `crate::http`).
//!
//! Every trigger is one module of the same shape:
//! - a `…Spec`, resolved from its `[[trigger.<type>]]` table by `resolve` (pure: no I/O, errors
//!   name the manifest line);
//! - a `…Trigger::new(specs, runtime, components, metrics)` that finds each component's export and fails at
//!   start when it is missing;
//! - `run(shutdown)`, which connects (retrying with backoff, logged), hands every event to a fresh
//!   instance through a [`Dispatcher`], reconnects when the broker goes away, and on shutdown
//!   stops taking events and lets the running ones finish.
//!
//! This file holds what they share: the trigger-table reader, [`run_instance`], the
//! [`Dispatcher`] (concurrency limit, metrics, draining) and [`Backoff`].

pub mod cron;
pub mod mqtt;
pub mod nats;
pub mod redis;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use wasmtime::Store;

use crate::host::HostState;
use crate::metrics::{Metrics, TriggerMetrics};
use crate::runtime::{Components, GuestFailure, LoadedComponent, Runtime};
use crate::variables::VariableValue;

/// One resolved non-HTTP trigger.
#[derive(Debug, Clone)]
pub enum TriggerSpec {
    Redis(redis::RedisSpec),
    Mqtt(mqtt::MqttSpec),
    Nats(nats::NatsSpec),
    Cron(cron::CronSpec),
}

impl TriggerSpec {
    pub fn component(&self) -> &str {
        match self {
            Self::Redis(s) => &s.component,
            Self::Mqtt(s) => &s.component,
            Self::Nats(s) => &s.component,
            Self::Cron(s) => &s.component,
        }
    }

    /// A one-line description for `boson up`'s start-up output.
    pub fn describe(&self) -> String {
        match self {
            Self::Redis(s) => format!(
                "{}: redis channel `{}` at {}",
                s.component,
                s.channel,
                redact(&s.address)
            ),
            Self::Mqtt(s) => format!(
                "{}: mqtt topic `{}` (QoS {}) at {}",
                s.component,
                s.topic,
                s.qos as u8,
                redact(&s.address)
            ),
            Self::Nats(s) => format!(
                "{}: nats subject `{}`{} at {}",
                s.component,
                s.subject,
                s.queue_group
                    .as_ref()
                    .map(|g| format!(" (queue group `{g}`)"))
                    .unwrap_or_default(),
                redact(&s.address)
            ),
            Self::Cron(s) => format!("{}: cron `{}`", s.component, s.expression),
        }
    }
}

/// The trigger types Boson runs besides HTTP, as written in `[[trigger.<type>]]`.
pub const TRIGGER_TYPES: [&str; 4] = ["redis", "mqtt", "nats", "cron"];

/// Resolves one `[[trigger.<type>]]` table.
pub fn resolve(
    trigger_type: &str,
    mut table: TriggerTable<'_>,
    app_settings: &AppTriggerSettings<'_>,
) -> anyhow::Result<TriggerSpec> {
    Ok(match trigger_type {
        "redis" => TriggerSpec::Redis(redis::resolve(&mut table, app_settings)?),
        "mqtt" => TriggerSpec::Mqtt(mqtt::resolve(&mut table, app_settings)?),
        "nats" => TriggerSpec::Nats(nats::resolve(&mut table, app_settings)?),
        "cron" => TriggerSpec::Cron(cron::resolve(&mut table)?),
        other => bail!(
            "{}: trigger type `{other}` is not supported — Boson runs http, {} triggers; remove this trigger or change its type",
            table.place(),
            TRIGGER_TYPES.join(", ")
        ),
    })
}

/// Reads the keys of one trigger table, checking types, rendering `{{ variable }}` templates and
/// refusing keys it does not know.
pub struct TriggerTable<'a> {
    /// `file:line` of the table.
    place: String,
    header: String,
    component: Option<String>,
    table: toml::Table,
    variables: &'a BTreeMap<String, VariableValue>,
}

impl<'a> TriggerTable<'a> {
    pub fn new(
        place: String,
        header: String,
        component: Option<String>,
        mut table: toml::Table,
        variables: &'a BTreeMap<String, VariableValue>,
    ) -> Self {
        // Spin's optional trigger `id`: accepted, not used.
        table.remove("id");
        Self {
            place,
            header,
            component,
            table,
            variables,
        }
    }

    /// The component the trigger runs (resolved by the manifest parser, inline ones included).
    pub fn component(&self) -> anyhow::Result<String> {
        self.component.clone().ok_or_else(|| {
            self.error("`component` is missing — name the component this trigger runs")
        })
    }

    fn place(&self) -> String {
        format!("{}: {}", self.place, self.header)
    }

    pub fn error(&self, message: impl std::fmt::Display) -> anyhow::Error {
        anyhow::anyhow!("{}: {message}", self.place())
    }

    /// A string key, `{{ variable }}` templates rendered.
    pub fn string(&mut self, key: &str) -> anyhow::Result<Option<String>> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => render_template(&s, self.variables)
                .map(Some)
                .map_err(|e| self.error(format_args!("`{key}`: {e}"))),
            Some(other) => Err(self.error(format_args!(
                "`{key}` must be a string, not {}",
                other.type_str()
            ))),
        }
    }

    pub fn required_string(&mut self, key: &str, example: &str) -> anyhow::Result<String> {
        self.string(key)?.ok_or_else(|| {
            self.error(format_args!(
                "`{key}` is missing — add it, for example `{key} = \"{example}\"`"
            ))
        })
    }

    /// A whole number, written as a number or as a string of digits (trigger plugins write
    /// `qos = "1"`).
    pub fn number(&mut self, key: &str) -> anyhow::Result<Option<u64>> {
        let value = match self.table.remove(key) {
            None => return Ok(None),
            Some(toml::Value::Integer(n)) => u64::try_from(n).ok(),
            Some(toml::Value::String(s)) => render_template(&s, self.variables)
                .ok()
                .and_then(|s| s.trim().parse().ok()),
            Some(_) => None,
        };
        value
            .map(Some)
            .ok_or_else(|| self.error(format_args!("`{key}` must be a whole number ≥ 0")))
    }

    /// The Boson extension every trigger has: how many events of this trigger may run at once.
    pub fn concurrency(&mut self) -> anyhow::Result<usize> {
        match self.number("concurrency")? {
            None => Ok(1),
            Some(n) if (1..=10_000).contains(&n) => Ok(n as usize),
            Some(_) => Err(self.error("`concurrency` must be between 1 and 10000")),
        }
    }

    /// Fails on any key not read yet.
    pub fn finish(&self, known: &[&str]) -> anyhow::Result<()> {
        if let Some(key) = self.table.keys().next() {
            bail!(
                "{}: unknown key `{key}` — the keys of this trigger are: {}",
                self.place(),
                known.join(", ")
            );
        }
        Ok(())
    }
}

/// `[application.trigger.<type>]`: settings shared by every trigger of a type.
pub struct AppTriggerSettings<'a> {
    pub place: String,
    pub table: Option<&'a toml::Table>,
    pub variables: &'a BTreeMap<String, VariableValue>,
}

impl AppTriggerSettings<'_> {
    /// A string setting, `{{ variable }}` templates rendered.
    pub fn string(&self, key: &str) -> anyhow::Result<Option<String>> {
        match self.table.and_then(|t| t.get(key)) {
            None => Ok(None),
            Some(toml::Value::String(s)) => render_template(s, self.variables)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("{}: `{key}`: {e}", self.place)),
            Some(toml::Value::Integer(n)) => Ok(Some(n.to_string())),
            Some(other) => bail!(
                "{}: `{key}` must be a string, not {}",
                self.place,
                other.type_str()
            ),
        }
    }

    /// Fails on any key not in `known`.
    pub fn check_keys(&self, known: &[&str]) -> anyhow::Result<()> {
        for key in self.table.into_iter().flat_map(|t| t.keys()) {
            if !known.contains(&key.as_str()) {
                bail!(
                    "{}: unknown key `{key}` — the keys of this section are: {}",
                    self.place,
                    known.join(", ")
                );
            }
        }
        Ok(())
    }
}

/// Renders `{{ name }}` references to application variables; every referenced variable must
/// have a value.
fn render_template(
    template: &str,
    variables: &BTreeMap<String, VariableValue>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    for part in boson_manifest::parse_template(template).map_err(|e| anyhow::anyhow!("{e}"))? {
        match part {
            boson_manifest::TemplatePart::Literal(text) => out.push_str(&text),
            boson_manifest::TemplatePart::Variable(name) => match variables.get(&name) {
                Some(v) => out.push_str(&v.value),
                None => bail!(
                    "variable `{name}` has no value — declare it in [variables] and give it a value"
                ),
            },
        }
    }
    Ok(out)
}

/// A broker address for log lines: any password in it replaced by `***`.
pub fn redact(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => address.to_string(),
    }
}

/// Runs `call` on a fresh instance of `component` under its deadline. `call` gets the store
/// and returns the guest's result; traps and timeouts become a [`GuestFailure`].
pub async fn run_instance<T, F, Fut>(
    runtime: &Runtime,
    component: &LoadedComponent,
    call: F,
) -> Result<T, GuestFailure>
where
    T: Send + 'static,
    F: FnOnce(Store<HostState>) -> Fut,
    Fut: Future<Output = wasmtime::Result<T>> + Send + 'static,
{
    let timeout = component.spec.limits.timeout;
    let slot = runtime.admission.admit_patiently().await?;
    let store = component
        .new_store()
        .map_err(|e| GuestFailure::failed(format!("{e:#}")))?;
    // The epoch deadline interrupts a busy guest; the timer also covers a guest waiting on I/O
    // or for its turn on the guest threads (dropping it stops it wherever it is).
    let call = call(store);
    let guest = runtime.guests.start(&component.placement, async move {
        let _slot = slot;
        call.await
    });
    match tokio::time::timeout(timeout + Duration::from_millis(100), guest).await {
        Ok(Ok(Ok(value))) => Ok(value),
        Ok(Ok(Err(e))) => Err(GuestFailure::from_error(&e, timeout)),
        Err(_elapsed) => Err(GuestFailure::deadline(timeout)),
        Ok(Err(join)) => Err(GuestFailure::failed(format!("guest task failed: {join}"))),
    }
}

/// Hands events of one trigger entry to guests: at most `limit` at once (a further event waits
/// for a free slot, so with the default of 1 events run one after the other, in order),
/// counting each in the entry's metrics, and tracking them so shutdown can wait for them.
#[derive(Clone)]
pub struct Dispatcher {
    slots: Arc<Semaphore>,
    tasks: TaskTracker,
    pub metrics: Arc<TriggerMetrics>,
    /// For log lines: `[[trigger.redis]] worker` and the like.
    pub label: Arc<str>,
}

impl Dispatcher {
    pub fn new(limit: usize, metrics: Arc<TriggerMetrics>, label: String) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limit.max(1))),
            tasks: TaskTracker::new(),
            metrics,
            label: label.into(),
        }
    }

    /// Waits for a free slot, then runs `event` in its own task. The event's outcome (`Err`
    /// carries the cause) is logged and counted.
    pub async fn dispatch<F>(&self, event: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.metrics.received();
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return; // the semaphore is never closed
        };
        self.spawn(permit, event);
    }

    /// Runs `event` only if a slot is free now; otherwise counts it as skipped and returns
    /// false (cron: a tick that comes while the last run is still going is not started).
    pub fn try_dispatch<F>(&self, event: F) -> bool
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.metrics.received();
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                self.spawn(permit, event);
                true
            }
            Err(_) => {
                self.metrics.skipped();
                false
            }
        }
    }

    fn spawn<F>(&self, permit: tokio::sync::OwnedSemaphorePermit, event: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let timer = self.metrics.start();
        let label = self.label.clone();
        self.tasks.spawn(async move {
            let result = event.await;
            if let Err(cause) = &result {
                tracing::error!(trigger = %label, "event failed: {cause}");
            }
            timer.finish(result.is_ok());
            drop(permit);
        });
    }

    /// Waits up to `grace` for the events still running.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                trigger = %self.label,
                "grace period over with {} event(s) still running",
                self.tasks.len()
            );
        }
    }
}

/// Exponential backoff for reconnecting: 100 ms doubling up to 2 s.
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(2);

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Sleeps for the current delay and doubles it; returns false if `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = shutdown.cancelled() => false,
        }
    }

    pub fn current(&self) -> Duration {
        self.next
    }
}

/// Every non-HTTP trigger of an app, ready to run.
pub struct Triggers {
    redis: Option<redis::RedisTrigger>,
    mqtt: Option<mqtt::MqttTrigger>,
    nats: Option<nats::NatsTrigger>,
    cron: Option<cron::CronTrigger>,
}

impl Triggers {
    /// Builds each trigger type the app uses; a component without the needed export fails here.
    pub fn new(
        specs: &[TriggerSpec],
        runtime: &Arc<Runtime>,
        components: &Components,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let (mut redis, mut mqtt, mut nats, mut cron) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for spec in specs {
            match spec {
                TriggerSpec::Redis(s) => redis.push(s.clone()),
                TriggerSpec::Mqtt(s) => mqtt.push(s.clone()),
                TriggerSpec::Nats(s) => nats.push(s.clone()),
                TriggerSpec::Cron(s) => cron.push(s.clone()),
            }
        }
        Ok(Self {
            redis: (!redis.is_empty())
                .then(|| redis::RedisTrigger::new(&redis, runtime, components, metrics))
                .transpose()?,
            mqtt: (!mqtt.is_empty())
                .then(|| mqtt::MqttTrigger::new(&mqtt, runtime, components, metrics))
                .transpose()?,
            nats: (!nats.is_empty())
                .then(|| nats::NatsTrigger::new(&nats, runtime, components, metrics))
                .transpose()?,
            cron: (!cron.is_empty())
                .then(|| cron::CronTrigger::new(&cron, runtime, components, metrics))
                .transpose()?,
        })
    }

    /// Runs every trigger until `shutdown`, then waits up to `grace` for running events.
    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        if let Some(t) = self.redis {
            tasks.spawn(t.run(shutdown.clone(), grace));
        }
        if let Some(t) = self.mqtt {
            tasks.spawn(t.run(shutdown.clone(), grace));
        }
        if let Some(t) = self.nats {
            tasks.spawn(t.run(shutdown.clone(), grace));
        }
        if let Some(t) = self.cron {
            tasks.spawn(t.run(shutdown.clone(), grace));
        }
        while let Some(result) = tasks.join_next().await {
            if let Err(e) = result {
                tracing::error!("a trigger task failed: {e}");
            }
        }
    }
}

/// What every trigger entry holds: the component it runs, the runtime it runs in, and the
/// dispatcher that counts and limits its events.
pub struct EventTarget {
    pub runtime: Arc<Runtime>,
    pub component: Arc<LoadedComponent>,
    pub dispatcher: Dispatcher,
}

impl EventTarget {
    /// Finds the component, checks that it exports one of `exports` (described to the user as
    /// `needed`), and registers the entry's metrics. `source` is the channel, topic, subject or
    /// schedule.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call per trigger type, all named"
    )]
    pub fn new(
        runtime: &Arc<Runtime>,
        components: &Components,
        metrics: &Metrics,
        trigger: &'static str,
        component: &str,
        source: &str,
        concurrency: usize,
        exports: &[&str],
        needed: &str,
    ) -> anyhow::Result<Self> {
        let component = components
            .get(component)
            .ok_or_else(|| anyhow::anyhow!("component `{component}` was not loaded"))?
            .clone();
        if !exports
            .iter()
            .any(|name| component.exports.iter().any(|e| e == name))
        {
            return Err(
                component.missing_export(&format!("[[trigger.{trigger}]] `{source}`"), needed)
            );
        }
        let counters = metrics.register(trigger, component.spec.id.clone(), source);
        let label = format!("{trigger} `{source}` → {}", component.spec.id);
        Ok(Self {
            runtime: runtime.clone(),
            dispatcher: Dispatcher::new(concurrency, counters, label),
            component,
        })
    }

    /// Whether the component exports `name`.
    pub fn exports(&self, name: &str) -> bool {
        self.component.exports.iter().any(|e| e == name)
    }

    /// Runs `call` in a fresh instance of the component. The guest's own error (`Ok(Err)`), a
    /// trap or a timeout becomes the cause, naming the component.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(Store<HostState>) -> Fut,
        Fut: Future<Output = wasmtime::Result<Result<T, String>>> + Send + 'static,
    {
        let id = &self.component.spec.id;
        match run_instance(&self.runtime, &self.component, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(cause)) => Err(format!("component `{id}`: {cause}")),
            Err(failure) => Err(format!("component `{id}`: {}", failure.cause)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("mqtt://user:secret@broker:1883"),
            "mqtt://user:***@broker:1883"
        );
        assert_eq!(
            redact("redis://localhost:6379/0"),
            "redis://localhost:6379/0"
        );
        assert_eq!(redact("nats://tok@host:4222"), "nats://tok:***@host:4222");
    }

    #[test]
    fn table_reader_checks_types_and_unknown_keys() {
        let vars = BTreeMap::from([(
            "chan".to_string(),
            VariableValue {
                value: "orders".into(),
                secret: false,
            },
        )]);
        let table: toml::Table = toml::from_str(
            "channel = \"{{ chan }}-in\"\nqos = \"1\"\nconcurrency = 4\nextra = true",
        )
        .unwrap();
        let mut t = TriggerTable::new(
            "spin.toml:7".into(),
            "[[trigger.redis]]".into(),
            None,
            table,
            &vars,
        );
        assert!(t.component().is_err());
        assert_eq!(t.string("channel").unwrap().as_deref(), Some("orders-in"));
        assert_eq!(t.number("qos").unwrap(), Some(1));
        assert_eq!(t.concurrency().unwrap(), 4);
        let err = t.finish(&["channel"]).unwrap_err().to_string();
        assert!(
            err.starts_with("spin.toml:7: [[trigger.redis]]: unknown key `extra`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn dispatcher_runs_at_most_its_limit_and_drains() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let metrics = Metrics::default();
        let dispatcher = Dispatcher::new(2, metrics.register("nats", "c".into(), "s"), "t".into());
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        for i in 0..6 {
            let (running, peak) = (running.clone(), peak.clone());
            dispatcher
                .dispatch(async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    if i == 3 { Err("boom".into()) } else { Ok(()) }
                })
                .await;
        }
        dispatcher.drain(Duration::from_secs(5)).await;
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        let json = metrics.to_json();
        assert_eq!(
            (json[0]["handled"].as_u64(), json[0]["failed"].as_u64()),
            (Some(5), Some(1))
        );
    }

    #[tokio::test]
    async fn try_dispatch_skips_while_busy() {
        let metrics = Metrics::default();
        let dispatcher = Dispatcher::new(
            1,
            metrics.register("cron", "c".into(), "* * * * * *"),
            "t".into(),
        );
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        assert!(dispatcher.try_dispatch(async move {
            let _ = wait.await;
            Ok(())
        }));
        assert!(!dispatcher.try_dispatch(async { Ok(()) }));
        release.send(()).unwrap();
        dispatcher.drain(Duration::from_secs(5)).await;
        let json = metrics.to_json();
        assert_eq!(
            (json[0]["handled"].as_u64(), json[0]["skipped"].as_u64()),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn templates_need_values() {
        let err = render_template("{{ missing }}", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("`missing` has no value"), "{err}");
    }
}

//! The cron trigger: `[[trigger.cron]] cron_expression = "…", component = "…"`, as the Spin cron
//! trigger plugin reads it. Each tick runs a fresh instance through the plugin's world-level
//! export `handle-cron-event(metadata)`, `metadata.timestamp` being the tick's scheduled time
//! in seconds since the Unix epoch.
//!
//! Expressions have six fields, `sec min hour day-of-month month day-of-week` (an optional
//! seventh is the year); a five-field Unix expression runs at second 0. Times are UTC.
//! Behaviour worth knowing: ticks missed while Boson was stopped are not replayed; a tick that
//! comes while the previous run of the same trigger is still going is skipped (logged and
//! counted), never started twice.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{EventTarget, TriggerTable};
use crate::host::HostState;
use crate::metrics::Metrics;
use crate::runtime::{Components, Runtime};

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "boson:platform/cron-trigger",
        exports: { default: async },
    });
}

const EXPORT: &str = "handle-cron-event";

/// One `[[trigger.cron]]`.
#[derive(Debug, Clone)]
pub struct CronSpec {
    pub component: String,
    /// As written.
    pub expression: String,
    pub schedule: cron::Schedule,
}

pub(super) fn resolve(table: &mut TriggerTable<'_>) -> anyhow::Result<CronSpec> {
    let component = table.component()?;
    let expression = table.required_string("cron_expression", "0 */5 * * * *")?;
    let schedule = parse_schedule(&expression).map_err(|e| table.error(e))?;
    table.finish(&["component", "cron_expression"])?;
    Ok(CronSpec {
        component,
        expression,
        schedule,
    })
}

fn parse_schedule(expression: &str) -> Result<cron::Schedule, String> {
    let fields = expression.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expression}"),
        6 | 7 => expression.to_string(),
        _ => {
            return Err(format!(
                "`cron_expression` \"{expression}\" has {fields} fields — write `sec min hour day-of-month month day-of-week`, e.g. \"0 */5 * * * *\" for every five minutes"
            ));
        }
    };
    cron::Schedule::from_str(&full)
        .map_err(|e| format!("`cron_expression` \"{expression}\" is not valid: {e}"))
}

/// The app's schedules.
pub struct CronTrigger {
    schedules: Vec<Arc<Schedule>>,
}

struct Schedule {
    spec: CronSpec,
    target: EventTarget,
    pre: bindings::CronTriggerPre<HostState>,
}

impl CronTrigger {
    pub fn new(
        specs: &[CronSpec],
        runtime: &Arc<Runtime>,
        components: &Components,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let mut schedules = Vec::new();
        for spec in specs {
            // One run at a time: a tick finding the slot taken is skipped.
            let target = EventTarget::new(
                runtime,
                components,
                metrics,
                "cron",
                &spec.component,
                &spec.expression,
                1,
                &[EXPORT],
                "`handle-cron-event` (the Spin cron trigger plugin's world `spin-cron`)",
            )?;
            let pre = bindings::CronTriggerPre::new(target.component.pre.clone())?;
            schedules.push(Arc::new(Schedule {
                spec: spec.clone(),
                target,
                pre,
            }));
        }
        Ok(Self { schedules })
    }

    pub async fn run(self, shutdown: CancellationToken, grace: Duration) {
        let mut tasks = tokio::task::JoinSet::new();
        for s in self.schedules {
            tasks.spawn(s.run(shutdown.clone(), grace));
        }
        while tasks.join_next().await.is_some() {}
    }
}

impl Schedule {
    async fn run(self: Arc<Self>, shutdown: CancellationToken, grace: Duration) {
        tracing::info!(
            "cron trigger: `{}` runs component `{}`",
            self.spec.expression,
            self.spec.component
        );
        let dispatcher = &self.target.dispatcher;
        // Only ticks after start: nothing missed while stopped is replayed.
        for tick in self.spec.schedule.upcoming(Utc) {
            let wait = (tick - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => break,
            }
            let timestamp = u64::try_from(tick.timestamp()).unwrap_or(0);
            let this = self.clone();
            if !dispatcher.try_dispatch(async move { this.handle(timestamp).await }) {
                tracing::warn!(
                    component = %self.spec.component,
                    "cron trigger: skipped the tick at {tick}: the previous run of `{}` is still going",
                    self.spec.expression
                );
            }
        }
        dispatcher.drain(grace).await;
    }

    async fn handle(&self, timestamp: u64) -> Result<(), String> {
        let pre = self.pre.clone();
        self.target
            .run(move |mut store| async move {
                let guest = pre.instantiate_async(&mut store).await?;
                let metadata = bindings::fermyon::spin_cron::cron_types::Metadata { timestamp };
                guest
                    .call_handle_cron_event(&mut store, metadata)
                    .await
                    .map(|r| r.map_err(|e| format!("the guest returned {e:?}")))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_six_and_five_fields() {
        let every_second = parse_schedule("* * * * * *").unwrap();
        let mut upcoming = every_second.upcoming(Utc);
        let a = upcoming.next().unwrap();
        let b = upcoming.next().unwrap();
        assert_eq!((b - a).num_seconds(), 1);
        let five = parse_schedule("*/5 * * * *").unwrap();
        assert!(five.upcoming(Utc).next().unwrap().timestamp() % 60 == 0);
        let err = parse_schedule("* * *").unwrap_err();
        assert!(err.contains("has 3 fields"), "{err}");
        assert!(parse_schedule("* * * * * nope").is_err());
    }
}

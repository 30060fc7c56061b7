//! Counters per trigger: events received, handled, failed, time spent in guests, and whether
//! the trigger is connected to its broker. Every trigger registers here; the HTTP listener
//! serves them as JSON (`/.well-known/boson/status`) and in Prometheus' text format
//! (`/.well-known/boson/metrics`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The counters of one trigger entry (one route's component, one subscription, one schedule).
#[derive(Debug)]
pub struct TriggerMetrics {
    /// `http`, `redis`, `mqtt`, `nats` or `cron`.
    pub trigger: &'static str,
    pub component: Arc<str>,
    /// What the trigger listens to: a route, channel, topic, subject or schedule.
    pub source: String,
    received: AtomicU64,
    handled: AtomicU64,
    failed: AtomicU64,
    /// Events skipped without running the guest (a cron tick while the last run still goes).
    skipped: AtomicU64,
    /// Events whose instance was built ahead of them (HTTP, [`crate::ready`]).
    ready: AtomicU64,
    /// Instances built ahead after this trigger's events that no event took: dropped when
    /// their component was replaced or their place went to another component's.
    ready_unused: AtomicU64,
    in_flight: AtomicU64,
    guest_micros: AtomicU64,
    connected: AtomicBool,
}

impl TriggerMetrics {
    pub fn received(&self) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    pub fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an event that ran in an instance built ahead of it.
    pub fn ran_in_ready_instance(&self) {
        self.ready.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an instance built ahead after one of this trigger's events, dropped unused.
    pub fn ready_unused(&self) {
        self.ready_unused.fetch_add(1, Ordering::Relaxed);
    }

    /// Marks one event as running in a guest until the returned guard is finished or dropped.
    pub fn start(self: &Arc<Self>) -> EventTimer {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        EventTimer {
            metrics: self.clone(),
            started: std::time::Instant::now(),
            done: false,
        }
    }

    /// Whether the trigger's broker connection (and subscription) is up.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn handled_count(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    pub fn failed_count(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "trigger": self.trigger,
            "component": &*self.component,
            "source": self.source,
            "connected": self.is_connected(),
            "received": self.received.load(Ordering::Relaxed),
            "handled": self.handled_count(),
            "failed": self.failed_count(),
            "skipped": self.skipped.load(Ordering::Relaxed),
            "ready": self.ready.load(Ordering::Relaxed),
            "ready_unused": self.ready_unused.load(Ordering::Relaxed),
            "in_flight": self.in_flight.load(Ordering::Relaxed),
            "guest_seconds": Duration::from_micros(self.guest_micros.load(Ordering::Relaxed)).as_secs_f64(),
        })
    }
}

/// One event inside a guest; finishing it records the outcome and the time spent.
pub struct EventTimer {
    metrics: Arc<TriggerMetrics>,
    started: std::time::Instant,
    done: bool,
}

impl EventTimer {
    pub fn finish(mut self, ok: bool) {
        self.record(ok);
    }

    fn record(&mut self, ok: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let m = &self.metrics;
        m.in_flight.fetch_sub(1, Ordering::Relaxed);
        let counter = if ok { &m.handled } else { &m.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        m.guest_micros.fetch_add(micros, Ordering::Relaxed);
    }
}

impl Drop for EventTimer {
    /// An event dropped before it finished (its task was cancelled) counts as failed.
    fn drop(&mut self) {
        self.record(false);
    }
}

/// Every trigger's counters, in registration order.
#[derive(Debug, Default)]
pub struct Metrics {
    triggers: Mutex<Vec<Arc<TriggerMetrics>>>,
}

impl Metrics {
    pub fn register(
        &self,
        trigger: &'static str,
        component: Arc<str>,
        source: impl Into<String>,
    ) -> Arc<TriggerMetrics> {
        let source = source.into();
        let mut entries = self.lock();
        // A reloaded app (`boson watch`) registers its entries again: they keep counting.
        if let Some(existing) = entries
            .iter()
            .find(|m| m.trigger == trigger && m.component == component && m.source == source)
        {
            return existing.clone();
        }
        let entry = Arc::new(TriggerMetrics {
            trigger,
            component,
            source,
            received: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            ready_unused: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            guest_micros: AtomicU64::new(0),
            // HTTP and cron have no broker: they are "connected" from the start.
            connected: AtomicBool::new(matches!(trigger, "http" | "cron")),
        });
        entries.push(entry.clone());
        entry
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<TriggerMetrics>>> {
        // The list is only ever pushed to; a panic elsewhere cannot leave it inconsistent.
        self.triggers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(self.lock().iter().map(|t| t.to_json()).collect())
    }

    /// The counters in Prometheus' text exposition format.
    pub fn to_prometheus(&self) -> String {
        let triggers = self.lock();
        let mut out = String::new();
        let series: [Series; 9] = [
            (
                "boson_events_received_total",
                "counter",
                "Events delivered to the trigger.",
                |t| t.received.load(Ordering::Relaxed) as f64,
            ),
            (
                "boson_events_handled_total",
                "counter",
                "Events the guest handled successfully.",
                |t| t.handled_count() as f64,
            ),
            (
                "boson_events_failed_total",
                "counter",
                "Events whose guest failed, trapped or timed out.",
                |t| t.failed_count() as f64,
            ),
            (
                "boson_events_skipped_total",
                "counter",
                "Events skipped without running the guest.",
                |t| t.skipped.load(Ordering::Relaxed) as f64,
            ),
            (
                "boson_events_ready_total",
                "counter",
                "Events that ran in an instance built ahead of them.",
                |t| t.ready.load(Ordering::Relaxed) as f64,
            ),
            (
                "boson_ready_instances_unused_total",
                "counter",
                "Instances built ahead after the trigger's events and dropped without serving one.",
                |t| t.ready_unused.load(Ordering::Relaxed) as f64,
            ),
            (
                "boson_events_in_flight",
                "gauge",
                "Events running in a guest now.",
                |t| t.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "boson_guest_seconds_total",
                "counter",
                "Time spent running guests.",
                |t| Duration::from_micros(t.guest_micros.load(Ordering::Relaxed)).as_secs_f64(),
            ),
            (
                "boson_trigger_connected",
                "gauge",
                "1 when the trigger is connected to its broker.",
                |t| f64::from(u8::from(t.is_connected())),
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for t in triggers.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{trigger=\"{}\",component=\"{}\",source=\"{}\"}} {}",
                    t.trigger,
                    escape_label(&t.component),
                    escape_label(&t.source),
                    value(t)
                );
            }
        }
        out
    }
}

/// One exposed series: name, type, help text, and how to read it off an entry.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&TriggerMetrics) -> f64,
);

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_and_dropped_events() {
        let metrics = Metrics::default();
        let t = metrics.register("redis", "worker".into(), "orders");
        assert!(!t.is_connected());
        t.received();
        t.start().finish(true);
        t.received();
        t.start().finish(false);
        t.received();
        drop(t.start());
        t.ran_in_ready_instance();
        t.ready_unused();
        t.ready_unused();
        let json = metrics.to_json();
        assert_eq!(json[0]["received"], 3);
        assert_eq!(json[0]["handled"], 1);
        assert_eq!(json[0]["failed"], 2);
        assert_eq!(json[0]["in_flight"], 0);
        assert_eq!(json[0]["ready"], 1);
        assert_eq!(json[0]["ready_unused"], 2);
        let text = metrics.to_prometheus();
        assert!(
            text.contains(
                "boson_events_failed_total{trigger=\"redis\",component=\"worker\",source=\"orders\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "boson_events_ready_total{trigger=\"redis\",component=\"worker\",source=\"orders\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "boson_ready_instances_unused_total{trigger=\"redis\",component=\"worker\",source=\"orders\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}

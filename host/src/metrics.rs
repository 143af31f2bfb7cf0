//! Prometheus metrics: what came in, what was delivered, how long attempts
//! and plugin calls took, and how much work is waiting. One [`Metrics`] per
//! host, no process-wide registry, so several hosts in one process (tests,
//! embedders) keep separate counts.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::runtime::Origin;
use crate::store::QueueDepth;

type Labels = Vec<(&'static str, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The host's metrics, updated where things happen and rendered on scrape.
pub struct Metrics {
    registry: Registry,
    events_accepted: Counter,
    deliveries: Family<Labels, Counter>,
    attempt_seconds: Histogram,
    plugin_calls: Family<Labels, Counter>,
    plugin_seconds: Histograms,
    plugin_loads: Family<Labels, Counter>,
    sync_calls: Family<Labels, Counter>,
    sync_seconds: Histograms,
    queue_pending: Gauge,
    queue_in_flight: Gauge,
    oldest_due_seconds: Gauge<f64, AtomicU64>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 52 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 21))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wasmhooks");
        let metrics = Metrics {
            events_accepted: Counter::default(),
            deliveries: Family::default(),
            attempt_seconds: latency_histogram(),
            plugin_calls: Family::default(),
            plugin_seconds: Family::new_with_constructor(latency_histogram),
            plugin_loads: Family::default(),
            sync_calls: Family::default(),
            sync_seconds: Family::new_with_constructor(latency_histogram),
            queue_pending: Gauge::default(),
            queue_in_flight: Gauge::default(),
            oldest_due_seconds: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_accepted",
            "Events stored durably",
            metrics.events_accepted.clone(),
        );
        registry.register(
            "deliveries",
            "Delivery attempts by what followed them: succeeded, retry, failed, cancelled",
            metrics.deliveries.clone(),
        );
        registry.register(
            "attempt_duration_seconds",
            "Time from sending a webhook request to its answer",
            metrics.attempt_seconds.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls by plugin and outcome (continue, cancel, allow, deny, or the error code)",
            metrics.plugin_calls.clone(),
        );
        registry.register(
            "plugin_call_duration_seconds",
            "Plugin call time, instantiation included",
            metrics.plugin_seconds.clone(),
        );
        registry.register(
            "plugin_loads",
            "Plugins loaded, by where their machine code came from (compiled or cache)",
            metrics.plugin_loads.clone(),
        );
        registry.register(
            "sync_calls",
            "Synchronous trigger calls by trigger and decision",
            metrics.sync_calls.clone(),
        );
        registry.register(
            "sync_call_duration_seconds",
            "Synchronous trigger call time",
            metrics.sync_seconds.clone(),
        );
        registry.register(
            "queue_pending",
            "Deliveries waiting for an attempt",
            metrics.queue_pending.clone(),
        );
        registry.register(
            "queue_in_flight",
            "Deliveries being attempted",
            metrics.queue_in_flight.clone(),
        );
        registry.register(
            "queue_oldest_due_seconds",
            "How long the oldest due delivery has waited",
            metrics.oldest_due_seconds.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// `count` events were stored.
    pub fn events_accepted(&self, count: u64) {
        self.events_accepted.inc_by(count);
    }

    /// A delivery attempt ended with `outcome`.
    pub fn delivery(&self, outcome: &'static str) {
        self.deliveries
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    }

    /// A webhook request took `elapsed`.
    pub fn attempt(&self, elapsed: Duration) {
        self.attempt_seconds.observe(elapsed.as_secs_f64());
    }

    /// A call to `plugin` ended with `outcome` after `elapsed`.
    pub fn plugin_call(&self, plugin: &str, outcome: &str, elapsed: Duration) {
        self.plugin_calls
            .get_or_create(&vec![
                ("plugin", plugin.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.plugin_seconds
            .get_or_create(&vec![("plugin", plugin.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    /// A plugin was loaded: compiled now, or read from the compile cache.
    pub fn plugin_load(&self, origin: Origin) {
        let origin = match origin {
            Origin::Compiled => "compiled",
            Origin::Cache => "cache",
        };
        self.plugin_loads
            .get_or_create(&vec![("origin", origin.to_string())])
            .inc();
    }

    /// A synchronous call on `trigger` decided `decision` after `elapsed`.
    pub fn sync_call(&self, trigger: &str, decision: &str, elapsed: Duration) {
        self.sync_calls
            .get_or_create(&vec![
                ("trigger", trigger.to_string()),
                ("decision", decision.to_string()),
            ])
            .inc();
        self.sync_seconds
            .get_or_create(&vec![("trigger", trigger.to_string())])
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition, with the queue as `depth` shows it.
    pub fn render(&self, depth: &QueueDepth) -> String {
        self.queue_pending.set(depth.pending as i64);
        self.queue_in_flight.set(depth.in_flight as i64);
        self.oldest_due_seconds
            .set(depth.oldest_due_ms.unwrap_or(0) as f64 / 1000.0);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

//! Self-observability: logging setup and the agent's own counters.
//!
//! Every counter goes through [`Metrics`], one method per internal event, so the exposition
//! (a log summary today, Prometheus later) changes in one place. Counters are updated per batch,
//! not per record, on the hot path.

pub mod exposition;
pub mod latency;
mod logging;
pub mod server;
pub mod systemd;

pub use logging::{init_logging, LogFormat};

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A counter's identity: its name and its label pairs.
pub type CounterKey = (&'static str, Vec<(&'static str, String)>);

/// The agent's counters, gauges, latency histograms and sink states, shared by every component.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<CounterKey, u64>>,
    gauges: Mutex<BTreeMap<CounterKey, i64>>,
    latencies: Mutex<BTreeMap<CounterKey, latency::Latency>>,
    sinks: Mutex<BTreeMap<String, SinkHealth>>,
    sources: Mutex<BTreeMap<String, SinkHealth>>,
}

/// Lock a mutex even if a panicking holder poisoned it: counters stay usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// What a sink's last delivery attempts say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkHealth {
    /// Delivering (or nothing to deliver yet).
    Healthy,
    /// Retrying transient failures; records wait.
    Degraded(String),
    /// The SIEM refuses the configuration (credentials, permissions, URL); records wait.
    Failing(String),
}

impl SinkHealth {
    /// `healthy`, `degraded` or `failing`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkHealth::Healthy => "healthy",
            SinkHealth::Degraded(_) => "degraded",
            SinkHealth::Failing(_) => "failing",
        }
    }
}

impl Metrics {
    /// A fresh set of counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add to a counter (e.g. records a sink's full queue dropped).
    pub fn add_counter(&self, name: &'static str, labels: Vec<(&'static str, String)>, value: u64) {
        self.add(name, labels, value);
    }

    fn add(&self, name: &'static str, labels: Vec<(&'static str, String)>, value: u64) {
        if value == 0 {
            return;
        }
        *lock(&self.counters).entry((name, labels)).or_insert(0) += value;
    }

    /// Lines read by a source.
    pub fn lines_read(&self, source: &str, count: u64) {
        self.add(
            "lines_read_total",
            vec![("source", source.to_string())],
            count,
        );
    }

    /// Records decoded into canonical records.
    pub fn records_decoded(&self, source: &str, count: u64) {
        self.add(
            "records_decoded_total",
            vec![("source", source.to_string())],
            count,
        );
    }

    /// A line or record dead-lettered, by reason.
    pub fn dead_lettered(&self, source: &str, reason: &str) {
        self.add(
            "records_dead_lettered_total",
            vec![
                ("source", source.to_string()),
                ("reason", reason.to_string()),
            ],
            1,
        );
    }

    /// Records stamped too far in the future, forwarded but kept out of detection.
    pub fn future_events(&self, source: &str, count: u64) {
        self.add(
            "future_events_total",
            vec![("source", source.to_string())],
            count,
        );
    }

    /// A record whose prompt or response the scanner flagged.
    pub fn content_flagged(&self, source: &str) {
        self.add(
            "records_content_flagged_total",
            vec![("source", source.to_string())],
            1,
        );
    }

    /// An alert raised.
    pub fn alert_raised(&self, rule: &str, severity: &str) {
        self.add(
            "alerts_total",
            vec![
                ("rule", rule.to_string()),
                ("severity", severity.to_string()),
            ],
            1,
        );
    }

    /// Records a sink wrote or delivered.
    pub fn sink_sent(&self, sink: &str, count: u64) {
        self.add(
            "sink_records_sent_total",
            vec![("sink", sink.to_string())],
            count,
        );
    }

    /// A record a sink dead-lettered after a permanent rejection.
    pub fn sink_dead_lettered(&self, sink: &str) {
        self.add(
            "sink_records_dead_lettered_total",
            vec![("sink", sink.to_string())],
            1,
        );
    }

    /// A record a sink had to shorten to fit its transport (syslog over UDP).
    pub fn sink_truncated(&self, sink: &str) {
        self.add(
            "sink_records_truncated_total",
            vec![("sink", sink.to_string())],
            1,
        );
    }

    /// A failed attempt by a sink (it will retry).
    pub fn sink_error(&self, sink: &str) {
        self.add("sink_errors_total", vec![("sink", sink.to_string())], 1);
    }

    /// Events too late for the windows (older than the out-of-order allowance).
    pub fn late_events(&self, count: u64) {
        self.add("late_events_total", Vec::new(), count);
    }

    /// Set a gauge (e.g. entities tracked per rule).
    pub fn set_gauge(&self, name: &'static str, labels: Vec<(&'static str, String)>, value: i64) {
        lock(&self.gauges).insert((name, labels), value);
    }

    /// Record latencies (e.g. from reading a line to raising its alert).
    pub fn record_latencies(
        &self,
        name: &'static str,
        labels: Vec<(&'static str, String)>,
        values: impl IntoIterator<Item = std::time::Duration>,
    ) {
        let mut latencies = lock(&self.latencies);
        let histogram = latencies.entry((name, labels)).or_default();
        for value in values {
            histogram.record(value);
        }
    }

    /// Say how a sink is doing; logged by the sink, shown by `/ready` and `aiwarden status`.
    pub fn set_sink_health(&self, sink: &str, health: SinkHealth) {
        let up = i64::from(!matches!(health, SinkHealth::Failing(_)));
        lock(&self.sinks).insert(sink.to_string(), health);
        self.set_gauge("sink_up", vec![("sink", sink.to_string())], up);
    }

    /// Say how a source is doing: healthy while it runs, failing when it stopped on an error.
    pub fn set_source_health(&self, source: &str, health: SinkHealth) {
        lock(&self.sources).insert(source.to_string(), health);
    }

    /// Every source's state.
    pub fn source_health(&self) -> BTreeMap<String, SinkHealth> {
        lock(&self.sources).clone()
    }

    /// Every sink's state.
    pub fn sink_health(&self) -> BTreeMap<String, SinkHealth> {
        lock(&self.sinks).clone()
    }

    /// Every gauge.
    pub fn gauges(&self) -> Vec<(CounterKey, i64)> {
        lock(&self.gauges)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Latency quantiles (seconds) and counts of every histogram.
    pub fn latency_summaries(&self) -> Vec<(CounterKey, latency::Summary)> {
        lock(&self.latencies)
            .iter()
            .map(|(k, v)| (k.clone(), v.summary()))
            .collect()
    }

    /// The value of one counter (0 when never incremented).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = match self.counters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        counters
            .iter()
            .filter(|((counter, counter_labels), _)| {
                *counter == name
                    && counter_labels.len() == labels.len()
                    && counter_labels
                        .iter()
                        .zip(labels)
                        .all(|((k1, v1), (k2, v2))| k1 == k2 && v1 == v2)
            })
            .map(|(_, value)| *value)
            .sum()
    }

    /// The sum of a counter over all its label values.
    pub fn total(&self, name: &str) -> u64 {
        let counters = match self.counters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        counters
            .iter()
            .filter(|((counter, _), _)| *counter == name)
            .map(|(_, value)| *value)
            .sum()
    }

    /// Every counter, for a summary.
    pub fn snapshot(&self) -> Vec<(CounterKey, u64)> {
        let counters = match self.counters.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        counters.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

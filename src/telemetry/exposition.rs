//! Prometheus exposition of [`Metrics`], through the `prometheus-client` crate's encoder.

use super::Metrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Help text of every counter the agent keeps (names without the `aiwarden_` prefix).
const HELP: &[(&str, &str)] = &[
    ("lines_read", "Lines read by a source."),
    (
        "records_decoded",
        "Records decoded into canonical audit records.",
    ),
    (
        "records_dead_lettered",
        "Input lines or records dead-lettered, by reason.",
    ),
    ("alerts", "Alerts raised, by rule and severity."),
    ("sink_records_sent", "Records a sink delivered."),
    (
        "sink_records_dead_lettered",
        "Records a SIEM rejected permanently (dead-lettered).",
    ),
    ("sink_errors", "Failed delivery attempts (each is retried)."),
    (
        "late_events",
        "Events older than the allowed lateness, kept out of windows.",
    ),
    (
        "sink_records_truncated",
        "Records a sink cut to fit its transport (syslog over UDP).",
    ),
    (
        "tracked_entities",
        "Entities (users, sessions...) a rule keeps state for.",
    ),
    (
        "refused_entities",
        "New entities a rule refused because it was at max_entities_per_rule.",
    ),
    (
        "future_events",
        "Records stamped beyond detect.max_clock_skew ahead of the agent's clock: forwarded, not detected on.",
    ),
    (
        "records_content_flagged",
        "Records whose prompt or response the content scanner flagged.",
    ),
    (
        "sink_up",
        "1 unless the SIEM refuses the sink's configuration (see the log).",
    ),
    (
        "sink_retries",
        "Requests sent again after a failure (each attempt after the first).",
    ),
    (
        "sink_breaker_state",
        "Circuit breaker: 0 closed, 1 open (probing after a cool-down), 2 half-open (one probe out).",
    ),
    (
        "sink_breaker_trips",
        "Times a sink's circuit breaker opened after repeated failed requests.",
    ),
    (
        "sink_queue_records",
        "Records in a sink's disk queue not yet delivered.",
    ),
    ("sink_queue_bytes", "Bytes of a sink's disk queue on disk."),
    (
        "sink_queue_oldest_age_seconds",
        "Age of the oldest record in a sink's disk queue not yet delivered.",
    ),
    (
        "sink_queue_dropped_records",
        "Records a full queue dropped (when_full = \"drop_newest\").",
    ),
    (
        "sink_queue_write_errors",
        "Failed appends to a sink's disk queue (disk full, I/O error); intake waits and retries.",
    ),
    (
        "sink_queue_damaged",
        "Damaged stretches found in a sink's disk queue (dead-lettered).",
    ),
    (
        "ingest_to_alert_latency_seconds",
        "From reading a line to raising its alert (HDR quantiles).",
    ),
    (
        "sink_delivery_latency_seconds",
        "From reading a line to its sink's acknowledgement (HDR quantiles).",
    ),
];

fn help(name: &str) -> &'static str {
    HELP.iter()
        .find(|(known, _)| *known == name)
        .map_or("aiwarden metric.", |(_, help)| help)
}

/// One metric's series: label pairs and value.
type Series<T> = Vec<(Vec<(String, String)>, T)>;

/// Group series by metric name, labels as owned strings.
fn group<T>(items: Vec<(super::CounterKey, T)>) -> BTreeMap<&'static str, Series<T>> {
    let mut families: BTreeMap<&'static str, Series<T>> = BTreeMap::new();
    for ((name, labels), value) in items {
        let labels = labels
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        families.entry(name).or_default().push((labels, value));
    }
    families
}

#[derive(Debug)]
struct CounterCollector(Arc<Metrics>);

impl Collector for CounterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Group the label sets of each counter under one descriptor.
        for (name, series) in group(self.0.snapshot()) {
            let base = name.strip_suffix("_total").unwrap_or(name);
            let mut metric = encoder.encode_descriptor(
                base,
                help(base),
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (labels, value) in series {
                if labels.is_empty() {
                    ConstCounter::new(value).encode(metric)?;
                    break;
                }
                ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
            }
        }
        for (name, series) in group(self.0.gauges()) {
            let mut metric =
                encoder.encode_descriptor(name, help(name), None, MetricType::Gauge)?;
            for (labels, value) in series {
                if labels.is_empty() {
                    ConstGauge::new(value).encode(metric)?;
                    break;
                }
                ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
            }
        }
        // Latencies: one gauge per quantile (HDR estimates), and the sample count.
        for (name, series) in group(self.0.latency_summaries()) {
            let seconds = format!("{name}_seconds");
            let mut metric =
                encoder.encode_descriptor(&seconds, help(&seconds), None, MetricType::Gauge)?;
            for (labels, summary) in &series {
                for (quantile, value) in &summary.quantiles {
                    let mut with_quantile = labels.clone();
                    with_quantile.push(("quantile".to_string(), quantile.to_string()));
                    ConstGauge::new(*value).encode(metric.encode_family(&with_quantile)?)?;
                }
            }
            let samples = format!("{name}_samples");
            let mut metric = encoder.encode_descriptor(
                &samples,
                "Latency samples recorded.",
                None,
                MetricType::Counter,
            )?;
            for (labels, summary) in &series {
                if labels.is_empty() {
                    ConstCounter::new(summary.count).encode(metric)?;
                    break;
                }
                ConstCounter::new(summary.count).encode(metric.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// The text exposition of every counter, `aiwarden_`-prefixed.
pub fn render(metrics: &Arc<Metrics>) -> String {
    let mut registry = Registry::with_prefix("aiwarden");
    registry.register_collector(Box::new(CounterCollector(Arc::clone(metrics))));
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        text.clear();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_as_prometheus_text() {
        let metrics = Arc::new(Metrics::new());
        metrics.lines_read("audit", 7);
        metrics.dead_lettered("audit", "invalid_json");
        metrics.dead_lettered("audit", "invalid_json");
        metrics.alert_raised("mcp-volume", "medium");
        let text = render(&metrics);
        assert!(
            text.contains("# TYPE aiwarden_lines_read counter"),
            "{text}"
        );
        assert!(
            text.contains("aiwarden_lines_read_total{source=\"audit\"} 7"),
            "{text}"
        );
        assert!(
            text.contains(
                "aiwarden_records_dead_lettered_total{source=\"audit\",reason=\"invalid_json\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("aiwarden_alerts_total{rule=\"mcp-volume\",severity=\"medium\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        metrics.set_gauge("tracked_entities", vec![("rule", "mcp-volume".into())], 12);
        metrics.record_latencies(
            "ingest_to_alert_latency",
            Vec::new(),
            [std::time::Duration::from_millis(3)],
        );
        let text = render(&metrics);
        assert!(
            text.contains("aiwarden_tracked_entities{rule=\"mcp-volume\"} 12"),
            "{text}"
        );
        assert!(
            text.contains("aiwarden_ingest_to_alert_latency_seconds{quantile=\"0.99\"} 0.003"),
            "{text}"
        );
        assert!(
            text.contains("aiwarden_ingest_to_alert_latency_samples_total 1"),
            "{text}"
        );
    }
}

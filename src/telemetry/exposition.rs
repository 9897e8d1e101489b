//! Prometheus exposition of [`Metrics`], through the `prometheus-client` crate's encoder.

use super::Metrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
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
];

/// One counter's series: label pairs and value.
type Series = Vec<(Vec<(String, String)>, u64)>;

#[derive(Debug)]
struct CounterCollector(Arc<Metrics>);

impl Collector for CounterCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Group the label sets of each counter under one descriptor.
        let mut families: BTreeMap<&str, Series> = BTreeMap::new();
        for ((name, labels), value) in self.0.snapshot() {
            let labels = labels
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            families.entry(name).or_default().push((labels, value));
        }
        for (name, series) in families {
            let base = name.strip_suffix("_total").unwrap_or(name);
            let help = HELP
                .iter()
                .find(|(known, _)| *known == base)
                .map_or("aiwarden counter.", |(_, help)| help);
            let mut metric = encoder.encode_descriptor(
                base,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (labels, value) in series {
                let family = metric.encode_family(&labels)?;
                ConstCounter::new(value).encode(family)?;
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
    }
}

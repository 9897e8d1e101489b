//! `aiwarden status`: a short table of a running agent's sources, rules and sinks, read from its
//! own `/ready` and `/metrics` endpoints.

use super::Failure;
use crate::config::Config;
use anyhow::Context;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

/// One sample of the Prometheus text: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parse Prometheus text exposition lines (comments skipped).
fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter_map(|pair| {
                    let (key, value) = pair.split_once("=\"")?;
                    Some((
                        key.trim().to_string(),
                        value.trim_end_matches('"').to_string(),
                    ))
                })
                .collect();
            Some((name.to_string(), labels, value))
        })
        .collect()
}

/// Sum of a metric per value of one label.
fn by_label(samples: &[Sample], metric: &str, label: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for (name, labels, value) in samples {
        if name == metric {
            if let Some(key) = labels.get(label) {
                *sums.entry(key.clone()).or_insert(0.0) += value;
            }
        }
    }
    sums
}

/// Show the status of the agent configured in `config` (or at `address`).
pub fn status(config: &Path, address: Option<SocketAddr>) -> Result<(), Failure> {
    let address = match address {
        Some(address) => address,
        None => {
            Config::load(config)
                .map_err(Failure::config)?
                .telemetry
                .listen
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::runtime)?;
    let (ready_status, ready, metrics) = runtime
        .block_on(async {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?;
            let ready = client.get(format!("http://{address}/ready")).send().await?;
            let ready_status = ready.status().as_u16();
            let ready: serde_json::Value = serde_json::from_slice(&ready.bytes().await?).unwrap_or_default();
            let metrics = client.get(format!("http://{address}/metrics")).send().await?.text().await?;
            Ok::<_, reqwest::Error>((ready_status, ready, metrics))
        })
        .with_context(|| format!("cannot reach the agent at http://{address} (is it running? is [telemetry] enabled?)"))
        .map_err(Failure::runtime)?;
    let samples = parse_metrics(&metrics);

    println!(
        "aiwarden at http://{address}: {}",
        if ready_status == 200 {
            "ready"
        } else {
            "NOT READY"
        }
    );
    println!("\nSOURCES                  LINES READ   RECORDS   DEAD-LETTERED");
    let read = by_label(&samples, "aiwarden_lines_read_total", "source");
    let decoded = by_label(&samples, "aiwarden_records_decoded_total", "source");
    let dead = by_label(&samples, "aiwarden_records_dead_lettered_total", "source");
    for (source, lines) in &read {
        println!(
            "{source:<24} {lines:>10} {:>9} {:>15}",
            decoded.get(source).copied().unwrap_or(0.0),
            dead.get(source).copied().unwrap_or(0.0)
        );
    }
    println!("\nRULES                    ALERTS   TRACKED ENTITIES");
    let alerts = by_label(&samples, "aiwarden_alerts_total", "rule");
    let tracked = by_label(&samples, "aiwarden_tracked_entities", "rule");
    for (rule, entities) in &tracked {
        println!(
            "{rule:<24} {:>6} {entities:>18}",
            alerts.get(rule).copied().unwrap_or(0.0)
        );
    }
    println!("\nSINKS                    STATE      SENT   ERRORS   REJECTED   P99 DELIVERY");
    let sent = by_label(&samples, "aiwarden_sink_records_sent_total", "sink");
    let errors = by_label(&samples, "aiwarden_sink_errors_total", "sink");
    let rejected = by_label(
        &samples,
        "aiwarden_sink_records_dead_lettered_total",
        "sink",
    );
    let p99: BTreeMap<String, f64> = samples
        .iter()
        .filter(|(name, labels, _)| {
            name == "aiwarden_sink_delivery_latency_seconds"
                && labels.get("quantile").map(String::as_str) == Some("0.99")
        })
        .filter_map(|(_, labels, value)| Some((labels.get("sink")?.clone(), *value)))
        .collect();
    if let Some(sinks) = ready["sinks"].as_object() {
        for (sink, state) in sinks {
            let latency = p99
                .get(sink)
                .map_or("-".to_string(), |s| format!("{:.3} s", s));
            println!(
                "{sink:<24} {:<8} {:>6} {:>8} {:>10}   {latency}",
                state["state"].as_str().unwrap_or("?"),
                sent.get(sink).copied().unwrap_or(0.0),
                errors.get(sink).copied().unwrap_or(0.0),
                rejected.get(sink).copied().unwrap_or(0.0),
            );
            if let Some(reason) = state["reason"].as_str() {
                println!("    {reason}");
            }
        }
    }
    if ready_status == 200 {
        Ok(())
    } else {
        Err(Failure {
            code: 3,
            error: anyhow::anyhow!("a sink is failing (see above)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_parsed_with_labels() {
        let samples = parse_metrics(
            "# HELP x y\naiwarden_alerts_total{rule=\"mcp-volume\",severity=\"high\"} 3\naiwarden_late_events_total 2\n# EOF\n",
        );
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[0].1["rule"], "mcp-volume");
        assert_eq!(samples[0].1["severity"], "high");
        assert_eq!(samples[0].2, 3.0);
        assert_eq!(
            by_label(&samples, "aiwarden_alerts_total", "rule")["mcp-volume"],
            3.0
        );
    }
}

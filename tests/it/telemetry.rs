//! The agent's own endpoints and logs.

use crate::util::{count_lines, http_get, record, terminate, wait_until, AgentDir};
use serde_json::json;
use std::time::Duration;

#[test]
fn metrics_and_health_are_served_on_loopback() {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    let mut lines: Vec<String> = (0..5)
        .map(|n| {
            record(
                &format!("m-{n}"),
                "2026-11-23T10:00:00Z",
                "u",
                "s",
                json!({}),
            )
            .to_string()
        })
        .collect();
    lines.push("{not json".into());
    std::fs::write(agent.path("in/a.jsonl"), lines.join("\n") + "\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    agent.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
[telemetry]
listen = "{port}"
[sources.audit]
type = "file"
include = ["{{dir}}/in/*.jsonl"]
[sinks.out]
type = "file"
path = "{{dir}}/out.jsonl"
records = "events"
"#
    ));
    let mut child = agent.spawn();
    wait_until(Duration::from_secs(20), "the events", || {
        count_lines(&agent.path("out.jsonl")) >= 5
    });
    let (status, body) = http_get(port, "/health");
    assert_eq!(status, 200);
    assert!(body.contains("ok"));
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("aiwarden_lines_read_total{source=\"audit\"} 6"),
        "{body}"
    );
    assert!(
        body.contains("aiwarden_records_decoded_total{source=\"audit\"} 5"),
        "{body}"
    );
    assert!(
        body.contains(
            "aiwarden_records_dead_lettered_total{source=\"audit\",reason=\"invalid_json\"} 1"
        ),
        "{body}"
    );
    assert!(
        body.contains("aiwarden_sink_records_sent_total{sink=\"out\"} 5"),
        "{body}"
    );
    let status = terminate(&mut child, Duration::from_secs(15));
    assert!(status.success());
}

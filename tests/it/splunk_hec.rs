//! The `splunk_hec` sink end to end against the strict HEC mock.

use crate::mock::splunk_hec::{HecMock, Scripted};
use crate::util::{read_json_lines, run_in_process, session_events};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TOKEN: &str = "3f1c0a5e-hec-token";

fn sink(mock: &HecMock, extra: &str) -> String {
    format!(
        r#"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{endpoint}"
token = "{TOKEN}"
index = "ai_audit"
records = "both"
{extra}
[sinks.splunk.batch]
max_events = 10
timeout = "50ms"
[sinks.splunk.request]
retry_initial_backoff = "10ms"
retry_max_backoff = "200ms"
timeout = "2s"
"#,
        endpoint = mock.endpoint()
    )
}

/// Count accepted envelopes per record id (`event_id` or `alert_id`).
fn ids(accepted: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for envelope in accepted {
        let event = &envelope["event"];
        let id = event["alert_id"]
            .as_str()
            .or(event["event_id"].as_str())
            .unwrap();
        *counts.entry(id.to_string()).or_insert(0) += 1;
    }
    counts
}

fn dead_letters(state: &tempfile::TempDir) -> Vec<Value> {
    read_json_lines(&state.path().join("dead_letter/splunk.jsonl"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_arrives_once_as_the_contract_specifies() {
    let mock = HecMock::start(TOKEN, false, 0).await;
    // 55 MCP calls in one session: 55 events and one mcp-volume alert.
    let records = session_events("burst", 55, json!({"event_type": "mcp_call"}));
    let (state, _) = run_in_process(&records, &sink(&mock, ""), None).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let accepted = mock.accepted();
    let counts = ids(&accepted);
    assert_eq!(counts.len(), 56, "55 events and 1 alert");
    assert!(counts.values().all(|&n| n == 1), "no duplicates");
    let alerts: Vec<_> = accepted
        .iter()
        .filter(|e| e["sourcetype"] == "aiwarden:alert")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["fields"]["rule_id"], "mcp-volume");
    assert_eq!(alerts[0]["fields"]["severity"], "medium");
    assert_eq!(alerts[0]["event"]["rule_id"], "mcp-volume");
    for envelope in &accepted {
        assert_eq!(envelope["index"], "ai_audit");
        assert_eq!(envelope["source"], "aiwarden");
        assert_eq!(envelope["fields"]["deployment"], "claude_deployment");
        assert!(envelope["time"].as_f64().unwrap() > 1.7e9);
    }
    let event = accepted
        .iter()
        .find(|e| e["event"]["event_id"] == "burst-0")
        .unwrap();
    assert_eq!(event["sourcetype"], "aiwarden:event");
    assert_eq!(event["time"], json!(1_795_428_000.0));
    let requests = mock.requests();
    assert!(
        requests.iter().all(|r| r.gzip && r.envelopes <= 10),
        "{requests:?}"
    );
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_answers_are_retried_and_retry_after_is_honoured() {
    let mock = HecMock::start(TOKEN, false, 0).await;
    mock.script(vec![
        Scripted::Reply {
            status: 503,
            body: json!({"text": "Server is busy", "code": 9}),
            retry_after: Some(1),
        },
        Scripted::Reply {
            status: 429,
            body: json!({"text": "HEC queue is at capacity", "code": 26}),
            retry_after: None,
        },
        Scripted::Reply {
            status: 500,
            body: json!({"text": "Internal server error", "code": 8}),
            retry_after: None,
        },
        Scripted::Slow(Duration::from_secs(3)),
    ]);
    let records = session_events("t", 5, json!({}));
    let started = Instant::now();
    let (state, metrics) = run_in_process(&records, &sink(&mock, ""), None).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    let counts = ids(&mock.accepted());
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|&n| n == 1));
    assert!(metrics.total("sink_errors_total") >= 4);
    assert!(
        dead_letters(&state).is_empty(),
        "transient failures are never dead-lettered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_envelope_is_dead_lettered_and_the_rest_delivered_once() {
    let mock = HecMock::start(TOKEN, false, 0).await;
    mock.script(vec![Scripted::Reply {
        status: 400,
        body: json!({"text": "Invalid data format", "code": 6, "invalid-event-number": 2}),
        retry_after: None,
    }]);
    let records = session_events("r", 5, json!({}));
    let (state, _) = run_in_process(&records, &sink(&mock, ""), None).await;
    // The scripted answer stands for a request whose first two envelopes were indexed; the mock
    // did not record them, so the 3rd is dead-lettered and the 4th and 5th resent.
    let counts = ids(&mock.accepted());
    assert_eq!(
        counts
            .keys()
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>(),
        ["r-3", "r-4"].into()
    );
    let dead = dead_letters(&state);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], "r-2");
    assert!(dead[0]["reason"].as_str().unwrap().contains("HEC code 6"));
    assert_eq!(mock.requests().len(), 1, "only the tail was resent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_split_and_everything_delivered() {
    let mock = HecMock::start(TOKEN, false, 0).await;
    mock.script(vec![Scripted::Reply {
        status: 413,
        body: json!({"text": "Content too large"}),
        retry_after: None,
    }]);
    let records = session_events("big", 10, json!({}));
    let (state, _) = run_in_process(&records, &sink(&mock, ""), None).await;
    let counts = ids(&mock.accepted());
    assert_eq!(counts.len(), 10);
    let sizes: Vec<_> = mock.requests().iter().map(|r| r.envelopes).collect();
    assert_eq!(
        sizes,
        vec![5, 5],
        "the 413'd batch of 10 went again as two halves"
    );
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_keeps_the_records_and_never_dead_letters_them() {
    let mock = HecMock::start("the-right-token", false, 0).await;
    let records = session_events("w", 5, json!({}));
    let (state, metrics) =
        run_in_process(&records, &sink(&mock, ""), Some(Duration::from_millis(800))).await;
    assert!(mock.accepted().is_empty());
    assert!(
        dead_letters(&state).is_empty(),
        "a configuration error never dead-letters data"
    );
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
    assert!(metrics.total("sink_errors_total") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_indexer_acknowledgement_records_are_delivered_once_confirmed() {
    let mock = HecMock::start(TOKEN, true, 2).await;
    let records = session_events("a", 12, json!({}));
    let extra = "acknowledgements = true\nack_poll_interval = \"20ms\"\n";
    let (state, metrics) = run_in_process(&records, &sink(&mock, extra), None).await;
    let counts = ids(&mock.accepted());
    assert_eq!(counts.len(), 12);
    assert!(mock.ack_polls() >= 3, "polled until confirmed");
    let requests = mock.requests();
    let channel = requests[0].channel.clone().expect("channel header sent");
    assert!(
        requests
            .iter()
            .all(|r| r.channel.as_deref() == Some(channel.as_str())),
        "one stable channel"
    );
    let saved = std::fs::read_to_string(state.path().join("splunk_hec/splunk.channel")).unwrap();
    assert_eq!(saved, channel, "the channel id is persisted");
    assert_eq!(metrics.total("sink_records_sent_total"), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_requiring_acknowledgement_is_reported_not_dropped() {
    let mock = HecMock::start(TOKEN, true, 0).await;
    let records = session_events("c", 3, json!({}));
    let (state, metrics) =
        run_in_process(&records, &sink(&mock, ""), Some(Duration::from_millis(600))).await;
    assert!(mock.accepted().is_empty());
    assert!(dead_letters(&state).is_empty());
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_then_comes_up_gets_everything() {
    let addr = crate::mock::free_port();
    let token = TOKEN.to_string();
    let starter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        HecMock::start_on(addr, &token, false, 0).await
    });
    let records = session_events("down", 7, json!({}));
    let config = format!(
        r#"
[sinks.splunk]
type = "splunk_hec"
endpoint = "http://{addr}"
token = "{TOKEN}"
records = "events"
[sinks.splunk.request]
retry_initial_backoff = "50ms"
retry_max_backoff = "200ms"
"#
    );
    let (state, metrics) = run_in_process(&records, &config, None).await;
    let mock = starter.await.unwrap();
    assert_eq!(ids(&mock.accepted()).len(), 7);
    assert!(
        metrics.total("sink_errors_total") >= 1,
        "connection refused was retried"
    );
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_without_loss() {
    let mock = HecMock::start(TOKEN, false, 0).await;
    let proxy = crate::mock::flaky_proxy(mock.addr, 2).await;
    let records = session_events("drop", 9, json!({}));
    let config = sink(&mock, "").replace(&mock.endpoint(), &format!("http://{proxy}"));
    let (state, metrics) = run_in_process(&records, &config, None).await;
    let counts = ids(&mock.accepted());
    assert_eq!(counts.len(), 9);
    assert!(counts.values().all(|&n| n == 1));
    assert!(metrics.total("sink_errors_total") >= 1);
    assert!(dead_letters(&state).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_says_what_is_wrong() {
    use aiwarden::sinks::splunk_hec::HecService;
    let mock = HecMock::start(TOKEN, false, 0).await;
    let service = |token: &str, endpoint: &str| HecService {
        sink: "splunk".into(),
        client: reqwest::Client::new(),
        event_url: format!("{endpoint}/services/collector/event")
            .parse()
            .unwrap(),
        ack_url: format!("{endpoint}/services/collector/ack")
            .parse()
            .unwrap(),
        authorization: format!("Splunk {token}").parse().unwrap(),
        acknowledgement: None,
    };
    let health = |endpoint: &str| {
        format!("{endpoint}/services/collector/health")
            .parse()
            .unwrap()
    };
    let endpoint = mock.endpoint();
    assert!(service(TOKEN, &endpoint)
        .health(health(&endpoint))
        .await
        .unwrap()
        .contains("healthy"));
    let bad = service("wrong", &endpoint)
        .health(health(&endpoint))
        .await
        .unwrap_err();
    assert!(
        bad.contains("token is invalid") && bad.contains("sinks.splunk.token"),
        "{bad}"
    );
    let nowhere = format!("http://{}", crate::mock::free_port());
    let down = service(TOKEN, &nowhere)
        .health(health(&nowhere))
        .await
        .unwrap_err();
    assert!(down.contains("cannot reach"), "{down}");
}

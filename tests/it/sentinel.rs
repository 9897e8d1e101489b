//! The `sentinel` sink end to end against the strict token and Logs Ingestion mocks.

use crate::mock::sentinel::{Scripted, SentinelMock, CLIENT_ID, DCR, TENANT};
use crate::util::{read_json_lines, run_in_process, session_events};
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "s3cr3t~value";

fn sink(mock: &SentinelMock, secret: &str, extra: &str) -> String {
    format!(
        r#"
[sinks.sentinel]
type = "sentinel"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = "{secret}"
authority_host = "{url}"
ingestion_endpoint = "{url}"
dcr_immutable_id = "{DCR}"
records = "both"
{extra}
[sinks.sentinel.batch]
max_events = 25
timeout = "50ms"
[sinks.sentinel.request]
retry_initial_backoff = "10ms"
retry_max_backoff = "100ms"
"#,
        url = mock.url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_reach_their_streams_with_only_declared_columns() {
    let mock = SentinelMock::start(SECRET, Duration::from_secs(3600)).await;
    let records = session_events(
        "burst",
        55,
        json!({"event_type": "mcp_call", "x_custom": {"k": "v"}}),
    );
    let (state, _) = run_in_process(&records, &sink(&mock, SECRET, ""), None).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let events = mock.rows("Custom-AIWardenEvents_CL");
    let alerts = mock.rows("Custom-AIWardenAlerts_CL");
    assert_eq!(events.len(), 55);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["RuleId"], "mcp-volume");
    assert_eq!(alerts[0]["Severity"], "medium");
    assert_eq!(events[0]["Extra"]["x_custom"]["k"], "v");
    assert_eq!(mock.tokens_issued(), 1, "the token is cached");
    assert!(read_json_lines(&state.path().join("dead_letter/sentinel.jsonl")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_before_expiry_and_once_on_401() {
    // A 1-second token: refreshed at 80 % of its life.
    let mock = SentinelMock::start(SECRET, Duration::from_secs(1)).await;
    mock.revoke_tokens_once();
    let mut records = session_events("t", 10, json!({}));
    records.insert(5, json!({"__pause_ms": 1200}));
    let config = sink(&mock, SECRET, "").replace("records = \"both\"", "records = \"events\"");
    let (_state, metrics) = run_in_process(&records, &config, None).await;
    assert_eq!(mock.rows("Custom-AIWardenEvents_CL").len(), 10);
    // One token, one more after the 401, one more after 80 % of its 1-second life.
    assert_eq!(mock.tokens_issued(), 3);
    assert_eq!(
        metrics.total("sink_errors_total"),
        0,
        "the refresh is not a failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_and_a_large_stream_is_cut_under_1_mb() {
    let mock = SentinelMock::start(SECRET, Duration::from_secs(3600)).await;
    mock.script(vec![
        Scripted {
            status: 429,
            retry_after: Some(1),
        },
        Scripted {
            status: 503,
            retry_after: None,
        },
    ]);
    // 300 events of ~6 KB each: ~1.8 MB, so at least two calls however the batch is set.
    let padding = "p".repeat(6000);
    let records = session_events("big", 300, json!({"x_pad": padding}));
    let started = std::time::Instant::now();
    let extra = "";
    let config = sink(&mock, SECRET, extra).replace("max_events = 25", "max_events = 1000");
    let (_state, _) = run_in_process(&records, &config, None).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    assert_eq!(mock.rows("Custom-AIWardenEvents_CL").len(), 300);
    assert_eq!(mock.violations(), Vec::<String>::new(), "no body over 1 MB");
    assert!(mock.calls() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_or_dcr_is_a_configuration_error_without_data_loss() {
    let mock = SentinelMock::start(SECRET, Duration::from_secs(3600)).await;
    let records = session_events("w", 3, json!({}));
    let (state, metrics) = run_in_process(
        &records,
        &sink(&mock, "wrong", ""),
        Some(Duration::from_millis(700)),
    )
    .await;
    assert!(mock.rows("Custom-AIWardenEvents_CL").is_empty());
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
    assert!(read_json_lines(&state.path().join("dead_letter/sentinel.jsonl")).is_empty());

    let config = sink(&mock, SECRET, "").replace(DCR, "dcr-wrong");
    let (state, metrics) =
        run_in_process(&records, &config, Some(Duration::from_millis(700))).await;
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
    assert!(read_json_lines(&state.path().join("dead_letter/sentinel.jsonl")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_refused_as_invalid_are_narrowed_down_and_dead_lettered() {
    let mock = SentinelMock::start(SECRET, Duration::from_secs(3600)).await;
    // The pair is refused, then each row alone: both are dead-lettered, nothing retried forever.
    mock.script(vec![
        Scripted {
            status: 400,
            retry_after: None,
        },
        Scripted {
            status: 400,
            retry_after: None,
        },
        Scripted {
            status: 400,
            retry_after: None,
        },
    ]);
    let records = session_events("bad", 2, json!({}));
    let config = sink(&mock, SECRET, "").replace("records = \"both\"", "records = \"events\"");
    let (state, metrics) = run_in_process(&records, &config, None).await;
    let dead = read_json_lines(&state.path().join("dead_letter/sentinel.jsonl"));
    let mut ids: Vec<_> = dead
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["bad-0", "bad-1"]);
    assert!(dead[0]["reason"].as_str().unwrap().contains("HTTP 400"));
    assert_eq!(mock.calls(), 3);
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch() {
    let mock = SentinelMock::start(SECRET, Duration::from_secs(3600)).await;
    mock.script(vec![Scripted {
        status: 413,
        retry_after: None,
    }]);
    let records = session_events("half", 6, json!({}));
    let config = sink(&mock, SECRET, "").replace("records = \"both\"", "records = \"events\"");
    let (state, _) = run_in_process(&records, &config, None).await;
    assert_eq!(mock.rows("Custom-AIWardenEvents_CL").len(), 6);
    assert_eq!(
        mock.calls(),
        3,
        "the refused batch went again as two halves"
    );
    assert!(read_json_lines(&state.path().join("dead_letter/sentinel.jsonl")).is_empty());
}

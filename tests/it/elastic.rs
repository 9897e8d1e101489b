//! The `elastic` sink end to end against the strict `_bulk` mock.

use crate::mock::elastic::{ElasticMock, Scripted};
use crate::util::{read_json_lines, run_in_process, session_events};
use serde_json::json;
use std::time::Duration;

const API_KEY: &str = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";

fn sink(mock: &ElasticMock, auth: &str) -> String {
    format!(
        r#"
[sinks.es]
type = "elastic"
endpoint = "{endpoint}"
namespace = "prod"
records = "both"
auth = {auth}
[sinks.es.batch]
max_events = 20
timeout = "50ms"
[sinks.es.request]
retry_initial_backoff = "10ms"
retry_max_backoff = "100ms"
"#,
        endpoint = mock.endpoint()
    )
}

fn api_key() -> String {
    format!("{{ strategy = \"api_key\", api_key = \"{API_KEY}\" }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_events_land_in_their_data_streams_as_ecs() {
    let mock = ElasticMock::start(&format!("ApiKey {API_KEY}")).await;
    let records = session_events("burst", 55, json!({"event_type": "mcp_call"}));
    let (state, _) = run_in_process(&records, &sink(&mock, &api_key()), None).await;
    assert_eq!(mock.violations(), Vec::<String>::new());
    let events = mock.documents("logs-aiwarden.events-prod");
    let alerts = mock.documents("logs-aiwarden.alerts-prod");
    assert_eq!(events.len(), 55);
    assert_eq!(alerts.len(), 1);
    let alert = alerts.values().next().unwrap();
    assert_eq!(alert["event"]["kind"], "alert");
    assert_eq!(alert["rule"]["id"], "mcp-volume");
    assert_eq!(alert["event"]["severity"], 47);
    let event = &events["burst-0"];
    assert_eq!(event["event"]["kind"], "event");
    assert_eq!(event["@timestamp"], "2026-11-23T10:00:00.000Z");
    assert_eq!(event["user"]["id"], "u-7f3a");
    assert_eq!(event["labels"]["deployment"], "claude_deployment");
    assert!(
        mock.templates_checked() >= 1,
        "the startup check looked for the templates"
    );
    assert!(read_json_lines(&state.path().join("dead_letter/es.jsonl")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_items_are_retried_or_dead_lettered_one_by_one() {
    let mock = ElasticMock::start(&format!("ApiKey {API_KEY}")).await;
    mock.fail_item(
        "x-2",
        vec![
            (429, "es_rejected_execution_exception"),
            (503, "unavailable_shards_exception"),
        ],
    );
    mock.fail_item("x-3", vec![(400, "document_parsing_exception")]);
    let records = session_events("x", 6, json!({}));
    let (state, metrics) = run_in_process(&records, &sink(&mock, &api_key()), None).await;
    let events = mock.documents("logs-aiwarden.events-prod");
    let mut ids: Vec<_> = events.keys().cloned().collect();
    ids.sort();
    assert_eq!(ids, vec!["x-0", "x-1", "x-2", "x-4", "x-5"]);
    assert_eq!(mock.duplicates(), 0, "only the failed item was resent");
    let dead = read_json_lines(&state.path().join("dead_letter/es.jsonl"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], "x-3");
    assert_eq!(dead[0]["reason"], "document_parsing_exception: scripted");
    assert_eq!(metrics.total("sink_records_sent_total"), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_request_failures_retry_split_and_basic_auth_works() {
    let mock = ElasticMock::start("Basic ZWxhc3RpYzpjaGFuZ2VtZQ==").await;
    mock.script(vec![
        Scripted::Whole {
            status: 429,
            retry_after: Some(1),
        },
        Scripted::Whole {
            status: 502,
            retry_after: None,
        },
        Scripted::Whole {
            status: 413,
            retry_after: None,
        },
    ]);
    let records = session_events("y", 8, json!({}));
    let auth = "{ strategy = \"basic\", user = \"elastic\", password = \"changeme\" }";
    let started = std::time::Instant::now();
    let (_state, _) = run_in_process(&records, &sink(&mock, auth), None).await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(mock.documents("logs-aiwarden.events-prod").len(), 8);
    assert_eq!(mock.requests(), 5, "429, 502, 413, then two halves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_keep_records_and_never_dead_letter() {
    let mock = ElasticMock::start("ApiKey something-else").await;
    let records = session_events("z", 3, json!({}));
    let (state, metrics) = run_in_process(
        &records,
        &sink(&mock, &api_key()),
        Some(Duration::from_millis(700)),
    )
    .await;
    assert!(mock.documents("logs-aiwarden.events-prod").is_empty());
    assert!(read_json_lines(&state.path().join("dead_letter/es.jsonl")).is_empty());
    assert_eq!(metrics.total("sink_records_sent_total"), 0);
}

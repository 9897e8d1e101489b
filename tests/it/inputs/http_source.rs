//! `POST /v1/events`: auth, NDJSON and arrays, gzip, per-line errors, limits, saturation and
//! shutdown answers.

use super::start;
use crate::util::{read_json_lines, record};
use aiwarden::sources::http::{run_on, HttpSourceConfig};
use aiwarden::sources::receiver::Listener;
use serde_json::{json, Value};
use std::io::Write;

fn config(extra: &str) -> HttpSourceConfig {
    toml::from_str(&format!(
        "listen = \"127.0.0.1:0\"\nauth = {{ tokens = [\"t0ken-abc\"] }}\n{extra}"
    ))
    .unwrap()
}

async fn listener() -> (Listener, String) {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let url = format!("http://{}/v1/events", listener.local_addr().unwrap());
    (listener, url)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn ndjson(records: &[Value]) -> Vec<u8> {
    records
        .iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_pushes_are_accepted_only_when_safe_and_bad_lines_are_named() {
    let (listener, url) = listener().await;
    let config = config("[limits]\nmax_body_bytes = 20000\n");
    let running = start(move |context| Box::pin(run_on(config, listener, context)));
    let client = reqwest::Client::new();
    let ok = [
        record("h-1", "2026-11-23T10:00:00Z", "alice", "s1", json!({})),
        record("h-2", "2026-11-23T10:00:01Z", "alice", "s1", json!({})),
    ];

    let denied = client
        .post(&url)
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&ok))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    let wrong = client
        .post(&url)
        .bearer_auth("t0ken-abd")
        .header("content-type", "application/x-ndjson")
        .body(ndjson(&ok))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let accepted = client
        .post(&url)
        .bearer_auth("t0ken-abc")
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip(&ndjson(&ok)))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    assert_eq!(
        serde_json::from_slice::<Value>(&accepted.bytes().await.unwrap()).unwrap(),
        json!({"accepted": 2})
    );
    // 202 means delivered: the events are in the sink's file already, no waiting.
    let ids: Vec<Value> = read_json_lines(&running.events())
        .iter()
        .map(|e| e["event_id"].clone())
        .collect();
    assert_eq!(ids, [json!("h-1"), json!("h-2")]);

    let mixed = json!([
        record("h-3", "2026-11-23T10:00:02Z", "bob", "s2", json!({})),
        {"event_id": "h-4", "timestamp": "2026-11-23T10:00:03Z"},
        "not an object",
    ]);
    let partial = client
        .post(&url)
        .bearer_auth("t0ken-abc")
        .header("content-type", "application/json")
        .body(mixed.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), 400);
    let body: Value = serde_json::from_slice(&partial.bytes().await.unwrap()).unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"], 2);
    assert_eq!(body["errors"][0]["line"], 2);
    assert_eq!(body["errors"][0]["reason"], "missing_field");
    assert_eq!(body["errors"][1]["reason"], "not_an_object");
    assert_eq!(
        read_json_lines(&running.events()).len(),
        3,
        "the good line is kept"
    );
    let dead = read_json_lines(&running.dir.path().join("state/dead_letter.jsonl"));
    assert_eq!(dead.len(), 2, "rejected lines are dead-lettered");

    let malformed = client
        .post(&url)
        .bearer_auth("t0ken-abc")
        .header("content-type", "application/json")
        .body("[{")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let media = client
        .post(&url)
        .bearer_auth("t0ken-abc")
        .header("content-type", "text/csv")
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(media.status(), 415);
    let big = client
        .post(&url)
        .bearer_auth("t0ken-abc")
        .header("content-type", "application/x-ndjson")
        .body(vec![b' '; 30_000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let bomb = client
        .post(&url)
        .bearer_auth("t0ken-abc")
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gzip(&vec![b'\n'; 1_000_000]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bomb.status(),
        413,
        "the limit applies after decompression too"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_pipeline_answers_429_and_a_stopping_one_503() {
    use aiwarden::sources::SourceContext;
    let (listener, url) = listener().await;
    let config = config(
        "[limits]\nmax_pending_requests = 1\nqueue_wait = \"100ms\"\nretry_after = \"2s\"\n",
    );
    // A pipeline that never takes the batch: the first request waits for its ack.
    let (out, _held) = tokio::sync::mpsc::channel(1);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let context = SourceContext {
        name: "push".into(),
        out,
        shutdown: shutdown.clone(),
        state_dir: std::env::temp_dir(),
        metrics: std::sync::Arc::new(aiwarden::telemetry::Metrics::new()),
    };
    let server = tokio::spawn(run_on(config, listener, context));
    let client = reqwest::Client::new();
    let body = ndjson(&[record("x", "2026-11-23T10:00:00Z", "u", "s", json!({}))]);
    let send = |body: Vec<u8>| {
        client
            .post(&url)
            .bearer_auth("t0ken-abc")
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
    };
    let first = tokio::spawn(send(body.clone()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = send(body.clone()).await.unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "2");

    shutdown.cancel();
    drop(_held);
    let first = first.await.unwrap().unwrap();
    assert_eq!(
        first.status(),
        503,
        "a batch nobody delivered is never success"
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

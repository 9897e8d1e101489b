//! The driver against a scripted service: batching, splitting, partial retries, dead letters,
//! acknowledgement. Time is paused, so backoffs cost nothing.

use super::*;
use crate::pipeline::ack::{batch_ack, AckReceiver, BatchStatus};
use crate::record::{AuditRecord, EventType, Severity};
use crate::sinks::RecordKinds;
use crate::telemetry::Metrics;
use std::sync::Mutex as StdMutex;
use tokio_util::sync::CancellationToken;

/// Answers from a script (then `Delivered`), recording each request's record ids.
struct Scripted {
    answers: StdMutex<VecDeque<Classified>>,
    requests: Arc<StdMutex<Vec<Vec<String>>>>,
}

impl Service for Scripted {
    fn encode(&self, item: &Output, _: bool, out: &mut Vec<u8>) -> Result<(), String> {
        let id = item_id(item);
        if id.starts_with("unencodable") {
            return Err("no".into());
        }
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
        Ok(())
    }

    async fn send(&self, body: Bytes, gzip: bool, count: usize) -> Classified {
        assert!(!gzip);
        let ids: Vec<String> = String::from_utf8(body.to_vec())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(ids.len(), count);
        self.requests.lock().unwrap().push(ids);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Classified::Delivered)
    }
}

struct Harness {
    sender: mpsc::Sender<SinkBatch>,
    requests: Arc<StdMutex<Vec<Vec<String>>>>,
    task: tokio::task::JoinHandle<Result<(), SinkError>>,
    dir: tempfile::TempDir,
    abort: CancellationToken,
}

fn start(answers: Vec<Classified>, max_events: usize) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let requests = Arc::new(StdMutex::new(Vec::new()));
    let service = Scripted {
        answers: StdMutex::new(answers.into()),
        requests: Arc::clone(&requests),
    };
    let abort = CancellationToken::new();
    let context = SinkContext {
        name: Arc::from("test"),
        metrics: Arc::new(Metrics::new()),
        abort: abort.clone(),
        state_dir: dir.path().to_path_buf(),
        agent: crate::record::AgentInfo::local(Some("test-host")),
        deployment: Arc::from("test"),
    };
    let settings = DriverSettings {
        routing: Routing {
            records: RecordKinds::Events,
            min_severity: Severity::Low,
            forward_content: false,
        },
        batch: BatchConfig {
            max_events,
            max_bytes: 1_000_000,
            timeout: Duration::from_millis(100),
        },
        request: RequestConfig {
            compression: Compression::None,
            concurrency: 1,
            ..RequestConfig::default()
        },
    };
    let (sender, receiver) = mpsc::channel(4);
    let task = tokio::spawn(run(service, settings, context, receiver));
    Harness {
        sender,
        requests,
        task,
        dir,
        abort,
    }
}

fn events(ids: &[&str]) -> Arc<Vec<Output>> {
    let time = chrono::DateTime::from_timestamp(1_795_400_000, 0).unwrap();
    Arc::new(
        ids.iter()
            .map(|id| {
                Output::Event(Arc::new(AuditRecord::new(
                    *id,
                    time,
                    EventType::ApiRequest,
                    "u",
                    "s",
                )))
            })
            .collect(),
    )
}

async fn send(harness: &Harness, ids: &[&str]) -> AckReceiver {
    let (ack, receiver) = batch_ack();
    harness
        .sender
        .send(SinkBatch {
            items: events(ids),
            ack,
            read_at: std::time::Instant::now(),
        })
        .await
        .unwrap();
    receiver
}

async fn finish(harness: Harness) -> (Vec<Vec<String>>, Vec<serde_json::Value>) {
    drop(harness.sender);
    harness.task.await.unwrap().unwrap();
    let requests = harness.requests.lock().unwrap().clone();
    let dead = std::fs::read_to_string(harness.dir.path().join("dead_letter/test.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (requests, dead)
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn batches_by_count_and_by_age_and_acknowledges_after_delivery() {
    let harness = start(vec![], 3);
    let first = send(&harness, &["a", "b", "c", "d"]).await;
    let second = send(&harness, &["e"]).await;
    assert_eq!(first.status().await, BatchStatus::Delivered);
    assert_eq!(second.status().await, BatchStatus::Delivered);
    let (requests, dead) = finish(harness).await;
    assert_eq!(requests, vec![ids(&["a", "b", "c"]), ids(&["d", "e"])]);
    assert!(dead.is_empty());
}

#[tokio::test(start_paused = true)]
async fn transient_failures_are_retried_until_accepted() {
    let retry = || Classified::Retry {
        after: Some(Duration::from_secs(30)),
        reason: "503".into(),
    };
    let harness = start(vec![retry(), retry()], 10);
    let started = Instant::now();
    let receiver = send(&harness, &["a", "b"]).await;
    assert_eq!(receiver.status().await, BatchStatus::Delivered);
    assert!(
        started.elapsed() >= Duration::from_secs(60),
        "Retry-After honoured twice"
    );
    let (requests, _) = finish(harness).await;
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| *r == ids(&["a", "b"])));
}

#[tokio::test(start_paused = true)]
async fn too_large_splits_in_halves_and_a_lone_record_is_dead_lettered() {
    let harness = start(
        vec![
            Classified::Split {
                reason: "HTTP 413: too large".into(),
            },
            Classified::Delivered,
            Classified::Split {
                reason: "HTTP 413: too large".into(),
            },
            Classified::Split {
                reason: "HTTP 413: too large".into(),
            },
        ],
        10,
    );
    let receiver = send(&harness, &["a", "b", "c", "d"]).await;
    assert_eq!(receiver.status().await, BatchStatus::Delivered);
    let (requests, dead) = finish(harness).await;
    assert_eq!(
        requests,
        vec![
            ids(&["a", "b", "c", "d"]),
            ids(&["a", "b"]),
            ids(&["c", "d"]),
            ids(&["c"]),
            ids(&["d"])
        ]
    );
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], "c");
    assert!(dead[0]["reason"].as_str().unwrap().contains("413"));
}

#[tokio::test(start_paused = true)]
async fn per_item_verdicts_deliver_dead_letter_and_retry_only_what_needs_it() {
    let harness = start(
        vec![Classified::PerItem(vec![
            ItemVerdict::Delivered,
            ItemVerdict::Rejected("mapper_parsing_exception: bad".into()),
            ItemVerdict::Retry("es_rejected_execution_exception".into()),
        ])],
        10,
    );
    let receiver = send(&harness, &["a", "b", "c"]).await;
    assert_eq!(receiver.status().await, BatchStatus::Delivered);
    let (requests, dead) = finish(harness).await;
    assert_eq!(requests, vec![ids(&["a", "b", "c"]), ids(&["c"])]);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], "b");
    assert_eq!(dead[0]["reason"], "mapper_parsing_exception: bad");
    assert_eq!(dead[0]["payload"], "b\n");
}

#[tokio::test(start_paused = true)]
async fn rejected_and_unencodable_records_are_dead_lettered_not_retried() {
    let harness = start(
        vec![Classified::Rejected {
            reason: "400: invalid".into(),
        }],
        10,
    );
    let receiver = send(&harness, &["a", "unencodable-1"]).await;
    assert_eq!(receiver.status().await, BatchStatus::Delivered);
    let (requests, dead) = finish(harness).await;
    assert_eq!(requests, vec![ids(&["a"])]);
    let reasons: Vec<_> = dead
        .iter()
        .map(|d| d["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        reasons,
        vec!["cannot encode: no".to_string(), "400: invalid".to_string()]
    );
}

#[tokio::test(start_paused = true)]
async fn misconfiguration_keeps_records_until_abort_and_never_dead_letters_them() {
    let misconfigured = || Classified::Misconfigured {
        reason: "401: check the token".into(),
    };
    let harness = start((0..100).map(|_| misconfigured()).collect(), 10);
    let receiver = send(&harness, &["a"]).await;
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        harness.requests.lock().unwrap().len() >= 3,
        "it keeps probing"
    );
    harness.abort.cancel();
    assert_eq!(
        receiver.status().await,
        BatchStatus::Failed,
        "not committed: read again after restart"
    );
    let (_, dead) = finish(harness).await;
    assert!(dead.is_empty());
}

#[test]
fn log_labels_stop_where_the_siem_starts_quoting() {
    assert_eq!(
        log_label("document_parsing_exception: failed to parse field [prompt_raw] of type [long]. Preview of field's value: 'secret prompt'"),
        "document_parsing_exception: failed to parse field"
    );
    assert_eq!(
        log_label(
            "HTTP 400 (stream Custom-AIWardenEvents_CL): {\"error\":{\"message\":\"secret\"}}"
        ),
        "HTTP 400 (stream Custom-AIWardenEvents_CL)"
    );
    assert_eq!(
        log_label("HTTP 503 (HEC code 9: Server is busy)"),
        "HTTP 503 (HEC code 9: Server is busy)"
    );
    assert_eq!(
        log_label(&"é".repeat(100)).len() % 2,
        0,
        "cut on a character boundary"
    );
}

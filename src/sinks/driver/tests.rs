//! The driver against a scripted service: batching, splitting, partial retries, dead letters,
//! acknowledgement. Time is paused, so backoffs cost nothing.

use super::*;
use crate::net::retry::Compression;
use crate::pipeline::ack::{batch_ack, AckReceiver, BatchStatus};
use crate::queue::{QueueConfig, QueueKind, WhenFull};
use crate::record::{AuditRecord, EventType, Severity};
use crate::sinks::RecordKinds;
use crate::telemetry::Metrics;
use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Answers from a script (then `Delivered`), recording each request's record ids.
struct Scripted {
    answers: StdMutex<VecDeque<Classified>>,
    requests: Arc<StdMutex<Vec<Vec<String>>>>,
    /// While set, every request fails with a 503 (the SIEM is down).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl Service for Scripted {
    fn encode(&self, item: &Output, _: bool, out: &mut Vec<u8>) -> Result<(), String> {
        let id = item_id(item);
        if id.starts_with("unencodable") {
            // Half a record written before the failure: none of it may reach a request.
            out.extend_from_slice(b"half-");
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
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Classified::Retry {
                after: None,
                reason: "HTTP 503".into(),
            };
        }
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
    alerts: mpsc::Receiver<crate::record::Alert>,
    metrics: Arc<Metrics>,
    down: Arc<std::sync::atomic::AtomicBool>,
}

/// A driver with a memory queue: records settle their source's token on delivery.
fn start(answers: Vec<Classified>, max_events: usize) -> Harness {
    let queue = QueueConfig {
        kind: QueueKind::Memory,
        ..QueueConfig::default()
    };
    start_with(answers, max_events, queue, tempfile::tempdir().unwrap())
}

fn start_with(
    answers: Vec<Classified>,
    max_events: usize,
    queue: QueueConfig,
    dir: tempfile::TempDir,
) -> Harness {
    let requests = Arc::new(StdMutex::new(Vec::new()));
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let service = Scripted {
        answers: StdMutex::new(answers.into()),
        requests: Arc::clone(&requests),
        down: Arc::clone(&down),
    };
    let abort = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let (alert_sender, alerts) = mpsc::channel(4);
    let context = SinkContext {
        name: Arc::from("test"),
        metrics: Arc::clone(&metrics),
        alerts: Some(alert_sender),
        outbound: None,
        abort: abort.clone(),
        stop_intake: CancellationToken::new(),
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
            breaker_threshold: 3,
            breaker_cooldown: Duration::from_secs(10),
            ..RequestConfig::default()
        },
        queue,
        queue_name: "test".into(),
        real_identity: false,
    };
    let (sender, receiver) = mpsc::channel(4);
    let task = tokio::spawn(run(service, settings, context, receiver));
    Harness {
        sender,
        requests,
        task,
        dir,
        abort,
        alerts,
        metrics,
        down,
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

/// Stop a driver (aborting what is in flight) and keep its state directory for the next one.
async fn stop(harness: Harness) -> tempfile::TempDir {
    harness.abort.cancel();
    drop(harness.sender);
    harness.task.await.unwrap().unwrap();
    harness.dir
}

fn disk_queue() -> QueueConfig {
    QueueConfig {
        max_bytes: 1024 * 1024,
        segment_bytes: 64 * 1024,
        ..QueueConfig::default()
    }
}

/// Ids of about 1 KB each, so a few batches fill a 1 MiB queue.
fn big_ids(batch: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{batch:03}-{i:04}-{}", "x".repeat(1000)))
        .collect()
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

#[tokio::test(start_paused = true)]
async fn disk_queue_acknowledges_once_queued_and_resends_after_a_restart() {
    let misconfigured = || Classified::Misconfigured {
        reason: "401: check the token".into(),
    };
    let harness = start_with(
        (0..1000).map(|_| misconfigured()).collect(),
        10,
        disk_queue(),
        tempfile::tempdir().unwrap(),
    );
    let receiver = send(&harness, &["a", "b"]).await;
    assert_eq!(
        receiver.status().await,
        BatchStatus::Delivered,
        "on disk: the source may commit while the SIEM refuses"
    );
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(harness.requests.lock().unwrap().len() >= 2);
    let dir = stop(harness).await;

    let harness = start_with(vec![], 10, disk_queue(), dir);
    let (requests, dead) = finish(harness).await;
    assert_eq!(requests, vec![ids(&["a", "b"])], "resent from the queue");
    assert!(dead.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_siem_trips_the_breaker_and_the_backlog_drains_in_order() {
    let harness = start_with(vec![], 10, disk_queue(), tempfile::tempdir().unwrap());
    harness
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut expected = Vec::new();
    for batch in 0..5 {
        let names: Vec<String> = (0..10).map(|i| format!("r{batch}-{i}")).collect();
        expected.extend(names.clone());
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        assert_eq!(
            send(&harness, &refs).await.status().await,
            BatchStatus::Delivered
        );
    }
    tokio::time::sleep(Duration::from_secs(300)).await;
    let during_outage = harness.requests.lock().unwrap().len();
    // Without the breaker the retries alone would go on every ≤ 60 s; with it, after three
    // failures, probes go out at 10, 20, 40, 60, 60 … s: a handful in five minutes.
    assert!(
        (4..=10).contains(&during_outage),
        "{during_outage} requests during the outage"
    );
    assert_eq!(
        harness
            .metrics
            .get("sink_breaker_trips_total", &[("sink", "test")]),
        1
    );
    harness
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let metrics = Arc::clone(&harness.metrics);
    let (requests, _) = finish(harness).await;
    let delivered: Vec<String> = requests[during_outage..].concat();
    // The failed probe's group goes first again, then the rest in queue order.
    assert_eq!(delivered, expected, "every record, once, in order");
    let gauges = metrics.gauges();
    assert!(gauges
        .iter()
        .any(|((name, _), value)| *name == "sink_breaker_state" && *value == 0));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_blocks_intake_until_the_siem_drains_it() {
    let harness = start_with(vec![], 100, disk_queue(), tempfile::tempdir().unwrap());
    harness
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let sender = harness.sender.clone();
    let all: Vec<Vec<String>> = (0..20).map(|batch| big_ids(batch, 100)).collect();
    let batches = all.clone();
    let producer = tokio::spawn(async move {
        let mut receivers = Vec::new();
        for names in batches {
            let (ack, receiver) = batch_ack();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            sender
                .send(SinkBatch {
                    items: events(&refs),
                    ack,
                    read_at: std::time::Instant::now(),
                })
                .await
                .unwrap();
            receivers.push(receiver);
        }
        receivers
    });
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(
        !producer.is_finished(),
        "2 MB cannot fit a 1 MiB queue: intake waits"
    );
    let queued = harness
        .metrics
        .gauges()
        .into_iter()
        .find(|((name, _), _)| *name == "sink_queue_bytes")
        .map(|(_, value)| value)
        .unwrap();
    assert!(
        queued <= 1024 * 1024 + 64 * 110 * 1024,
        "bounded: the limit plus one intake group ({queued})"
    );
    harness
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let receivers = producer.await.unwrap();
    for receiver in receivers {
        assert_eq!(receiver.status().await, BatchStatus::Delivered);
    }
    let (requests, dead) = finish(harness).await;
    let delivered: std::collections::HashSet<String> = requests.into_iter().flatten().collect();
    assert!(all.iter().flatten().all(|id| delivered.contains(id)));
    assert!(dead.is_empty());
}

#[tokio::test(start_paused = true)]
async fn drop_newest_counts_what_it_drops_and_raises_one_alert() {
    let queue = QueueConfig {
        when_full: WhenFull::DropNewest,
        ..disk_queue()
    };
    let mut harness = start_with(vec![], 100, queue, tempfile::tempdir().unwrap());
    harness
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for batch in 0..20 {
        let names = big_ids(batch, 100);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let receiver = send(&harness, &refs).await;
        assert_eq!(receiver.status().await, BatchStatus::Delivered);
    }
    let dropped = harness
        .metrics
        .get("sink_queue_dropped_records_total", &[("queue", "test")]);
    assert!(dropped >= 900, "{dropped} dropped");
    let alert = harness.alerts.try_recv().expect("a queue-full alert");
    assert_eq!(alert.rule_id, QUEUE_FULL_RULE);
    assert!(harness.alerts.try_recv().is_err(), "one alert per episode");
    stop(harness).await;
}

#[tokio::test(start_paused = true)]
async fn damaged_queue_records_are_dead_lettered_and_the_rest_delivered() {
    let harness = start_with(vec![], 10, disk_queue(), tempfile::tempdir().unwrap());
    harness
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let receiver = send(&harness, &["a", "b", "c"]).await;
    assert_eq!(receiver.status().await, BatchStatus::Delivered);
    let dir = stop(harness).await;
    let queue_dir = dir.path().join("queue/test");
    let segment = std::fs::read_dir(&queue_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let frame = bytes.len() / 3;
    bytes[frame + frame / 2] ^= 0xFF; // inside "b"
    std::fs::write(&segment, bytes).unwrap();

    let harness = start_with(vec![], 10, disk_queue(), dir);
    let (requests, dead) = finish(harness).await;
    assert_eq!(requests, vec![ids(&["a", "c"])]);
    assert_eq!(dead.len(), 1);
    assert!(dead[0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("queue_damaged: checksum mismatch"));
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

//! End-to-end tests of the file source: the real `run()` against a temp directory, with a consumer
//! task standing in for the pipeline.

use super::{run, FileSourceConfig, StartAt};
use crate::sources::{LineData, SourceBatch, SourceContext, SourceError};
use crate::telemetry::Metrics;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Generous: the tests share a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(10);

/// One line as the consumer saw it.
#[derive(Debug, Clone)]
struct Received {
    stream: String,
    data: LineData,
}

impl Received {
    fn text(&self) -> String {
        match &self.data {
            LineData::Complete(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            LineData::TooLong { length, .. } => format!("<too long: {length}>"),
        }
    }
}

/// How the test consumer acknowledges.
#[derive(Debug, Clone, Copy)]
enum Acking {
    /// Every batch, after `delay`.
    All { delay: Duration },
    /// Every batch but those numbered in `from..to` (counting from 0), whose tokens are dropped:
    /// the batch fails.
    Drop { from: usize, to: usize },
}

const ACK_ALL: Acking = Acking::All {
    delay: Duration::ZERO,
};

struct Running {
    shutdown: CancellationToken,
    source: JoinHandle<Result<(), SourceError>>,
    consumer: JoinHandle<()>,
    lines: Arc<Mutex<Vec<Received>>>,
    metrics: Arc<Metrics>,
}

fn config(dir: &Path) -> FileSourceConfig {
    let pattern = dir.join("*.log").to_string_lossy().into_owned();
    let mut config: FileSourceConfig =
        serde_json::from_value(serde_json::json!({ "include": [pattern] })).unwrap();
    config.rotate_wait = Duration::from_millis(300);
    config.glob_interval = Duration::from_millis(200);
    config
}

fn start(config: FileSourceConfig, state_dir: &Path, acking: Acking) -> Running {
    let (out, mut receiver) = mpsc::channel::<SourceBatch>(2);
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let context = SourceContext {
        name: Arc::from("audit"),
        out,
        shutdown: shutdown.clone(),
        state_dir: state_dir.to_path_buf(),
        metrics: Arc::clone(&metrics),
    };
    let source = tokio::spawn(run(config, context));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&lines);
    let consumer = tokio::spawn(async move {
        let mut batches = 0;
        while let Some(batch) = receiver.recv().await {
            let stream = batch.stream.to_string();
            seen.lock()
                .unwrap()
                .extend(batch.lines.iter().map(|line| Received {
                    stream: stream.clone(),
                    data: line.data.clone(),
                }));
            match acking {
                Acking::All { delay } => {
                    tokio::time::sleep(delay).await;
                    batch.ack.delivered();
                }
                Acking::Drop { from, to } if (from..to).contains(&batches) => drop(batch.ack),
                Acking::Drop { .. } => batch.ack.delivered(),
            }
            batches += 1;
        }
    });
    Running {
        shutdown,
        source,
        consumer,
        lines,
        metrics,
    }
}

impl Running {
    fn lines(&self) -> Vec<Received> {
        self.lines.lock().unwrap().clone()
    }

    fn texts(&self) -> Vec<String> {
        self.lines().iter().map(Received::text).collect()
    }

    /// Wait until at least `count` lines arrived; panics with what arrived on timeout.
    async fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let texts = self.texts();
            if texts.len() >= count {
                return texts;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {count} lines, got {}: {texts:?}",
                texts.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Cancel, and wait for the source and the consumer to finish.
    async fn stop(self) -> (Result<(), SourceError>, Vec<Received>) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(WAIT, self.source)
            .await
            .expect("the source stops after shutdown")
            .expect("the source task does not panic");
        tokio::time::timeout(WAIT, self.consumer)
            .await
            .expect("the channel closes once the source stops")
            .unwrap();
        let lines = self.lines.lock().unwrap().clone();
        (result, lines)
    }
}

fn texts(lines: &[Received]) -> Vec<String> {
    lines.iter().map(Received::text).collect()
}

fn append(path: &Path, lines: &[String]) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{{\"{prefix}\":{i}}}")).collect()
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn checkpoint_file(state: &Path) -> PathBuf {
    state.join("checkpoints").join("audit.json")
}

fn dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_an_existing_file_from_the_beginning() {
    let (logs, state) = dirs();
    let path = logs.path().join("a.log");
    append(&path, &numbered("a", 0..3));
    let running = start(config(logs.path()), state.path(), ACK_ALL);
    assert_eq!(running.wait_for(3).await, numbered("a", 0..3));
    let metrics = Arc::clone(&running.metrics);
    let (result, lines) = running.stop().await;
    result.unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0].stream, path.to_string_lossy());
    assert_eq!(metrics.get("lines_read_total", &[("source", "audit")]), 3);
    let saved = fs::read_to_string(checkpoint_file(state.path())).unwrap();
    assert!(saved.contains("\"version\": 1"), "{saved}");
    assert!(saved.contains("\"offset\": 24"), "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_at_end_skips_existing_content_but_not_appends_or_new_files() {
    let (logs, state) = dirs();
    let old = logs.path().join("a.log");
    append(&old, &numbered("old", 0..5));
    let mut config = config(logs.path());
    config.start_at = StartAt::End;
    let running = start(config, state.path(), ACK_ALL);
    // The checkpoint is written once the first scan has chosen its positions.
    wait_until("the first scan is done", || {
        checkpoint_file(state.path()).exists()
    })
    .await;
    append(&old, &numbered("appended", 0..2));
    append(&logs.path().join("b.log"), &numbered("new", 0..2));
    running.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (result, lines) = running.stop().await;
    result.unwrap();
    let mut got = texts(&lines);
    got.sort();
    let mut expected = [numbered("appended", 0..2), numbered("new", 0..2)].concat();
    expected.sort();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_line_arrives_promptly_through_notifications() {
    let (logs, state) = dirs();
    let path = logs.path().join("a.log");
    append(&path, &numbered("a", 0..1));
    let mut config = config(logs.path());
    // Polling alone could not make the deadline: only a notification can.
    config.poll_interval = Duration::from_secs(10);
    config.glob_interval = Duration::from_secs(10);
    let running = start(config, state.path(), ACK_ALL);
    running.wait_for(1).await;
    // Let the loop settle into its (long) wait.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let appended = Instant::now();
    append(&path, &numbered("a", 1..2));
    running.wait_for(2).await;
    let latency = appended.elapsed();
    assert!(latency < Duration::from_millis(900), "took {latency:?}");
    running.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_lines_wait_for_their_newline_and_bytes_pass_through() {
    let (logs, state) = dirs();
    let path = logs.path().join("a.log");
    fs::write(&path, b"{\"a\":0}\n{\"a\":\xff").unwrap();
    let running = start(config(logs.path()), state.path(), ACK_ALL);
    running.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(running.lines().len(), 1, "the unterminated line is held");
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(b"1}\n").unwrap();
    running.wait_for(2).await;
    let (result, lines) = running.stop().await;
    result.unwrap();
    assert_eq!(lines[1].data, LineData::Complete(b"{\"a\":\xff1}".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_while_writing_reads_every_line_once_in_order() {
    let (logs, state) = dirs();
    let path = logs.path().join("x.log");
    append(&path, &[]);
    let mut config = config(logs.path());
    config.rotate_wait = Duration::from_secs(1);
    let running = start(config, state.path(), ACK_ALL);
    let writer_path = path.clone();
    // Each generation is one physical file; the writer keeps writing to the renamed file for a
    // while, as a real writer does until it reopens.
    let total = tokio::task::spawn_blocking(move || {
        let mut total = 0;
        let mut file = OpenOptions::new().append(true).open(&writer_path).unwrap();
        for generation in 0..3 {
            for seq in 0..220 {
                writeln!(file, "{{\"gen\":{generation},\"seq\":{seq}}}").unwrap();
                total += 1;
                if seq == 200 && generation < 2 {
                    let rotated = writer_path.with_extension(format!("log.{generation}"));
                    fs::rename(&writer_path, rotated).unwrap();
                    // Long enough for the source to notice the rename, well within rotate_wait:
                    // what follows only reaches the renamed file.
                    std::thread::sleep(Duration::from_millis(150));
                }
                if seq % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            if generation < 2 {
                file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&writer_path)
                    .unwrap();
            }
        }
        total
    })
    .await
    .unwrap();
    running.wait_for(total).await;
    // Room for duplicates to show up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (result, lines) = running.stop().await;
    result.unwrap();
    assert_eq!(lines.len(), total, "every line exactly once");
    let mut next_seq = [0u64; 3];
    for line in &lines {
        let value: serde_json::Value = serde_json::from_str(&line.text()).unwrap();
        let generation = value["gen"].as_u64().unwrap() as usize;
        let seq = value["seq"].as_u64().unwrap();
        assert_eq!(
            seq, next_seq[generation],
            "in order within generation {generation}"
        );
        next_seq[generation] += 1;
    }
    assert_eq!(next_seq, [220, 220, 220]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_truncate_reads_the_lines_written_after_truncation() {
    let (logs, state) = dirs();
    let path = logs.path().join("x.log");
    append(&path, &numbered("before", 0..10));
    let running = start(config(logs.path()), state.path(), ACK_ALL);
    running.wait_for(10).await;
    let inode = fs::metadata(&path).unwrap().ino();
    fs::copy(&path, logs.path().join("x.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    // More than was there before: the file may outgrow the old offset before the source looks.
    append(&path, &numbered("after", 0..30));
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    running.wait_for(40).await;
    // Truncated again, and now shorter than before: only the shrinking size tells.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    append(&path, &numbered("c", 0..2));
    running.wait_for(42).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (result, lines) = running.stop().await;
    result.unwrap();
    assert_eq!(
        texts(&lines),
        [
            numbered("before", 0..10),
            numbered("after", 0..30),
            numbered("c", 0..2)
        ]
        .concat()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_where_acknowledged_progress_ended() {
    let (logs, state) = dirs();
    let path = logs.path().join("a.log");
    append(&path, &numbered("a", 0..400));
    let mut config = config(logs.path());
    config.max_batch_lines = 10;
    let slow = Acking::All {
        delay: Duration::from_millis(5),
    };
    let first = start(config.clone(), state.path(), slow);
    first.wait_for(50).await;
    let (result, first_lines) = first.stop().await;
    result.unwrap();
    assert!(first_lines.len() < 400, "the first run must stop part-way");
    append(&path, &numbered("a", 400..450));
    let second = start(config, state.path(), ACK_ALL);
    second.wait_for(450 - first_lines.len()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (result, second_lines) = second.stop().await;
    result.unwrap();
    let all = [texts(&first_lines), texts(&second_lines)].concat();
    assert_eq!(
        all,
        numbered("a", 0..450),
        "every line exactly once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_batches_are_read_again_after_restart() {
    let (logs, state) = dirs();
    append(&logs.path().join("a.log"), &numbered("a", 0..30));
    let mut config = config(logs.path());
    config.max_batch_lines = 5;
    let none = Acking::Drop {
        from: 0,
        to: usize::MAX,
    };
    let first = start(config.clone(), state.path(), none);
    first.wait_for(30).await;
    first.stop().await.0.unwrap();
    // Nothing acknowledged: everything again. Now the third batch fails, the later ones are
    // delivered, but the commit must stop at the failed batch.
    let third_fails = Acking::Drop { from: 2, to: 3 };
    let second = start(config.clone(), state.path(), third_fails);
    assert_eq!(second.wait_for(30).await, numbered("a", 0..30));
    second.stop().await.0.unwrap();
    let third = start(config, state.path(), ACK_ALL);
    third.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (result, lines) = third.stop().await;
    result.unwrap();
    assert_eq!(texts(&lines), numbered("a", 10..30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaced_content_on_the_same_inode_is_read_from_its_start() {
    let (logs, state) = dirs();
    let path = logs.path().join("a.log");
    append(&path, &numbered("old", 0..5));
    let first = start(config(logs.path()), state.path(), ACK_ALL);
    first.wait_for(5).await;
    first.stop().await.0.unwrap();
    let inode = fs::metadata(&path).unwrap().ino();
    // Rewritten in place while stopped: same device and inode, longer than the old offset.
    fs::write(&path, numbered("new", 0..20).join("\n") + "\n").unwrap();
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode);
    let second = start(config(logs.path()), state.path(), ACK_ALL);
    assert_eq!(second.wait_for(20).await, numbered("new", 0..20));
    second.stop().await.0.unwrap();
    // Deleted and recreated (the inode is often recycled): again a new file.
    fs::remove_file(&path).unwrap();
    append(&path, &numbered("newer", 0..25));
    let third = start(config(logs.path()), state.path(), ACK_ALL);
    assert_eq!(third.wait_for(25).await, numbered("newer", 0..25));
    third.stop().await.0.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_long_line_is_reported_and_the_next_line_is_read() {
    let (logs, state) = dirs();
    let long = "x".repeat(200);
    append(&logs.path().join("a.log"), &[long, "{\"ok\":1}".into()]);
    let mut config = config(logs.path());
    config.max_line_bytes = 64;
    let running = start(config, state.path(), ACK_ALL);
    running.wait_for(2).await;
    let (result, lines) = running.stop().await;
    result.unwrap();
    assert!(matches!(
        lines[0].data,
        LineData::TooLong { length: 200, .. }
    ));
    assert_eq!(lines[1].text(), "{\"ok\":1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_files_are_not_read() {
    let (logs, state) = dirs();
    append(&logs.path().join("keep.log"), &numbered("keep", 0..2));
    append(&logs.path().join("skip.log"), &numbered("skip", 0..2));
    let mut config = config(logs.path());
    config.exclude = vec![logs.path().join("skip*").to_string_lossy().into_owned()];
    let running = start(config, state.path(), ACK_ALL);
    running.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (result, lines) = running.stop().await;
    result.unwrap();
    assert_eq!(texts(&lines), numbered("keep", 0..2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checkpoint_file_is_an_error() {
    let (logs, state) = dirs();
    append(&logs.path().join("a.log"), &numbered("a", 0..2));
    fs::create_dir_all(state.path().join("checkpoints")).unwrap();
    fs::write(checkpoint_file(state.path()), "{\"version\":1,\"files\":").unwrap();
    let running = start(config(logs.path()), state.path(), ACK_ALL);
    let result = tokio::time::timeout(WAIT, running.source)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(result, Err(SourceError::Checkpoint { .. })),
        "{result:?}"
    );
    assert!(running.lines.lock().unwrap().is_empty());
}

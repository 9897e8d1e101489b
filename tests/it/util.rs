//! Helpers: native records, temporary agent directories, running the binary, reading outputs.

use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_aiwarden")
}

/// A native audit record; `extra` fields are merged over the defaults.
pub fn record(id: &str, time: &str, user: &str, session: &str, extra: Value) -> Value {
    let mut record = json!({
        "event_id": id,
        "timestamp": time,
        "event_type": "api_request",
        "user_id": user,
        "session_id": session,
        "department": "engineering",
        "application_id": "code-assistant",
        "model": "claude-sonnet-4-6",
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "data_classification": "internal",
        "status": "success",
    });
    if let (Some(base), Value::Object(extra)) = (record.as_object_mut(), extra) {
        base.extend(extra);
    }
    record
}

/// Write records as JSON lines.
pub fn write_lines(path: &Path, records: &[Value]) {
    let mut file = std::fs::File::create(path).unwrap();
    for record in records {
        writeln!(file, "{record}").unwrap();
    }
}

/// Parse a JSON-lines file (missing file: no lines).
pub fn read_json_lines(path: &Path) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    // A writer may be mid-line while we read: only newline-terminated lines are complete.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad output line {line:?}: {e}"))
        })
        .collect()
}

/// Count complete lines in a file without parsing.
pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path)
        .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
        .unwrap_or(0)
}

/// Wait until `condition` holds, or fail after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The sources and sinks most binary tests share: `in/*.jsonl` tailed as source `audit`, alerts
/// to `alerts.jsonl` and events to `events.jsonl` in the agent's directory.
pub const TAIL_TO_FILES: &str = r#"
[sources.audit]
type = "file"
include = ["{dir}/in/*.jsonl"]
[sinks.alerts]
type = "file"
path = "{dir}/alerts.jsonl"
records = "alerts"
[sinks.events]
type = "file"
path = "{dir}/events.jsonl"
records = "events"
"#;

/// A temporary directory laid out for one agent: config, state, input and output.
pub struct AgentDir {
    pub dir: tempfile::TempDir,
}

impl AgentDir {
    pub fn new() -> Self {
        AgentDir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `aiwarden.toml`; `{dir}` in the text is replaced by the directory.
    pub fn write_config(&self, text: &str) -> PathBuf {
        let path = self.path("aiwarden.toml");
        let mut text = text.replace("{dir}", &self.dir.path().display().to_string());
        // Agents run in parallel: never the fixed default metrics port.
        if !text.contains("[telemetry]") {
            text.push_str("\n[telemetry]\nlisten = \"127.0.0.1:0\"\n");
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Start `aiwarden run` on the config, logs captured to `agent.log`.
    pub fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("agent.log"))
            .unwrap();
        Command::new(binary())
            .args(["run", "--config"])
            .arg(self.path("aiwarden.toml"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("agent.log")).unwrap_or_default()
    }
}

/// Send SIGTERM and wait for the exit status.
pub fn terminate(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("agent did not exit within {timeout:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run the pipeline in-process over `records` (a fixture stream) with sinks given as TOML
/// (`[sinks.<name>]` tables). With `stop_after`, intake stops then and the grace is short.
/// Returns the state directory (dead letters live under it) and the counters.
pub async fn run_in_process(
    records: &[Value],
    sinks_toml: &str,
    stop_after: Option<Duration>,
) -> (
    tempfile::TempDir,
    std::sync::Arc<aiwarden::telemetry::Metrics>,
) {
    use aiwarden::config::Config;
    use aiwarden::decode::Format;
    use aiwarden::pipeline::{Pipeline, Shutdown};
    use aiwarden::sources::stdin::read_stream;

    #[derive(serde::Deserialize)]
    struct Sinks {
        sinks: std::collections::BTreeMap<String, aiwarden::sinks::SinkConfig>,
    }
    let state = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.agent.state_dir = state.path().to_path_buf();
    config.sinks = toml::from_str::<Sinks>(sinks_toml).unwrap().sinks;
    // `{"__pause_ms": N}` in the fixture pauses the stream (e.g. to let a token age).
    let mut chunks: Vec<(Vec<u8>, u64)> = vec![(Vec::new(), 0)];
    for record in records {
        if let Some(pause) = record.get("__pause_ms").and_then(Value::as_u64) {
            chunks.push((Vec::new(), pause));
            continue;
        }
        if let Some((input, _)) = chunks.last_mut() {
            input.extend_from_slice(record.to_string().as_bytes());
            input.push(b'\n');
        }
    }
    let mut pipeline = Pipeline::new(config);
    let metrics = pipeline.metrics();
    pipeline.add_source(
        "fixture",
        Box::new(move |context| {
            Box::pin(async move {
                let mut result = Ok(());
                for (input, pause) in chunks {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    result = read_stream(
                        input.as_slice(),
                        "fixture",
                        Format::Native,
                        1 << 20,
                        context.clone(),
                    )
                    .await;
                }
                // Like a tailed file, stay open until told to stop when a stop is planned.
                if stop_after.is_some() {
                    context.shutdown.cancelled().await;
                }
                result
            })
        }),
    );
    let shutdown = Shutdown::new();
    if let Some(after) = stop_after {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            shutdown.begin(Duration::from_millis(300));
        });
    }
    pipeline.run(shutdown).await.unwrap();
    (state, metrics)
}

/// `count` events of one session at one-second intervals, ids `<prefix>-<n>`.
pub fn session_events(prefix: &str, count: usize, extra: Value) -> Vec<Value> {
    (0..count)
        .map(|n| {
            record(
                &format!("{prefix}-{n}"),
                &format!("2026-11-23T10:{:02}:{:02}Z", n / 60, n % 60),
                "u-7f3a",
                &format!("s-{prefix}"),
                extra.clone(),
            )
        })
        .collect()
}

/// Like [`run_in_process`] (no planned stop), but the source reads `first`, then waits for
/// `gate` (e.g. a receiver that dropped its connection), then reads `rest`.
pub async fn run_in_process_gated(
    first: &[Value],
    gate: impl std::future::Future<Output = ()> + Send + 'static,
    rest: &[Value],
    sinks_toml: &str,
) -> (
    tempfile::TempDir,
    std::sync::Arc<aiwarden::telemetry::Metrics>,
) {
    use aiwarden::config::Config;
    use aiwarden::decode::Format;
    use aiwarden::pipeline::{Pipeline, Shutdown};
    use aiwarden::sources::stdin::read_stream;

    #[derive(serde::Deserialize)]
    struct Sinks {
        sinks: std::collections::BTreeMap<String, aiwarden::sinks::SinkConfig>,
    }
    let lines = |records: &[Value]| {
        let mut input = Vec::new();
        for record in records {
            input.extend_from_slice(record.to_string().as_bytes());
            input.push(b'\n');
        }
        input
    };
    let state = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.agent.state_dir = state.path().to_path_buf();
    config.sinks = toml::from_str::<Sinks>(sinks_toml).unwrap().sinks;
    let (first, rest) = (lines(first), lines(rest));
    let mut pipeline = Pipeline::new(config);
    let metrics = pipeline.metrics();
    pipeline.add_source(
        "fixture",
        Box::new(move |context| {
            Box::pin(async move {
                read_stream(
                    first.as_slice(),
                    "fixture",
                    Format::Native,
                    1 << 20,
                    context.clone(),
                )
                .await?;
                gate.await;
                read_stream(rest.as_slice(), "fixture", Format::Native, 1 << 20, context).await
            })
        }),
    );
    pipeline.run(Shutdown::new()).await.unwrap();
    (state, metrics)
}

/// A plain HTTP GET on loopback: (status, body).
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

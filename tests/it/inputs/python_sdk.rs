//! The `otlp` source fed by the Python OpenTelemetry SDK's OTLP log exporter (another
//! implementation than the Rust one in `otlp.rs`), over gRPC and http/protobuf, gzip, with a
//! bearer token: Claude Code-shaped sessions (`tests/fixtures/otel/emit_claude_code.py`) arrive as
//! the right canonical records and an MCP burst fires `mcp-volume`.
//!
//! The interpreter is `AIWARDEN_OTEL_PYTHON`, else the one in the virtual environment
//! `.ci/otel-peers.sh` builds (`AIWARDEN_OTEL_VENV`, default `~/.cache/aiwarden-otel-venv`). Without it the test fails under CI (`CI` set) and
//! skips with a message elsewhere.

use super::otlp::{receiver, TOKEN};
use crate::util::{read_json_lines, wait_until};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const SDK_MODULES: &str = "import opentelemetry.sdk._logs, \
    opentelemetry.exporter.otlp.proto.http._log_exporter, \
    opentelemetry.exporter.otlp.proto.grpc._log_exporter";

/// The Python with the SDK installed, or why there is none.
fn sdk_python() -> Result<PathBuf, String> {
    let python = match std::env::var_os("AIWARDEN_OTEL_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => {
            let venv = match std::env::var_os("AIWARDEN_OTEL_VENV") {
                Some(venv) => PathBuf::from(venv),
                None => {
                    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
                    PathBuf::from(home).join(".cache/aiwarden-otel-venv")
                }
            };
            venv.join("bin/python")
        }
    };
    let usable = Command::new(&python)
        .args(["-c", SDK_MODULES])
        .output()
        .is_ok_and(|output| output.status.success());
    if usable {
        Ok(python)
    } else {
        Err(format!(
            "{} cannot import the OpenTelemetry SDK and its OTLP exporters; \
             run `bash .ci/otel-peers.sh` (what .ci/run does) or set AIWARDEN_OTEL_PYTHON",
            python.display()
        ))
    }
}

fn emit(python: &PathBuf, protocol: &str, endpoint: &str, session: &str, mcp_calls: usize) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/otel/emit_claude_code.py"
    );
    let output = Command::new(python)
        .arg(script)
        .args([
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--token",
            TOKEN,
        ])
        .args(["--session", session, "--mcp-calls", &mcp_calls.to_string()])
        .args(["--start", "2026-11-23T14:00:00Z"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{protocol}: the Python exporter failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_exporter_over_grpc_and_http_protobuf_arrives_as_canonical_records_and_alerts(
) {
    let python = match sdk_python() {
        Ok(python) => python,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "{why}");
            eprintln!("skipped: {why}");
            return;
        }
    };
    let (running, http_url, grpc_url) = receiver().await;
    // 60 calls in one minute is over mcp-volume's 50 in 10 minutes; 3 is nothing.
    let sessions = [
        ("grpc", grpc_url.clone(), "s-py-grpc", 60),
        ("http/protobuf", http_url.clone(), "s-py-http", 60),
        ("http/protobuf", http_url, "s-py-quiet", 3),
    ];
    for (protocol, endpoint, session, calls) in sessions.clone() {
        let python = python.clone();
        tokio::task::spawn_blocking(move || emit(&python, protocol, &endpoint, session, calls))
            .await
            .unwrap();
    }

    // Success was answered only after delivery: the records are in the sink already.
    let events = read_json_lines(&running.events());
    for (protocol, _, session, calls) in sessions {
        let records: Vec<&Value> = events
            .iter()
            .filter(|e| e["session_id"] == session)
            .collect();
        let of_type = |event_type: &str| -> Vec<&Value> {
            records
                .iter()
                .copied()
                .filter(|e| e["event_type"] == event_type)
                .collect()
        };
        assert_eq!(records.len(), calls + 3, "{protocol}: {session}");
        for record in &records {
            assert_eq!(record["user_id"], "jdoe@acme.example", "{protocol}");
            assert_eq!(record["department"], "legal", "{protocol}");
            assert_eq!(record["application_id"], "claude-code", "{protocol}");
        }
        let prompt = of_type("user_prompt");
        assert_eq!(prompt.len(), 1, "{protocol}");
        assert!(
            prompt[0].get("prompt_raw").is_none(),
            "a redacted prompt is no text"
        );
        let request = of_type("api_request");
        assert_eq!(request.len(), 1, "{protocol}");
        assert_eq!(request[0]["model"], "claude-sonnet-4-6");
        assert_eq!(request[0]["prompt_tokens"], 1840);
        assert_eq!(request[0]["completion_tokens"], 512);
        assert_eq!(request[0]["latency_ms"], 2140);
        assert_eq!(
            request[0]["timestamp"], "2026-11-23T14:00:01.000Z",
            "event.timestamp"
        );
        let mcp = of_type("mcp_call");
        assert_eq!(mcp.len(), calls, "{protocol}: {session}");
        assert!(mcp
            .iter()
            .all(|e| e["mcp_integrations"] == json!(["github"]) && e["mcp_calls"] == 1));
        let denied = of_type("mcp_auth_failure");
        assert_eq!(denied.len(), 1, "{protocol}: a 401 from an MCP server");
        assert_eq!(denied[0]["mcp_integrations"], json!(["jira"]));
    }

    wait_until(Duration::from_secs(5), "mcp-volume for both bursts", || {
        let alerts = read_json_lines(&running.alerts());
        ["s-py-grpc", "s-py-http"].iter().all(|session| {
            alerts
                .iter()
                .any(|a| a["rule_id"] == "mcp-volume" && a["session_id"] == *session)
        })
    });
    let alerts = read_json_lines(&running.alerts());
    let burst = alerts
        .iter()
        .find(|a| a["rule_id"] == "mcp-volume" && a["session_id"] == "s-py-grpc")
        .unwrap();
    assert_eq!(burst["severity"], "medium");
    assert!(
        !alerts.iter().any(|a| a["session_id"] == "s-py-quiet"),
        "three calls fire nothing"
    );
    running.stop().await;
}

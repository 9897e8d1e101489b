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

#[test]
fn sighup_validates_and_keeps_running() {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    agent.write_config(
        r#"
[agent]
state_dir = "{dir}/state"
[sources.audit]
type = "file"
include = ["{dir}/in/*.jsonl"]
[sinks.out]
type = "file"
path = "{dir}/out.jsonl"
records = "events"
"#,
    );
    let mut child = agent.spawn();
    wait_until(Duration::from_secs(30), "startup", || {
        agent.log().contains("aiwarden started")
    });
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_until(Duration::from_secs(30), "the reload message", || {
        agent.log().contains("SIGHUP")
    });
    let line = record("after-hup", "2026-11-23T10:00:00Z", "u", "s", json!({})).to_string();
    std::fs::write(agent.path("in/a.jsonl"), line + "\n").unwrap();
    wait_until(Duration::from_secs(30), "a line read after SIGHUP", || {
        count_lines(&agent.path("out.jsonl")) >= 1
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP must not stop the agent"
    );
    assert!(terminate(&mut child, Duration::from_secs(15)).success());
}

#[test]
fn trace_logs_never_contain_the_token_or_the_prompt() {
    const TOKEN: &str = "tok-9f8e7d6c5b4a-never-log-me";
    const PROMPT: &str = "my-very-private-prompt-text-42";
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    let port = crate::mock::free_port();
    agent.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
log_level = "trace"
[sources.audit]
type = "file"
include = ["{{dir}}/in/*.jsonl"]
[sinks.splunk]
type = "splunk_hec"
endpoint = "http://{port}"
token = {{ env = "AIWARDEN_TEST_HEC_TOKEN" }}
records = "both"
forward_content = true
[sinks.splunk.request]
retry_initial_backoff = "20ms"
retry_max_backoff = "50ms"
[sinks.out]
type = "file"
path = "{{dir}}/out.jsonl"
records = "events"
"#
    ));
    let lines = [
        record(
            "p-1",
            "2026-11-23T10:00:00Z",
            "u",
            "s",
            json!({"prompt_raw": PROMPT}),
        )
        .to_string(),
        format!("{{\"event_id\":\"bad\",\"prompt_raw\":\"{PROMPT}\",oops"),
    ];
    std::fs::write(agent.path("in/a.jsonl"), lines.join("\n") + "\n").unwrap();
    let log = std::fs::File::create(agent.path("agent.log")).unwrap();
    let mut child = std::process::Command::new(crate::util::binary())
        .args(["run", "--config"])
        .arg(agent.path("aiwarden.toml"))
        .env("RUST_LOG", "trace")
        .env("AIWARDEN_TEST_HEC_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(20),
        "the event and several delivery retries",
        || {
            count_lines(&agent.path("out.jsonl")) >= 1
                && agent.log().matches("Delivery failed").count() >= 3
        },
    );
    assert!(terminate(&mut child, Duration::from_secs(20)).success());
    let log = agent.log();
    assert!(
        log.len() > 10_000,
        "trace logging was on ({} bytes)",
        log.len()
    );
    assert!(!log.contains(TOKEN), "the HEC token appears in the logs");
    assert!(
        !log.contains("never-log-me"),
        "part of the token appears in the logs"
    );
    assert!(!log.contains(PROMPT), "prompt text appears in the logs");
}

#[test]
fn ready_is_503_naming_the_sink_its_siem_refuses() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(crate::mock::splunk_hec::HecMock::start(
        "right-token",
        false,
        0,
    ));
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    let line = record("r-1", "2026-11-23T10:00:00Z", "u", "s", json!({})).to_string();
    std::fs::write(agent.path("in/a.jsonl"), line + "\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    agent.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
shutdown_grace = "500ms"
[telemetry]
listen = "{port}"
[sources.audit]
type = "file"
include = ["{{dir}}/in/*.jsonl"]
[sinks.splunk]
type = "splunk_hec"
endpoint = "{endpoint}"
token = "wrong-token"
records = "events"
"#,
        endpoint = mock.endpoint()
    ));
    let mut child = agent.spawn();
    wait_until(Duration::from_secs(20), "the sink to be refused", || {
        http_get_quiet(port, "/ready").is_some_and(|(status, _)| status == 503)
    });
    let (_, body) = http_get(port, "/ready");
    assert!(body.contains("\"splunk\""), "{body}");
    assert!(
        body.contains("failing") && body.contains("sinks.splunk.token"),
        "{body}"
    );
    assert!(terminate(&mut child, Duration::from_secs(20)).success());
    drop(runtime);
}

fn http_get_quiet(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    std::net::TcpStream::connect(addr).ok()?;
    Some(http_get(addr, path))
}

#[test]
fn check_config_connect_reports_each_sink() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(crate::mock::splunk_hec::HecMock::start(
        "right-token",
        false,
        0,
    ));
    let agent = AgentDir::new();
    let config = |token: &str| {
        agent.write_config(&format!(
            r#"
[sources.audit]
type = "file"
include = ["{{dir}}/in/*.jsonl"]
[sinks.splunk]
type = "splunk_hec"
endpoint = "{endpoint}"
token = "{token}"
[sinks.archive]
type = "file"
path = "{{dir}}/out.jsonl"
"#,
            endpoint = mock.endpoint()
        ))
    };
    let run = |path: &std::path::Path| {
        std::process::Command::new(crate::util::binary())
            .args(["check-config", "--quiet", "--connect", "--config"])
            .arg(path)
            .output()
            .unwrap()
    };
    let good = run(&config("right-token"));
    let stderr = String::from_utf8_lossy(&good.stderr);
    assert!(good.status.success(), "{stderr}");
    assert!(
        stderr.contains("sink splunk: OK: HEC is healthy"),
        "{stderr}"
    );
    assert!(stderr.contains("sink archive: OK"), "{stderr}");
    let bad = run(&config("wrong-token"));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sink splunk: FAILED: the token is invalid"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-token"),
        "the token is never printed: {stderr}"
    );
    drop(runtime);
}

#[test]
fn rules_reload_on_change_keeping_state_and_a_broken_file_keeps_the_running_rules() {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    std::fs::create_dir(agent.path("rules.d")).unwrap();
    agent.write_config(&format!(
        "[agent]\nstate_dir = \"{{dir}}/state\"\n[detect]\noverrides_dir = \"{{dir}}/rules.d\"\n{}",
        crate::util::TAIL_TO_FILES
    ));
    let calls = |from: u32, to: u32| -> String {
        (from..to)
            .map(|n| {
                record(
                    &format!("c-{n}"),
                    &format!("2026-11-23T10:{:02}:{:02}Z", n * 5 / 60, n * 5 % 60),
                    "u",
                    "s-kept",
                    json!({"event_type": "mcp_call", "data_classification": "restricted"}),
                )
                .to_string()
                    + "\n"
            })
            .collect()
    };
    let append = |text: String| {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(agent.path("in/audit.jsonl"))
            .unwrap();
        std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    };
    let mut child = agent.spawn();
    wait_until(Duration::from_secs(30), "startup", || {
        agent.log().contains("aiwarden started")
    });
    append(calls(0, 40));
    wait_until(Duration::from_secs(30), "40 calls", || {
        count_lines(&agent.path("events.jsonl")) >= 40
    });
    // An override of another rule: mcp-volume is unchanged and must keep its 40 calls.
    std::fs::write(
        agent.path("rules.d/quiet.toml"),
        "id = \"restricted-unauthorised\"\nenabled = false\n",
    )
    .unwrap();
    wait_until(Duration::from_secs(30), "the reload", || {
        agent.log().contains("rules reloaded")
    });
    append(calls(40, 55));
    wait_until(Duration::from_secs(30), "55 calls", || {
        count_lines(&agent.path("events.jsonl")) >= 55
    });
    // A broken override: reported, and the running rules stay.
    std::fs::write(
        agent.path("rules.d/broken.toml"),
        "id = \"mcp-volume\"\nsuppress = 42\n",
    )
    .unwrap();
    wait_until(Duration::from_secs(30), "the refusal", || {
        agent.log().contains("do not load")
    });
    assert!(terminate(&mut child, Duration::from_secs(20)).success());

    let alerts = crate::util::read_json_lines(&agent.path("alerts.jsonl"));
    let mcp: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule_id"] == "mcp-volume")
        .collect();
    assert_eq!(
        mcp.len(),
        1,
        "the window kept its first 40 calls across the reload: {alerts:#?}"
    );
    assert_eq!(mcp[0]["observed"], 51.0);
    let restricted = alerts
        .iter()
        .filter(|a| a["rule_id"] == "restricted-unauthorised")
        .count();
    assert!(
        restricted >= 1,
        "restricted-unauthorised ran before the override"
    );
    let last_restricted = alerts
        .iter()
        .filter(|a| a["rule_id"] == "restricted-unauthorised")
        .filter_map(|a| a["evidence"]["event_ids"][0].as_str())
        .filter_map(|id| id.strip_prefix("c-").and_then(|n| n.parse::<u32>().ok()))
        .max()
        .unwrap_or(0);
    assert!(
        last_restricted < 40,
        "no restricted alert after the override disabled the rule"
    );
}

#[test]
fn ready_is_503_naming_a_source_that_stopped_on_an_error() {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    std::fs::create_dir_all(agent.path("state/checkpoints")).unwrap();
    std::fs::write(
        agent.path("state/checkpoints/audit.json"),
        "{ this is not a checkpoint",
    )
    .unwrap();
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
[sources.other]
type = "file"
include = ["{{dir}}/in/*.log"]
[sinks.out]
type = "file"
path = "{{dir}}/out.jsonl"
"#
    ));
    let mut child = agent.spawn();
    wait_until(Duration::from_secs(20), "the source to fail", || {
        http_get_quiet(port, "/ready").is_some_and(|(status, _)| status == 503)
    });
    let (_, body) = http_get(port, "/ready");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["sources"]["audit"]["state"], "failing", "{body}");
    assert!(
        ready["sources"]["audit"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("checkpoint file"),
        "{body}"
    );
    assert_eq!(ready["sources"]["other"]["state"], "healthy", "{body}");
    assert!(terminate(&mut child, Duration::from_secs(20)).success());
}

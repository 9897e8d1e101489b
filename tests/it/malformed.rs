//! Bad input never stops the agent: each bad line is dead-lettered with its reason.

use crate::util::{binary, count_lines, read_json_lines, record, terminate, wait_until, AgentDir};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Good lines around every kind of bad line; returns the file's bytes.
fn hostile_input() -> Vec<u8> {
    let good = |n: u32| {
        record(
            &format!("good-{n}"),
            "2026-11-23T09:00:00Z",
            "u1",
            "s1",
            json!({}),
        )
        .to_string()
    };
    let mut bytes = Vec::new();
    let mut line = |text: &[u8]| {
        bytes.extend_from_slice(text);
        bytes.push(b'\n');
    };
    line(good(1).as_bytes());
    line(b"{\"event_id\": \"x\", oops");
    line(b"\xff\xfe not utf-8 \xc3\x28");
    line(
        record(
            "wrong-type",
            "2026-11-23T09:00:00Z",
            "u1",
            "s1",
            json!({"prompt_tokens": "many"}),
        )
        .to_string()
        .as_bytes(),
    );
    line(b"{\"event_id\":\"no-user\",\"timestamp\":\"2026-11-23T09:00:00Z\",\"event_type\":\"api_request\",\"session_id\":\"s\",\"application_id\":\"a\",\"model\":\"m\"}");
    line(b"[\"an\", \"array\"]");
    let mut huge = b"{\"event_id\":\"huge\",\"pad\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    huge.extend_from_slice(b"\"}");
    line(&huge);
    line(good(2).as_bytes());
    bytes
}

fn expected_reasons() -> BTreeMap<String, usize> {
    [
        ("invalid_json", 1),
        ("invalid_utf8", 1),
        ("invalid_value", 1),
        ("missing_field", 1),
        ("not_an_object", 1),
        ("line_too_long", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn reasons(path: &std::path::Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in read_json_lines(path) {
        *counts
            .entry(entry["reason"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        assert!(entry["offset"].is_u64());
        assert!(entry["detail"].is_string());
        assert!(entry["raw"].as_str().unwrap().len() <= 4096 + 16);
    }
    counts
}

#[test]
fn tailed_file_with_hostile_lines_keeps_going_and_dead_letters_each() {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    std::fs::write(agent.path("in/audit.jsonl"), hostile_input()).unwrap();
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
    let dead_letters = agent.path("state/dead_letter.jsonl");
    wait_until(
        Duration::from_secs(20),
        "two good lines and six dead letters",
        || count_lines(&agent.path("out.jsonl")) >= 2 && count_lines(&dead_letters) >= 6,
    );
    // A line appended afterwards is still read: the bad ones did not stop the source.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(agent.path("in/audit.jsonl"))
        .unwrap();
    writeln!(
        file,
        "{}",
        record("good-3", "2026-11-23T09:00:01Z", "u1", "s1", json!({}))
    )
    .unwrap();
    wait_until(Duration::from_secs(10), "the appended line", || {
        count_lines(&agent.path("out.jsonl")) >= 3
    });
    let status = terminate(&mut child, Duration::from_secs(15));
    assert!(status.success(), "log: {}", agent.log());

    let ids: Vec<_> = read_json_lines(&agent.path("out.jsonl"))
        .into_iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["good-1", "good-2", "good-3"]);
    assert_eq!(reasons(&dead_letters), expected_reasons());
}

#[test]
fn stdin_source_reads_to_the_end_and_exits() {
    let agent = AgentDir::new();
    agent.write_config(
        r#"
[agent]
state_dir = "{dir}/state"
[sources.pipe]
type = "stdin"
[sinks.out]
type = "file"
path = "{dir}/out.jsonl"
records = "events"
"#,
    );
    let mut child = Command::new(binary())
        .args(["run", "--config"])
        .arg(agent.path("aiwarden.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&hostile_input()).unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(count_lines(&agent.path("out.jsonl")), 2);
    assert_eq!(
        reasons(&agent.path("state/dead_letter.jsonl")),
        expected_reasons()
    );
}

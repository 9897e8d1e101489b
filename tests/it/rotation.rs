//! The real binary tailing a file that is rotated while it is written.

use crate::util::{read_json_lines, record, terminate, wait_until, AgentDir};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

const LINES: usize = 3_000;

fn agent() -> AgentDir {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("in")).unwrap();
    agent.write_config(
        r#"
[agent]
state_dir = "{dir}/state"
[sources.audit]
type = "file"
include = ["{dir}/in/audit.jsonl"]
poll_interval = "50ms"
rotate_wait = "1s"
[sinks.out]
type = "file"
path = "{dir}/out.jsonl"
records = "events"
"#,
    );
    agent
}

fn line(n: usize) -> String {
    record(
        &format!("r-{n:05}"),
        "2026-11-23T10:00:00Z",
        "u",
        "s",
        json!({}),
    )
    .to_string()
}

fn delivered(agent: &AgentDir) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for record in read_json_lines(&agent.path("out.jsonl")) {
        *counts
            .entry(record["event_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn finish(agent: &AgentDir, mut child: std::process::Child) {
    wait_until(Duration::from_secs(30), "every line", || {
        delivered(agent).len() >= LINES
    });
    std::thread::sleep(Duration::from_millis(300));
    let status = terminate(&mut child, Duration::from_secs(20));
    assert!(status.success(), "log: {}", agent.log());
    let counts = delivered(agent);
    assert_eq!(counts.len(), LINES, "nothing lost");
    assert!(counts.values().all(|&n| n == 1), "nothing twice");
}

#[test]
fn rename_rotation_while_writing_delivers_every_line_once() {
    let agent = agent();
    let path = agent.path("in/audit.jsonl");
    let mut file = std::fs::File::create(&path).unwrap();
    let child = agent.spawn();
    wait_until(Duration::from_secs(20), "startup", || {
        agent.log().contains("aiwarden started")
    });
    for n in 0..LINES {
        writeln!(file, "{}", line(n)).unwrap();
        if n % 1000 == 0 {
            // A file renamed before the agent ever saw it at the watched path is outside
            // `include`: no tailer can read it. logrotate renames after hours, not
            // milliseconds, so let the agent see each new file (it needs its first bytes for
            // the identity) before writing on.
            let files = n / 1000 + 1;
            wait_until(Duration::from_secs(20), "the new file to be tailed", || {
                agent.log().matches("Tailing file").count() >= files
            });
        }
        if n % 1000 == 999 {
            // logrotate's default: rename, then the writer opens a new file.
            std::fs::rename(&path, agent.path(&format!("in/audit.jsonl.{}", n / 1000))).unwrap();
            file = std::fs::File::create(&path).unwrap();
        }
        if n % 100 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    finish(&agent, child);
}

#[test]
fn copy_truncate_while_writing_delivers_every_line_once() {
    let agent = agent();
    let path = agent.path("in/audit.jsonl");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let child = agent.spawn();
    wait_until(Duration::from_secs(20), "startup", || {
        agent.log().contains("aiwarden started")
    });
    let mut written = 0;
    for round in 0..3 {
        for _ in 0..LINES / 3 {
            writeln!(file, "{}", line(written)).unwrap();
            written += 1;
        }
        file.flush().unwrap();
        // copytruncate: the copy keeps the old lines; the agent must have read them first or
        // they are only in the copy, so wait for them like logrotate's delaycompress users do.
        wait_until(Duration::from_secs(20), "the round's lines", || {
            delivered(&agent).len() >= written
        });
        std::fs::copy(&path, agent.path(&format!("in/audit.jsonl.{round}"))).unwrap();
        file.set_len(0).unwrap();
    }
    finish(&agent, child);
}

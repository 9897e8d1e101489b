//! The fleet scenario, against any Kafka-protocol cluster: one edge agent (file → `kafka` sink)
//! and a detector tier of `kafka`-source members; a member is killed with SIGKILL mid-stream and
//! later one is added. Every planted anomaly must fire (one distinct alert id each, re-delivered
//! at most once), no record may be lost, and no partition may have two owners at once.

use crate::util::{read_json_lines, record, wait_until, write_lines, AgentDir};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Child;
use std::time::{Duration, Instant};

/// Users in the stream; each gets two planted MCP bursts.
const USERS: usize = 12;

/// The edge agent: tails `in/*.jsonl`, produces canonical records keyed by user.
pub fn edge_config(brokers: &str, topic: &str) -> String {
    format!(
        r#"
[sources.audit]
type = "file"
include = ["{{dir}}/in/*.jsonl"]
[sinks.bus]
type = "kafka"
brokers = ["{brokers}"]
topic = "{topic}"
records = "events"
batch = {{ timeout = "100ms" }}
request = {{ retry_initial_backoff = "100ms", retry_max_backoff = "1s" }}
"#
    )
}

/// A detector member: the group's partitions, one engine each, alerts and events to files.
pub fn detector_config(brokers: &str, topic: &str, group: &str) -> String {
    format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
[sources.bus]
type = "kafka"
brokers = ["{brokers}"]
topics = ["{topic}"]
group_id = "{group}"
session_timeout = "6s"
state_replication = 1
[sinks.alerts]
type = "file"
path = "{{dir}}/alerts.jsonl"
records = "alerts"
[sinks.events]
type = "file"
path = "{{dir}}/events.jsonl"
records = "events"
"#
    )
}

fn at(base: chrono::DateTime<chrono::Utc>, seconds: i64) -> String {
    (base + chrono::Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Three phases of a multi-user stream, in event-time order. Phase 1 holds the first 30 MCP
/// calls of each user's first burst session, phase 2 the other 30 (the burst fires only if the
/// partition's state survived the kill), phase 3 a second burst session per user of 55 calls.
pub fn phases() -> [Vec<Value>; 3] {
    let base = chrono::DateTime::parse_from_rfc3339("2026-11-20T09:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut phases: [Vec<Value>; 3] = Default::default();
    for (phase, records) in phases.iter_mut().enumerate() {
        for step in 0..60 {
            for user in 0..USERS {
                let seconds = phase as i64 * 600 + step * 5;
                let name = format!("user{user:02}@acme.example");
                let time = at(base, seconds);
                let mcp = |session: &str| {
                    record(
                        &format!("p{phase}-{session}-{step}"),
                        &time,
                        &name,
                        session,
                        json!({"event_type": "mcp_call", "mcp_integrations": ["files"]}),
                    )
                };
                match phase {
                    0 if step < 30 => records.push(mcp(&format!("burst-a-{user}"))),
                    1 if step < 30 => records.push(mcp(&format!("burst-a-{user}"))),
                    2 if step < 55 => records.push(mcp(&format!("burst-b-{user}"))),
                    _ => {}
                }
                if step % 6 == 0 {
                    records.push(record(
                        &format!("p{phase}-normal-{user}-{step}"),
                        &time,
                        &name,
                        &format!("normal-{user}"),
                        json!({}),
                    ));
                }
            }
        }
    }
    phases
}

struct Member {
    dir: AgentDir,
    child: Option<Child>,
    killed_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn event_ids(dirs: &[&AgentDir]) -> Vec<String> {
    dirs.iter()
        .flat_map(|dir| read_json_lines(&dir.path("events.jsonl")))
        .filter_map(|event| event["event_id"].as_str().map(str::to_string))
        .collect()
}

/// Ownership intervals per partition from the members' JSON logs.
fn ownership(members: &[Member]) -> BTreeMap<String, Vec<(usize, i64, i64)>> {
    let mut intervals: BTreeMap<String, Vec<(usize, i64, i64)>> = BTreeMap::new();
    for (index, member) in members.iter().enumerate() {
        let mut open: HashMap<String, i64> = HashMap::new();
        for line in member.dir.log().lines() {
            let Ok(entry) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let message = entry["fields"]["message"].as_str().unwrap_or_default();
            let Some(partition) = entry["fields"]["partition"].as_str() else {
                continue;
            };
            let Some(time) = entry["timestamp"]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            else {
                continue;
            };
            let micros = time.timestamp_micros();
            match message {
                "Partition assigned." => {
                    open.insert(partition.to_string(), micros);
                }
                "Partition released." => {
                    if let Some(start) = open.remove(partition) {
                        intervals
                            .entry(partition.to_string())
                            .or_default()
                            .push((index, start, micros));
                    }
                }
                _ => {}
            }
        }
        let end = member
            .killed_at
            .map(|t| t.timestamp_micros())
            .unwrap_or(i64::MAX);
        for (partition, start) in open {
            intervals
                .entry(partition)
                .or_default()
                .push((index, start, end));
        }
    }
    intervals
}

/// Run the scenario against `brokers`; the topic must exist with several partitions.
pub fn run_fleet(brokers: &str, topic: &str, group: &str) {
    let started = Instant::now();
    let [phase1, phase2, phase3] = phases();
    let all: Vec<Value> = phase1
        .iter()
        .chain(&phase2)
        .chain(&phase3)
        .cloned()
        .collect();

    let spawn_member = |members: &mut Vec<Member>| {
        let dir = AgentDir::new();
        dir.write_config(&detector_config(brokers, topic, group));
        let child = dir.spawn();
        members.push(Member {
            dir,
            child: Some(child),
            killed_at: None,
        });
    };
    let mut members = Vec::new();
    for _ in 0..3 {
        spawn_member(&mut members);
    }
    let edge = AgentDir::new();
    std::fs::create_dir_all(edge.path("in")).unwrap();
    edge.write_config(&edge_config(brokers, topic));
    let mut edge_child = edge.spawn();

    let delivered = |members: &[Member], records: &[Value]| {
        let dirs: Vec<&AgentDir> = members.iter().map(|m| &m.dir).collect();
        let seen: BTreeSet<String> = event_ids(&dirs).into_iter().collect();
        records
            .iter()
            .all(|r| seen.contains(r["event_id"].as_str().unwrap_or_default()))
    };

    write_lines(&edge.path("in/phase1.jsonl"), &phase1);
    wait_until(Duration::from_secs(120), "phase 1 at the detectors", || {
        delivered(&members, &phase1)
    });

    // Kill a member that owns partitions, without any chance to commit or snapshot.
    let victim = (0..members.len())
        .find(|&i| members[i].dir.log().contains("Partition assigned."))
        .expect("some member owns partitions");
    let mut child = members[victim].child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    members[victim].killed_at = Some(chrono::Utc::now());

    write_lines(&edge.path("in/phase2.jsonl"), &phase2);
    wait_until(Duration::from_secs(120), "phase 2 after the kill", || {
        delivered(&members, &phase2)
    });

    spawn_member(&mut members);
    let newcomer = members.len() - 1;
    wait_until(
        Duration::from_secs(60),
        "the new member to get partitions",
        || members[newcomer].dir.log().contains("Partition assigned."),
    );
    write_lines(&edge.path("in/phase3.jsonl"), &phase3);
    wait_until(Duration::from_secs(120), "phase 3 at the detectors", || {
        delivered(&members, &phase3)
    });

    let alerts_of = |members: &[Member]| -> Vec<Value> {
        members
            .iter()
            .flat_map(|m| read_json_lines(&m.dir.path("alerts.jsonl")))
            .filter(|a| a["rule_id"] == "mcp-volume")
            .collect()
    };
    let planted: Vec<String> = (0..USERS)
        .flat_map(|u| [format!("burst-a-{u}"), format!("burst-b-{u}")])
        .collect();
    wait_until(
        Duration::from_secs(60),
        "every planted burst to fire",
        || {
            let alerts = alerts_of(&members);
            planted
                .iter()
                .all(|session| alerts.iter().any(|a| a["entity_key"] == session.as_str()))
        },
    );

    for member in members.iter_mut() {
        if let Some(mut child) = member.child.take() {
            let status = crate::util::terminate(&mut child, Duration::from_secs(60));
            assert!(
                status.success(),
                "a member did not stop cleanly: {}",
                member.dir.log()
            );
        }
    }
    crate::util::terminate(&mut edge_child, Duration::from_secs(30));

    // No record lost.
    let dirs: Vec<&AgentDir> = members.iter().map(|m| &m.dir).collect();
    let seen = event_ids(&dirs);
    let distinct: BTreeSet<&String> = seen.iter().collect();
    for record in &all {
        assert!(
            distinct.contains(&record["event_id"].as_str().unwrap().to_string()),
            "record {} lost",
            record["event_id"]
        );
    }

    // Each planted burst fired with one alert id (its medium tier), re-delivered at most once;
    // nothing else fired.
    let alerts = alerts_of(&members);
    let mut by_entity: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alert in &alerts {
        by_entity
            .entry(alert["entity_key"].as_str().unwrap().to_string())
            .or_default()
            .push(alert["alert_id"].as_str().unwrap().to_string());
    }
    for session in &planted {
        let ids = by_entity.get(session).cloned().unwrap_or_default();
        let distinct: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 1, "{session}: alert ids {ids:?}");
        assert!(ids.len() <= 2, "{session}: delivered {} times", ids.len());
    }
    assert_eq!(
        by_entity.len(),
        planted.len(),
        "unexpected alerts: {by_entity:?}"
    );

    // One owner per partition at a time.
    let intervals = ownership(&members);
    assert!(intervals.len() >= 2, "partitions seen: {intervals:?}");
    for (partition, spans) in &intervals {
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                let overlap = a.1 < b.2 && b.1 < a.2;
                assert!(
                    !overlap || a.0 == b.0,
                    "partition {partition} owned by members {} and {} at once: {spans:?}",
                    a.0,
                    b.0
                );
            }
        }
    }
    let duplicates = seen.len() - distinct.len();
    eprintln!(
        "fleet scenario: {} records, {} re-delivered after the kill, {} alerts, {:?}",
        all.len(),
        duplicates,
        alerts.len(),
        started.elapsed()
    );
}

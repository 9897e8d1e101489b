//! The `kafka` sink and source against librdkafka's mock cluster (several brokers, consumer
//! groups with commits, error injection), and the detector tier's fleet scenario on it and on a
//! real Kafka-protocol broker (tansu, `tansu.rs`).

mod fleet;
mod tansu;

use crate::util::{record, terminate, wait_until, write_lines, AgentDir};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The edge agent: tails `in/*.jsonl`, produces canonical records keyed by user.
pub fn edge_config(brokers: &str, topic: &str) -> String {
    format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
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

/// Every message of `topic`: (partition, key, value).
fn read_topic(brokers: &str, topic: &str, expected: usize) -> Vec<(i32, String, Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "test-reader")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut messages = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while messages.len() < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let value: Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).unwrap();
            messages.push((message.partition(), key, value));
        }
    }
    // Anything beyond `expected` would be a duplicate: give it a moment to show up.
    let settle = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < settle {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
            let value: Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).unwrap();
            messages.push((message.partition(), key, value));
        }
    }
    messages
}

#[test]
fn kafka_sink_keys_by_user_and_rides_out_broker_errors() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("audit", 4, 3).unwrap();
    let brokers = cluster.bootstrap_servers();
    // The leader refuses the first produce requests: the idempotent producer and the driver
    // retry until they are taken, and nothing is written twice.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    let agent = AgentDir::new();
    std::fs::create_dir_all(agent.path("in")).unwrap();
    agent.write_config(&edge_config(&brokers, "audit"));
    let records: Vec<Value> = (0..200)
        .map(|i| {
            record(
                &format!("e{i}"),
                "2026-11-20T10:00:00Z",
                &format!("user{}@acme.example", i % 7),
                &format!("s{}", i % 7),
                json!({"prompt_raw": "never leaves the host"}),
            )
        })
        .collect();
    write_lines(&agent.path("in/a.jsonl"), &records);
    let mut child = agent.spawn();
    let messages = read_topic(&brokers, "audit", records.len());
    terminate(&mut child, Duration::from_secs(30));

    let ids: Vec<&str> = messages
        .iter()
        .map(|(_, _, value)| value["event_id"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        records.len(),
        "every record arrives: {}",
        agent.log()
    );
    assert_eq!(ids.len(), records.len(), "and none twice: {}", agent.log());
    let mut partitions_of_user: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for (partition, key, value) in &messages {
        assert_eq!(key, value["user_id"].as_str().unwrap(), "keyed by the user");
        assert!(
            value.get("prompt_raw").is_none(),
            "content is not forwarded"
        );
        partitions_of_user
            .entry(key)
            .or_default()
            .insert(*partition);
    }
    assert_eq!(partitions_of_user.len(), 7);
    assert!(
        partitions_of_user.values().all(|set| set.len() == 1),
        "one partition per user: {partitions_of_user:?}"
    );
}

#[test]
fn kafka_source_commits_only_what_was_delivered() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 2, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let edge = AgentDir::new();
    std::fs::create_dir_all(edge.path("in")).unwrap();
    edge.write_config(&edge_config(&brokers, "audit"));
    let first: Vec<Value> = (0..50)
        .map(|i| {
            record(
                &format!("a{i}"),
                "2026-11-20T10:00:00Z",
                &format!("u{}", i % 5),
                "s",
                json!({}),
            )
        })
        .collect();
    write_lines(&edge.path("in/a.jsonl"), &first);
    let mut edge_child = edge.spawn();

    // A shared-state member whose only sink is a file: everything it commits was written.
    let member = AgentDir::new();
    member.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
[sources.bus]
type = "kafka"
brokers = ["{brokers}"]
topics = ["audit"]
group_id = "commit-test"
state = "shared"
[sinks.events]
type = "file"
path = "{{dir}}/events.jsonl"
records = "events"
"#
    ));
    let mut child = member.spawn();
    wait_until(Duration::from_secs(60), "the first records", || {
        crate::util::count_lines(&member.path("events.jsonl")) >= first.len()
    });
    terminate(&mut child, Duration::from_secs(30));

    // Restarted, it reads only what came after: the offsets were committed on the way out.
    let second: Vec<Value> = (0..30)
        .map(|i| {
            record(
                &format!("b{i}"),
                "2026-11-20T10:05:00Z",
                &format!("u{}", i % 5),
                "s",
                json!({}),
            )
        })
        .collect();
    write_lines(&edge.path("in/b.jsonl"), &second);
    let mut child = member.spawn();
    wait_until(Duration::from_secs(60), "the second records", || {
        crate::util::count_lines(&member.path("events.jsonl")) >= first.len() + second.len()
    });
    std::thread::sleep(Duration::from_secs(2));
    terminate(&mut child, Duration::from_secs(30));
    terminate(&mut edge_child, Duration::from_secs(30));
    let ids: Vec<String> = crate::util::read_json_lines(&member.path("events.jsonl"))
        .iter()
        .map(|event| event["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        first.len() + second.len(),
        "nothing read twice: {}",
        member.log()
    );
}

#[test]
fn detector_tier_of_three_survives_a_kill_and_a_newcomer() {
    let cluster = MockCluster::new(3).unwrap();
    cluster.create_topic("audit", 6, 3).unwrap();
    // The mock has no CreateTopics: the state topic exists beforehand, as an operator may make it.
    cluster
        .create_topic("detectors.aiwarden-state", 1, 3)
        .unwrap();
    fleet::run_fleet(
        &cluster.bootstrap_servers(),
        "audit",
        6,
        "6s",
        fleet::Coordinator::Barrier,
    );
}

#[test]
fn a_detector_refuses_a_source_it_would_not_run() {
    let agent = AgentDir::new();
    let config = agent.write_config(
        r#"
[sources.bus]
type = "kafka"
brokers = ["127.0.0.1:9"]
topics = ["audit"]
group_id = "detectors"
[sources.gateway]
type = "file"
include = ["{dir}/in/*.jsonl"]
[sinks.alerts]
type = "file"
path = "{dir}/alerts.jsonl"
"#,
    );
    for command in ["check-config", "run"] {
        let output = std::process::Command::new(crate::util::binary())
            .args([command, "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("sources.gateway.type") && stderr.contains("`bus`"),
            "{command}: {stderr}"
        );
    }
}

/// Produce canonical records keyed by user, as the edge's `kafka` sink would.
fn produce(brokers: &str, topic: &str, records: &[Value]) {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .create()
        .unwrap();
    for record in records {
        let key = record["user_id"].as_str().unwrap().to_string();
        let payload = record.to_string();
        producer
            .send(BaseRecord::to(topic).key(&key).payload(&payload))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

#[test]
fn sighup_reaches_every_partitions_engine() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 3, 1).unwrap();
    cluster.create_topic("reload.aiwarden-state", 1, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let member = AgentDir::new();
    std::fs::create_dir_all(member.path("rules.d")).unwrap();
    let threshold = |above: u32| {
        format!(
            "id = \"mcp-volume\"\n[threshold]\ntiers = [{{ window = \"10m\", above = {above} }}]\n"
        )
    };
    std::fs::write(member.path("rules.d/mcp.toml"), threshold(50)).unwrap();
    member.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
[detect]
overrides_dir = "{{dir}}/rules.d"
[sources.bus]
type = "kafka"
brokers = ["{brokers}"]
topics = ["audit"]
group_id = "reload"
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
    ));
    let mut child = member.spawn();
    wait_until(Duration::from_secs(60), "all three partitions", || {
        member.log().matches("Partition assigned.").count() >= 3
    });
    // Users spread over the three partitions; ten calls each stay under the threshold of 50.
    let users: Vec<String> = (0..9).map(|u| format!("user{u}@acme.example")).collect();
    let calls = |from: usize, count: usize| -> Vec<Value> {
        (from..from + count)
            .flat_map(|step| {
                users.iter().map(move |user| {
                    record(
                        &format!("{user}-{step}"),
                        &format!("2026-11-20T10:{:02}:{:02}Z", step / 12, step % 12 * 5),
                        user,
                        &format!("s-{user}"),
                        json!({"event_type": "mcp_call"}),
                    )
                })
            })
            .collect()
    };
    produce(&brokers, "audit", &calls(0, 10));
    wait_until(Duration::from_secs(60), "the first calls", || {
        crate::util::count_lines(&member.path("events.jsonl")) >= 10 * users.len()
    });
    // Above 5 now: a changed rule starts afresh, so six more calls per session fire it in every
    // partition only if every partition's engine took the new rule.
    std::fs::write(member.path("rules.d/mcp.toml"), threshold(5)).unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_until(Duration::from_secs(30), "the reload", || {
        member
            .log()
            .contains("Rules reloaded into every partition's engine.")
    });
    produce(&brokers, "audit", &calls(10, 6));
    wait_until(Duration::from_secs(60), "an alert per session", || {
        let alerts = crate::util::read_json_lines(&member.path("alerts.jsonl"));
        users.iter().all(|user| {
            alerts
                .iter()
                .any(|alert| alert["entity_key"] == format!("s-{user}").as_str())
        })
    });
    assert!(terminate(&mut child, Duration::from_secs(30)).success());
    let log = member.log();
    let reload_lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Rules reloaded into every partition's engine."))
        .collect();
    assert!(
        reload_lines
            .iter()
            .any(|line| line.contains("\"partitions\":3")),
        "{reload_lines:?}"
    );
}

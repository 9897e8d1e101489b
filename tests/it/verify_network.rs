//! The evidence chain through the network sinks other than HEC, each checked where its records
//! end up: the Sentinel rows the strict mock stored (only the columns the DCR declares), the
//! Elastic documents as a `_search` gives them back, the file a real rsyslog wrote, a Kafka topic
//! dumped one value per line; and a quiet HEC stream that is signed by the driver's timer rather
//! than by a stop.

use crate::mock::elastic::ElasticMock;
use crate::mock::sentinel::{SentinelMock, CLIENT_ID, DCR, TENANT};
use crate::mock::splunk_hec::HecMock;
use crate::syslog::rsyslog::Daemon;
use crate::util::{read_json_lines, terminate, wait_until, write_lines, AgentDir};
use crate::verify::{aiwarden, events, run_agent, verify, write};
use serde_json::{json, Value};
use std::time::Duration;

/// An agent directory with a checkpoint key made by `keygen`.
fn keyed_agent() -> AgentDir {
    let agent = AgentDir::new();
    let key = agent.path("checkpoint.key");
    let made = aiwarden(&["keygen", "checkpoint", "--key-file", key.to_str().unwrap()]);
    assert!(made.status.success(), "{made:?}");
    agent
}

const EVIDENCE: &str = r#"
[evidence]
enabled = true
signing_key_file = "{dir}/checkpoint.key"
checkpoint_every = 40
"#;

/// A stdin agent run twice (a restart) over 200 events into `sink`.
fn run_twice(agent: &AgentDir, sink: &str) {
    agent.write_config(&format!(
        "[agent]\nstate_dir = \"{{dir}}/state\"\n[sources.in]\ntype = \"stdin\"\n{sink}{EVIDENCE}"
    ));
    run_agent(agent, &events(0, 120));
    run_agent(agent, &events(120, 200));
}

#[test]
fn a_quiet_hec_stream_is_signed_after_checkpoint_interval_without_a_stop() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(HecMock::start("t0k3n", false, 0));
    let agent = keyed_agent();
    std::fs::create_dir(agent.path("in")).unwrap();
    write_lines(&agent.path("in/audit.jsonl"), &events(0, 3));
    agent.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
[sources.audit]
type = "file"
include = ["{{dir}}/in/*.jsonl"]
[sinks.splunk]
type = "splunk_hec"
endpoint = "{endpoint}"
token = "t0k3n"
records = "events"
[sinks.splunk.batch]
timeout = "50ms"
[evidence]
enabled = true
signing_key_file = "{{dir}}/checkpoint.key"
checkpoint_interval = "1s"
"#,
        endpoint = mock.endpoint()
    ));
    let mut child = agent.spawn();
    // Without the timer the three events would wait for a fourth record or a stop.
    wait_until(
        Duration::from_secs(30),
        "a checkpoint of the three events while the agent idles",
        || {
            let stored: Vec<Value> = mock.accepted().iter().map(|e| e["event"].clone()).collect();
            stored.len() >= 4
                && stored
                    .last()
                    .is_some_and(|event| event["record_type"] == "aiwarden_checkpoint")
        },
    );
    let stored: Vec<Value> = mock.accepted().iter().map(|e| e["event"].clone()).collect();
    let export = agent.path("splunk-export.jsonl");
    write(&export, &stored);
    let (code, report) = verify(&agent, &export, &["--from-seq", "1"]);
    terminate(&mut child, Duration::from_secs(20));
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("proven by a checkpoint    3\n"), "{report}");
    let last = mock.accepted().last().cloned().unwrap();
    assert_eq!(last["sourcetype"], "aiwarden:checkpoint");
}

/// Rows as `az monitor log-analytics query -o json` gives them back: system columns added,
/// datetimes with 7 fraction digits, dynamic columns as JSON text.
fn as_log_analytics(row: &Value, table: &str) -> Value {
    let mut row = row.clone();
    row["TenantId"] = json!("72f988bf-0000-0000-0000-000000000000");
    row["Type"] = json!(table);
    row["_ResourceId"] = json!("");
    for column in ["Chain", "Checkpoint", "Extra"] {
        if !row[column].is_null() {
            row[column] = json!(row[column].to_string());
        }
    }
    if let Some(time) = row["TimeGenerated"].as_str() {
        row["TimeGenerated"] = json!(time.replace('Z', "0000Z"));
    }
    row
}

#[test]
fn sentinel_rows_keep_their_chain_columns_and_verify() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(SentinelMock::start("s3cr3t", Duration::from_secs(3600)));
    let agent = keyed_agent();
    run_twice(
        &agent,
        &format!(
            r#"
[sinks.sentinel]
type = "sentinel"
tenant_id = "{TENANT}"
client_id = "{CLIENT_ID}"
client_secret = "s3cr3t"
authority_host = "{url}"
ingestion_endpoint = "{url}"
dcr_immutable_id = "{DCR}"
records = "events"
[sinks.sentinel.batch]
timeout = "50ms"
"#,
            url = mock.url()
        ),
    );
    // The mock keeps only declared columns, as Log Analytics does: an undeclared `Chain`
    // would be missing here and every row unstamped.
    assert_eq!(mock.violations(), Vec::<String>::new());
    let rows = mock.rows("Custom-AIWardenEvents_CL");
    assert!(rows.iter().all(|row| row["Chain"]["seq"].is_u64()));
    let checkpoints = rows
        .iter()
        .filter(|row| row["RecordType"] == "aiwarden_checkpoint")
        .count();
    assert_eq!(
        checkpoints, 5,
        "every 40 records, and the last at each stop"
    );
    let export: Vec<Value> = rows
        .iter()
        .map(|row| as_log_analytics(row, "AIWardenEvents_CL"))
        .collect();
    let path = agent.path("sentinel.json");
    std::fs::write(&path, serde_json::to_string(&export).unwrap()).unwrap();
    let (code, report) = verify(&agent, &path, &["--from-seq", "1"]);
    assert_eq!(code, 0, "{report}");

    let mut edited = export.clone();
    let position = edited
        .iter()
        .position(|row| row["EventId"] == "e-0077")
        .unwrap();
    edited[position]["PromptTokens"] = json!(1);
    std::fs::write(&path, serde_json::to_string(&edited).unwrap()).unwrap();
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("altered records"), "{report}");
}

/// Documents as `GET logs-aiwarden.events-*/_search` answers: hits with `_index`, `_id` and
/// `_source`, in the index's order rather than the chain's.
fn as_search_response(documents: &[(String, Value)], index: &str) -> Value {
    let hits: Vec<Value> = documents
        .iter()
        .rev()
        .map(|(id, source)| json!({"_index": index, "_id": id, "_score": 1.0, "_source": source}))
        .collect();
    json!({
        "took": 3,
        "timed_out": false,
        "hits": {"total": {"value": hits.len(), "relation": "eq"}, "max_score": 1.0, "hits": hits},
    })
}

#[test]
fn elastic_documents_from_a_search_export_verify_with_their_checkpoints() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let api_key = "ZXZpZGVuY2U6dGVzdA==";
    let mock = runtime.block_on(ElasticMock::start(&format!("ApiKey {api_key}")));
    let agent = keyed_agent();
    run_twice(
        &agent,
        &format!(
            r#"
[sinks.es]
type = "elastic"
endpoint = "{endpoint}"
auth = {{ strategy = "api_key", api_key = "{api_key}" }}
records = "events"
[sinks.es.batch]
timeout = "50ms"
"#,
            endpoint = mock.endpoint()
        ),
    );
    assert_eq!(mock.violations(), Vec::<String>::new());
    // Checkpoints go to the events data stream with the chain they sign.
    let stream = "logs-aiwarden.events-default";
    let documents: Vec<(String, Value)> = mock.documents(stream).into_iter().collect();
    assert_eq!(documents.len(), 205, "200 events and 5 checkpoints");
    assert!(documents
        .iter()
        .all(|(_, document)| document["aiwarden"]["chain"]["seq"].is_u64()));
    let checkpoints = documents
        .iter()
        .filter(|(_, document)| document["aiwarden"]["record_type"] == "aiwarden_checkpoint")
        .count();
    assert_eq!(
        checkpoints, 5,
        "every 40 records, and the last at each stop"
    );
    let path = agent.path("elastic-search.json");
    std::fs::write(&path, as_search_response(&documents, stream).to_string()).unwrap();
    let (code, report) = verify(&agent, &path, &["--from-seq", "1"]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("checkpoints verified      5"), "{report}");
    // Every record up to the last checkpoint's head; that checkpoint record itself comes after.
    assert!(report.contains("proven by a checkpoint    204"), "{report}");

    // A token count edited in the index is an altered record.
    let mut edited = documents.clone();
    let (_, document) = edited.iter_mut().find(|(id, _)| id == "e-0077").unwrap();
    document["gen_ai"]["usage"]["input_tokens"] = json!(1);
    document["aiwarden"]["event"]["prompt_tokens"] = json!(1);
    std::fs::write(&path, as_search_response(&edited, stream).to_string()).unwrap();
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("altered records"), "{report}");
}

#[test]
fn what_rsyslog_wrote_to_its_file_verifies() {
    let agent = keyed_agent();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rsyslog_dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_writing(rsyslog_dir.path(), port, "RSYSLOG_FileFormat");
    run_twice(
        &agent,
        &format!(
            r#"
[sinks.syslog]
type = "syslog"
address = "127.0.0.1:{port}"
records = "both"
hostname = "gw-rsyslog"
[sinks.syslog.batch]
timeout = "50ms"
"#
        ),
    );
    let file = daemon.received_path();
    // rsyslog writes on its own time: wait for the last checkpoint of the second run.
    wait_until(
        Duration::from_secs(20),
        "rsyslog to write everything",
        || {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            text.contains("\"event_id\":\"e-0199\"")
                && text
                    .lines()
                    .last()
                    .is_some_and(|line| line.contains("aiwarden_checkpoint"))
        },
    );
    let lines: Vec<String> = daemon.received();
    assert!(
        lines[0].contains(" gw-rsyslog aiwarden["),
        "RSYSLOG_FileFormat: {}",
        lines[0]
    );
    let (code, report) = verify(&agent, &file, &["--from-seq", "1"]);
    assert_eq!(code, 0, "{report}\n{}", daemon.log());
    assert!(report.contains("checkpoints verified      5"), "{report}");

    // A line deleted from the file is a gap.
    let kept: String = lines
        .iter()
        .filter(|line| !line.contains("\"event_id\":\"e-0042\""))
        .map(|line| format!("{line}\n"))
        .collect();
    let tampered = agent.path("tampered.log");
    std::fs::write(&tampered, kept).unwrap();
    let (code, report) = verify(&agent, &tampered, &[]);
    assert_eq!(code, 1, "{report}");
}

#[test]
fn a_kafka_topic_dump_verifies() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::ClientConfig;

    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 3, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let agent = keyed_agent();
    run_twice(
        &agent,
        &format!(
            r#"
[sinks.bus]
type = "kafka"
brokers = ["{brokers}"]
topic = "audit"
records = "events"
batch = {{ timeout = "50ms" }}
"#
        ),
    );
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "verify-dump")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&["audit"]).unwrap();
    // 200 events and 5 checkpoints, as `kcat -C -t audit -e` would dump them.
    let mut dump = Vec::new();
    let mut checkpoint_keys = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while dump.len() < 205 && std::time::Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
            let value: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            if value["record_type"] == "aiwarden_checkpoint" {
                checkpoint_keys.push(String::from_utf8_lossy(message.key().unwrap()).into_owned());
            }
            dump.push(value);
        }
    }
    assert_eq!(dump.len(), 205);
    let agent_id = std::fs::read_to_string(agent.path("state/evidence/agent_id")).unwrap();
    assert_eq!(checkpoint_keys, vec![agent_id.trim().to_string(); 5]);
    let path = agent.path("topic.jsonl");
    write(&path, &dump);
    let (code, report) = verify(&agent, &path, &["--from-seq", "1"]);
    assert_eq!(code, 0, "{report}");
    let lines = read_json_lines(&path);
    assert!(lines.iter().all(|line| line["chain"]["seq"].is_u64()));
}

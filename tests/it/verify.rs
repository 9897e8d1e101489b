//! The evidence chain end to end with the real binary: keys made by `keygen`, an agent run twice
//! (a restart) writing pseudonymised, stamped records, and `verify` over the output as each SIEM
//! would export it, untouched and tampered with. The other network sinks are in
//! `verify_network.rs`.

use crate::util::{binary, read_json_lines, record, AgentDir};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const CONFIG: &str = r#"
[agent]
state_dir = "{dir}/state"
[sources.in]
type = "stdin"
[sinks.out]
type = "file"
path = "{dir}/out.jsonl"
records = "both"
[privacy]
pseudonymise = true
key_file = "{dir}/pseudonym.keys"
[evidence]
enabled = true
signing_key_file = "{dir}/checkpoint.key"
checkpoint_every = 40
"#;

pub(crate) fn aiwarden(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

pub(crate) fn run_agent(agent: &AgentDir, records: &[Value]) {
    let mut child = Command::new(binary())
        .args(["run", "--config"])
        .arg(agent.path("aiwarden.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for record in records {
            writeln!(stdin, "{record}").unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn events(from: usize, to: usize) -> Vec<Value> {
    (from..to)
        .map(|n| {
            record(
                &format!("e-{n:04}"),
                &format!("2026-11-23T10:{:02}:{:02}Z", n / 60, n % 60),
                &format!("person{}@acme.example", n % 7),
                &format!("s-{}", n % 5),
                json!({"ip_address": "10.20.30.40"}),
            )
        })
        .collect()
}

/// An agent that ran twice (stopped in between) over 200 events; keys made by `keygen`.
fn evidence_run() -> AgentDir {
    let agent = AgentDir::new();
    let key = agent.path("checkpoint.key");
    let made = aiwarden(&["keygen", "checkpoint", "--key-file", key.to_str().unwrap()]);
    assert!(made.status.success(), "{made:?}");
    let keys = agent.path("pseudonym.keys");
    let made = aiwarden(&[
        "keygen",
        "pseudonym",
        "--key-file",
        keys.to_str().unwrap(),
        "--id",
        "k1",
    ]);
    assert!(made.status.success(), "{made:?}");
    agent.write_config(CONFIG);
    run_agent(&agent, &events(0, 120));
    run_agent(&agent, &events(120, 200));
    agent
}

pub(crate) fn verify(agent: &AgentDir, file: &Path, extra: &[&str]) -> (i32, String) {
    let public = agent.path("checkpoint.key.pub");
    let mut args = vec![
        "verify",
        file.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = aiwarden(&args);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

pub(crate) fn write(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    std::fs::write(path, text).unwrap();
}

#[test]
fn records_leave_pseudonymised_and_masked_and_lookup_finds_them() {
    let agent = evidence_run();
    let lines = read_json_lines(&agent.path("out.jsonl"));
    let text = std::fs::read_to_string(agent.path("out.jsonl")).unwrap();
    assert!(
        !text.contains("acme.example"),
        "a real identity left the host"
    );
    assert!(!text.contains("10.20.30.40"));
    let event = lines.iter().find(|l| l["event_id"] == "e-0003").unwrap();
    assert_eq!(event["ip_address"], "10.20.30.0");
    let keys = agent.path("pseudonym.keys");
    let lookup = aiwarden(&[
        "pseudonym",
        "lookup",
        "person3@acme.example",
        "--key-file",
        keys.to_str().unwrap(),
    ]);
    assert!(lookup.status.success(), "{lookup:?}");
    let printed = String::from_utf8(lookup.stdout).unwrap();
    let pseudonym = printed.trim().split('\t').nth(1).unwrap();
    assert!(pseudonym.starts_with("psn:k1:"));
    assert_eq!(event["user_id"], pseudonym);
}

#[test]
fn a_chain_across_a_restart_verifies_with_duplicates_in_any_order() {
    let agent = evidence_run();
    let lines = read_json_lines(&agent.path("out.jsonl"));
    let seqs: Vec<u64> = lines
        .iter()
        .map(|l| l["chain"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "the restart continued the chain"
    );
    let checkpoints = lines
        .iter()
        .filter(|l| l["record_type"] == "aiwarden_checkpoint")
        .count();
    // One per 40 records in each run (120 and 80), where each run ends on a checkpoint.
    assert_eq!(checkpoints, 5);
    let (code, report) = verify(&agent, &agent.path("out.jsonl"), &["--from-seq", "1"]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("OK agent"), "{report}");

    // At-least-once delivery: resent copies, shuffled.
    let mut resent = lines.clone();
    resent.extend(lines[10..25].iter().cloned());
    resent.reverse();
    let path = agent.path("resent.jsonl");
    write(&path, &resent);
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("duplicates (accepted)     15\n"),
        "{report}"
    );
}

#[test]
fn verify_detects_a_deleted_an_edited_and_a_reordered_record() {
    let agent = evidence_run();
    let lines = read_json_lines(&agent.path("out.jsonl"));
    let position = |seq: u64| {
        lines
            .iter()
            .position(|l| l["chain"]["seq"] == seq && l["record_type"].is_null())
            .unwrap()
    };

    let mut deleted = lines.clone();
    deleted.remove(position(17));
    let path = agent.path("deleted.jsonl");
    write(&path, &deleted);
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("gaps (missing seq)        17\n"),
        "{report}"
    );

    let mut edited = lines.clone();
    edited[position(30)]["prompt_tokens"] = json!(1);
    let path = agent.path("edited.jsonl");
    write(&path, &edited);
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("altered records           30 ("),
        "{report}"
    );

    let mut reordered = lines.clone();
    let (a, b) = (position(50), position(51));
    let stamp_a = reordered[a]["chain"].clone();
    reordered[a]["chain"] = reordered[b]["chain"].clone();
    reordered[b]["chain"] = stamp_a;
    let path = agent.path("reordered.jsonl");
    write(&path, &reordered);
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("altered records           50 ("),
        "{report}"
    );
}

#[test]
fn checkpoints_under_another_key_are_forged_and_a_truncated_export_is_unproven() {
    let agent = evidence_run();
    let other = agent.path("other.key");
    assert!(aiwarden(&[
        "keygen",
        "checkpoint",
        "--key-file",
        other.to_str().unwrap()
    ])
    .status
    .success());
    let out = agent.path("out.jsonl");
    let output = aiwarden(&[
        "verify",
        out.to_str().unwrap(),
        "--public-key",
        agent.path("other.key.pub").to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("checkpoints verified      0"), "{report}");

    // The first 30 records only: intact, but before the first checkpoint.
    let lines = read_json_lines(&out);
    let path = agent.path("head.jsonl");
    write(&path, &lines[..30]);
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 3, "{report}");
    assert!(report.contains("UNPROVEN"), "{report}");
}

#[test]
fn splunk_and_elastic_exports_of_the_output_verify() {
    let agent = evidence_run();
    let lines = read_json_lines(&agent.path("out.jsonl"));
    // `splunk search ... -output json`: one result per line, the event JSON in `_raw`.
    let splunk: Vec<Value> = lines
        .iter()
        .map(|l| json!({"preview": false, "result": {"_raw": l.to_string(), "sourcetype": "aiwarden:event"}}))
        .collect();
    let path = agent.path("splunk.json");
    write(&path, &splunk);
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 0, "{report}");
    // Splunk `outputcsv` with `_raw`.
    let mut csv = String::from("_time,_raw\n");
    for line in &lines {
        let raw = line.to_string().replace('"', "\"\"");
        csv.push_str(&format!("2026-11-23T10:00:00.000+00:00,\"{raw}\"\n"));
    }
    let path = agent.path("splunk.csv");
    std::fs::write(&path, csv).unwrap();
    let (code, report) = verify(&agent, &path, &[]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("records verified"), "{report}");
}

#[test]
fn a_quiet_stream_is_signed_after_checkpoint_interval_without_a_stop() {
    let agent = AgentDir::new();
    let key = agent.path("checkpoint.key");
    assert!(
        aiwarden(&["keygen", "checkpoint", "--key-file", key.to_str().unwrap()])
            .status
            .success()
    );
    std::fs::create_dir(agent.path("in")).unwrap();
    crate::util::write_lines(&agent.path("in/audit.jsonl"), &events(0, 3));
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
[evidence]
enabled = true
signing_key_file = "{dir}/checkpoint.key"
checkpoint_interval = "1s"
"#,
    );
    let mut child = agent.spawn();
    crate::util::wait_until(
        std::time::Duration::from_secs(20),
        "a checkpoint while the agent idles",
        || {
            read_json_lines(&agent.path("out.jsonl"))
                .iter()
                .any(|l| l["record_type"] == "aiwarden_checkpoint")
        },
    );
    let (code, report) = verify(&agent, &agent.path("out.jsonl"), &["--from-seq", "1"]);
    crate::util::terminate(&mut child, std::time::Duration::from_secs(20));
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("proven by a checkpoint    3\n"), "{report}");
}

/// The network sinks stamp on intake, before the durable queue: an agent run twice into the
/// strict HEC mock, with `[privacy]` and `[evidence]` on, gives an export that verifies.
#[test]
fn a_splunk_hec_sink_sends_pseudonymised_stamped_records_that_verify() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mock = runtime.block_on(crate::mock::splunk_hec::HecMock::start("t0k3n", false, 0));
    let agent = AgentDir::new();
    let key = agent.path("checkpoint.key");
    assert!(
        aiwarden(&["keygen", "checkpoint", "--key-file", key.to_str().unwrap()])
            .status
            .success()
    );
    let keys = agent.path("pseudonym.keys");
    assert!(aiwarden(&[
        "keygen",
        "pseudonym",
        "--key-file",
        keys.to_str().unwrap(),
        "--id",
        "k1"
    ])
    .status
    .success());
    agent.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"
[sources.in]
type = "stdin"
[sinks.splunk]
type = "splunk_hec"
endpoint = "{endpoint}"
token = "t0k3n"
records = "both"
[sinks.splunk.batch]
timeout = "50ms"
[privacy]
pseudonymise = true
key_file = "{{dir}}/pseudonym.keys"
[evidence]
enabled = true
signing_key_file = "{{dir}}/checkpoint.key"
checkpoint_every = 40
"#,
        endpoint = mock.endpoint()
    ));
    run_agent(&agent, &events(0, 120));
    run_agent(&agent, &events(120, 200));

    let accepted = mock.accepted();
    let text = serde_json::to_string(&accepted).unwrap();
    assert!(
        !text.contains("acme.example"),
        "a real identity left the host"
    );
    assert!(
        !text.contains("10.20.30.40"),
        "an unmasked address left the host"
    );
    let stored: Vec<Value> = accepted
        .iter()
        .map(|envelope| envelope["event"].clone())
        .collect();
    assert!(stored
        .iter()
        .any(|event| event["record_type"] == "aiwarden_checkpoint"));
    assert!(stored
        .iter()
        .filter(|event| event["event_id"].is_string())
        .all(|event| event["chain"]["seq"].is_u64()));
    let export = agent.path("splunk-export.jsonl");
    write(&export, &stored);
    let (code, report) = verify(&agent, &export, &[]);
    assert_eq!(code, 0, "{report}");

    // One event taken out of the export is a gap.
    let mut missing = stored.clone();
    let position = missing
        .iter()
        .position(|event| event["event_id"] == "e-0050")
        .unwrap();
    missing.remove(position);
    write(&export, &missing);
    let (code, report) = verify(&agent, &export, &[]);
    assert_eq!(code, 1, "{report}");
}

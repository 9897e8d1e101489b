//! The command line: version, check-config, demo.

use crate::util::{binary, AgentDir};
use serde_json::Value;
use std::process::Command;

#[test]
fn version_prints_the_crate_version() {
    let output = Command::new(binary()).arg("--version").output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("aiwarden {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_prints_the_effective_configuration() {
    let agent = AgentDir::new();
    let config = agent.write_config(
        r#"
[agent]
state_dir = "{dir}/state"
[sources.audit]
type = "file"
include = ["{dir}/*.jsonl"]
"#,
    );
    let output = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("[sources.audit]"), "{stdout}");
    assert!(
        stdout.contains("deployment_tag = \"claude_deployment\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("[sinks.stdout]"),
        "the default sink is shown: {stdout}"
    );
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn check_config_names_file_key_and_reason_and_exits_2() {
    let agent = AgentDir::new();
    let config = agent.write_config(
        r#"
[sources.audit]
type = "file"
include = ["{dir}/*.jsonl"]
max_line_bytes = "big"
"#,
    );
    let output = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&config.display().to_string()), "{stderr}");
    assert!(stderr.contains("sources.audit"), "{stderr}");
    assert!(
        stderr.contains("max_line_bytes") || stderr.contains("invalid type"),
        "{stderr}"
    );
}

#[test]
fn check_config_rejects_a_broken_rules_directory() {
    let agent = AgentDir::new();
    std::fs::create_dir(agent.path("rules")).unwrap();
    std::fs::write(
        agent.path("rules/broken.toml"),
        "id = \"my-rule\"\nversion = 1\ntitle = \"t\"\nseverity = \"urgent\"\nkind = \"match\"\n",
    )
    .unwrap();
    let config = agent.write_config(
        r#"
[detect]
rules_dir = "{dir}/rules"
[sources.audit]
type = "file"
include = ["{dir}/*.jsonl"]
"#,
    );
    let output = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(stderr.contains("urgent"), "{stderr}");
}

#[test]
fn demo_raises_exactly_the_planted_alerts() {
    let output = Command::new(binary())
        .args(["demo", "--json"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let alerts: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut found: Vec<(String, String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule_id"].as_str().unwrap().to_string(),
                a["entity_key"].as_str().unwrap().to_string(),
                a["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    let expected = vec![
        (
            "mcp-volume".to_string(),
            "s-demo-burst".to_string(),
            "high".to_string(),
        ),
        (
            "mcp-volume".to_string(),
            "s-demo-burst".to_string(),
            "medium".to_string(),
        ),
        (
            "restricted-unauthorised".to_string(),
            "eve@acme.example".to_string(),
            "high".to_string(),
        ),
        (
            "token-spike".to_string(),
            "mallory@acme.example".to_string(),
            "low".to_string(),
        ),
    ];
    assert_eq!(found, expected);
    for alert in &alerts {
        assert_eq!(alert["source"], "aiwarden");
        assert_eq!(alert["deployment"], "claude_deployment");
        assert_eq!(alert["auto_blocked"], false);
        assert!(!alert["evidence"]["event_ids"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("2 lines dead-lettered"), "{stderr}");
}

#[test]
fn check_config_never_prints_a_secret() {
    let agent = AgentDir::new();
    let config = agent.write_config(
        r#"
[sources.audit]
type = "file"
include = ["{dir}/*.jsonl"]
[sinks.splunk]
type = "splunk_hec"
endpoint = "https://splunk.example.com:8088"
token = "hec-literal-5ecret-value"
[sinks.es]
type = "elastic"
endpoint = "https://es.example.com:9200"
auth = { strategy = "api_key", api_key = { env = "AIWARDEN_TEST_ES_KEY" } }
"#,
    );
    let output = Command::new(binary())
        .args(["check-config", "--config"])
        .arg(&config)
        .env("AIWARDEN_TEST_ES_KEY", "es-env-5ecret-value")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!all.contains("5ecret"), "{all}");
    assert!(all.contains("token = \"***\""), "{all}");
    assert!(
        all.contains("AIWARDEN_TEST_ES_KEY"),
        "where the secret comes from is shown: {all}"
    );
}

#[test]
fn demo_into_a_reader_that_goes_away_stops_instead_of_retrying() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};
    let mut child = Command::new(binary())
        .args(["demo", "--json", "--events"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader is dropped here, like `head -1` exiting: the next write gets a broken pipe.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the agent kept retrying a closed stdout");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(log.contains("Output closed by its reader"), "{log}");
    assert!(!log.contains("retrying"), "{log}");
}

/// `run` warns at start that a syslog sink with CEF payloads or UDP carries no evidence chain;
/// `check-config` says the same before deployment, and nothing for a chained sink.
#[test]
fn check_config_warns_when_a_syslog_sink_carries_no_chain() {
    let agent = AgentDir::new();
    let key = agent.path("checkpoint.key");
    let made = Command::new(binary())
        .args(["keygen", "checkpoint", "--key-file"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let check = |sinks: &str| {
        let config = agent.write_config(&format!(
            "[agent]\nstate_dir = \"{{dir}}/state\"\n[sources.in]\ntype = \"stdin\"\n{sinks}\n\
             [evidence]\nenabled = true\nsigning_key_file = \"{{dir}}/checkpoint.key\"\n"
        ));
        let output = Command::new(binary())
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("configuration OK"),
            "{output:?}"
        );
        stderr
    };
    let warned = check(
        r#"
[sinks.arcsight]
type = "syslog"
address = "127.0.0.1:6514"
format = "cef"
[sinks.datagrams]
type = "syslog"
address = "127.0.0.1:514"
transport = "udp"
[sinks.chained]
type = "syslog"
address = "127.0.0.1:6515"
"#,
    );
    let warnings: Vec<&str> = warned
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 2, "{warned}");
    assert!(
        warnings[0].starts_with("warning: sink arcsight: [evidence] is on")
            && warnings[0].contains("CEF"),
        "{warned}"
    );
    assert!(
        warnings[1].starts_with("warning: sink datagrams: ") && warnings[1].contains("UDP"),
        "{warned}"
    );
    let quiet = check(
        r#"
[sinks.chained]
type = "syslog"
address = "127.0.0.1:6515"
"#,
    );
    assert!(!quiet.contains("warning"), "{quiet}");
}

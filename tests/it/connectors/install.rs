//! `aiwarden connectors install elastic` against strict mocks of Elasticsearch and Kibana.

use super::read_json;
use crate::mock::elastic_admin::ElasticAdminMock;
use crate::util::{binary, AgentDir};
use std::process::Command;

/// Basic auth `elastic:changeme`, as the mock expects it.
const BASIC: &str = "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==";

fn config(dir: &AgentDir, mock: &ElasticAdminMock, password: &str) -> std::path::PathBuf {
    dir.write_config(&format!(
        r#"
[agent]
state_dir = "{{dir}}/state"

[sources.audit]
type = "stdin"

[sinks.es]
type = "elastic"
endpoint = "{endpoint}"
auth = {{ strategy = "basic", user = "elastic", password = "{password}" }}
"#,
        endpoint = mock.elasticsearch_url()
    ))
}

fn install(config: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(["connectors", "install", "elastic", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_templates_saved_objects_and_rules_in_dependency_order() {
    let mock = ElasticAdminMock::start(BASIC).await;
    let dir = AgentDir::new();
    let path = config(&dir, &mock, "changeme");
    let kibana = mock.kibana_url();
    let output = tokio::task::spawn_blocking(move || {
        install(&path, &["--kibana", &kibana, "--saved-objects", "--rules"])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(mock.violations().is_empty(), "{:#?}", mock.violations());
    assert_eq!(
        mock.log(),
        [
            "PUT /_ilm/policy/aiwarden",
            "PUT /_component_template/aiwarden@settings",
            "PUT /_component_template/aiwarden.alerts@mappings",
            "PUT /_component_template/aiwarden.events@mappings",
            "PUT /_index_template/logs-aiwarden.alerts",
            "PUT /_index_template/logs-aiwarden.events",
            "POST /api/saved_objects/_import",
            "POST /api/detection_engine/rules/_import",
        ]
    );
    // What was installed is what connectors/ holds.
    assert_eq!(
        mock.index_templates()["logs-aiwarden.events"],
        read_json("connectors/elastic/index_templates/logs-aiwarden.events.json")
    );
    assert_eq!(mock.components().len(), 3);
    let objects = mock.saved_objects();
    assert!(objects.contains(&("dashboard".to_string(), "aiwarden-governance".to_string())));
    assert!(objects.contains(&("index-pattern".to_string(), "aiwarden-events".to_string())));
    let panels = read_json("connectors/governance/panels.json");
    let searches = objects.iter().filter(|(kind, _)| kind == "search").count();
    assert_eq!(searches, panels["panels"].as_array().unwrap().len());
    let rules = mock.rules();
    let expected = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("connectors/elastic/detection_rules/aiwarden.ndjson"),
    )
    .unwrap()
    .lines()
    .count();
    assert_eq!(rules.len(), expected);
    // Rules with ATLAS tags carry their techniques as threat mapping.
    let injection = rules
        .values()
        .find(|r| r["name"].as_str().unwrap().contains("Prompt injection"))
        .unwrap();
    assert_eq!(injection["threat"][0]["framework"], "MITRE ATLAS");
    assert_eq!(injection["severity"], "critical");
    assert_eq!(injection["risk_score"], 99);
    assert!(stdout.contains("installed index template logs-aiwarden.events"));
    assert!(stdout.contains(&format!("detection rules: {expected} imported")));

    // Running it again updates in place.
    let path = dir.path("aiwarden.toml");
    let again = tokio::task::spawn_blocking(move || install(&path, &[]))
        .await
        .unwrap();
    assert!(again.status.success());
    assert!(mock.violations().is_empty(), "{:#?}", mock.violations());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_names_the_step_and_stops() {
    let mock = ElasticAdminMock::start(BASIC).await;
    let dir = AgentDir::new();
    let path = config(&dir, &mock, "changeme");
    mock.fail_next("/_index_template/", 500);
    let output = tokio::task::spawn_blocking(move || install(&path, &[]))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("PUT /_index_template/logs-aiwarden.alerts: HTTP 500"),
        "{stderr}"
    );
    // Nothing after the failed step was attempted.
    assert_eq!(mock.log().len(), 5, "{:?}", mock.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_and_a_missing_kibana_url_are_reported() {
    let mock = ElasticAdminMock::start(BASIC).await;
    let dir = AgentDir::new();
    let path = config(&dir, &mock, "wrong");
    let output = tokio::task::spawn_blocking(move || install(&path, &[]))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("HTTP 401"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the password leaked: {stderr}");

    let path = dir.path("aiwarden.toml");
    let output = tokio::task::spawn_blocking(move || install(&path, &["--rules"]))
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--kibana"));
}

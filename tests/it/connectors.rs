//! The SIEM-side assets in `connectors/` must match what the sinks send: every field a sink
//! emits is mapped (Elastic), declared (Sentinel) or at least exists where a Splunk file names it,
//! with the same type.

use aiwarden::record::{
    AgentInfo, Alert, AlertEntity, AuditRecord, Classification, EventType, Evidence, Severity,
};
use aiwarden::sinks::elastic::{
    alert_document, data_stream, event_document, DocumentSettings, ALERTS_DATASET, EVENTS_DATASET,
};
use aiwarden::sinks::sentinel::{alert_row, event_row};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

mod catalogue;
mod install;
mod queries;
mod scanner;
mod sentinel;

fn read_json(relative: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// An alert with every optional field set.
fn full_alert() -> Alert {
    Alert {
        alert_id: "9c2f7b8e-0000-5000-8000-000000000001".into(),
        timestamp: chrono::DateTime::from_timestamp(1_795_425_243, 0).unwrap(),
        rule_id: "token-spike".into(),
        rule_version: 3,
        severity: Severity::High,
        title: "Token spike".into(),
        details: "u used 3.2x their average".into(),
        entity: AlertEntity {
            entity_type: "user_id".into(),
            entity_key: "u-1".into(),
            user_id: Some("u-1".into()),
            session_id: Some("s-1".into()),
            department: Some("legal".into()),
            application_id: Some("contract-review".into()),
            real_user_id: None,
        },
        observed: 97_139.5,
        baseline: Some(29_943.1),
        threshold: 89_829.4,
        window: Some("1d".into()),
        evidence: Evidence {
            event_ids: vec!["e-1".into(), "e-2".into()],
            event_count: 45,
        },
        tags: vec!["aiwarden".into(), "ATLAS:AML.T0034".into()],
        source: "aiwarden".into(),
        deployment: "claude_deployment".into(),
        agent: AgentInfo {
            host: "gw-01".into(),
            version: "0.1.0".into(),
        },
        suppressed_count: 2,
        auto_blocked: false,
    }
}

/// An event with every typed field set.
fn full_event() -> AuditRecord {
    let mut record = AuditRecord::new(
        "e-1",
        chrono::DateTime::from_timestamp(1_795_425_243, 0).unwrap(),
        EventType::ApiRequest,
        "u-1",
        "s-1",
    );
    record.application_id = "contract-review".into();
    record.model = "claude-sonnet-4-6".into();
    record.department = Some("legal".into());
    record.prompt_hash = Some("ab".into());
    record.response_hash = Some("cd".into());
    record.prompt_tokens = Some(1840);
    record.completion_tokens = Some(512);
    record.latency_ms = Some(2140);
    record.data_classification = Some(Classification::Confidential);
    record.mcp_integrations = vec!["sharepoint".into()];
    record.mcp_calls = Some(2);
    record.policy_flags = vec!["pii".into()];
    record.security_flags = vec!["x".into()];
    record.ip_address = Some("10.20.30.40".into());
    record.status = Some("success".into());
    record.error_type = Some("none".into());
    record.stop_reason = Some("end_turn".into());
    record.prompt_raw = Some("hello".into());
    record.response_raw = Some("hi".into());
    record
}

/// Leaf paths of a document with the JSON type of their values (arrays: their elements').
fn leaves(value: &Value, prefix: &str, out: &mut BTreeMap<String, &'static str>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaves(child, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                leaves(item, prefix, out);
            }
        }
        Value::Null => {}
        Value::Bool(_) => {
            out.insert(prefix.to_string(), "boolean");
        }
        Value::Number(n) => {
            out.insert(
                prefix.to_string(),
                if n.is_f64() { "float" } else { "integer" },
            );
        }
        Value::String(_) => {
            out.insert(prefix.to_string(), "string");
        }
    }
}

/// Mapped leaf paths of an Elasticsearch mapping with their types.
fn mapped(properties: &Map<String, Value>, prefix: &str, out: &mut BTreeMap<String, String>) {
    for (key, field) in properties {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match field.get("properties").and_then(Value::as_object) {
            Some(children) => mapped(children, &path, out),
            None => {
                out.insert(path, field["type"].as_str().unwrap_or("object").to_string());
            }
        }
    }
}

fn elastic_compatible(json_type: &str, mapping: &str) -> bool {
    match json_type {
        "string" => matches!(
            mapping,
            "keyword" | "constant_keyword" | "text" | "match_only_text" | "ip" | "date"
        ),
        "integer" => matches!(mapping, "long" | "integer" | "double" | "float"),
        "float" => matches!(mapping, "double" | "float"),
        "boolean" => mapping == "boolean",
        _ => false,
    }
}

fn check_elastic(document: &Value, component: &str) {
    let template = read_json(&format!(
        "connectors/elastic/component_templates/{component}.json"
    ));
    let mut fields = BTreeMap::new();
    mapped(
        template["template"]["mappings"]["properties"]
            .as_object()
            .unwrap(),
        "",
        &mut fields,
    );
    let mut emitted = BTreeMap::new();
    leaves(document, "", &mut emitted);
    let mut problems = Vec::new();
    for (path, json_type) in &emitted {
        match fields.get(path) {
            None => problems.push(format!("{path} ({json_type}) is not mapped")),
            Some(mapping) if !elastic_compatible(json_type, mapping) => {
                problems.push(format!("{path} is {json_type} but mapped as {mapping}"))
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{component}: {problems:#?}");
}

#[test]
fn elastic_templates_map_every_field_the_sink_emits() {
    check_elastic(&alert_document(&full_alert()), "aiwarden.alerts@mappings");
    let settings = DocumentSettings {
        namespace: "default".into(),
        host: "gw-01".into(),
        deployment: "claude_deployment".into(),
    };
    let mut event = event_document(&full_event(), &settings, true);
    check_elastic(&event, "aiwarden.events@mappings");
    // An address that is not an IP stays in the canonical record, as a keyword.
    let mut odd = full_event();
    odd.ip_address = Some("unknown".into());
    event = event_document(&odd, &settings, false);
    check_elastic(&event, "aiwarden.events@mappings");
}

#[test]
fn elastic_index_templates_cover_the_streams_and_outrank_the_builtins() {
    for (dataset, kind) in [(ALERTS_DATASET, "alerts"), (EVENTS_DATASET, "events")] {
        let template = read_json(&format!(
            "connectors/elastic/index_templates/logs-aiwarden.{kind}.json"
        ));
        let pattern = template["index_patterns"][0].as_str().unwrap();
        let stream = data_stream(dataset, "default");
        assert!(
            stream.starts_with(pattern.trim_end_matches('*')),
            "{pattern} does not match {stream}"
        );
        assert!(template["priority"].as_u64().unwrap() > 500);
        assert!(template["data_stream"].is_object());
        for component in template["composed_of"].as_array().unwrap() {
            let name = component.as_str().unwrap();
            read_json(&format!(
                "connectors/elastic/component_templates/{name}.json"
            ));
        }
    }
    let settings = read_json("connectors/elastic/component_templates/aiwarden@settings.json");
    assert_eq!(
        settings["template"]["settings"]["index"]["lifecycle"]["name"],
        "aiwarden"
    );
    read_json("connectors/elastic/ilm/aiwarden.json");
}

fn sentinel_compatible(value: &Value, column: &str) -> bool {
    match column {
        "string" => value.is_string(),
        "int" | "long" => value.is_i64() || value.is_u64(),
        "real" => value.is_number(),
        "boolean" => value.is_boolean(),
        "dynamic" => true,
        "datetime" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        _ => false,
    }
}

fn columns(declaration: &Value) -> BTreeMap<String, String> {
    declaration["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn sentinel_tables_and_dcr_declare_every_column_the_sink_sends() {
    let dcr = read_json("connectors/sentinel/dcr.json");
    let tables = read_json("connectors/sentinel/tables.json");
    let deploy = read_json("connectors/sentinel/azuredeploy.json");
    let rows = [
        (
            "Custom-AIWardenAlerts_CL",
            "AIWardenAlerts_CL",
            alert_row(&full_alert()),
        ),
        (
            "Custom-AIWardenEvents_CL",
            "AIWardenEvents_CL",
            event_row(&full_event(), "claude_deployment", "gw-01", true),
        ),
    ];
    for (stream, table, row) in rows {
        let declared = columns(&dcr["properties"]["streamDeclarations"][stream]);
        for (key, value) in row.as_object().unwrap() {
            let column = declared
                .get(key)
                .unwrap_or_else(|| panic!("{stream}: {key} is not declared"));
            assert!(
                value.is_null() || sentinel_compatible(value, column),
                "{stream}: {key} = {value} is not {column}"
            );
        }
        let table_definition = tables["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == table)
            .unwrap_or_else(|| panic!("no table {table}"));
        assert_eq!(
            columns(&table_definition["properties"]["schema"]),
            declared,
            "{table} and the DCR stream agree"
        );
        let flows = dcr["properties"]["dataFlows"].as_array().unwrap();
        assert!(flows.iter().any(|f| f["streams"][0] == stream
            && f["transformKql"] == "source"
            && f["outputStream"] == stream));
        let deployed = deploy["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Microsoft.Insights/dataCollectionRules")
            .unwrap();
        assert_eq!(
            columns(&deployed["properties"]["streamDeclarations"][stream]),
            declared,
            "azuredeploy.json matches dcr.json"
        );
    }
}

/// `[stanza]` → key → value of a Splunk .conf file.
fn conf(relative: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap();
    let mut stanzas = BTreeMap::new();
    let mut current = String::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_string();
            stanzas.entry(current.clone()).or_insert_with(BTreeMap::new);
        } else if let Some((key, value)) = line.split_once('=') {
            stanzas
                .entry(current.clone())
                .or_insert_with(BTreeMap::new)
                .insert(key.trim().to_string(), value.trim().to_string());
        }
    }
    stanzas
}

fn lookup<'a>(value: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(value, |v, key| v.get(key))
}

#[test]
fn splunk_props_name_only_fields_the_hec_sink_sends() {
    let props = conf("connectors/splunk/default/props.conf");
    let alert = serde_json::to_value(full_alert()).unwrap();
    let event =
        serde_json::to_value(aiwarden::record::RecordView::without_content(&full_event())).unwrap();
    for (sourcetype, sample) in [("aiwarden:alert", &alert), ("aiwarden:event", &event)] {
        let stanza = props
            .get(sourcetype)
            .unwrap_or_else(|| panic!("no [{sourcetype}] stanza"));
        assert_eq!(stanza.get("KV_MODE").map(String::as_str), Some("json"));
        for (key, value) in stanza {
            let sources: Vec<&str> = if key.starts_with("FIELDALIAS-") {
                vec![value.split(" AS ").next().unwrap().trim()]
            } else if key.starts_with("EVAL-") && value.starts_with("coalesce(") {
                value["coalesce(".len()..value.len() - 1]
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.starts_with('"'))
                    .collect()
            } else {
                Vec::new()
            };
            for field in sources {
                assert!(
                    lookup(sample, field).is_some(),
                    "[{sourcetype}] {key} names `{field}`, which the sink does not send"
                );
            }
        }
    }
    let cim = &props["aiwarden:alert"];
    for field in ["app", "type", "src", "severity_id"] {
        assert!(
            cim.contains_key(&format!("EVAL-{field}")),
            "CIM field {field}"
        );
    }
    for field in ["signature", "signature_id", "description", "user", "id"] {
        assert!(
            cim.keys()
                .any(|k| k.starts_with("FIELDALIAS-") && cim[k].ends_with(&format!("AS {field}"))),
            "CIM field {field}"
        );
    }
    let tags = conf("connectors/splunk/default/tags.conf");
    assert_eq!(tags["eventtype=aiwarden_alert"]["alert"], "enabled");
}

#[test]
fn every_atlas_technique_the_rule_pack_names_is_known() {
    for (file, text) in aiwarden::pipeline::rules::BUILTIN_RULES {
        let rule: toml::Value = toml::from_str(text).unwrap();
        let tags: Vec<String> = rule["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for id in aiwarden::record::atlas::technique_ids(&tags) {
            assert!(
                aiwarden::record::atlas::technique_name(id).is_some(),
                "{file}: {id} has no name in record::atlas"
            );
        }
    }
}

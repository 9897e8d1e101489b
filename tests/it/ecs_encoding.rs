//! Issue 14: the ECS encoder writes event documents straight into the request buffer instead of
//! building a `serde_json::Value` tree. Its output must say the same as the tree it replaced
//! (kept here as the reference) for every record of the benchmark data set and for the odd
//! shapes the data set lacks.

use crate::dataset;
use aiwarden::decode::decode_native;
use aiwarden::record::{AuditRecord, Output, RecordView};
use aiwarden::sinks::elastic::{encode, DocumentSettings, EVENTS_DATASET};
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn settings() -> DocumentSettings {
    DocumentSettings {
        namespace: "prod".into(),
        host: "gw-1".into(),
        deployment: "eu".into(),
    }
}

/// The document as the encoder built it before issue 14 (a `Value` tree), unchanged.
fn reference_document(
    record: &AuditRecord,
    settings: &DocumentSettings,
    forward_content: bool,
) -> Value {
    let outcome = match record.status.as_deref() {
        Some("success") => "success",
        Some("error") => "failure",
        _ => "unknown",
    };
    let mut gen_ai = json!({"operation": {"name": "chat"}});
    if !record.model.is_empty() {
        gen_ai["request"] = json!({"model": record.model});
        if record.model.starts_with("claude") || record.model.contains("anthropic") {
            gen_ai["system"] = json!("anthropic");
        }
    }
    let mut usage = Map::new();
    if let Some(tokens) = record.prompt_tokens {
        usage.insert("input_tokens".into(), json!(tokens));
    }
    if let Some(tokens) = record.completion_tokens {
        usage.insert("output_tokens".into(), json!(tokens));
    }
    if !usage.is_empty() {
        gen_ai["usage"] = Value::Object(usage);
    }
    if let Some(tool) = record.mcp_integrations.first() {
        gen_ai["tool"] = json!({"name": tool});
    }
    let mut canonical = serde_json::to_value(RecordView {
        record,
        include_content: forward_content,
    })
    .unwrap_or(Value::Null);
    let ip = record
        .ip_address
        .as_deref()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    if ip.is_some() {
        if let Some(fields) = canonical.as_object_mut() {
            fields.remove("ip_address");
        }
    }
    let mut labels = Map::new();
    labels.insert("deployment".into(), json!(settings.deployment));
    if let Some(department) = record.department.as_deref() {
        labels.insert("department".into(), json!(department));
    }
    if !record.application_id.is_empty() {
        labels.insert("application_id".into(), json!(record.application_id));
    }
    let mut document = json!({
        "@timestamp": record.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        "event": {
            "kind": "event",
            "category": ["api"],
            "type": ["access"],
            "action": record.event_type.as_str(),
            "id": record.event_id,
            "dataset": EVENTS_DATASET,
            "outcome": outcome,
        },
        "user": {"id": record.user_id},
        "related": {"user": [record.user_id]},
        "host": {"name": settings.host},
        "agent": {"type": "aiwarden", "version": env!("CARGO_PKG_VERSION")},
        "labels": Value::Object(labels),
        "gen_ai": gen_ai,
        "aiwarden": {"event": canonical},
    });
    if let Some(ip) = ip {
        document["source"] = json!({"ip": ip});
    }
    document
}

/// Encode one record and compare both lines with the reference: the action line byte for
/// byte, the document as JSON (object keys in any order).
fn check(record: AuditRecord, forward_content: bool) {
    let settings = settings();
    let expected = reference_document(&record, &settings, forward_content);
    let item = Output::Event(Arc::new(record));
    let mut out = b"earlier records stay".to_vec();
    encode(&item, &settings, forward_content, &mut out).unwrap();
    let written = out
        .strip_prefix(b"earlier records stay".as_slice())
        .unwrap();
    let text = std::str::from_utf8(written).unwrap();
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 2, "{text}");
    let Output::Event(record) = &item else {
        unreachable!()
    };
    let action = format!(
        r#"{{"create":{{"_index":"logs-aiwarden.events-prod","_id":{}}}}}"#,
        serde_json::to_string(&record.event_id).unwrap()
    );
    assert_eq!(lines[0], action);
    let document: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(document, expected, "event {}", record.event_id);
    assert!(
        forward_content || !lines[1].contains("prompt_raw"),
        "raw text must not leave without forwarding"
    );
}

#[test]
fn ecs_documents_match_the_value_tree_on_the_benchmark_data_set() {
    let mut checked = 0;
    for (n, line) in dataset::lines(3_000, 200).enumerate() {
        let record = decode_native(line.as_bytes()).unwrap();
        check(record, n % 7 == 0);
        checked += 1;
    }
    assert_eq!(checked, 3_000);
}

#[test]
fn ecs_documents_match_the_value_tree_on_odd_records() {
    let lines = [
        // An address that is not one stays in the canonical record; no model, no tokens.
        r#"{"event_id":"e1","timestamp":"2025-06-02T10:00:00.5Z","event_type":"custom_thing","user_id":"u \"quoted\"","session_id":"s","application_id":"a","ip_address":"not-an-ip","status":"weird"}"#,
        // IPv6, only completion tokens, an `anthropic.` model, unknown fields (nested) at the end.
        r#"{"event_id":"e2","timestamp":"2025-06-02T10:00:00Z","event_type":"api_request","user_id":"ü","session_id":"s","application_id":"gw","model":"anthropic.claude-3","completion_tokens":7,"ip_address":"2001:db8::1","zeta":{"deep":[1,2.5,null]},"alpha":"first"}"#,
        // Error outcome, several integrations, raw text both ways, empty application.
        r#"{"event_id":"e3","timestamp":"2025-06-02T10:00:00Z","event_type":"mcp_call","user_id":"u","session_id":"s","application_id":"","model":"gpt-4o","status":"error","mcp_integrations":["jira","slack"],"prompt_raw":"line\nbreak","response_raw":"ok","ip_address":"10.0.0.1","x":1}"#,
    ];
    for line in lines {
        for forward_content in [false, true] {
            check(decode_native(line.as_bytes()).unwrap(), forward_content);
        }
    }
}

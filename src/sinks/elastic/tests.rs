//! ECS documents and the meaning of every `_bulk` answer (PROTOCOLS.md §2), without a network.

use super::*;
use crate::record::{AgentInfo, Alert, AlertEntity, AuditRecord, EventType, Evidence, Severity};
use crate::sinks::driver::ItemVerdict;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

fn settings() -> DocumentSettings {
    DocumentSettings {
        namespace: "prod".into(),
        host: "gw-01".into(),
        deployment: "claude_deployment".into(),
    }
}

fn time() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339("2026-11-23T08:01:02.345Z")
        .unwrap()
        .to_utc()
}

fn alert() -> Alert {
    Alert {
        alert_id: "a-1".into(),
        timestamp: time(),
        rule_id: "mcp-volume".into(),
        rule_version: 2,
        severity: Severity::Medium,
        title: "MCP call burst".into(),
        details: "57 calls in 10m".into(),
        entity: AlertEntity {
            entity_type: "session_id".into(),
            entity_key: "s-19".into(),
            user_id: Some("u-7f3a".into()),
            session_id: Some("s-19".into()),
            department: Some("legal".into()),
            application_id: Some("contract-review".into()),
            real_user_id: None,
        },
        observed: 57.0,
        baseline: None,
        threshold: 50.0,
        window: Some("10m".into()),
        evidence: Evidence {
            event_ids: vec!["e1".into()],
            event_count: 57,
        },
        tags: vec!["mcp".into(), "ATLAS:AML.T0057".into()],
        source: "aiwarden".into(),
        deployment: "claude_deployment".into(),
        agent: AgentInfo {
            host: "gw-01".into(),
            version: "0.1.0".into(),
        },
        suppressed_count: 0,
        auto_blocked: false,
    }
}

fn lines(item: &Output) -> (Value, Value) {
    let mut out = Vec::new();
    encode(item, &settings(), false, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    let mut lines = text.lines();
    let action = serde_json::from_str(lines.next().unwrap()).unwrap();
    let document = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(lines.next().is_none());
    (action, document)
}

#[test]
fn an_alert_becomes_a_create_into_the_alerts_stream_with_ecs_fields() {
    let (action, document) = lines(&Output::Alert(Arc::new(alert())));
    assert_eq!(
        action,
        json!({"create": {"_index": "logs-aiwarden.alerts-prod", "_id": "a-1"}})
    );
    assert_eq!(document["@timestamp"], "2026-11-23T08:01:02.345Z");
    assert_eq!(document["event"]["kind"], "alert");
    assert_eq!(document["event"]["severity"], 47);
    assert_eq!(document["event"]["dataset"], "aiwarden.alerts");
    assert_eq!(document["rule"]["id"], "mcp-volume");
    assert_eq!(document["rule"]["version"], "2");
    assert_eq!(document["user"]["id"], "u-7f3a");
    assert_eq!(document["threat"]["framework"], "MITRE ATLAS");
    assert_eq!(document["threat"]["technique"]["id"], json!(["AML.T0057"]));
    assert_eq!(document["labels"]["deployment"], "claude_deployment");
    assert_eq!(document["agent"]["type"], "aiwarden");
    assert_eq!(document["aiwarden"]["observed"], 57.0);
}

#[test]
fn an_event_maps_to_ecs_and_gen_ai_without_raw_content() {
    let mut record = AuditRecord::new("e-1", time(), EventType::ApiRequest, "u-7f3a", "s-19");
    record.model = "claude-sonnet-4-6".into();
    record.prompt_tokens = Some(1840);
    record.completion_tokens = Some(512);
    record.ip_address = Some("10.20.30.40".into());
    record.status = Some("success".into());
    record.prompt_raw = Some("the secret".into());
    let (action, document) = lines(&Output::Event(Arc::new(record)));
    assert_eq!(action["create"]["_index"], "logs-aiwarden.events-prod");
    assert_eq!(document["event"]["kind"], "event");
    assert_eq!(document["event"]["outcome"], "success");
    assert_eq!(document["gen_ai"]["request"]["model"], "claude-sonnet-4-6");
    assert_eq!(document["gen_ai"]["system"], "anthropic");
    assert_eq!(document["gen_ai"]["usage"]["input_tokens"], 1840);
    assert_eq!(document["gen_ai"]["usage"]["output_tokens"], 512);
    assert_eq!(document["source"]["ip"], "10.20.30.40");
    assert_eq!(document["aiwarden"]["event"]["session_id"], "s-19");
    assert!(!document.to_string().contains("the secret"));
}

fn bulk(items: Value) -> Vec<u8> {
    json!({"took": 3, "errors": true, "items": items})
        .to_string()
        .into_bytes()
}

#[test]
fn bulk_items_are_sorted_one_by_one() {
    let body = bulk(json!([
        {"create": {"_index": ".ds-logs-aiwarden.events-prod-2026.11.24-000001", "_id": "1", "status": 201}},
        {"create": {"_id": "2", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
        {"create": {"_id": "3", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
        {"create": {"_id": "4", "status": 400, "error": {"type": "document_parsing_exception", "reason": "bad field"}}},
        {"create": {"_id": "5", "status": 503, "error": {"type": "unavailable_shards_exception", "reason": "no"}}},
    ]));
    let Classified::PerItem(verdicts) = classify("es", StatusCode::OK, None, &body, 5) else {
        panic!("expected per-item verdicts");
    };
    assert_eq!(verdicts[0], ItemVerdict::Delivered);
    assert_eq!(
        verdicts[1],
        ItemVerdict::Delivered,
        "409 is an earlier send of the same _id"
    );
    assert!(matches!(verdicts[2], ItemVerdict::Retry(_)));
    assert_eq!(
        verdicts[3],
        ItemVerdict::Rejected("document_parsing_exception: bad field".into())
    );
    assert!(matches!(verdicts[4], ItemVerdict::Retry(_)));
}

#[test]
fn whole_request_answers_follow_the_common_rules() {
    let ok = json!({"took": 1, "errors": false, "items": []})
        .to_string()
        .into_bytes();
    assert_eq!(
        classify("es", StatusCode::OK, None, &ok, 3),
        Classified::Delivered
    );
    for status in [401, 403, 404] {
        let answer = classify("es", StatusCode::from_u16(status).unwrap(), None, b"{}", 3);
        assert!(
            matches!(answer, Classified::Misconfigured { ref reason } if reason.contains("sinks.es.")),
            "{status}: {answer:?}"
        );
    }
    let item_403 = bulk(
        json!([{"create": {"_id": "1", "status": 403, "error": {"type": "security_exception", "reason": "no"}}}]),
    );
    assert!(matches!(
        classify("es", StatusCode::OK, None, &item_403, 1),
        Classified::Misconfigured { .. }
    ));
    assert!(matches!(
        classify("es", StatusCode::PAYLOAD_TOO_LARGE, None, b"", 3),
        Classified::Split { .. }
    ));
    for status in [408, 429, 500, 502, 503, 504] {
        let answer = classify(
            "es",
            StatusCode::from_u16(status).unwrap(),
            Some(std::time::Duration::from_secs(2)),
            b"",
            3,
        );
        assert!(
            matches!(answer, Classified::Retry { after: Some(_), .. }),
            "{status}"
        );
    }
    let short = bulk(json!([{"create": {"_id": "1", "status": 201}}]));
    assert!(
        matches!(
            classify("es", StatusCode::OK, None, &short, 2),
            Classified::Retry { .. }
        ),
        "item count mismatch"
    );
}

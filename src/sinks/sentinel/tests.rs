//! Rows and the meaning of every Logs Ingestion answer (PROTOCOLS.md §3), without a network.

use super::*;
use crate::record::{AuditRecord, EventType};
use reqwest::StatusCode;
use std::time::Duration;

#[test]
fn an_event_row_has_time_generated_typed_columns_and_no_nulls_or_content() {
    let time = chrono::DateTime::parse_from_rfc3339("2026-11-23T09:14:03.512Z")
        .unwrap()
        .to_utc();
    let mut record = AuditRecord::new("e-1", time, EventType::McpCall, "u", "s");
    record.mcp_calls = Some(1);
    record.prompt_raw = Some("secret".into());
    record
        .extra
        .insert("x_custom".into(), serde_json::json!({"a": 1}));
    let row = event_row(&record, "claude_deployment", "gw-01", false);
    assert_eq!(row["TimeGenerated"], "2026-11-23T09:14:03.512Z");
    assert_eq!(row["EventType"], "mcp_call");
    assert_eq!(row["McpCalls"], 1);
    assert_eq!(row["Extra"]["x_custom"]["a"], 1);
    assert_eq!(row["Deployment"], "claude_deployment");
    assert!(row.as_object().unwrap().values().all(|v| !v.is_null()));
    assert!(row.get("PromptRaw").is_none());
    let with_content = event_row(&record, "d", "h", true);
    assert_eq!(with_content["PromptRaw"], "secret");
}

#[test]
fn every_answer_is_sorted_as_the_contract_says() {
    let check = |status: u16| {
        classify(
            "sentinel",
            "dcr-1",
            "Custom-AIWardenEvents_CL",
            StatusCode::from_u16(status).unwrap(),
            Some(Duration::from_secs(3)),
            b"{\"error\":{}}",
        )
    };
    assert_eq!(check(204), Classified::Delivered);
    assert!(
        matches!(check(401), Classified::Misconfigured { reason } if reason.contains("client_secret"))
    );
    assert!(
        matches!(check(403), Classified::Misconfigured { reason } if reason.contains("Monitoring Metrics Publisher") && reason.contains("dcr-1"))
    );
    assert!(
        matches!(check(404), Classified::Misconfigured { reason } if reason.contains("dcr-1") && reason.contains("Custom-AIWardenEvents_CL"))
    );
    assert!(matches!(check(413), Classified::Split { .. }));
    assert!(matches!(check(400), Classified::Split { .. }));
    for status in [408, 429, 500, 503] {
        assert!(
            matches!(check(status), Classified::Retry { after: Some(_), .. }),
            "{status}"
        );
    }
}

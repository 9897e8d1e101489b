//! Records to rows of the custom tables `AIWardenAlerts_CL` and `AIWardenEvents_CL`
//! (PROTOCOLS.md §3): flat objects whose keys are the declared columns, with `TimeGenerated`.
//! `connectors/sentinel/` declares exactly these columns; a test keeps the two in step.

use crate::privacy::REAL_USER_ID;
use crate::record::{atlas, Alert, AuditRecord};
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};

/// The row of an alert.
pub fn alert_row(alert: &Alert) -> Value {
    let entity = &alert.entity;
    json!({
        "TimeGenerated": alert.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        "AlertId": alert.alert_id,
        "RuleId": alert.rule_id,
        "RuleVersion": alert.rule_version,
        "Severity": alert.severity.as_str(),
        "Title": alert.title,
        "Details": alert.details,
        "EntityType": entity.entity_type,
        "EntityKey": entity.entity_key,
        "UserId": entity.user_id,
        "RealUserId": entity.real_user_id,
        "SessionId": entity.session_id,
        "Department": entity.department,
        "ApplicationId": entity.application_id,
        "Observed": alert.observed,
        "Baseline": alert.baseline,
        "Threshold": alert.threshold,
        "Window": alert.window,
        "EvidenceEventIds": alert.evidence.event_ids,
        "EvidenceEventCount": alert.evidence.event_count,
        "Tags": alert.tags,
        "AtlasTechniques": atlas::technique_ids(&alert.tags),
        "Source": alert.source,
        "Deployment": alert.deployment,
        "AgentHost": alert.agent.host,
        "AgentVersion": alert.agent.version,
        "SuppressedCount": alert.suppressed_count,
        "AutoBlocked": alert.auto_blocked,
    })
}

/// The row of an event. Fields the decoder did not know go to the `Extra` column (dynamic).
///
/// The real user that the privacy transform adds for a `real_identity` sink travels in `extra`
/// but gets the declared `RealUserId` column, as on alerts: one column name in both tables, and
/// a typed string that analytics rules and joins can use without reading `Extra`.
pub fn event_row(
    record: &AuditRecord,
    deployment: &str,
    host: &str,
    forward_content: bool,
) -> Value {
    let mut extra = record.extra.clone();
    let real_user_id = match extra.remove(REAL_USER_ID) {
        Some(Value::String(real)) => Some(real),
        // Not the transform's string: an input field of that name, kept where it came from.
        Some(other) => {
            extra.insert(REAL_USER_ID.into(), other);
            None
        }
        None => None,
    };
    let mut row = json!({
        "TimeGenerated": record.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        "EventId": record.event_id,
        "EventType": record.event_type.as_str(),
        "UserId": record.user_id,
        "RealUserId": real_user_id,
        "SessionId": record.session_id,
        "ApplicationId": record.application_id,
        "Department": record.department,
        "Model": record.model,
        "PromptHash": record.prompt_hash,
        "ResponseHash": record.response_hash,
        "PromptTokens": record.prompt_tokens,
        "CompletionTokens": record.completion_tokens,
        "LatencyMs": record.latency_ms,
        "DataClassification": record.data_classification.map(|c| c.as_str()),
        "McpIntegrations": record.mcp_integrations,
        "McpCalls": record.mcp_calls,
        "PolicyFlags": record.policy_flags,
        "SecurityFlags": record.security_flags,
        "IpAddress": record.ip_address,
        "Status": record.status,
        "ErrorType": record.error_type,
        "StopReason": record.stop_reason,
        "Extra": Value::Object(extra),
        "Deployment": deployment,
        "AgentHost": host,
    });
    if let Some(row) = row.as_object_mut() {
        if forward_content {
            if let Some(prompt) = &record.prompt_raw {
                row.insert("PromptRaw".into(), json!(prompt));
            }
            if let Some(response) = &record.response_raw {
                row.insert("ResponseRaw".into(), json!(response));
            }
        }
        if row
            .get("Extra")
            .and_then(Value::as_object)
            .is_some_and(Map::is_empty)
        {
            row.remove("Extra");
        }
    }
    strip_nulls(row)
}

/// Absent values are left out rather than sent as null (a null is stored as an empty column).
fn strip_nulls(row: Value) -> Value {
    match row {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .collect::<Map<_, _>>(),
        ),
        other => other,
    }
}

/// The row of an alert without null columns.
pub fn alert_row_compact(alert: &Alert) -> Value {
    strip_nulls(alert_row(alert))
}

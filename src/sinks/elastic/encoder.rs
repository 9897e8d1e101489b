//! Records to `_bulk` NDJSON (PROTOCOLS.md §2): a `create` action line and an ECS document each.
//!
//! ECS core fields where they exist, `gen_ai.*` for model and token usage, and everything else
//! under `aiwarden.*`. The field names here are the ones `connectors/elastic/` maps.

use crate::record::{atlas, Alert, AuditRecord, Output, RecordView, Severity};
use chrono::SecondsFormat;
use serde_json::{json, Map, Value};

/// Dataset of alerts (`logs-aiwarden.alerts-<namespace>`).
pub const ALERTS_DATASET: &str = "aiwarden.alerts";
/// Dataset of events (`logs-aiwarden.events-<namespace>`).
pub const EVENTS_DATASET: &str = "aiwarden.events";

/// ECS `event.severity` (numeric) of an alert severity.
pub fn ecs_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
        Severity::Critical => 99,
    }
}

/// The data stream for a dataset and namespace.
pub fn data_stream(dataset: &str, namespace: &str) -> String {
    format!("logs-{dataset}-{namespace}")
}

/// What every document of a sink shares.
#[derive(Debug, Clone)]
pub struct DocumentSettings {
    /// Data stream namespace.
    pub namespace: String,
    /// `host.name`.
    pub host: String,
    /// `labels.deployment`.
    pub deployment: String,
}

/// Append the action line and the document of one record.
pub fn encode(
    item: &Output,
    settings: &DocumentSettings,
    forward_content: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let (dataset, id, document) = match item {
        Output::Alert(alert) => (
            ALERTS_DATASET,
            alert.alert_id.as_str(),
            alert_document(alert),
        ),
        Output::Event(record) => (
            EVENTS_DATASET,
            record.event_id.as_str(),
            event_document(record, settings, forward_content),
        ),
    };
    let action =
        json!({"create": {"_index": data_stream(dataset, &settings.namespace), "_id": id}});
    serde_json::to_writer(&mut *out, &action).map_err(|e| e.to_string())?;
    out.push(b'\n');
    serde_json::to_writer(&mut *out, &document).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(())
}

fn labels(deployment: &str, department: Option<&str>, application: Option<&str>) -> Value {
    let mut labels = Map::new();
    labels.insert("deployment".into(), json!(deployment));
    if let Some(department) = department {
        labels.insert("department".into(), json!(department));
    }
    if let Some(application) = application.filter(|a| !a.is_empty()) {
        labels.insert("application_id".into(), json!(application));
    }
    Value::Object(labels)
}

/// The ECS document of an alert.
pub fn alert_document(alert: &Alert) -> Value {
    let entity = &alert.entity;
    let techniques = atlas::technique_ids(&alert.tags);
    let mut document = json!({
        "@timestamp": alert.timestamp.to_rfc3339_opts(SecondsFormat::Millis, true),
        "message": alert.details,
        "event": {
            "kind": "alert",
            "category": ["intrusion_detection"],
            "type": ["info"],
            "action": alert.rule_id,
            "id": alert.alert_id,
            "dataset": ALERTS_DATASET,
            "severity": ecs_severity(alert.severity),
        },
        "rule": {
            "id": alert.rule_id,
            "name": alert.title,
            "version": alert.rule_version.to_string(),
            "ruleset": "aiwarden",
            "description": alert.details,
        },
        "host": {"name": alert.agent.host},
        "agent": {"type": "aiwarden", "version": alert.agent.version},
        "tags": alert.tags,
        "labels": labels(&alert.deployment, entity.department.as_deref(), entity.application_id.as_deref()),
        "aiwarden": {
            "source": alert.source,
            "severity": alert.severity.as_str(),
            "entity": {"type": entity.entity_type, "key": entity.entity_key},
            "session_id": entity.session_id,
            "observed": alert.observed,
            "baseline": alert.baseline,
            "threshold": alert.threshold,
            "window": alert.window,
            "evidence": {"event_ids": alert.evidence.event_ids, "event_count": alert.evidence.event_count},
            "suppressed_count": alert.suppressed_count,
            "auto_blocked": alert.auto_blocked,
        },
    });
    if let Some(user) = &entity.user_id {
        document["user"] = json!({"id": user});
        document["related"] = json!({"user": [user]});
    }
    // ECS has no field for the person behind a pseudonymous `user.id`, and `user.name` is
    // read by Elastic Security as the user's identity (entity analytics, the user view), so the
    // real user would silently replace the pseudonym there. It stays aiwarden's own field,
    // named like the alert's other canonical fields (`aiwarden.session_id`); events carry it in
    // the canonical record under `aiwarden.event.real_user_id` by the same rule. It is kept out
    // of `related.user`, which holds the pseudonym only, as on events.
    if let Some(real) = &entity.real_user_id {
        document["aiwarden"]["real_user_id"] = json!(real);
    }
    if !techniques.is_empty() {
        document["threat"] = json!({
            "framework": atlas::FRAMEWORK,
            "technique": {
                "id": techniques,
                "name": techniques.iter().map(|id| atlas::technique_name(id).unwrap_or("")).collect::<Vec<_>>(),
            },
        });
    }
    document
}

/// The ECS document of a normalised audit event.
pub fn event_document(
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
    // The whole canonical record under `aiwarden.event`, so nothing is lost in the mapping.
    let mut canonical = serde_json::to_value(RecordView {
        record,
        include_content: forward_content,
    })
    .unwrap_or(Value::Null);
    // A valid address becomes ECS `source.ip` (typed `ip` in the template); anything else stays.
    let ip = record
        .ip_address
        .as_deref()
        .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
    if ip.is_some() {
        if let Some(fields) = canonical.as_object_mut() {
            fields.remove(crate::record::fields::IP_ADDRESS);
        }
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
        "labels": labels(&settings.deployment, record.department.as_deref(), Some(&record.application_id)),
        "gen_ai": gen_ai,
        "aiwarden": {"event": canonical},
    });
    if let Some(ip) = ip {
        document["source"] = json!({"ip": ip});
    }
    document
}

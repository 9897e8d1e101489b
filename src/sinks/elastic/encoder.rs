//! Records to `_bulk` NDJSON (PROTOCOLS.md §2): a `create` action line and an ECS document each.
//!
//! ECS core fields where they exist, `gen_ai.*` for model and token usage, and everything else
//! under `aiwarden.*`. The field names here are the ones `connectors/elastic/` maps.

use crate::record::{atlas, Alert, AuditRecord, Output, RecordView, Severity};
use chrono::SecondsFormat;
use serde::{Serialize, Serializer};
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
///
/// Events, the bulk of the traffic, are written straight into `out` from borrowed fields; alerts
/// go through a JSON tree ([`alert_document`]), which their rarity makes cheap enough.
pub fn encode(
    item: &Output,
    settings: &DocumentSettings,
    forward_content: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let (dataset, id) = match item {
        Output::Alert(alert) => (ALERTS_DATASET, alert.alert_id.as_str()),
        Output::Event(record) => (EVENTS_DATASET, record.event_id.as_str()),
    };
    let action = Action {
        create: ActionTarget {
            index: DataStream {
                dataset,
                namespace: &settings.namespace,
            },
            id,
        },
    };
    serde_json::to_writer(&mut *out, &action).map_err(|e| e.to_string())?;
    out.push(b'\n');
    match item {
        Output::Alert(alert) => serde_json::to_writer(&mut *out, &alert_document(alert)),
        Output::Event(record) => serde_json::to_writer(
            &mut *out,
            &EventDocument::new(record, settings, forward_content),
        ),
    }
    .map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(())
}

/// The `create` action line.
#[derive(Serialize)]
struct Action<'a> {
    create: ActionTarget<'a>,
}

#[derive(Serialize)]
struct ActionTarget<'a> {
    #[serde(rename = "_index")]
    index: DataStream<'a>,
    #[serde(rename = "_id")]
    id: &'a str,
}

/// `logs-<dataset>-<namespace>`, written without building the string.
struct DataStream<'a> {
    dataset: &'a str,
    namespace: &'a str,
}

impl Serialize for DataStream<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("logs-{}-{}", self.dataset, self.namespace))
    }
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
    serde_json::to_value(EventDocument::new(record, settings, forward_content))
        .unwrap_or(Value::Null)
}

/// The ECS document of an event, borrowed from the record: [`encode`] writes it straight into
/// the request buffer, with no JSON tree per record.
#[derive(Serialize)]
struct EventDocument<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: Millis,
    event: EcsEvent<'a>,
    user: UserId<'a>,
    related: RelatedUser<'a>,
    host: HostName<'a>,
    agent: AgentField,
    labels: Labels<'a>,
    gen_ai: GenAi<'a>,
    aiwarden: AiwardenEvent<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<SourceIp<'a>>,
}

impl<'a> EventDocument<'a> {
    fn new(record: &'a AuditRecord, settings: &'a DocumentSettings, forward_content: bool) -> Self {
        let outcome = match record.status.as_deref() {
            Some("success") => "success",
            Some("error") => "failure",
            _ => "unknown",
        };
        let model = Some(record.model.as_str()).filter(|model| !model.is_empty());
        let anthropic =
            model.is_some_and(|model| model.starts_with("claude") || model.contains("anthropic"));
        let usage = (record.prompt_tokens.is_some() || record.completion_tokens.is_some())
            .then_some(Usage {
                input_tokens: record.prompt_tokens,
                output_tokens: record.completion_tokens,
            });
        // A valid address becomes ECS `source.ip` (typed `ip` in the template); anything else
        // stays in the canonical record.
        let ip = record
            .ip_address
            .as_deref()
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok());
        EventDocument {
            timestamp: Millis(record.timestamp),
            event: EcsEvent {
                kind: "event",
                category: ["api"],
                event_type: ["access"],
                action: record.event_type.as_str(),
                id: &record.event_id,
                dataset: EVENTS_DATASET,
                outcome,
            },
            user: UserId {
                id: &record.user_id,
            },
            related: RelatedUser {
                user: [&record.user_id],
            },
            host: HostName {
                name: &settings.host,
            },
            agent: AgentField {
                agent_type: "aiwarden",
                version: env!("CARGO_PKG_VERSION"),
            },
            labels: Labels {
                deployment: &settings.deployment,
                department: record.department.as_deref(),
                application_id: Some(record.application_id.as_str()).filter(|a| !a.is_empty()),
            },
            gen_ai: GenAi {
                operation: Operation { name: "chat" },
                request: model.map(|model| ModelRequest { model }),
                system: anthropic.then_some("anthropic"),
                usage,
                tool: record
                    .mcp_integrations
                    .first()
                    .map(|name| ToolName { name }),
            },
            aiwarden: AiwardenEvent {
                event: CanonicalRecord {
                    view: RecordView {
                        record,
                        include_content: forward_content,
                    },
                    with_ip_address: ip.is_none(),
                },
            },
            source: ip.map(|ip| SourceIp { ip }),
        }
    }
}

/// A time as RFC 3339 with milliseconds and `Z`, as every sink writes it.
struct Millis(chrono::DateTime<chrono::Utc>);

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

#[derive(Serialize)]
struct EcsEvent<'a> {
    kind: &'static str,
    category: [&'static str; 1],
    #[serde(rename = "type")]
    event_type: [&'static str; 1],
    action: &'a str,
    id: &'a str,
    dataset: &'static str,
    outcome: &'static str,
}

#[derive(Serialize)]
struct UserId<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct RelatedUser<'a> {
    user: [&'a str; 1],
}

#[derive(Serialize)]
struct HostName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct AgentField {
    #[serde(rename = "type")]
    agent_type: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Labels<'a> {
    deployment: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    application_id: Option<&'a str>,
}

#[derive(Serialize)]
struct GenAi<'a> {
    operation: Operation,
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<ModelRequest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<ToolName<'a>>,
}

#[derive(Serialize)]
struct Operation {
    name: &'static str,
}

#[derive(Serialize)]
struct ModelRequest<'a> {
    model: &'a str,
}

#[derive(Serialize)]
struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens: Option<u64>,
}

#[derive(Serialize)]
struct ToolName<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct SourceIp<'a> {
    ip: &'a str,
}

/// The whole canonical record under `aiwarden.event`, so nothing is lost in the mapping.
#[derive(Serialize)]
struct AiwardenEvent<'a> {
    event: CanonicalRecord<'a>,
}

/// The canonical record, without `ip_address` when it went to `source.ip`.
struct CanonicalRecord<'a> {
    view: RecordView<'a>,
    with_ip_address: bool,
}

impl Serialize for CanonicalRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.with_ip_address {
            self.view.serialize(serializer)
        } else {
            self.view.without_ip_address().serialize(serializer)
        }
    }
}

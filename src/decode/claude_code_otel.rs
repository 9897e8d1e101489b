//! The `claude_code_otel` format: Claude Code's OpenTelemetry log events (FORMATS.md §2).
//!
//! A line is one OTLP/JSON `ExportLogsServiceRequest` (what a collector's file exporter writes,
//! and what the `otlp` source turns every received log record into); each log record becomes one
//! canonical record. The event is named by the body (`claude_code.api_request`), falling back to
//! the `event.name` attribute. Attribute values may be of any `AnyValue` kind; numbers arrive as
//! strings or as bare numbers. Events without a mapping are kept as `event_type = <their name>`.

use super::native::normalise;
use super::otlp_json::{self, OtlpLogRecord};
use super::value::type_name;
use super::{DecodeError, DecodeOptions, Reason};
use crate::record::{AuditRecord, EventType};
use serde_json::{Map, Value};

/// What Claude Code writes in place of a prompt when `OTEL_LOG_USER_PROMPTS` is off.
const REDACTED: &str = "<REDACTED>";

/// The prefix of the full event names carried in the body.
const EVENT_PREFIX: &str = "claude_code.";

/// Attributes holding content (prompts, tool inputs, raw API bodies): never kept in `extra`,
/// because `extra` is forwarded to every sink while raw text may leave only where allowed.
const CONTENT_ATTRIBUTES: &[&str] = &[
    "prompt",
    "tool_input",
    "tool_parameters",
    "response",
    "body",
    "request_body",
    "response_body",
    "content",
];

/// Namespace of the event ids derived from log records (Claude Code sends none).
const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6c1f_04a2_9d3e_4b57_a8e1_2f60_c0de_0717);

/// Decode one line holding an OTLP/JSON export into a record per log record.
pub fn decode_claude_code(
    line: &[u8],
    options: &DecodeOptions,
    out: &mut Vec<Result<AuditRecord, DecodeError>>,
) {
    match super::parse_object(line) {
        Ok(object) => from_export(&object, options, out),
        Err(error) => out.push(Err(error)),
    }
}

/// Decode an already parsed export object (shared with auto-detection).
pub fn from_export(
    export: &Map<String, Value>,
    options: &DecodeOptions,
    out: &mut Vec<Result<AuditRecord, DecodeError>>,
) {
    let before = out.len();
    let walked = otlp_json::for_each_log_record(export, |log_record| {
        out.push(log_record.and_then(|log_record| from_log_record(&log_record, options)));
    });
    if let Err(error) = walked {
        out.push(Err(error));
    } else if out.len() == before {
        // An export without a single log record is legal OTLP but, as a line, carries nothing.
        out.push(Err(DecodeError::new(
            Reason::MissingField,
            "the OTLP export holds no log records",
        )));
    }
}

fn from_log_record(
    log_record: &OtlpLogRecord<'_>,
    options: &DecodeOptions,
) -> Result<AuditRecord, DecodeError> {
    let attributes = &log_record.attributes;
    let resource = &log_record.resource;
    // Record attributes first: Claude Code copies resource attributes onto every record and
    // its built-in keys win a clash there.
    let attribute = |key: &str| {
        attributes
            .get(key)
            .filter(|value| !value.is_null())
            .or_else(|| resource.get(key).filter(|value| !value.is_null()))
    };
    let text = |key: &str| otlp_json::text(attribute(key)).filter(|s| !s.trim().is_empty());

    let body_name = match log_record.raw.get("body") {
        Some(body) if !body.is_null() => otlp_json::any_value(body)?
            .as_str()
            .map(|name| name.strip_prefix(EVENT_PREFIX).unwrap_or(name).to_string()),
        _ => None,
    };
    let event_name = body_name
        .filter(|name| !name.trim().is_empty())
        .or_else(|| text("event.name"))
        .or_else(|| {
            // OTLP's own `eventName` field (newer SDKs set it instead of an attribute).
            log_record
                .raw
                .get("eventName")
                .and_then(Value::as_str)
                .filter(|name| !name.trim().is_empty())
                .map(|name| name.strip_prefix(EVENT_PREFIX).unwrap_or(name).to_string())
        })
        .ok_or_else(|| {
            DecodeError::new(
                Reason::MissingField,
                "neither the body nor the attribute `event.name` names the event",
            )
        })?;

    let timestamp = match attributes.get("event.timestamp") {
        Some(Value::String(stamp)) => chrono::DateTime::parse_from_rfc3339(stamp.trim())
            .map(|t| t.with_timezone(&chrono::Utc))
            .ok(),
        _ => None,
    }
    .or_else(|| otlp_json::unix_nanos(log_record.raw.get("timeUnixNano")))
    .or_else(|| otlp_json::unix_nanos(log_record.raw.get("observedTimeUnixNano")))
    .ok_or_else(|| {
        DecodeError::new(
            Reason::MissingField,
            "no usable `event.timestamp`, `timeUnixNano` or `observedTimeUnixNano`",
        )
    })?;

    let user_id = text("user.email")
        .or_else(|| text("user.account_uuid"))
        .or_else(|| text(&options.identity_attribute))
        .or_else(|| text("user.id"))
        .ok_or_else(|| {
            DecodeError::new(
                Reason::MissingField,
                format!(
                    "no user: none of `user.email`, `user.account_uuid`, `{}`, `user.id`",
                    options.identity_attribute
                ),
            )
        })?;
    let session_id = text("session.id").ok_or_else(|| {
        DecodeError::new(
            Reason::MissingField,
            "required attribute `session.id` is missing",
        )
    })?;

    let event_id = derive_event_id(log_record.raw, &session_id);
    let mut record = AuditRecord::new(
        event_id,
        timestamp,
        EventType::Other(event_name.clone()),
        user_id,
        session_id,
    );
    record.application_id = text("service.name").unwrap_or_else(|| "claude-code".to_string());
    record.model = text("model").unwrap_or_default();
    record.department = text(&options.department_attribute)
        .or_else(|| options.departments.get(&record.user_id).cloned());

    match event_name.as_str() {
        "user_prompt" => {
            record.prompt_raw = text("prompt").filter(|prompt| prompt.trim() != REDACTED);
        }
        "api_request" | "api_error" => {
            record.event_type = EventType::ApiRequest;
            record.prompt_tokens = otlp_json::count("input_tokens", attribute("input_tokens"))?;
            record.completion_tokens =
                otlp_json::count("output_tokens", attribute("output_tokens"))?;
            record.latency_ms = otlp_json::count("duration_ms", attribute("duration_ms"))?;
            if event_name == "api_error" {
                record.status = Some("error".to_string());
                record.error_type = text("error").or_else(|| text("status_code"));
            } else {
                record.status = Some("success".to_string());
            }
        }
        "tool_decision" => {
            record.event_type = EventType::PolicyEvent;
            if let Some(decision) = text("decision") {
                record.policy_flags.push(format!("tool_{decision}"));
            }
        }
        "tool_result" => tool_result(&mut record, &text, attribute("tool_parameters"))?,
        _ => {}
    }

    record
        .extra
        .insert("event_name".into(), Value::String(event_name));
    for (key, field) in [
        ("cache_read_tokens", "cache_read_tokens"),
        ("cache_creation_tokens", "cache_creation_tokens"),
        ("prompt_length", "prompt_length"),
    ] {
        if let Some(n) = otlp_json::count(key, attribute(key))? {
            record.extra.insert(field.into(), Value::from(n));
        }
    }
    if let Some(cost) = otlp_json::number(attribute("cost_usd")) {
        record.extra.insert("cost_usd".into(), Value::from(cost));
    }
    let mut kept = Map::new();
    for (key, value) in attributes {
        if !CONTENT_ATTRIBUTES.contains(&key.as_str()) {
            kept.insert(key.clone(), value.clone());
        }
    }
    if let Some(scope) = log_record.scope_name {
        kept.insert("otel.scope.name".into(), Value::String(scope.to_string()));
    }
    if let Some(version) = text("service.version") {
        kept.entry("service.version")
            .or_insert(Value::String(version));
    }
    record
        .extra
        .insert("claude_code".into(), Value::Object(kept));
    normalise(&mut record);
    Ok(record)
}

/// `tool_result`: MCP calls (however named) count as MCP calls; failed MCP calls whose error
/// says unauthorised or forbidden are authentication failures; other tools are `tool_call`.
fn tool_result(
    record: &mut AuditRecord,
    text: &dyn Fn(&str) -> Option<String>,
    tool_parameters: Option<&Value>,
) -> Result<(), DecodeError> {
    let tool_name = text("tool_name").unwrap_or_default();
    let parameters = match tool_parameters {
        // With OTEL_LOG_TOOL_DETAILS=1 this is a JSON string; tolerate an already-structured one.
        Some(Value::String(json)) => serde_json::from_str::<Value>(json).ok(),
        Some(value @ Value::Object(_)) => Some(value.clone()),
        Some(Value::Null) | None => None,
        Some(other) => {
            return Err(DecodeError::new(
                Reason::WrongType,
                format!(
                    "attribute `tool_parameters`: expected a JSON string, found {}",
                    type_name(other)
                ),
            ))
        }
    };
    let parameter = |key: &str| {
        parameters
            .as_ref()
            .and_then(|p| p.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let prefixed_server = tool_name
        .strip_prefix("mcp__")
        .and_then(|rest| rest.split_once("__"))
        .map(|(server, _tool)| server.to_string());
    let is_mcp = tool_name == "mcp_tool"
        || prefixed_server.is_some()
        || text("tool_source").as_deref() == Some("mcp")
        || text("mcp_server_scope").is_some();
    let success = otlp_json::flag(text("success").map(Value::String).as_ref());
    record.status = success.map(|ok| if ok { "success" } else { "error" }.to_string());
    record.error_type = text("error_type");
    if !is_mcp {
        record.event_type = EventType::Other("tool_call".into());
        return Ok(());
    }
    record.event_type = EventType::McpCall;
    record.mcp_calls = Some(1);
    if let Some(server) = parameter("mcp_server_name").or(prefixed_server) {
        record.mcp_integrations.push(server);
    }
    if let Some(tool) = parameter("mcp_tool_name") {
        record
            .extra
            .insert("mcp_tool_name".into(), Value::String(tool));
    }
    if success == Some(false) {
        let message = [text("error"), text("error_type")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if says_unauthorised(&message) {
            record.event_type = EventType::McpAuthFailure;
        }
    }
    Ok(())
}

/// Whether an error message speaks of failed authentication or authorisation.
fn says_unauthorised(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    [
        "unauthorized",
        "unauthorised",
        "forbidden",
        "unauthenticated",
    ]
    .iter()
    .any(|word| lower.contains(word))
        || contains_status(&lower, "401")
        || contains_status(&lower, "403")
}

/// `401` as a number of its own, not inside `14012`.
fn contains_status(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

/// A stable id for a log record, so a record read twice (a resend, a re-read file) keeps its id.
fn derive_event_id(raw: &Map<String, Value>, session_id: &str) -> String {
    let mut name = session_id.as_bytes().to_vec();
    name.push(0);
    // serde_json keeps key order, so the same record always serialises to the same bytes.
    name.extend_from_slice(Value::Object(raw.clone()).to_string().as_bytes());
    uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, &name).to_string()
}

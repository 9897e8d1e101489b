//! The `native` format: one canonical audit record (SPEC §2) per JSON line.

use super::value::{
    optional_count, optional_string, required_string, string_list, timestamp, type_name,
};
use super::{DecodeError, Reason};
use crate::record::{fields, AuditRecord, Classification, EventType};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Decode one native JSON line. Unknown fields are kept in `extra`, in order.
pub fn decode_native(line: &[u8]) -> Result<AuditRecord, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|error| {
        DecodeError::new(
            Reason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", error.valid_up_to()),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|error| {
        DecodeError::new(
            Reason::InvalidJson,
            format!("{} at column {}", json_error_kind(&error), error.column()),
        )
    })?;
    match value {
        Value::Object(map) => from_object(map),
        other => Err(DecodeError::new(
            Reason::NotAnObject,
            format!("expected a JSON object, found {}", type_name(&other)),
        )),
    }
}

/// The kind of a JSON syntax error without the offending text (it may hold prompt content).
pub(super) fn json_error_kind(error: &serde_json::Error) -> &'static str {
    match error.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "invalid data",
        serde_json::error::Category::Io => "read error",
    }
}

/// Typed slots for the canonical fields while the object is walked once.
#[derive(Default)]
struct Slots {
    event_id: Option<Value>,
    timestamp: Option<Value>,
    event_type: Option<Value>,
    user_id: Option<Value>,
    session_id: Option<Value>,
    application_id: Option<Value>,
    model: Option<Value>,
    department: Option<Value>,
    prompt_hash: Option<Value>,
    response_hash: Option<Value>,
    prompt_tokens: Option<Value>,
    completion_tokens: Option<Value>,
    latency_ms: Option<Value>,
    data_classification: Option<Value>,
    mcp_integrations: Option<Value>,
    mcp_calls: Option<Value>,
    policy_flags: Option<Value>,
    security_flags: Option<Value>,
    ip_address: Option<Value>,
    status: Option<Value>,
    error_type: Option<Value>,
    stop_reason: Option<Value>,
    prompt_raw: Option<Value>,
    response_raw: Option<Value>,
}

/// Build a record from a JSON object (shared with decoders that map other shapes onto it).
pub fn from_object(map: Map<String, Value>) -> Result<AuditRecord, DecodeError> {
    let mut slots = Slots::default();
    let mut extra = Map::new();
    for (key, value) in map {
        let slot = match key.as_str() {
            fields::EVENT_ID => &mut slots.event_id,
            fields::TIMESTAMP => &mut slots.timestamp,
            fields::EVENT_TYPE => &mut slots.event_type,
            fields::USER_ID => &mut slots.user_id,
            fields::SESSION_ID => &mut slots.session_id,
            fields::APPLICATION_ID => &mut slots.application_id,
            fields::MODEL => &mut slots.model,
            fields::DEPARTMENT => &mut slots.department,
            fields::PROMPT_HASH => &mut slots.prompt_hash,
            fields::RESPONSE_HASH => &mut slots.response_hash,
            fields::PROMPT_TOKENS => &mut slots.prompt_tokens,
            fields::COMPLETION_TOKENS => &mut slots.completion_tokens,
            fields::LATENCY_MS => &mut slots.latency_ms,
            fields::DATA_CLASSIFICATION => &mut slots.data_classification,
            fields::MCP_INTEGRATIONS => &mut slots.mcp_integrations,
            fields::MCP_CALLS => &mut slots.mcp_calls,
            fields::POLICY_FLAGS => &mut slots.policy_flags,
            fields::SECURITY_FLAGS => &mut slots.security_flags,
            fields::IP_ADDRESS => &mut slots.ip_address,
            fields::STATUS => &mut slots.status,
            fields::ERROR_TYPE => &mut slots.error_type,
            fields::STOP_REASON => &mut slots.stop_reason,
            fields::PROMPT_RAW => &mut slots.prompt_raw,
            fields::RESPONSE_RAW => &mut slots.response_raw,
            _ => {
                extra.insert(key, value);
                continue;
            }
        };
        *slot = Some(value);
    }

    let event_type = EventType::parse(&required_string(fields::EVENT_TYPE, slots.event_type)?);
    let model = match event_type {
        // A model call without a model is malformed; other events may not involve one.
        EventType::ApiRequest => required_string(fields::MODEL, slots.model)?,
        _ => optional_string(fields::MODEL, slots.model)?.unwrap_or_default(),
    };
    let data_classification =
        match optional_string(fields::DATA_CLASSIFICATION, slots.data_classification)? {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(text.parse::<Classification>().map_err(|error| {
                DecodeError::new(
                    Reason::InvalidValue,
                    format!("field `{}`: {error}", fields::DATA_CLASSIFICATION),
                )
            })?),
        };
    let mut record = AuditRecord {
        event_id: required_string(fields::EVENT_ID, slots.event_id)?,
        timestamp: timestamp(fields::TIMESTAMP, slots.timestamp)?,
        user_id: required_string(fields::USER_ID, slots.user_id)?,
        session_id: required_string(fields::SESSION_ID, slots.session_id)?,
        application_id: match slots.application_id {
            Some(Value::String(s)) => s,
            other => required_string(fields::APPLICATION_ID, other)?,
        },
        event_type,
        model,
        department: optional_string(fields::DEPARTMENT, slots.department)?,
        prompt_hash: optional_string(fields::PROMPT_HASH, slots.prompt_hash)?,
        response_hash: optional_string(fields::RESPONSE_HASH, slots.response_hash)?,
        prompt_tokens: optional_count(fields::PROMPT_TOKENS, slots.prompt_tokens)?,
        completion_tokens: optional_count(fields::COMPLETION_TOKENS, slots.completion_tokens)?,
        latency_ms: optional_count(fields::LATENCY_MS, slots.latency_ms)?,
        data_classification,
        mcp_integrations: string_list(fields::MCP_INTEGRATIONS, slots.mcp_integrations)?,
        mcp_calls: optional_count(fields::MCP_CALLS, slots.mcp_calls)?,
        policy_flags: string_list(fields::POLICY_FLAGS, slots.policy_flags)?,
        security_flags: string_list(fields::SECURITY_FLAGS, slots.security_flags)?,
        ip_address: optional_string(fields::IP_ADDRESS, slots.ip_address)?,
        status: optional_string(fields::STATUS, slots.status)?,
        error_type: optional_string(fields::ERROR_TYPE, slots.error_type)?,
        stop_reason: optional_string(fields::STOP_REASON, slots.stop_reason)?,
        prompt_raw: optional_string(fields::PROMPT_RAW, slots.prompt_raw)?,
        response_raw: optional_string(fields::RESPONSE_RAW, slots.response_raw)?,
        extra,
    };
    normalise(&mut record);
    Ok(record)
}

/// Fill derived fields every decoder agrees on.
pub fn normalise(record: &mut AuditRecord) {
    // An `mcp_call` event is one call unless it says otherwise, so MCP rules can sum `mcp_calls`.
    if record.event_type == EventType::McpCall && record.mcp_calls.is_none() {
        record.mcp_calls = Some(1);
    }
    // Hashes let a SIEM correlate identical prompts without ever seeing their text.
    if record.prompt_hash.is_none() {
        record.prompt_hash = record.prompt_raw.as_deref().map(sha256_hex);
    }
    if record.response_hash.is_none() {
        record.response_hash = record.response_raw.as_deref().map(sha256_hex);
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

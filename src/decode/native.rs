//! The `native` format: one canonical audit record (SPEC §2) per JSON line.

use super::value::{optional_count, optional_string, required_string, string_list, timestamp};
use super::{DecodeError, Reason};
use crate::record::{fields, AuditRecord, Classification, EventType, Field};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Decode one native JSON line. Unknown fields are kept in `extra`, in order.
///
/// The object is walked straight off the bytes: canonical keys are matched without being
/// copied, and only unknown fields are kept as JSON values. This is the agent's hot path, and
/// the result is what parsing into a `serde_json::Value` and [`from_object`] would give.
pub fn decode_native(line: &[u8]) -> Result<AuditRecord, DecodeError> {
    walk_native(line)?.ok_or_else(|| {
        DecodeError::new(
            Reason::InvalidValue,
            "a signed aiwarden checkpoint record, not an event",
        )
    })
}

/// Decode one native JSON line into `out`: nothing for an upstream agent's checkpoint record.
///
/// Lines forwarded by another aiwarden (an edge agent's `kafka` or `file` sink) carry its
/// evidence stamp (`chain`) and, now and then, its signed checkpoints. The stamp proves that
/// agent's delivery, not ours (each of our sinks stamps its own chain), so it is dropped rather
/// than kept in `extra` where it would be forwarded stale; checkpoints are not events.
pub fn decode_native_into(line: &[u8], out: &mut Vec<Result<AuditRecord, DecodeError>>) {
    out.extend(walk_native(line).transpose());
}

fn walk_native(line: &[u8]) -> Result<Option<AuditRecord>, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|error| {
        DecodeError::new(
            Reason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", error.valid_up_to()),
        )
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut slots = Slots::default();
    let mut extra = Map::new();
    let mut checkpoint = false;
    let walked = serde::Deserializer::deserialize_any(
        &mut deserializer,
        TopLevel {
            slots: &mut slots,
            extra: &mut extra,
            checkpoint: &mut checkpoint,
        },
    )
    .and_then(|walked| deserializer.end().map(|()| walked));
    match walked {
        Ok(None) if checkpoint => Ok(None),
        Ok(None) => slots.into_record(extra).map(Some),
        Ok(Some(found)) => Err(DecodeError::new(
            Reason::NotAnObject,
            format!("expected a JSON object, found {found}"),
        )),
        Err(error) => Err(DecodeError::new(
            Reason::InvalidJson,
            format!("{} at column {}", json_error_kind(&error), error.column()),
        )),
    }
}

/// Walks the top-level JSON value: an object's fields go to their slots or to `extra`; for
/// anything else it yields the type name (its content is skipped as it is read).
struct TopLevel<'a> {
    slots: &'a mut Slots,
    extra: &'a mut Map<String, Value>,
    /// Set when the object is an upstream agent's checkpoint record.
    checkpoint: &'a mut bool,
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = Option<&'static str>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Canonical(field) => {
                    let value = map.next_value()?;
                    if let Some(slot) = self.slots.slot_mut(&field) {
                        *slot = Some(value);
                    }
                }
                Key::UpstreamStamp => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Other(name) => {
                    let value: Value = map.next_value()?;
                    if is_checkpoint(&name, &value) {
                        *self.checkpoint = true;
                    }
                    self.extra.insert(name, value);
                }
            }
        }
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Some("array"))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Some("string"))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Some("boolean"))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Some("number"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Some("number"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Some("number"))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(Some("null"))
    }
}

/// An object key: a canonical field (matched on the borrowed text) or an unknown name.
enum Key {
    Canonical(Field),
    /// The evidence stamp of the agent that forwarded the line.
    UpstreamStamp,
    Other(String),
}

/// The top-level key of an aiwarden evidence stamp in JSON lines.
const UPSTREAM_STAMP: &str = match crate::evidence::JSON_LINES_STAMP {
    crate::evidence::StampLocation::TopLevel(name) => name,
    crate::evidence::StampLocation::Nested(_, name) => name,
};

/// Whether a top-level field marks a signed checkpoint record of another agent.
pub(super) fn is_checkpoint(name: &str, value: &Value) -> bool {
    name == "record_type"
        && value.as_str() == Some(crate::evidence::checkpoint::CHECKPOINT_RECORD_TYPE)
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match Slots::slot_of(key) {
            Some(field) => Key::Canonical(field),
            None if key == UPSTREAM_STAMP => Key::UpstreamStamp,
            None => Key::Other(key.to_owned()),
        })
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

impl Slots {
    /// The field with a slot of this name: every canonical field but the derived
    /// `total_tokens`, which the record computes (an input value for it stays in `extra`).
    fn slot_of(name: &str) -> Option<Field> {
        Field::canonical(name).filter(|field| *field != Field::TotalTokens)
    }

    /// The slot of a field [`Slots::slot_of`] returned.
    fn slot_mut(&mut self, field: &Field) -> Option<&mut Option<Value>> {
        Some(match field {
            Field::EventId => &mut self.event_id,
            Field::Timestamp => &mut self.timestamp,
            Field::EventType => &mut self.event_type,
            Field::UserId => &mut self.user_id,
            Field::SessionId => &mut self.session_id,
            Field::ApplicationId => &mut self.application_id,
            Field::Model => &mut self.model,
            Field::Department => &mut self.department,
            Field::PromptHash => &mut self.prompt_hash,
            Field::ResponseHash => &mut self.response_hash,
            Field::PromptTokens => &mut self.prompt_tokens,
            Field::CompletionTokens => &mut self.completion_tokens,
            Field::LatencyMs => &mut self.latency_ms,
            Field::DataClassification => &mut self.data_classification,
            Field::McpIntegrations => &mut self.mcp_integrations,
            Field::McpCalls => &mut self.mcp_calls,
            Field::PolicyFlags => &mut self.policy_flags,
            Field::SecurityFlags => &mut self.security_flags,
            Field::IpAddress => &mut self.ip_address,
            Field::Status => &mut self.status,
            Field::ErrorType => &mut self.error_type,
            Field::StopReason => &mut self.stop_reason,
            Field::PromptRaw => &mut self.prompt_raw,
            Field::ResponseRaw => &mut self.response_raw,
            Field::TotalTokens | Field::Extra(_) => return None,
        })
    }

    /// The record, once every field of the object is in its slot or in `extra`.
    fn into_record(self, extra: Map<String, Value>) -> Result<AuditRecord, DecodeError> {
        let slots = self;
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
}

/// Build a record from a JSON object (shared with decoders that map other shapes onto it):
/// `None` for an upstream agent's checkpoint record, whose stamp is dropped as in
/// [`decode_native_into`].
pub fn from_object(map: Map<String, Value>) -> Result<Option<AuditRecord>, DecodeError> {
    let mut slots = Slots::default();
    let mut extra = Map::new();
    let mut checkpoint = false;
    for (key, value) in map {
        match Slots::slot_of(&key) {
            Some(field) => {
                if let Some(slot) = slots.slot_mut(&field) {
                    *slot = Some(value);
                }
            }
            None if key == UPSTREAM_STAMP => {}
            None => {
                checkpoint |= is_checkpoint(&key, &value);
                extra.insert(key, value);
            }
        }
    }
    if checkpoint {
        return Ok(None);
    }
    slots.into_record(extra).map(Some)
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

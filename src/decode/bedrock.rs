//! The `bedrock_invocation` format: AWS Bedrock model-invocation log records (FORMATS.md §3).
//!
//! A line is one record as Bedrock writes it to S3 (gzip files of records, one per line) or to
//! CloudWatch Logs; CloudWatch exports arrive either as a subscription/Firehose envelope
//! (`{"messageType":"DATA_MESSAGE","logEvents":[{"message":"<record>"}]}`) or as an export-task
//! line (`<timestamp> <record>`), and both are unwrapped here. Bedrock has no session: one is
//! derived per user and idle gap by [`SessionTracker`], which the caller keeps across lines.

use super::native::normalise;
use super::value::type_name;
use super::{DecodeError, Reason};
use crate::record::{AuditRecord, EventType};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The `schemaType` of an invocation record.
pub const SCHEMA_TYPE: &str = "ModelInvocationLog";

/// Namespace of event ids derived from request ids that are not UUIDs.
const EVENT_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x2b7e_1516_28ae_4d2a_abf7_1588_09cf_4f3c);

/// Most users whose sessions are remembered; the idlest are forgotten beyond it.
const MAX_TRACKED_USERS: usize = 100_000;

/// Decode one line: a record, or a CloudWatch envelope of records.
pub fn decode_bedrock(
    line: &[u8],
    sessions: &mut SessionTracker,
    out: &mut Vec<Result<AuditRecord, DecodeError>>,
) {
    let object = match super::parse_object(line) {
        Ok(object) => object,
        Err(error) => match strip_export_timestamp(line) {
            // A CloudWatch export-task line: `2026-11-23T09:14:03.000Z {...}`.
            Some(rest) => match super::parse_object(rest) {
                Ok(object) => object,
                Err(_) => return out.push(Err(error)),
            },
            None => return out.push(Err(error)),
        },
    };
    from_object(object, sessions, out);
}

/// Decode a parsed object: a record or a CloudWatch subscription envelope.
pub fn from_object(
    object: Map<String, Value>,
    sessions: &mut SessionTracker,
    out: &mut Vec<Result<AuditRecord, DecodeError>>,
) {
    if let Some(events) = object.get("logEvents") {
        let Some(events) = events.as_array() else {
            return out.push(Err(DecodeError::new(
                Reason::WrongType,
                "field `logEvents`: expected an array",
            )));
        };
        for event in events {
            let record = match event.get("message") {
                Some(Value::String(message)) => super::parse_object(message.as_bytes())
                    .and_then(|record| from_record(&record, sessions)),
                _ => Err(DecodeError::new(
                    Reason::MissingField,
                    "field `logEvents[].message` is missing or not a string",
                )),
            };
            out.push(record);
        }
        return;
    }
    out.push(from_record(&object, sessions));
}

/// Whether a parsed object is a Bedrock record or an envelope of them (for auto-detection).
pub fn recognises(object: &Map<String, Value>) -> bool {
    object.get("schemaType").and_then(Value::as_str) == Some(SCHEMA_TYPE)
        || (object.contains_key("logEvents")
            && object.get("messageType").and_then(Value::as_str) == Some("DATA_MESSAGE"))
}

fn strip_export_timestamp(line: &[u8]) -> Option<&[u8]> {
    let text = std::str::from_utf8(line).ok()?;
    let (stamp, rest) = text.split_once(' ')?;
    DateTime::parse_from_rfc3339(stamp).ok()?;
    Some(rest.trim_start().as_bytes())
}

fn from_record(
    record: &Map<String, Value>,
    sessions: &mut SessionTracker,
) -> Result<AuditRecord, DecodeError> {
    let string = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_string);
    let timestamp = super::value::timestamp("timestamp", record.get("timestamp").cloned())?;
    let arn = record
        .get("identity")
        .and_then(|identity| identity.get("arn"))
        .and_then(Value::as_str)
        .filter(|arn| !arn.trim().is_empty())
        .ok_or_else(|| {
            DecodeError::new(
                Reason::MissingField,
                "required field `identity.arn` is missing",
            )
        })?;
    let (user_id, application_id) = identity_from_arn(arn);
    let model_id = string("modelId").ok_or_else(|| {
        DecodeError::new(Reason::MissingField, "required field `modelId` is missing")
    })?;
    let event_id = match string("requestId") {
        Some(id) if uuid::Uuid::parse_str(&id).is_ok() => id,
        Some(id) => uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, id.as_bytes()).to_string(),
        None => uuid::Uuid::new_v5(
            &EVENT_ID_NAMESPACE,
            Value::Object(record.clone()).to_string().as_bytes(),
        )
        .to_string(),
    };
    let session_id = sessions.session_for(&user_id, timestamp);
    let mut out = AuditRecord::new(
        event_id,
        timestamp,
        EventType::ApiRequest,
        user_id,
        session_id,
    );
    out.application_id = application_id;
    // An inference-profile ARN names the model after its last `/`.
    out.model = model_id
        .rsplit_once('/')
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| model_id.clone());

    let empty = Map::new();
    let input = object_at(record, "input")?.unwrap_or(&empty);
    let output = object_at(record, "output")?.unwrap_or(&empty);
    out.prompt_tokens = super::value::optional_count(
        "input.inputTokenCount",
        input.get("inputTokenCount").cloned(),
    )?;
    out.completion_tokens = super::value::optional_count(
        "output.outputTokenCount",
        output.get("outputTokenCount").cloned(),
    )?;
    let mut bedrock = Map::new();
    for (key, source, name) in [
        ("cache_read_tokens", input, "cacheReadInputTokenCount"),
        ("cache_creation_tokens", input, "cacheWriteInputTokenCount"),
    ] {
        if let Some(n) = super::value::optional_count(name, source.get(name).cloned())? {
            out.extra.insert(key.into(), Value::from(n));
        }
    }

    if let Some(body) = input.get("inputBodyJson") {
        let text = prompt_text(body);
        out.prompt_raw = (!text.is_empty()).then_some(text);
    }
    if let Some(body) = output.get("outputBodyJson") {
        let (text, stop_reason, latency) = response_parts(body);
        out.response_raw = (!text.is_empty()).then_some(text);
        out.stop_reason = stop_reason;
        out.latency_ms = latency;
    }
    for (side, key) in [(input, "inputBodyS3Path"), (output, "outputBodyS3Path")] {
        if let Some(path) = side.get(key).and_then(Value::as_str) {
            // The body is too large for the log: say so, so an analyst knows text was not scanned.
            bedrock.insert(key.into(), Value::String(path.to_string()));
            out.policy_flags.push("content_in_s3".into());
        }
    }
    out.policy_flags.dedup();
    match string("errorCode") {
        Some(code) => {
            out.status = Some("error".into());
            out.error_type = Some(code);
        }
        None => out.status = Some("success".into()),
    }
    // Everything but the bodies travels on: the bodies are content, forwarded only as
    // `prompt_raw`/`response_raw` where a sink allows it.
    for (key, value) in record {
        if key != "input" && key != "output" && !value.is_null() {
            bedrock.insert(key.clone(), value.clone());
        }
    }
    out.extra.insert("bedrock".into(), Value::Object(bedrock));
    normalise(&mut out);
    Ok(out)
}

fn object_at<'a>(
    record: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, DecodeError> {
    match record.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(other) => Err(DecodeError::new(
            Reason::WrongType,
            format!(
                "field `{key}`: expected an object, found {}",
                type_name(other)
            ),
        )),
    }
}

/// User and application from the caller's ARN: an assumed role's session name is the user and
/// the role the application; any other principal is its whole ARN.
pub fn identity_from_arn(arn: &str) -> (String, String) {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let mut parts = resource.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("assumed-role"), Some(role), Some(session)) if !session.is_empty() => {
            (session.to_string(), role.to_string())
        }
        (Some("user"), Some(_), _) => (arn.to_string(), "iam-user".to_string()),
        _ => (arn.to_string(), "bedrock".to_string()),
    }
}

/// The user's words: the text parts of user messages (Anthropic Messages and Converse bodies).
fn prompt_text(body: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        for message in messages {
            if message.get("role").and_then(Value::as_str) == Some("user") {
                collect_text(message.get("content"), &mut parts);
            }
        }
    }
    // Older InvokeModel bodies (Text Completions) carry a single `prompt`.
    if let Some(prompt) = body.get("prompt").and_then(Value::as_str) {
        parts.push(prompt.to_string());
    }
    parts.join("\n")
}

/// Text, stop reason and latency of a response body: Converse, Anthropic Messages, or the array
/// of chunks of a streamed response.
fn response_parts(body: &Value) -> (String, Option<String>, Option<u64>) {
    let mut parts = Vec::new();
    let mut stop_reason = None;
    let mut latency = None;
    let mut visit = |body: &Value| {
        // Converse: output.message.content[].text, stopReason, metrics.latencyMs.
        if let Some(message) = body.get("output").and_then(|o| o.get("message")) {
            collect_text(message.get("content"), &mut parts);
        }
        // Anthropic Messages: content[] of type text, stop_reason.
        if body.get("type").and_then(Value::as_str) == Some("message") || body.get("role").is_some()
        {
            collect_text(body.get("content"), &mut parts);
        }
        // A streamed chunk: delta.text, delta.stop_reason.
        if let Some(delta) = body.get("delta") {
            if let Some(text) = delta.get("text").and_then(Value::as_str) {
                parts.push(text.to_string());
            }
            if let Some(reason) = delta.get("stop_reason").and_then(Value::as_str) {
                stop_reason = Some(reason.to_string());
            }
        }
        for key in ["stopReason", "stop_reason"] {
            if let Some(reason) = body.get(key).and_then(Value::as_str) {
                stop_reason = Some(reason.to_string());
            }
        }
        if let Some(ms) = body
            .get("metrics")
            .and_then(|m| m.get("latencyMs"))
            .and_then(Value::as_u64)
        {
            latency = Some(ms);
        }
    };
    match body {
        Value::Array(chunks) => chunks.iter().for_each(&mut visit),
        other => visit(other),
    }
    (parts.join("\n"), stop_reason, latency)
}

/// `content` as a string, or a list of blocks whose text parts are taken.
fn collect_text(content: Option<&Value>, parts: &mut Vec<String>) {
    match content {
        Some(Value::String(text)) => parts.push(text.clone()),
        Some(Value::Array(blocks)) => {
            for block in blocks {
                let is_text = block
                    .get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|kind| kind == "text");
                if let (true, Some(text)) = (is_text, block.get("text").and_then(Value::as_str)) {
                    parts.push(text.to_string());
                }
            }
        }
        _ => {}
    }
}

/// Derived sessions: a user's calls closer together than the idle gap share a session.
///
/// The id is a UUID v5 of the user and the session's first event time, so re-reading the same
/// records yields the same ids.
#[derive(Debug)]
pub struct SessionTracker {
    idle_gap: chrono::Duration,
    users: HashMap<String, OpenSession>,
}

#[derive(Debug, Clone)]
struct OpenSession {
    id: String,
    last_seen: DateTime<Utc>,
}

impl SessionTracker {
    /// A tracker that starts a new session after `idle_gap` without calls.
    pub fn new(idle_gap: std::time::Duration) -> Self {
        SessionTracker {
            idle_gap: chrono::Duration::from_std(idle_gap).unwrap_or(chrono::Duration::MAX),
            users: HashMap::new(),
        }
    }

    /// The session of a call by `user` at `time`.
    pub fn session_for(&mut self, user: &str, time: DateTime<Utc>) -> String {
        if let Some(open) = self.users.get_mut(user) {
            let gap = time.signed_duration_since(open.last_seen);
            // Slightly out-of-order calls (parallel requests) stay in the session too.
            if gap <= self.idle_gap && gap >= -self.idle_gap {
                open.last_seen = open.last_seen.max(time);
                return open.id.clone();
            }
        }
        if self.users.len() >= MAX_TRACKED_USERS {
            self.forget_idlest();
        }
        let id = format!(
            "bedrock-{}",
            uuid::Uuid::new_v5(
                &EVENT_ID_NAMESPACE,
                format!("{user}\u{0}{}", time.timestamp_millis()).as_bytes(),
            )
        );
        self.users.insert(
            user.to_string(),
            OpenSession {
                id: id.clone(),
                last_seen: time,
            },
        );
        id
    }

    fn forget_idlest(&mut self) {
        let mut times: Vec<DateTime<Utc>> = self.users.values().map(|s| s.last_seen).collect();
        let half = times.len() / 2;
        times.select_nth_unstable(half);
        let cutoff = times[half];
        self.users.retain(|_, session| session.last_seen > cutoff);
    }
}

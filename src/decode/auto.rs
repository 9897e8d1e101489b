//! `format = "auto"`: each line is recognised by keys only one format has (FORMATS.md §4), never
//! guessed. `resourceLogs` → an OTLP export (Claude Code); `schemaType = ModelInvocationLog` or a
//! CloudWatch envelope → Bedrock; `event_id` + `timestamp` + `user_id` (after the source's
//! `[mapping]`) → native. Anything else is `unknown_format`.

use super::{bedrock, claude_code_otel, native, DecodeError, DecoderState, Reason};
use crate::record::{fields, AuditRecord};

/// Which decoder a line's keys point to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detected {
    /// An OTLP/JSON logs export.
    ClaudeCodeOtel,
    /// A Bedrock invocation record or envelope.
    BedrockInvocation,
    /// A canonical record.
    Native,
}

/// Recognise a parsed (and already mapped) object.
pub fn detect(object: &serde_json::Map<String, serde_json::Value>) -> Option<Detected> {
    if object.contains_key("resourceLogs") {
        Some(Detected::ClaudeCodeOtel)
    } else if bedrock::recognises(object) {
        Some(Detected::BedrockInvocation)
    } else if [fields::EVENT_ID, fields::TIMESTAMP, fields::USER_ID]
        .iter()
        .all(|key| object.contains_key(*key))
        // Another agent's checkpoint: the native decoder knows to skip it.
        || object
            .get("record_type")
            .is_some_and(|value| native::is_checkpoint("record_type", value))
    {
        Some(Detected::Native)
    } else {
        None
    }
}

/// Decode one line of unknown format.
pub(super) fn decode_auto(
    line: &[u8],
    state: &mut DecoderState,
    out: &mut Vec<Result<AuditRecord, DecodeError>>,
) {
    let mut object = match super::parse_object(line) {
        Ok(object) => object,
        Err(error) => return out.push(Err(error)),
    };
    // The mapping may be what makes a home-grown log recognisable as native.
    if detect(&object).is_none() {
        state.mapping.apply(&mut object);
    }
    match detect(&object) {
        Some(Detected::ClaudeCodeOtel) => {
            claude_code_otel::from_export(&object, &state.options, out)
        }
        Some(Detected::BedrockInvocation) => {
            bedrock::from_object(object, &mut state.sessions, out)
        }
        Some(Detected::Native) => out.extend(native::from_object(object).transpose()),
        None => out.push(Err(DecodeError::new(
            Reason::UnknownFormat,
            "no format recognises the line: expected `resourceLogs` (OTLP), `schemaType` (Bedrock) or `event_id`, `timestamp` and `user_id` (native)",
        ))),
    }
}

//! Decoders: raw bytes of one line into canonical [`AuditRecord`]s.
//!
//! Pure functions: no I/O, no clock, no shared state. A line that cannot become a record yields a
//! [`DecodeError`] whose [`Reason`] is a stable, low-cardinality label (for counters and the
//! dead-letter file) and whose detail names the field and what was wrong, never the field's value
//! (it may be personal data).

mod auto;
mod bedrock;
mod claude_code_otel;
mod mapping;
mod native;
mod options;
mod otlp_json;
mod value;

pub use auto::{detect, Detected};
pub use bedrock::{decode_bedrock, identity_from_arn, SessionTracker};
pub use claude_code_otel::decode_claude_code;
pub use mapping::{Mapping, MappingError};
pub use native::decode_native;
pub use options::DecodeOptions;

use crate::record::AuditRecord;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The format of a source's lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The canonical audit record of an API logging middleware (SPEC §2).
    #[default]
    Native,
    /// Claude Code's OpenTelemetry log events, one OTLP/JSON export per line (FORMATS.md §2).
    ClaudeCodeOtel,
    /// AWS Bedrock model-invocation log records (FORMATS.md §3).
    BedrockInvocation,
    /// Recognised per line among the formats above (FORMATS.md §4).
    Auto,
    /// A format with its source's `[mapping]`, decode settings and state (Bedrock's derived
    /// sessions), set up once when the source starts; never written in configuration.
    #[serde(skip)]
    Configured(SourceDecoder),
}

impl Format {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::ClaudeCodeOtel => "claude_code_otel",
            Format::BedrockInvocation => "bedrock_invocation",
            Format::Auto => "auto",
            Format::Configured(decoder) => decoder.shared.format.as_str(),
        }
    }

    /// This format with a source's mapping and settings. Formats that need neither stay plain;
    /// the others get a [`SourceDecoder`] that lives as long as the process (one per source
    /// start, so a few hundred bytes per configured source).
    pub fn configure(self, mapping: &Mapping, options: &DecodeOptions) -> Format {
        let stateless = matches!(self, Format::Native | Format::ClaudeCodeOtel);
        if matches!(self, Format::Configured(_))
            || (stateless && mapping.is_empty() && options.is_default())
        {
            return self;
        }
        let shared: &'static SharedDecoder = Box::leak(Box::new(SharedDecoder {
            format: self,
            decoder: std::sync::Mutex::new(Decoder::new(self, mapping.clone(), options.clone())),
        }));
        Format::Configured(SourceDecoder { shared })
    }
}

/// A source's decoder shared by the batches of all its streams (see [`Format::Configured`]).
#[derive(Clone, Copy)]
pub struct SourceDecoder {
    shared: &'static SharedDecoder,
}

struct SharedDecoder {
    format: Format,
    decoder: std::sync::Mutex<Decoder>,
}

impl SourceDecoder {
    fn decode(&self, line: &[u8], out: &mut Vec<Result<AuditRecord, DecodeError>>) {
        // Decoding cannot panic on input; a poisoned lock only means another thread panicked
        // elsewhere, and the session state is still consistent.
        let mut decoder = match self.shared.decoder.lock() {
            Ok(decoder) => decoder,
            Err(poisoned) => poisoned.into_inner(),
        };
        decoder.decode(line, out);
    }
}

impl PartialEq for SourceDecoder {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.shared, other.shared)
    }
}

impl Eq for SourceDecoder {}

impl fmt::Debug for SourceDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SourceDecoder")
            .field(&self.shared.format)
            .finish()
    }
}

/// A decoder with its settings and state (derived sessions), for one source.
#[derive(Debug)]
pub struct Decoder {
    format: Format,
    state: DecoderState,
}

/// What a decoder keeps between lines.
#[derive(Debug)]
struct DecoderState {
    mapping: Mapping,
    options: DecodeOptions,
    sessions: SessionTracker,
}

impl Decoder {
    /// A decoder for `format` with a source's mapping and settings.
    pub fn new(format: Format, mapping: Mapping, options: DecodeOptions) -> Decoder {
        let sessions = SessionTracker::new(options.session_idle_gap);
        Decoder {
            format,
            state: DecoderState {
                mapping,
                options,
                sessions,
            },
        }
    }

    /// Decode one line into zero or more records (an OTLP export or an envelope carries many).
    pub fn decode(&mut self, line: &[u8], out: &mut Vec<Result<AuditRecord, DecodeError>>) {
        let state = &mut self.state;
        match self.format {
            Format::Native if state.mapping.is_empty() => native::decode_native_into(line, out),
            Format::Native => out.extend(
                parse_object(line)
                    .and_then(|mut object| {
                        state.mapping.apply(&mut object);
                        native::from_object(object)
                    })
                    .transpose(),
            ),
            Format::ClaudeCodeOtel => decode_claude_code(line, &state.options, out),
            Format::BedrockInvocation => decode_bedrock(line, &mut state.sessions, out),
            Format::Auto => auto::decode_auto(line, state, out),
            Format::Configured(shared) => shared.decode(line, out),
        }
    }
}

/// Check a source's `[mapping]` and `[decode]` tables: the key (relative to the source) and the
/// reason.
pub fn validate_settings(
    mapping: &Mapping,
    options: &DecodeOptions,
) -> Result<(), (String, String)> {
    mapping.validate().map_err(|error| {
        let target = match &error {
            MappingError::UnknownTarget(target) | MappingError::EmptySegment { target, .. } => {
                target
            }
        };
        (format!("mapping.{target}"), error.to_string())
    })?;
    options.validate()
}

/// Parse a line into a JSON object; errors name the problem, never the text.
fn parse_object(line: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, DecodeError> {
    let text = std::str::from_utf8(line).map_err(|error| {
        DecodeError::new(
            Reason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", error.valid_up_to()),
        )
    })?;
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(object)) => Ok(object),
        Ok(other) => Err(DecodeError::new(
            Reason::NotAnObject,
            format!("expected a JSON object, found {}", value::type_name(&other)),
        )),
        Err(error) => Err(DecodeError::new(
            Reason::InvalidJson,
            format!(
                "{} at column {}",
                native::json_error_kind(&error),
                error.column()
            ),
        )),
    }
}

/// Why a line could not be decoded: a stable label for counters and dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The bytes are not UTF-8.
    InvalidUtf8,
    /// The text is not JSON.
    InvalidJson,
    /// The JSON is not an object.
    NotAnObject,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type.
    WrongType,
    /// A field has the right type but an unusable value.
    InvalidValue,
    /// The line is longer than the source's maximum.
    LineTooLong,
    /// No decoder recognises the shape.
    UnknownFormat,
}

impl Reason {
    /// The label.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::InvalidJson => "invalid_json",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::InvalidValue => "invalid_value",
            Reason::LineTooLong => "line_too_long",
            Reason::UnknownFormat => "unknown_format",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line that did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct DecodeError {
    /// The stable label.
    pub reason: Reason,
    /// What was wrong, naming the field (never its value).
    pub detail: String,
}

impl DecodeError {
    /// A new error.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        DecodeError {
            reason,
            detail: detail.into(),
        }
    }
}

/// Decode one line in the given format into zero or more records (a line may carry a batch).
///
/// A plain format decodes with default settings and no memory between lines (Bedrock sessions
/// then last one line); a [`Format::Configured`] one uses its source's settings and state.
pub fn decode(format: Format, line: &[u8], out: &mut Vec<Result<AuditRecord, DecodeError>>) {
    match format {
        Format::Native => native::decode_native_into(line, out),
        Format::Configured(shared) => shared.decode(line, out),
        other => {
            Decoder::new(other, Mapping::default(), DecodeOptions::default()).decode(line, out)
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod tests_formats;

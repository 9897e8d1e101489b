//! Decoders: raw bytes of one line into canonical [`AuditRecord`]s.
//!
//! Pure functions: no I/O, no clock, no shared state. A line that cannot become a record yields a
//! [`DecodeError`] whose [`Reason`] is a stable, low-cardinality label (for counters and the
//! dead-letter file) and whose detail names the field and what was wrong, never the field's value
//! (it may be personal data).

mod native;
mod value;

pub use native::decode_native;

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
}

impl Format {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Native => "native",
        }
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
pub fn decode(format: Format, line: &[u8], out: &mut Vec<Result<AuditRecord, DecodeError>>) {
    match format {
        Format::Native => out.push(decode_native(line)),
    }
}

#[cfg(test)]
mod tests;

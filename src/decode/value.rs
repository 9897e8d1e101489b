//! Typed extraction of fields from a parsed JSON object, with errors that name the field.

use super::{DecodeError, Reason};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// JSON type names for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(field: &str, expected: &str, value: &Value) -> DecodeError {
    DecodeError::new(
        Reason::WrongType,
        format!(
            "field `{field}`: expected {expected}, found {}",
            type_name(value)
        ),
    )
}

/// A required, non-empty string.
pub fn required_string(field: &str, value: Option<Value>) -> Result<String, DecodeError> {
    match value {
        None | Some(Value::Null) => Err(DecodeError::new(
            Reason::MissingField,
            format!("required field `{field}` is missing"),
        )),
        Some(Value::String(s)) if s.trim().is_empty() => Err(DecodeError::new(
            Reason::InvalidValue,
            format!("required field `{field}` is empty"),
        )),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    }
}

/// An optional string; numbers are accepted and kept as their decimal text.
pub fn optional_string(field: &str, value: Option<Value>) -> Result<Option<String>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(wrong_type(field, "a string", &other)),
    }
}

/// An optional non-negative integer; integral numbers and decimal strings are accepted.
pub fn optional_count(field: &str, value: Option<Value>) -> Result<Option<u64>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else if let Some(f) = n.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0) {
                Ok(Some(f as u64))
            } else {
                Err(DecodeError::new(
                    Reason::InvalidValue,
                    format!("field `{field}`: expected a non-negative integer"),
                ))
            }
        }
        Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| {
            DecodeError::new(
                Reason::InvalidValue,
                format!("field `{field}`: expected a non-negative integer"),
            )
        }),
        Some(other) => Err(wrong_type(field, "a non-negative integer", &other)),
    }
}

/// An optional list of strings; a single string is a list of one.
pub fn string_list(field: &str, value: Option<Value>) -> Result<Vec<String>, DecodeError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(wrong_type(field, "a list of strings", &other)),
            })
            .collect(),
        Some(other) => Err(wrong_type(field, "a list of strings", &other)),
    }
}

/// The event time: RFC 3339 text, or epoch seconds / milliseconds as a number.
pub fn timestamp(field: &str, value: Option<Value>) -> Result<DateTime<Utc>, DecodeError> {
    let invalid = || {
        DecodeError::new(
            Reason::InvalidValue,
            format!("field `{field}`: expected an RFC 3339 time or epoch seconds/milliseconds"),
        )
    };
    match value {
        None | Some(Value::Null) => Err(DecodeError::new(
            Reason::MissingField,
            format!("required field `{field}` is missing"),
        )),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid()),
        Some(Value::Number(n)) => {
            let millis = if let Some(i) = n.as_i64() {
                // Below 10^11 it is seconds (until the year 5138), above it milliseconds.
                if i.abs() < 100_000_000_000 {
                    i.checked_mul(1000)
                } else {
                    Some(i)
                }
            } else {
                n.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e11)
                    .map(|f| (f * 1000.0).round() as i64)
            };
            millis
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                .ok_or_else(invalid)
        }
        Some(other) => Err(wrong_type(field, "an RFC 3339 time", &other)),
    }
}

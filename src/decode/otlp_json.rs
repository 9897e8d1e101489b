//! Reading the OTLP/JSON encoding of log records (`ExportLogsServiceRequest`) as plain JSON.
//!
//! The OTLP specification writes 64-bit integers as decimal strings, but exporters in the field
//! (Claude Code among them) also send bare numbers; both are accepted everywhere. `AnyValue`s of
//! every kind become ordinary JSON values so decoders look attributes up by key.

use super::{DecodeError, Reason};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

/// One log record with the resource and scope it was sent under.
#[derive(Debug)]
pub struct OtlpLogRecord<'a> {
    /// The resource's attributes, converted.
    pub resource: Map<String, Value>,
    /// The instrumentation scope's name, when given.
    pub scope_name: Option<&'a str>,
    /// The raw log record object (for a stable id and for the body).
    pub raw: &'a Map<String, Value>,
    /// The record's attributes, converted.
    pub attributes: Map<String, Value>,
}

/// Walk `resourceLogs[].scopeLogs[].logRecords[]`; a structural error names the path.
pub fn for_each_log_record<'a>(
    export: &'a Map<String, Value>,
    mut visit: impl FnMut(Result<OtlpLogRecord<'a>, DecodeError>),
) -> Result<(), DecodeError> {
    let resource_logs = array_at(export, "resourceLogs")?;
    for resource_log in resource_logs {
        let Some(resource_log) = resource_log.as_object() else {
            visit(Err(wrong_type("resourceLogs[]", "an object")));
            continue;
        };
        let resource = match resource_log.get("resource") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(resource)) => match attributes(resource.get("attributes")) {
                Ok(attributes) => attributes,
                Err(error) => {
                    visit(Err(error));
                    continue;
                }
            },
            Some(_) => {
                visit(Err(wrong_type("resource", "an object")));
                continue;
            }
        };
        let scope_logs = match optional_array_at(resource_log, "scopeLogs") {
            Ok(scope_logs) => scope_logs,
            Err(error) => {
                visit(Err(error));
                continue;
            }
        };
        for scope_log in scope_logs {
            let Some(scope_log) = scope_log.as_object() else {
                visit(Err(wrong_type("scopeLogs[]", "an object")));
                continue;
            };
            let scope_name = scope_log
                .get("scope")
                .and_then(|scope| scope.get("name"))
                .and_then(Value::as_str);
            let log_records = match optional_array_at(scope_log, "logRecords") {
                Ok(records) => records,
                Err(error) => {
                    visit(Err(error));
                    continue;
                }
            };
            for log_record in log_records {
                let Some(raw) = log_record.as_object() else {
                    visit(Err(wrong_type("logRecords[]", "an object")));
                    continue;
                };
                visit(
                    attributes(raw.get("attributes")).map(|attributes| OtlpLogRecord {
                        resource: resource.clone(),
                        scope_name,
                        raw,
                        attributes,
                    }),
                );
            }
        }
    }
    Ok(())
}

fn wrong_type(path: &str, expected: &str) -> DecodeError {
    DecodeError::new(
        Reason::WrongType,
        format!("OTLP field `{path}`: expected {expected}"),
    )
}

fn array_at<'a>(object: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], DecodeError> {
    match object.get(key) {
        Some(Value::Array(items)) => Ok(items),
        None | Some(Value::Null) => Err(DecodeError::new(
            Reason::MissingField,
            format!("OTLP field `{key}` is missing"),
        )),
        Some(_) => Err(wrong_type(key, "an array")),
    }
}

fn optional_array_at<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> Result<&'a [Value], DecodeError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(wrong_type(key, "an array")),
    }
}

/// A `KeyValue` list into a map; later duplicates win, as in the SDKs.
pub fn attributes(list: Option<&Value>) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    let items = match list {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong_type("attributes", "an array")),
    };
    for item in items {
        let Some(key) = item.get("key").and_then(Value::as_str) else {
            return Err(wrong_type("attributes[].key", "a string"));
        };
        let value = match item.get("value") {
            None | Some(Value::Null) => Value::Null,
            Some(value) => any_value(value)?,
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// An OTLP `AnyValue` as plain JSON: `intValue` as a number whether it came as a string or not.
pub fn any_value(value: &Value) -> Result<Value, DecodeError> {
    let Some(object) = value.as_object() else {
        return Err(wrong_type("AnyValue", "an object"));
    };
    let Some((kind, inner)) = object.iter().next() else {
        // An empty AnyValue is how OTLP writes "no value".
        return Ok(Value::Null);
    };
    let invalid = || {
        DecodeError::new(
            Reason::InvalidValue,
            format!("OTLP AnyValue `{kind}` does not hold a valid value"),
        )
    };
    Ok(match kind.as_str() {
        "stringValue" | "bytesValue" => match inner {
            Value::String(_) => inner.clone(),
            _ => return Err(invalid()),
        },
        "boolValue" => match inner {
            Value::Bool(_) => inner.clone(),
            _ => return Err(invalid()),
        },
        "intValue" => match inner {
            Value::Number(_) => inner.clone(),
            Value::String(text) => text
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| invalid())?,
            _ => return Err(invalid()),
        },
        "doubleValue" => match inner {
            Value::Number(_) => inner.clone(),
            // Proto3 JSON writes NaN and infinities as strings; keep them as text.
            Value::String(text) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| inner.clone()),
            _ => return Err(invalid()),
        },
        "arrayValue" => {
            let values = match inner.get("values") {
                None | Some(Value::Null) => return Ok(Value::Array(Vec::new())),
                Some(Value::Array(values)) => values,
                Some(_) => return Err(invalid()),
            };
            Value::Array(values.iter().map(any_value).collect::<Result<_, _>>()?)
        }
        "kvlistValue" => Value::Object(attributes(inner.get("values"))?),
        _ => return Err(invalid()),
    })
}

/// A time in nanoseconds since the epoch (string or number); zero means "not set".
pub fn unix_nanos(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let nanos: i64 = match value? {
        Value::String(text) => text.trim().parse().ok()?,
        Value::Number(number) => number
            .as_i64()
            .or_else(|| number.as_f64().map(|f| f as i64))?,
        _ => return None,
    };
    if nanos <= 0 {
        return None;
    }
    Utc.timestamp_opt(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
        .single()
}

/// An attribute as text: strings as they are, numbers and booleans written out.
pub fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// An attribute as a non-negative integer (numbers, or decimal strings such as `"1840"`).
pub fn count(field: &str, value: Option<&Value>) -> Result<Option<u64>, DecodeError> {
    let invalid = || {
        DecodeError::new(
            Reason::InvalidValue,
            format!("attribute `{field}`: expected a non-negative integer"),
        )
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(n) => Ok(Some(n)),
            None => number
                .as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
                .map(|f| Some(f as u64))
                .ok_or_else(invalid),
        },
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => {
            let text = text.trim();
            text.parse::<u64>()
                .ok()
                .or_else(|| {
                    text.parse::<f64>()
                        .ok()
                        .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < u64::MAX as f64)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(invalid)
        }
        Some(_) => Err(invalid()),
    }
}

/// An attribute as a number (e.g. `cost_usd`, sent as `"0.0132"`).
pub fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

/// An attribute as a boolean (`true`, or the strings `"true"`/`"false"`).
pub fn flag(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim() {
            "true" | "True" | "TRUE" | "1" => Some(true),
            "false" | "False" | "FALSE" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

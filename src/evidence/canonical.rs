//! The canonical form a record's hash covers, chosen so that `verify` recomputes it from what
//! each SIEM gives back, not only from what aiwarden sent.
//!
//! The SIEMs store the same object in different clothes: Splunk keeps the event JSON verbatim
//! (`_raw`), Elasticsearch keeps `_source` verbatim, Log Analytics stores typed columns and
//! exports them as JSON (datetimes re-printed with 7 fraction digits, dynamic columns sometimes
//! as JSON text) or CSV (every value text). So the canonical form is a JSON text where:
//!
//! - object keys are sorted; `null`, `""`, `[]` and `{}` values are left out (a column that is
//!   empty and a column that is absent look the same in a table export);
//! - every scalar becomes a typed token: `n:<number>` (integers without a fraction, other numbers
//!   in the shortest round-trip form; numeric strings count as numbers), `b:true`/`b:false`
//!   (also from the strings), `t:<RFC 3339 UTC>` for anything that parses as a datetime
//!   (RFC 3339 in any offset and precision, or the Azure portal's `11/23/2026, 9:14:03.512 AM`),
//!   `s:<text>` otherwise;
//! - a string holding a JSON object or array is read as that JSON (a dynamic column as text).
//!
//! What this gives up: a number and the same number as a string, or a datetime in two notations,
//! are one value to `verify`. Changing a value still changes the hash.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// The canonical bytes of a document (the chain stamp already removed).
pub fn canonical_bytes(document: &Map<String, Value>) -> Vec<u8> {
    let canonical = canonical_object(document);
    serde_json::to_vec(&canonical).unwrap_or_default()
}

fn canonical_object(object: &Map<String, Value>) -> Value {
    let mut keys: Vec<&String> = object.keys().collect();
    keys.sort();
    let mut out = Map::new();
    for key in keys {
        if let Some(value) = object.get(key).and_then(canonical_value) {
            out.insert(key.clone(), value);
        }
    }
    Value::Object(out)
}

/// The canonical value, or `None` for an empty one.
fn canonical_value(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) if map.is_empty() => None,
        Value::Array(items) if items.is_empty() => None,
        Value::Object(map) => Some(canonical_object(map)),
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|item| canonical_value(item).unwrap_or(Value::Null))
                .collect(),
        )),
        Value::Bool(b) => Some(Value::String(format!("b:{b}"))),
        Value::Number(number) => Some(Value::String(number_token(number))),
        Value::String(text) => string_token(text),
    }
}

fn number_token(number: &serde_json::Number) -> String {
    if let Some(i) = number.as_i64() {
        return format!("n:{i}");
    }
    if let Some(u) = number.as_u64() {
        return format!("n:{u}");
    }
    float_token(number.as_f64().unwrap_or(f64::NAN))
}

fn float_token(f: f64) -> String {
    // Below 2^53 an integral float is exactly that integer: `3.0` from a `real` column is `3`.
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        format!("n:{}", f as i64)
    } else {
        format!("n:{f}")
    }
}

fn string_token(text: &str) -> Option<Value> {
    if text.is_empty() {
        return None;
    }
    let trimmed = text.trim();
    if (trimmed.starts_with('{') && trimmed.ends_with('}'))
        || (trimmed.starts_with('[') && trimmed.ends_with(']'))
    {
        if let Ok(parsed) = serde_json::from_str::<Value>(trimmed) {
            return canonical_value(&parsed);
        }
    }
    if looks_numeric(text) {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::String(format!("n:{i}")));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(Value::String(format!("n:{u}")));
        }
        if let Ok(f) = text.parse::<f64>() {
            return Some(Value::String(float_token(f)));
        }
    }
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        return Some(Value::String(format!("b:{}", text.to_ascii_lowercase())));
    }
    if let Some(time) = parse_datetime(text) {
        return Some(Value::String(format!(
            "t:{}",
            time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        )));
    }
    Some(Value::String(format!("s:{text}")))
}

/// A plain decimal number: an optional `-`, no leading zeros, an optional fraction and exponent.
fn looks_numeric(text: &str) -> bool {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (integer, fraction) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(integer)
        && (integer == "0" || !integer.starts_with('0'))
        && fraction.is_none_or(digits)
        && exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)))
}

fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let bytes = text.as_bytes();
    // Cheap shape test first: most strings are not datetimes.
    let iso = bytes.len() >= 20 && bytes[4] == b'-' && bytes[10] == b'T';
    if iso {
        return DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc));
    }
    if text.contains('/') && (text.ends_with("AM") || text.ends_with("PM")) {
        return NaiveDateTime::parse_from_str(text, "%m/%d/%Y, %I:%M:%S%.f %p")
            .ok()
            .map(|t| t.and_utc());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::canonical_bytes;
    use serde_json::{json, Value};

    fn canonical(value: Value) -> String {
        String::from_utf8(canonical_bytes(value.as_object().unwrap())).unwrap()
    }

    #[test]
    fn key_order_nulls_and_empties_do_not_matter() {
        assert_eq!(
            canonical(json!({"b": 1, "a": "x", "c": null, "d": "", "e": [], "f": {}})),
            canonical(json!({"a": "x", "b": 1}))
        );
        assert_eq!(
            canonical(json!({"a": "x", "b": 1})),
            r#"{"a":"s:x","b":"n:1"}"#
        );
    }

    #[test]
    fn what_log_analytics_does_to_values_is_undone() {
        let sent = json!({
            "TimeGenerated": "2026-11-23T09:14:03.512Z",
            "PromptTokens": 1840,
            "Observed": 3.0,
            "Ratio": 3.25,
            "AutoBlocked": false,
            "Tags": ["a", "b"],
            "Extra": {"k": 1}
        });
        let exported_json = json!({
            "TimeGenerated": "2026-11-23T09:14:03.5120000Z",
            "PromptTokens": 1840,
            "Observed": 3,
            "Ratio": 3.25,
            "AutoBlocked": false,
            "Tags": "[\"a\",\"b\"]",
            "Extra": "{\"k\":1}"
        });
        let exported_csv = json!({
            "TimeGenerated": "11/23/2026, 9:14:03.512 AM",
            "PromptTokens": "1840",
            "Observed": "3",
            "Ratio": "3.25",
            "AutoBlocked": "False",
            "Tags": "[\"a\",\"b\"]",
            "Extra": "{\"k\":1}"
        });
        assert_eq!(canonical(sent.clone()), canonical(exported_json));
        assert_eq!(canonical(sent.clone()), canonical(exported_csv));
        let edited = json!({
            "TimeGenerated": "2026-11-23T09:14:03.512Z",
            "PromptTokens": 1841,
            "Observed": 3.0,
            "Ratio": 3.25,
            "AutoBlocked": false,
            "Tags": ["a", "b"],
            "Extra": {"k": 1}
        });
        assert_ne!(canonical(sent), canonical(edited));
    }

    #[test]
    fn look_alikes_stay_text() {
        assert_eq!(
            canonical(json!({"a": "0012", "b": "1e", "c": "-", "d": "2026-11-23"})),
            r#"{"a":"s:0012","b":"s:1e","c":"s:-","d":"s:2026-11-23"}"#
        );
    }
}

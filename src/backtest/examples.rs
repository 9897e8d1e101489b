//! `[[example]]` tables in rule files: events in, expected alerts out (`aiwarden rules test`).
//!
//! ```toml
//! [[example]]
//! description = "51 MCP calls in 10 minutes fire"
//! events = [
//!     { repeat = 51, every = "5s", template = { timestamp = "2026-11-23T10:00:00Z", event_type = "mcp_call", session_id = "s" } },
//! ]
//! expect = [ { entity_key = "s", severity = "medium" } ]   # empty: must not fire
//! ```
//!
//! An event is a native audit record as a TOML table. Missing fields get defaults so examples
//! stay short: `event_id` (numbered), `event_type = "api_request"`, `model = "example-model"`,
//! `user_id = "user"`, `session_id = "session"`, `application_id = "app"`. A generator
//! `{ repeat = N, every = "5s", template = {...} }` stands for N copies of the template, the
//! i-th at `timestamp + i × every`. An expectation names `entity_key` and `severity`
//! (`rule_id` defaults to the file's rule). An example may carry its own `entitlements` or
//! `calendars` table (the format of those files); otherwise nobody is entitled and the default
//! calendar applies.

use crate::decode::decode_native;
use crate::detect::RuleFile;
use crate::record::{Alert, AuditRecord, Severity};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use std::fmt;

/// The most events one generator may produce.
const MAX_REPEAT: i64 = 100_000;

/// One example of a rule file.
#[derive(Debug, Clone)]
pub struct Example {
    /// Position in the file, from 1.
    pub number: usize,
    /// What it shows.
    pub description: String,
    /// The events, in stream order (generators expanded).
    pub events: Vec<AuditRecord>,
    /// The alerts the file's rule must raise, and no others.
    pub expect: Vec<Expected>,
    /// Entitlements file text for this example, if it names some.
    pub entitlements: Option<String>,
    /// Calendars file text for this example, if it names some.
    pub calendars: Option<String>,
}

/// One expected alert (or, from the engine, an actual one), compared as a whole.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    /// The rule.
    pub rule_id: String,
    /// The entity the alert is about.
    pub entity_key: String,
    /// The alert's severity.
    pub severity: Severity,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rule_id, self.entity_key, self.severity)
    }
}

/// How the alerts differed from the expectation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mismatch {
    /// Expected but not raised.
    pub missing: Vec<Expected>,
    /// Raised but not expected.
    pub unexpected: Vec<Expected>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[Expected]| {
            items
                .iter()
                .map(|e| format!("[{e}]"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing {}", list(&self.missing)));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected {}", list(&self.unexpected)));
        }
        f.write_str(&parts.join("; "))
    }
}

/// An example that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: example {number}: {message}")]
pub struct ExampleError {
    /// The rule file.
    pub file: String,
    /// The example's position, from 1 (0: the `example` key itself).
    pub number: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExampleDoc {
    description: String,
    #[serde(default)]
    events: Vec<toml::Table>,
    expect: Vec<ExpectDoc>,
    entitlements: Option<toml::Table>,
    calendars: Option<toml::Table>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectDoc {
    rule_id: Option<String>,
    entity_key: String,
    severity: Severity,
}

/// Read the examples of a rule file (none: an empty list). Malformed TOML is the rule
/// parser's to report; here it yields no examples.
pub fn parse_examples(file: &RuleFile) -> Result<Vec<Example>, ExampleError> {
    let Ok(mut table) = file.text.parse::<toml::Table>() else {
        return Ok(Vec::new());
    };
    let rule_id = table
        .get("id")
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .trim()
        .to_string();
    let error = |number: usize, message: String| ExampleError {
        file: file.name.clone(),
        number,
        message,
    };
    let items = match table.remove("example") {
        None => return Ok(Vec::new()),
        Some(toml::Value::Array(items)) => items,
        Some(_) => return Err(error(0, "`example` must be `[[example]]` tables".into())),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let number = i + 1;
            let doc: ExampleDoc = item
                .try_into()
                .map_err(|e: toml::de::Error| error(number, e.message().trim().to_string()))?;
            let events = expand_events(number, &doc.events).map_err(|m| error(number, m))?;
            let table_text = |table: Option<toml::Table>, what: &str| {
                table
                    .map(|t| toml::to_string(&t))
                    .transpose()
                    .map_err(|e| error(number, format!("`{what}`: {e}")))
            };
            Ok(Example {
                number,
                description: doc.description,
                events,
                expect: doc
                    .expect
                    .into_iter()
                    .map(|e| Expected {
                        rule_id: e.rule_id.unwrap_or_else(|| rule_id.clone()),
                        entity_key: e.entity_key,
                        severity: e.severity,
                    })
                    .collect(),
                entitlements: table_text(doc.entitlements, "entitlements")?,
                calendars: table_text(doc.calendars, "calendars")?,
            })
        })
        .collect()
}

/// Expand generators, fill defaults, and decode every event as the agent would.
fn expand_events(number: usize, events: &[toml::Table]) -> Result<Vec<AuditRecord>, String> {
    let mut tables = Vec::new();
    for (i, event) in events.iter().enumerate() {
        if event.contains_key("repeat") {
            expand_generator(event, &mut tables).map_err(|m| format!("events[{i}]: {m}"))?;
        } else {
            tables.push((i, event.clone()));
        }
    }
    tables
        .into_iter()
        .enumerate()
        .map(|(seq, (i, mut table))| {
            let defaults = [
                ("event_id", format!("example{number}-{}", seq + 1)),
                ("event_type", "api_request".into()),
                ("model", "example-model".into()),
                ("user_id", "user".into()),
                ("session_id", "session".into()),
                ("application_id", "app".into()),
            ];
            for (key, value) in defaults {
                table
                    .entry(key)
                    .or_insert_with(|| toml::Value::String(value));
            }
            let json = to_json(toml::Value::Table(table));
            decode_native(json.to_string().as_bytes()).map_err(|e| format!("events[{i}]: {e}"))
        })
        .collect()
}

/// `{ repeat, every, template }` into `repeat` tables, remembering the source index.
fn expand_generator(
    event: &toml::Table,
    out: &mut Vec<(usize, toml::Table)>,
) -> Result<(), String> {
    let index = out.len();
    for key in event.keys() {
        if !matches!(key.as_str(), "repeat" | "every" | "template") {
            return Err(format!(
                "unknown key `{key}` in a generator (repeat, every, template)"
            ));
        }
    }
    let repeat = event
        .get("repeat")
        .and_then(toml::Value::as_integer)
        .filter(|n| (1..=MAX_REPEAT).contains(n))
        .ok_or_else(|| format!("`repeat` must be a whole number from 1 to {MAX_REPEAT}"))?;
    let every = event
        .get("every")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| "`every` must be a duration such as \"5s\"".to_string())
        .and_then(|text| {
            humantime::parse_duration(text.trim())
                .map_err(|e| format!("`every`: invalid duration `{text}`: {e}"))
        })?;
    let every = chrono::Duration::from_std(every).map_err(|e| format!("`every`: {e}"))?;
    let template = event
        .get("template")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| "`template` must be a table (the event to repeat)".to_string())?;
    let start = template
        .get("timestamp")
        .map(|v| match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .ok_or_else(|| "`template.timestamp` is needed (the first event's time)".to_string())?;
    let start: DateTime<Utc> = DateTime::parse_from_rfc3339(start.trim())
        .map_err(|e| format!("`template.timestamp`: {e}"))?
        .with_timezone(&Utc);
    let base_id = template
        .get("event_id")
        .and_then(toml::Value::as_str)
        .map(str::to_string);
    for i in 0..repeat {
        let mut table = template.clone();
        let time = every
            .checked_mul(i32::try_from(i).map_err(|e| e.to_string())?)
            .and_then(|offset| start.checked_add_signed(offset))
            .ok_or_else(|| "the generated timestamps overflow".to_string())?;
        table.insert(
            "timestamp".into(),
            toml::Value::String(time.to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        if let Some(base) = &base_id {
            table.insert(
                "event_id".into(),
                toml::Value::String(format!("{base}-{i}")),
            );
        }
        out.push((index, table));
    }
    Ok(())
}

fn to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(n) => J::from(n),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.into_iter().map(to_json).collect()),
        toml::Value::Table(table) => {
            J::Object(table.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
    }
}

/// Compare the alerts of `rule_id` (others are ignored) with the expectation, as multisets.
pub fn compare(rule_id: &str, expected: &[Expected], alerts: &[Alert]) -> Result<(), Mismatch> {
    let mut actual: Vec<Expected> = alerts
        .iter()
        .filter(|a| a.rule_id == rule_id)
        .map(|a| Expected {
            rule_id: a.rule_id.clone(),
            entity_key: a.entity.entity_key.clone(),
            severity: a.severity,
        })
        .collect();
    let mut missing = Vec::new();
    for want in expected {
        match actual.iter().position(|got| got == want) {
            Some(i) => {
                actual.remove(i);
            }
            None => missing.push(want.clone()),
        }
    }
    if missing.is_empty() && actual.is_empty() {
        Ok(())
    } else {
        actual.sort();
        Err(Mismatch {
            missing,
            unexpected: actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> RuleFile {
        RuleFile {
            name: "r.toml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn generators_expand_with_spaced_times_and_defaults() {
        let examples = parse_examples(&file(
            r#"
id = "r"
[[example]]
description = "three calls"
events = [
  { repeat = 3, every = "5s", template = { timestamp = "2026-11-23T10:00:00Z", event_type = "mcp_call", session_id = "s" } },
  { timestamp = 2026-11-23T11:00:00Z },
]
expect = [ { entity_key = "s", severity = "medium" } ]
"#,
        ))
        .unwrap();
        let example = &examples[0];
        assert_eq!(example.events.len(), 4);
        assert_eq!(
            example.events[2].timestamp.to_rfc3339(),
            "2026-11-23T10:00:10+00:00"
        );
        assert_eq!(example.events[0].session_id, "s");
        assert_eq!(example.events[3].user_id, "user");
        assert_ne!(example.events[0].event_id, example.events[1].event_id);
        assert_eq!(example.expect[0].rule_id, "r");
        assert_eq!(example.expect[0].severity, Severity::Medium);
    }

    #[test]
    fn bad_examples_name_the_example_and_the_problem() {
        let error = parse_examples(&file(
            "id = \"r\"\n[[example]]\ndescription = \"x\"\nexpect = []\nevents = [ { repeat = 0, every = \"1s\", template = {} } ]\n",
        ))
        .unwrap_err();
        assert_eq!(error.number, 1);
        assert!(error.message.contains("repeat"), "{error}");
        let error = parse_examples(&file(
            "id = \"r\"\n[[example]]\ndescription = \"x\"\nexpect = []\nevnts = []\n",
        ))
        .unwrap_err();
        assert!(error.message.contains("evnts"), "{error}");
    }
}

//! Usage and cost report buckets (FORMATS.md §5) as canonical `usage` records.
//!
//! One record per bucket and grouped dimension (API key, workspace, model, …) or, for the
//! Claude Code report, per user and day. The timestamp is the bucket's start, so a back-fill
//! builds daily baselines on the right days. Tokens go to `input_tokens`, `output_tokens` and
//! `usage_tokens` (their sum), cost to `cost_usd`, not to `prompt_tokens`/`completion_tokens`:
//! these are aggregates of calls that telemetry may already report one by one, and the
//! per-user rules on `total_tokens` must not count them twice. The `anthropic-*` rules
//! baseline these fields per API key, workspace and Claude Code user.
//!
//! A bucket is emitted once it is final: ended at least `settle` ago. The event id is derived
//! from the report, the bucket and the dimensions, so a bucket re-sent after a crash carries
//! the same id.

use super::activity::EVENT_ID_NAMESPACE;
use crate::record::fields;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// The `application_id` of usage records.
pub const APPLICATION_ID: &str = "anthropic_usage";

/// The reports this source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `/v1/organizations/usage_report/messages`.
    Messages,
    /// `/v1/organizations/cost_report`.
    Cost,
    /// `/v1/organizations/usage_report/claude_code`.
    ClaudeCode,
}

impl Report {
    /// The name in the cursor file and in `usage_report`.
    pub fn name(self) -> &'static str {
        match self {
            Report::Messages => "messages",
            Report::Cost => "cost",
            Report::ClaudeCode => "claude_code",
        }
    }

    /// The endpoint.
    pub fn path(self) -> &'static str {
        match self {
            Report::Messages => "/v1/organizations/usage_report/messages",
            Report::Cost => "/v1/organizations/cost_report",
            Report::ClaudeCode => "/v1/organizations/usage_report/claude_code",
        }
    }
}

/// A bucket's time range, as the report gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Start of the bucket.
    pub starting_at: DateTime<Utc>,
    /// End of the bucket.
    pub ending_at: DateTime<Utc>,
    /// The canonical lines of its results.
    pub lines: Vec<Vec<u8>>,
}

/// The buckets of one page of the messages or cost report, in time order; a bucket without a
/// readable time range is skipped with its count returned (logged by the caller).
pub fn buckets(report: Report, page: &Value, width: &str) -> (Vec<Bucket>, usize) {
    let mut out = Vec::new();
    let mut unreadable = 0;
    for bucket in page
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let times = (
            time(bucket.get("starting_at")),
            time(bucket.get("ending_at")),
        );
        let (Some(starting_at), Some(ending_at)) = times else {
            unreadable += 1;
            continue;
        };
        let lines = bucket
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(|result| {
                let record = match report {
                    Report::Cost => cost_record(result, starting_at, ending_at),
                    _ => messages_record(result, starting_at, ending_at, width),
                };
                Value::Object(record).to_string().into_bytes()
            })
            .collect();
        out.push(Bucket {
            starting_at,
            ending_at,
            lines,
        });
    }
    out.sort_by_key(|bucket| bucket.starting_at);
    (out, unreadable)
}

/// The final buckets at the head of `buckets` (time order): those ended at or before
/// `final_before`, up to the first that is not final yet (later ones wait for it, so the
/// report cursor never passes an unfinished bucket).
pub fn final_prefix(buckets: &[Bucket], final_before: DateTime<Utc>) -> &[Bucket] {
    let end = buckets
        .iter()
        .position(|bucket| bucket.ending_at > final_before)
        .unwrap_or(buckets.len());
    &buckets[..end]
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The record skeleton shared by all reports.
fn skeleton(
    report: Report,
    identity: &str,
    user_id: &str,
    starting_at: DateTime<Utc>,
    ending_at: DateTime<Utc>,
) -> Map<String, Value> {
    let mut record = Map::new();
    let start = starting_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let key = format!("usage:{}:{start}:{identity}", report.name());
    let event_id = uuid::Uuid::new_v5(&EVENT_ID_NAMESPACE, key.as_bytes());
    record.insert(fields::EVENT_ID.into(), event_id.to_string().into());
    record.insert(fields::TIMESTAMP.into(), start.clone().into());
    record.insert(fields::EVENT_TYPE.into(), "usage".into());
    record.insert(fields::USER_ID.into(), user_id.into());
    record.insert(
        fields::SESSION_ID.into(),
        format!("usage:{}", report.name()).into(),
    );
    record.insert(fields::APPLICATION_ID.into(), APPLICATION_ID.into());
    record.insert("usage_report".into(), report.name().into());
    record.insert("bucket_start".into(), start.into());
    record.insert(
        "bucket_end".into(),
        ending_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            .into(),
    );
    record
}

/// Keep the report's own fields (dimensions, breakdowns) that the mapping did not write.
fn keep_rest(record: &mut Map<String, Value>, result: &Map<String, Value>) {
    for (key, value) in result {
        if value.is_null() || record.contains_key(key) {
            continue;
        }
        // `model` is a canonical string field: keep it only as one.
        if key == fields::MODEL && !value.is_string() {
            continue;
        }
        record.insert(key.clone(), value.clone());
    }
}

/// The entity a bucket result is about, for `user_id`: the most specific dimension present.
fn dimension_user(result: &Map<String, Value>) -> String {
    if let Some(key) = text(result, "api_key_id") {
        key.to_string()
    } else if let Some(workspace) = text(result, "workspace_id") {
        workspace.to_string()
    } else {
        "organization".into()
    }
}

/// The grouped dimensions of a result, in a stable order, for the event id.
fn dimensions(result: &Map<String, Value>, skip: &[&str]) -> String {
    let mut pairs: Vec<(&String, &Value)> = result
        .iter()
        .filter(|(key, value)| !skip.contains(&key.as_str()) && !value.is_object())
        .filter(|(_, value)| value.is_string() || value.is_null())
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs
        .iter()
        .map(|(key, value)| format!("{key}={}", value.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("&")
}

fn messages_record(
    result: &Map<String, Value>,
    starting_at: DateTime<Utc>,
    ending_at: DateTime<Utc>,
    width: &str,
) -> Map<String, Value> {
    let identity = dimensions(result, &[]);
    let mut record = skeleton(
        Report::Messages,
        &identity,
        &dimension_user(result),
        starting_at,
        ending_at,
    );
    let get = |key: &str| number(result.get(key)).unwrap_or(0.0);
    let cache = result.get("cache_creation");
    let cache_creation = number(cache.and_then(|c| c.get("ephemeral_5m_input_tokens")))
        .unwrap_or(0.0)
        + number(cache.and_then(|c| c.get("ephemeral_1h_input_tokens"))).unwrap_or(0.0);
    let input = get("uncached_input_tokens") + cache_creation + get("cache_read_input_tokens");
    let output = get("output_tokens");
    record.insert("bucket_width".into(), width.into());
    record.insert("cache_creation_input_tokens".into(), count(cache_creation));
    record.insert("input_tokens".into(), count(input));
    record.insert("output_tokens".into(), count(output));
    record.insert("usage_tokens".into(), count(input + output));
    keep_rest(&mut record, result);
    record
}

fn cost_record(
    result: &Map<String, Value>,
    starting_at: DateTime<Utc>,
    ending_at: DateTime<Utc>,
) -> Map<String, Value> {
    let identity = dimensions(result, &["amount", "currency"]);
    let mut record = skeleton(
        Report::Cost,
        &identity,
        &dimension_user(result),
        starting_at,
        ending_at,
    );
    record.insert("bucket_width".into(), "1d".into());
    // `amount` is a decimal string in cents (FORMATS.md §5).
    let cents = number(result.get("amount"));
    let currency = text(result, "currency").unwrap_or("USD");
    if let (Some(cents), true) = (cents, currency.eq_ignore_ascii_case("USD")) {
        record.insert("cost_usd".into(), dollars(cents));
    }
    keep_rest(&mut record, result);
    record
}

/// The lines of one page of the Claude Code report (one record per user and day), and how
/// many entries had no readable `date`.
pub fn claude_code_lines(page: &Value) -> (Vec<Vec<u8>>, usize) {
    let mut lines = Vec::new();
    let mut unreadable = 0;
    for entry in page
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(object) = entry.as_object() else {
            unreadable += 1;
            continue;
        };
        let Some(day) = time(object.get("date")) else {
            unreadable += 1;
            continue;
        };
        lines.push(
            Value::Object(claude_code_record(object, day))
                .to_string()
                .into_bytes(),
        );
    }
    (lines, unreadable)
}

fn claude_code_record(entry: &Map<String, Value>, day: DateTime<Utc>) -> Map<String, Value> {
    let actor = entry.get("actor").and_then(Value::as_object);
    let actor_text = |key: &str| actor.and_then(|a| text(a, key));
    let user = actor_text("email_address")
        .or_else(|| actor_text("api_key_name"))
        .or_else(|| actor_text("user_id"))
        .unwrap_or("unknown_actor")
        .to_string();
    let terminal = text(entry, "terminal_type").unwrap_or("");
    let identity = format!("{user}&{terminal}");
    let mut record = skeleton(
        Report::ClaudeCode,
        &identity,
        &user,
        day,
        day + chrono::TimeDelta::days(1),
    );
    let (mut input, mut output, mut cents) = (0.0, 0.0, 0.0);
    for model in entry
        .get("model_breakdown")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let tokens = model.get("tokens");
        let part = |key: &str| number(tokens.and_then(|t| t.get(key))).unwrap_or(0.0);
        input += part("input") + part("cache_read") + part("cache_creation");
        output += part("output");
        cents += number(model.pointer("/estimated_cost/amount")).unwrap_or(0.0);
    }
    record.insert("bucket_width".into(), "1d".into());
    record.insert("claude_code_user".into(), user.into());
    record.insert("input_tokens".into(), count(input));
    record.insert("output_tokens".into(), count(output));
    record.insert("usage_tokens".into(), count(input + output));
    // The estimated cost is in cents of USD, like the cost report's amount.
    record.insert("cost_usd".into(), dollars(cents));
    keep_rest(&mut record, entry);
    record.remove("date");
    record
}

fn count(value: f64) -> Value {
    // Token counts are whole numbers; a float here came from a string and is written back whole.
    Value::from(value.max(0.0).round() as u64)
}

fn dollars(cents: f64) -> Value {
    serde_json::Number::from_f64((cents / 100.0 * 1e6).round() / 1e6)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

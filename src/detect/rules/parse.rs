//! The rule file as written (serde structs), before validation, and TOML error reporting.
//!
//! Every struct denies unknown fields so a typo (`treshold`) is an error rather than a rule
//! that silently never fires. Values whose type serde can check (numbers, booleans, severities,
//! durations) are checked here, so the error carries the TOML position. Field names mirror
//! the TOML keys (documented in `rules/mod.rs` and the shipped `rules/*.toml`).

use crate::record::Severity;
use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::Deserialize;

/// A rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleDoc {
    pub id: String,
    #[serde(default = "one")]
    pub version: u32,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    pub suppress: DurationText,
    pub kind: KindName,
    pub group_by: String,
    #[serde(default)]
    pub conditions: Vec<ConditionDoc>,
    pub threshold: Option<ThresholdDoc>,
    pub baseline: Option<BaselineDoc>,
    pub distinct: Option<DistinctDoc>,
    pub first_seen: Option<FirstSeenDoc>,
    /// `[[example]]` tables: test cases for `aiwarden rules test`, ignored by the engine
    /// (checked by `crate::backtest::examples`).
    #[serde(default, rename = "example")]
    pub _examples: Option<toml::Value>,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// The `kind` of a rule; each names the section it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum KindName {
    Match,
    Threshold,
    Baseline,
    Distinct,
    #[serde(rename = "first_seen")]
    FirstSeen,
}

impl KindName {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            KindName::Match => "match",
            KindName::Threshold => "threshold",
            KindName::Baseline => "baseline",
            KindName::Distinct => "distinct",
            KindName::FirstSeen => "first_seen",
        }
    }
}

/// One condition: a field and exactly one operator, or an `any` group of such conditions
/// (checked after parsing). `business_hours` needs no field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConditionDoc {
    pub field: Option<String>,
    pub any: Option<Vec<ConditionDoc>>,
    pub equals: Option<toml::Value>,
    pub not_equals: Option<toml::Value>,
    #[serde(rename = "in")]
    pub in_: Option<Vec<toml::Value>>,
    pub not_in: Option<Vec<toml::Value>>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub exists: Option<bool>,
    pub at_least: Option<String>,
    pub contains: Option<String>,
    pub not_entitled_to: Option<String>,
    pub regex: Option<String>,
    pub equals_field: Option<String>,
    pub not_equals_field: Option<String>,
    pub business_hours: Option<bool>,
}

/// What is aggregated per event: one per event, or a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum AggregateName {
    Count,
    Sum,
}

/// The `[threshold]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ThresholdDoc {
    pub aggregate: AggregateName,
    pub field: Option<String>,
    pub unit: Option<String>,
    #[serde(default)]
    pub tiers: Vec<TierDoc>,
}

/// One `[[threshold.tiers]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TierDoc {
    pub window: DurationText,
    pub above: f64,
    pub severity: Option<Severity>,
}

/// The `[baseline]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BaselineDoc {
    #[serde(default = "sum")]
    pub aggregate: AggregateName,
    pub field: Option<String>,
    pub unit: Option<String>,
    pub history_days: u32,
    pub ratio: f64,
    #[serde(default)]
    pub min_volume: f64,
    #[serde(default = "one")]
    pub min_history_days: u32,
    pub min_zscore: Option<f64>,
}

/// The `[distinct]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DistinctDoc {
    pub field: String,
    pub window: DurationText,
    pub above: u32,
    pub unit: Option<String>,
    pub max_values: Option<u32>,
}

/// The `[first_seen]` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FirstSeenDoc {
    pub field: String,
    pub remember: Option<DurationText>,
    pub learning: Option<DurationText>,
    pub unit: Option<String>,
    pub max_values: Option<u32>,
}

fn sum() -> AggregateName {
    AggregateName::Sum
}

/// A duration as written (`"10m"`), with its value in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DurationText {
    /// Milliseconds, at least 1.
    pub ms: i64,
    /// The text as the analyst wrote it, trimmed (shown in alerts as the window).
    pub text: String,
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map_err(D::Error::custom)
    }
}

/// Parse `"30s"`, `"10m"`, `"1d"`; zero and absurdly long durations are refused.
pub(crate) fn parse_duration(text: &str) -> Result<DurationText, String> {
    let trimmed = text.trim();
    let duration = humantime::parse_duration(trimmed).map_err(|error| {
        format!("invalid duration `{text}`: {error} (write e.g. \"30s\", \"10m\", \"1d\")")
    })?;
    // A year bounds every window and suppression, so millisecond arithmetic cannot overflow.
    const MAX_MS: u128 = 366 * 86_400_000;
    match duration.as_millis() {
        0 => Err(format!("duration `{text}` must be at least 1ms")),
        ms if ms > MAX_MS => Err(format!("duration `{text}` must be at most 366 days")),
        ms => Ok(DurationText {
            ms: ms as i64,
            text: trimmed.to_string(),
        }),
    }
}

/// A TOML or serde error, located.
#[derive(Debug)]
pub(super) struct DocError {
    /// Dotted path of the offending field (`threshold.tiers[0].window`), when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// `(line, column)`, both from 1.
    pub position: Option<(usize, usize)>,
}

/// Deserialise `text`, tracking the path to the field that failed and its position.
pub(super) fn from_toml<T: DeserializeOwned>(text: &str) -> Result<T, DocError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        DocError {
            field: (path != ".").then_some(path),
            message: inner.message().trim().to_string(),
            position: inner.span().map(|span| line_column(text, span.start)),
        }
    })
}

/// The rule id, read leniently before full parsing so even a broken rule's error can name it.
pub(super) fn peek_id(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    table.get("id")?.as_str().map(str::to_string)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    (line, column)
}

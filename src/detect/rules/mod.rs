//! Rule files: the TOML format, its validation, and the compiled rules the engine runs.
//!
//! The format is documented on [`RuleSet`]; `rules/template.toml.example` in the repository is
//! a commented template, and `rules/*.toml` are the shipped, commented rules.

mod baseline;
mod condition;
mod distinct;
mod first_seen;
mod operator;
mod parse;
pub mod sigma;
mod threshold;

pub(crate) use baseline::BaselineSpec;
pub(crate) use condition::{Condition, Lookups};
pub(crate) use distinct::DistinctSpec;
pub(crate) use first_seen::FirstSeenSpec;
pub(crate) use threshold::ThresholdSpec;

use super::{RuleError, RuleFile};
use crate::record::{AuditRecord, Field, Severity};
use parse::{AggregateName, DocError, KindName, RuleDoc};
use std::collections::HashMap;

/// Validated, compiled rules.
///
/// # The rule format
///
/// One rule per TOML file. Every key is checked at load: an unknown key (`treshold`), a
/// wrong type or an invalid value is an error naming the file, the rule id and the field.
///
/// Common keys: `id` (unique across files), `version` (default 1), `title`, `description`,
/// `severity` (`low`, `medium`, `high`, `critical`), `enabled` (default true), `tags` (MITRE
/// ATLAS ids as `ATLAS:AML.T0051`), `suppress` (one alert per rule, tier and entity per this
/// much event time, e.g. `"10m"`), `kind`, `group_by` (the entity field: `user_id`,
/// `session_id`, `department`, ...) and `[[conditions]]`.
///
/// ## Conditions
///
/// Each `[[conditions]]` entry must hold for an event to count; entries are ANDed. An entry is
/// a `field` and exactly one operator:
///
/// | operator | true when the field ... |
/// |---|---|
/// | `equals`, `not_equals` | equals (or not) a string, number or boolean |
/// | `in`, `not_in` | is (or is not) one of a list |
/// | `gt`, `gte`, `lt`, `lte` | compares so with a number |
/// | `exists` | is present (`true`) or absent (`false`); an empty list is absent |
/// | `at_least` | is a data classification at least this level |
/// | `contains` | as text contains the string; as a list has an item equal to it |
/// | `regex` | as text (or any list item) matches the regular expression (`regex` crate syntax, compiled at load, unanchored: write `^...$` for a whole value) |
/// | `equals_field`, `not_equals_field` | equals (or differs from) another field of the same record; text compares case-insensitively, ignoring surrounding space; false when either is absent |
/// | `not_entitled_to` | (a user or department) is not cleared for a level, or for the level in the named field (see [`Entitlements`](crate::detect::Entitlements)) |
/// | `business_hours` | (no field needed) the event time is inside (`true`) or outside (`false`) business hours of the record's department calendar (see [`Calendars`](crate::detect::Calendars)); `field` may name another field holding the calendar name |
///
/// A condition on a field the record lacks is false, negations included, except
/// `exists = false` and `business_hours` (which then uses the `default` calendar).
///
/// An `any` entry is an OR group of such conditions: true when at least one holds. A group
/// stands alone (no `field` or operator beside it) and does not nest:
///
/// ```toml
/// [[conditions]]
/// any = [
///     { field = "policy_flags", contains = "prompt_injection" },
///     { field = "security_flags", regex = "^(prompt_injection|jailbreak)$" },
/// ]
///
/// [[conditions]]
/// field = "resource_owner"
/// not_equals_field = "user_id"
///
/// [[conditions]]
/// business_hours = false
/// ```
///
/// ## Kinds
///
/// - `kind = "match"`: every matching event is an alert (deduplicated by `suppress`).
/// - `kind = "threshold"` with `[threshold]`: `aggregate` (`count`, or `sum` of a numeric
///   `field`), optional `unit`, and one to eight `[[threshold.tiers]]` of `window`, `above` and
///   optional `severity`; fires when the total in a sliding window exceeds `above`.
/// - `kind = "baseline"` with `[baseline]`: `aggregate`, `field`, `unit`, `history_days`,
///   `ratio` (> 1), `min_volume`, `min_history_days`, and optional `min_zscore`; fires when
///   today's UTC-day total exceeds `ratio` × the entity's average over its active days in the
///   trailing `history_days`, reaches `min_volume`, and (with `min_zscore`) has a robust
///   z-score (median and MAD of the same days) of at least `min_zscore`.
/// - `kind = "distinct"` with `[distinct]`: `field`, `window`, `above`, optional `unit` and
///   `max_values`; fires when the entity shows more than `above` distinct values of `field`
///   (each list item counts) within the sliding `window`. At most `max_values` (default twice
///   `above`, at least 16, at most 10,000; must exceed `above`) values are remembered per
///   entity, as hashes; past that the least recently seen is forgotten, so memory per entity
///   is bounded and the decision stays exact.
///
/// - `kind = "first_seen"` with `[first_seen]`: `field`, optional `remember` (default
///   `"90d"`), `learning` (default `"7d"`), `unit` and `max_values` (default 256, at most
///   10,000); fires when the entity shows a value of `field` it has not shown within
///   `remember`, once the entity is older than `learning` (its first `learning` of event time
///   only learns, so a first start or a new user does not fire on everything). Values are
///   kept as hashes; past `max_values` the least recently seen is forgotten.
///
/// ```toml
/// kind = "distinct"
/// group_by = "user_id"
///
/// [distinct]
/// field = "ip_address"
/// window = "1h"
/// above = 3
/// unit = "IP addresses"
/// ```
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Parse and validate rule files.
    pub fn parse(files: &[RuleFile]) -> Result<RuleSet, RuleError> {
        let mut rules = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for file in files {
            let (rule, enabled) = parse_file(file)?;
            // Ids key alerts and suppression, so two files must not share one, disabled or not.
            if let Some(first) = seen.get(&rule.id) {
                return Err(located(
                    file,
                    Some(&rule.id),
                    Some("id"),
                    format!("duplicate rule id (already defined in {first})"),
                    None,
                ));
            }
            seen.insert(rule.id.clone(), file.name.clone());
            if enabled {
                rules.push(rule);
            }
        }
        Ok(RuleSet { rules })
    }

    /// Number of enabled rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule is enabled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ids of the enabled rules, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| rule.id.as_str())
    }

    /// What each enabled rule is, for listings (`aiwarden rules`, start-up logs).
    pub fn info(&self) -> impl Iterator<Item = RuleInfo<'_>> {
        self.rules.iter().map(|rule| RuleInfo {
            id: &rule.id,
            version: rule.version,
            title: &rule.title,
            description: &rule.description,
            severity: rule.severity,
            kind: match rule.kind {
                Kind::Match => "match",
                Kind::Threshold(_) => "threshold",
                Kind::Baseline(_) => "baseline",
                Kind::Distinct(_) => "distinct",
                Kind::FirstSeen(_) => "first_seen",
            },
        })
    }

    /// The compiled rules, for the engine.
    pub(crate) fn into_rules(self) -> Vec<Rule> {
        self.rules
    }
}

/// A summary of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleInfo<'a> {
    /// The id.
    pub id: &'a str,
    /// The version.
    pub version: u32,
    /// The title.
    pub title: &'a str,
    /// Why it matters and what to check.
    pub description: &'a str,
    /// The rule's severity (tiers may raise it).
    pub severity: Severity,
    /// `match`, `threshold`, `baseline`, `distinct` or `first_seen`.
    pub kind: &'static str,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// Unique id, e.g. `mcp-volume`.
    pub id: String,
    /// Bumped by the analyst when the logic changes.
    pub version: u32,
    /// Short title, copied to alerts.
    pub title: String,
    /// Why it matters and what to check.
    pub description: String,
    /// Severity of alerts (tiers may override).
    pub severity: Severity,
    /// Tags copied to alerts (MITRE ATLAS ids among them).
    pub tags: Vec<String>,
    /// One alert per tier and entity per this much event time (ms).
    pub suppress_ms: i64,
    /// The entity field.
    pub group_by: Field,
    /// The entity field as written, shown as `entity_type`.
    pub group_by_name: String,
    /// ANDed conditions an event must satisfy.
    pub conditions: Vec<Condition>,
    /// What the rule does with matching events.
    pub kind: Kind,
}

/// What a rule does with the events that satisfy its conditions.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// Every matching event is an alert.
    Match,
    /// Windowed count or sum per entity against tiers.
    Threshold(ThresholdSpec),
    /// Daily count or sum per entity against its own trailing average.
    Baseline(BaselineSpec),
    /// Distinct values of a field per entity within a sliding window.
    Distinct(DistinctSpec),
    /// A value of a field the entity has not shown before.
    FirstSeen(FirstSeenSpec),
}

/// What one matching event contributes to a window or a day.
#[derive(Debug, Clone)]
pub(crate) enum Aggregate {
    /// One per event.
    Count,
    /// The value of a numeric field (events without it contribute nothing).
    Sum(Field),
}

impl Aggregate {
    /// Compile `aggregate` plus `field` of a section named `section`.
    fn compile(
        name: AggregateName,
        field: Option<&str>,
        section: &str,
    ) -> Result<Aggregate, (String, String)> {
        match (name, field.map(str::trim)) {
            (AggregateName::Count, None) => Ok(Aggregate::Count),
            (AggregateName::Count, Some(_)) => Err((
                format!("{section}.field"),
                "`aggregate = \"count\"` counts events and takes no field".into(),
            )),
            (AggregateName::Sum, Some(name)) if !name.is_empty() && name != "timestamp" => {
                Ok(Aggregate::Sum(Field::parse(name)))
            }
            (AggregateName::Sum, _) => Err((
                format!("{section}.field"),
                "`aggregate = \"sum\"` needs the numeric field to sum".into(),
            )),
        }
    }

    /// The event's contribution, or `None` when it has nothing to add.
    pub fn value(&self, record: &AuditRecord) -> Option<f64> {
        match self {
            Aggregate::Count => Some(1.0),
            Aggregate::Sum(field) => record
                .get(field)
                .and_then(|v| v.as_f64())
                .filter(|v| v.is_finite()),
        }
    }
}

fn parse_file(file: &RuleFile) -> Result<(Rule, bool), RuleError> {
    let doc: RuleDoc = parse::from_toml(&file.text).map_err(|e: DocError| {
        let id = parse::peek_id(&file.text);
        located(
            file,
            id.as_deref(),
            e.field.as_deref(),
            e.message,
            e.position,
        )
    })?;
    let id = doc.id.trim().to_string();
    let fail = |field: &str, message: String| located(file, Some(&id), Some(field), message, None);
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(fail(
            "id",
            format!("`{id}` is not a valid id (letters, digits, `-`, `_`, `.`)"),
        ));
    }
    if doc.title.trim().is_empty() {
        return Err(fail("title", "must not be empty".into()));
    }
    if doc.version == 0 {
        return Err(fail("version", "must be at least 1".into()));
    }
    if let Some(i) = doc.tags.iter().position(|t| t.trim().is_empty()) {
        return Err(fail(&format!("tags[{i}]"), "must not be empty".into()));
    }
    let group_by_name = doc.group_by.trim().to_string();
    let group_by = Field::parse(&group_by_name);
    if group_by_name.is_empty() || group_by == Field::Timestamp {
        return Err(fail(
            "group_by",
            "must name the entity field (user_id, session_id, department, ...)".into(),
        ));
    }
    let mut conditions = Vec::with_capacity(doc.conditions.len());
    for (i, condition) in doc.conditions.into_iter().enumerate() {
        let compiled = Condition::compile(condition)
            .map_err(|(op, message)| fail(&format!("conditions[{i}].{op}"), message))?;
        conditions.push(compiled);
    }
    let kind_name = doc.kind.as_str();
    // Each kind but `match` needs the section of its name, and no other section.
    for (name, present) in [
        ("threshold", doc.threshold.is_some()),
        ("baseline", doc.baseline.is_some()),
        ("distinct", doc.distinct.is_some()),
        ("first_seen", doc.first_seen.is_some()),
    ] {
        if present && name != kind_name {
            return Err(fail(
                name,
                format!("a `[{name}]` section does not belong to kind = \"{kind_name}\""),
            ));
        }
    }
    let missing = || {
        fail(
            kind_name,
            format!("kind = \"{kind_name}\" needs a `[{kind_name}]` section"),
        )
    };
    let kind = match doc.kind {
        KindName::Match => Kind::Match,
        KindName::Threshold => Kind::Threshold(
            ThresholdSpec::compile(doc.threshold.ok_or_else(missing)?, doc.severity)
                .map_err(|(f, m)| fail(&f, m))?,
        ),
        KindName::Baseline => Kind::Baseline(
            BaselineSpec::compile(doc.baseline.ok_or_else(missing)?)
                .map_err(|(f, m)| fail(&f, m))?,
        ),
        KindName::Distinct => Kind::Distinct(
            DistinctSpec::compile(doc.distinct.ok_or_else(missing)?)
                .map_err(|(f, m)| fail(&f, m))?,
        ),
        KindName::FirstSeen => Kind::FirstSeen(
            FirstSeenSpec::compile(doc.first_seen.ok_or_else(missing)?)
                .map_err(|(f, m)| fail(&f, m))?,
        ),
    };
    let rule = Rule {
        id: id.clone(),
        version: doc.version,
        title: doc.title.trim().to_string(),
        description: doc.description.trim().to_string(),
        severity: doc.severity,
        tags: doc.tags,
        suppress_ms: doc.suppress.ms,
        group_by,
        group_by_name,
        conditions,
        kind,
    };
    Ok((rule, doc.enabled))
}

/// Deserialise another TOML file of the detect module (entitlements), errors described.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    parse::from_toml(text).map_err(|e| describe(None, e.field.as_deref(), e.message, e.position))
}

/// Build a [`RuleError`] naming what is known: rule, field, position.
fn located(
    file: &RuleFile,
    rule: Option<&str>,
    field: Option<&str>,
    message: String,
    position: Option<(usize, usize)>,
) -> RuleError {
    RuleError {
        file: file.name.clone(),
        message: describe(rule, field, message, position),
    }
}

fn describe(
    rule: Option<&str>,
    field: Option<&str>,
    message: String,
    position: Option<(usize, usize)>,
) -> String {
    let mut text = String::new();
    if let Some(rule) = rule {
        text.push_str(&format!("rule `{rule}`, "));
    }
    if let Some(field) = field {
        text.push_str(&format!("field `{field}`: "));
    }
    text.push_str(&message);
    if let Some((line, column)) = position {
        text.push_str(&format!(" (line {line}, column {column})"));
    }
    text
}

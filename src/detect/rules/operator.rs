//! Condition operators: compiled from a condition's keys, evaluated against one field value.
//!
//! Values are typed at load time (classification names checked, regular expressions compiled
//! once), so evaluating an operator per event allocates nothing.

use super::parse::ConditionDoc;
use crate::record::{AuditRecord, Classification, Field, FieldValue};
use regex::Regex;
use std::fmt;

/// A literal in a rule: text, number or boolean.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// Where `not_entitled_to` takes the classification level from.
#[derive(Debug, Clone)]
pub(super) enum Level {
    /// A level written in the rule.
    Fixed(Classification),
    /// The record's own classification in this field (usually `data_classification`).
    FromField(Field, String),
}

/// One compiled operator.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Equals(Scalar),
    NotEquals(Scalar),
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Exists(bool),
    AtLeast(Classification),
    Contains(String),
    NotEntitledTo(Level),
    Regex(Regex),
    /// The field's value equals (`true`) or differs from (`false`) another field's value.
    SameAsField(bool, Field, String),
    /// The event time is inside (`true`) or outside (`false`) business hours of the calendar
    /// named by the condition's field (the department).
    BusinessHours(bool),
}

/// The operator names, for "use one of" messages.
pub(super) const OPERATORS: &str = "equals, not_equals, in, not_in, gt, gte, lt, lte, exists, \
     at_least, contains, regex, equals_field, not_equals_field, not_entitled_to, business_hours";

/// Compiled regular expressions larger than this are refused: a rule is matched against every
/// event, and the `regex` crate's size limit keeps a pathological pattern from eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Every operator written in `doc`, each compiled or with the reason it is wrong.
///
/// The caller requires exactly one; collecting all of them lets it name each one it found.
pub(super) fn collect(
    doc: &mut ConditionDoc,
    field: &Field,
) -> Vec<(&'static str, Result<Op, String>)> {
    let is_class = *field == Field::DataClassification;
    let mut ops: Vec<(&'static str, Result<Op, String>)> = Vec::new();
    if let Some(v) = doc.equals.take() {
        ops.push(("equals", scalar(v, is_class).map(Op::Equals)));
    }
    if let Some(v) = doc.not_equals.take() {
        ops.push(("not_equals", scalar(v, is_class).map(Op::NotEquals)));
    }
    if let Some(v) = doc.in_.take() {
        ops.push(("in", scalars(v, is_class).map(Op::In)));
    }
    if let Some(v) = doc.not_in.take() {
        ops.push(("not_in", scalars(v, is_class).map(Op::NotIn)));
    }
    for (name, value, make) in [
        ("gt", doc.gt, Op::Gt as fn(f64) -> Op),
        ("gte", doc.gte, Op::Gte),
        ("lt", doc.lt, Op::Lt),
        ("lte", doc.lte, Op::Lte),
    ] {
        if let Some(n) = value {
            let op = if n.is_finite() {
                Ok(make(n))
            } else {
                Err("must be a finite number".to_string())
            };
            ops.push((name, op));
        }
    }
    if let Some(v) = doc.exists {
        ops.push(("exists", Ok(Op::Exists(v))));
    }
    if let Some(v) = doc.at_least.take() {
        ops.push(("at_least", classification(&v).map(Op::AtLeast)));
    }
    if let Some(v) = doc.contains.take() {
        ops.push(("contains", Ok(Op::Contains(v))));
    }
    if let Some(v) = doc.not_entitled_to.take() {
        let level = match v.parse::<Classification>() {
            Ok(level) => Ok(Level::Fixed(level)),
            Err(_) if !v.trim().is_empty() => Ok(Level::FromField(
                Field::parse(v.trim()),
                v.trim().to_string(),
            )),
            Err(_) => Err("must name a classification level or a field".to_string()),
        };
        ops.push(("not_entitled_to", level.map(Op::NotEntitledTo)));
    }
    if let Some(pattern) = doc.regex.take() {
        ops.push(("regex", compile_regex(&pattern)));
    }
    for (name, value, same) in [
        ("equals_field", doc.equals_field.take(), true),
        ("not_equals_field", doc.not_equals_field.take(), false),
    ] {
        if let Some(other) = value {
            ops.push((
                name,
                other_field(&other, field).map(|(f, n)| Op::SameAsField(same, f, n)),
            ));
        }
    }
    if let Some(inside) = doc.business_hours {
        ops.push(("business_hours", Ok(Op::BusinessHours(inside))));
    }
    ops
}

fn compile_regex(pattern: &str) -> Result<Op, String> {
    if pattern.is_empty() {
        // An empty pattern matches everything: almost certainly a mistake.
        return Err("must not be empty".into());
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Op::Regex)
        .map_err(|e| format!("invalid regular expression: {e}"))
}

fn other_field(name: &str, this: &Field) -> Result<(Field, String), String> {
    let name = name.trim();
    let other = Field::parse(name);
    if name.is_empty() || other == Field::Timestamp {
        return Err("must name another field of the record (e.g. \"user_id\")".into());
    }
    if other == *this {
        return Err(format!("compares `{name}` with itself"));
    }
    Ok((other, name.to_string()))
}

impl Op {
    /// Whether `value` (present and non-empty) satisfies the operator. `Exists`,
    /// `NotEntitledTo` and `BusinessHours` are decided by the caller, which has what they need.
    pub(super) fn eval(&self, value: FieldValue<'_>, record: &AuditRecord) -> bool {
        match self {
            Op::Equals(s) => equals(value, s),
            Op::NotEquals(s) => !equals(value, s),
            Op::In(list) => list.iter().any(|s| equals(value, s)),
            Op::NotIn(list) => !list.iter().any(|s| equals(value, s)),
            Op::Gt(n) => value.as_f64().is_some_and(|v| v > *n),
            Op::Gte(n) => value.as_f64().is_some_and(|v| v >= *n),
            Op::Lt(n) => value.as_f64().is_some_and(|v| v < *n),
            Op::Lte(n) => value.as_f64().is_some_and(|v| v <= *n),
            Op::AtLeast(level) => value
                .as_str()
                .and_then(|s| s.parse::<Classification>().ok())
                .is_some_and(|c| c.level() >= level.level()),
            // Text is searched; list items must equal the needle (a flag is a whole word).
            Op::Contains(needle) => match value {
                FieldValue::Str(s) => s.contains(needle.as_str()),
                other => any_text(other, |item| item == needle),
            },
            Op::Regex(regex) => any_text(value, |text| regex.is_match(text)),
            Op::SameAsField(same, other, _) => match record.get(other) {
                // Without both values (blank text is none) there is nothing to compare, so no
                // claim either way: an event with `resource_owner = ""` is not cross-user.
                Some(other) if !blank(value) && !blank(other) => same_value(value, other) == *same,
                _ => false,
            },
            Op::Exists(_) | Op::NotEntitledTo(_) | Op::BusinessHours(_) => false,
        }
    }
}

impl fmt::Display for Op {
    /// The operator and its operand: `at least restricted`, `matches /ignore .* instructions/`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Equals(s) => write!(f, "= {s}"),
            Op::NotEquals(s) => write!(f, "!= {s}"),
            Op::In(list) => write!(f, "in [{}]", join(list)),
            Op::NotIn(list) => write!(f, "not in [{}]", join(list)),
            Op::Gt(n) => write!(f, "> {n}"),
            Op::Gte(n) => write!(f, ">= {n}"),
            Op::Lt(n) => write!(f, "< {n}"),
            Op::Lte(n) => write!(f, "<= {n}"),
            Op::Exists(true) => write!(f, "is present"),
            Op::Exists(false) => write!(f, "is absent"),
            Op::AtLeast(c) => write!(f, "at least {}", c.as_str()),
            Op::Contains(s) => write!(f, "contains \"{s}\""),
            Op::Regex(r) => write!(f, "matches /{}/", r.as_str()),
            Op::SameAsField(true, _, name) => write!(f, "equals {name}"),
            Op::SameAsField(false, _, name) => write!(f, "differs from {name}"),
            Op::NotEntitledTo(Level::Fixed(c)) => write!(f, "not entitled to {}", c.as_str()),
            Op::NotEntitledTo(Level::FromField(_, field)) => {
                write!(f, "not entitled to the level in {field}")
            }
            Op::BusinessHours(true) => write!(f, "calendar: inside business hours"),
            Op::BusinessHours(false) => write!(f, "calendar: outside business hours"),
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Str(s) => write!(f, "\"{s}\""),
            Scalar::Num(n) => write!(f, "{n}"),
            Scalar::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn join(list: &[Scalar]) -> String {
    list.iter()
        .map(Scalar::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether any text the value holds satisfies `test`: the value itself when it is text, each
/// string item when it is a list. Other values hold no text.
fn any_text(value: FieldValue<'_>, mut test: impl FnMut(&str) -> bool) -> bool {
    match value {
        FieldValue::Str(s) => test(s),
        FieldValue::List(list) => list.iter().any(|item| test(item)),
        FieldValue::Json(serde_json::Value::Array(items)) => {
            items.iter().filter_map(serde_json::Value::as_str).any(test)
        }
        _ => false,
    }
}

fn equals(value: FieldValue<'_>, wanted: &Scalar) -> bool {
    match (wanted, value) {
        (Scalar::Str(s), FieldValue::Str(v)) => v == s,
        (Scalar::Num(n), v) => v.as_f64() == Some(*n),
        (Scalar::Bool(b), FieldValue::Bool(v)) => v == *b,
        _ => false,
    }
}

/// Absent for a comparison: blank text or an empty list.
fn blank(value: FieldValue<'_>) -> bool {
    match value {
        FieldValue::Str(s) => s.trim().is_empty(),
        FieldValue::List(list) => list.is_empty(),
        _ => false,
    }
}

/// Whether two field values are the same. Text compares case-insensitively and ignoring
/// surrounding space: the same person is `Alice@acme.example` in one system and
/// `alice@acme.example` in another (the entitlements file compares the same way), and a
/// cross-user rule must not fire on a user reading their own data.
fn same_value(a: FieldValue<'_>, b: FieldValue<'_>) -> bool {
    fn same_text(a: &str, b: &str) -> bool {
        let (a, b) = (a.trim(), b.trim());
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    }
    match (a, b) {
        (FieldValue::Str(x), FieldValue::Str(y)) => same_text(x, y),
        (FieldValue::Bool(x), FieldValue::Bool(y)) => x == y,
        (FieldValue::List(x), FieldValue::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_text(x, y))
        }
        (FieldValue::Json(x), FieldValue::Json(y)) => x == y,
        // A number against a number, or against text holding one (`"42"` and `42`).
        (x, y) => matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y),
    }
}

fn scalar(value: toml::Value, is_class: bool) -> Result<Scalar, String> {
    let scalar = match value {
        toml::Value::String(s) => Scalar::Str(s),
        toml::Value::Integer(n) => Scalar::Num(n as f64),
        toml::Value::Float(n) if n.is_finite() => Scalar::Num(n),
        toml::Value::Boolean(b) => Scalar::Bool(b),
        other => {
            return Err(format!(
                "expected a string, number or boolean, found {}",
                other.type_str()
            ))
        }
    };
    // Catch typos in classification names at load rather than never matching.
    // The record reports the canonical lowercase name, so compare against that.
    match scalar {
        Scalar::Str(s) if is_class => Ok(Scalar::Str(classification(&s)?.as_str().to_string())),
        other => Ok(other),
    }
}

fn scalars(values: Vec<toml::Value>, is_class: bool) -> Result<Vec<Scalar>, String> {
    if values.is_empty() {
        return Err("the list must not be empty".into());
    }
    values.into_iter().map(|v| scalar(v, is_class)).collect()
}

fn classification(name: &str) -> Result<Classification, String> {
    name.parse::<Classification>().map_err(|e| e.to_string())
}

//! Conditions: a field, one operator, a value typed at load time.
//!
//! A condition on a field the record does not have is false (whatever the operator, negations
//! included), except `exists = false`: a rule never fires on a value it cannot see.

use super::parse::ConditionDoc;
use crate::detect::Entitlements;
use crate::record::{AuditRecord, Classification, Field, FieldValue};
use std::fmt;

/// A compiled condition.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    field: Field,
    name: String,
    op: Op,
}

/// A literal in a rule: text, number or boolean.
#[derive(Debug, Clone, PartialEq)]
enum Scalar {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// Where `not_entitled_to` takes the classification level from.
#[derive(Debug, Clone)]
enum Level {
    /// A level written in the rule.
    Fixed(Classification),
    /// The record's own classification in this field (usually `data_classification`).
    FromField(Field, String),
}

#[derive(Debug, Clone)]
enum Op {
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
}

/// The operator names, for "use one of" messages.
const OPERATORS: &str =
    "equals, not_equals, in, not_in, gt, gte, lt, lte, exists, at_least, contains, not_entitled_to";

impl Condition {
    /// Validate and compile; errors are `(operator or "field", message)`.
    pub(super) fn compile(doc: ConditionDoc) -> Result<Condition, (String, String)> {
        let field = Field::parse(doc.field.trim());
        if doc.field.trim().is_empty() {
            return Err(("field".into(), "must name a field".into()));
        }
        if field == Field::Timestamp {
            return Err((
                "field".into(),
                "`timestamp` cannot be compared in a condition".into(),
            ));
        }
        let is_class = field == Field::DataClassification;
        let mut ops: Vec<(&str, Result<Op, String>)> = Vec::new();
        if let Some(v) = doc.equals {
            ops.push(("equals", scalar(v, is_class).map(Op::Equals)));
        }
        if let Some(v) = doc.not_equals {
            ops.push(("not_equals", scalar(v, is_class).map(Op::NotEquals)));
        }
        if let Some(v) = doc.in_ {
            ops.push(("in", scalars(v, is_class).map(Op::In)));
        }
        if let Some(v) = doc.not_in {
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
        if let Some(v) = doc.at_least {
            ops.push(("at_least", classification(&v).map(Op::AtLeast)));
        }
        if let Some(v) = doc.contains {
            ops.push(("contains", Ok(Op::Contains(v))));
        }
        if let Some(v) = doc.not_entitled_to {
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
        let op = match ops.len() {
            0 => {
                return Err((
                    "field".into(),
                    format!(
                        "condition on `{}` has no operator (use one of {OPERATORS})",
                        doc.field
                    ),
                ))
            }
            1 => ops
                .pop()
                .map(|(name, op)| op.map_err(|message| (name.to_string(), message))),
            _ => {
                let names: Vec<&str> = ops.iter().map(|(name, _)| *name).collect();
                return Err((
                    names.join(", "),
                    format!(
                        "condition on `{}` has {} operators ({}); write one condition per operator",
                        doc.field,
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
        };
        let op = op.ok_or_else(|| ("field".to_string(), "no operator".to_string()))??;
        Ok(Condition {
            field,
            name: doc.field.trim().to_string(),
            op,
        })
    }

    /// Whether the record satisfies this condition.
    pub fn matches(&self, record: &AuditRecord, entitlements: &Entitlements) -> bool {
        let value = record.get(&self.field);
        if let Op::Exists(wanted) = self.op {
            return present(value) == wanted;
        }
        let Some(value) = value.filter(|v| present(Some(*v))) else {
            return false;
        };
        match &self.op {
            Op::Equals(s) => equals(value, s),
            Op::NotEquals(s) => !equals(value, s),
            Op::In(list) => list.iter().any(|s| equals(value, s)),
            Op::NotIn(list) => !list.iter().any(|s| equals(value, s)),
            Op::Gt(n) => value.as_f64().is_some_and(|v| v > *n),
            Op::Gte(n) => value.as_f64().is_some_and(|v| v >= *n),
            Op::Lt(n) => value.as_f64().is_some_and(|v| v < *n),
            Op::Lte(n) => value.as_f64().is_some_and(|v| v <= *n),
            Op::Exists(_) => true,
            Op::AtLeast(level) => value
                .as_str()
                .and_then(|s| s.parse::<Classification>().ok())
                .is_some_and(|c| c.level() >= level.level()),
            Op::Contains(needle) => contains(value, needle),
            Op::NotEntitledTo(source) => {
                let level = match source {
                    Level::Fixed(level) => Some(*level),
                    Level::FromField(field, _) => record
                        .get(field)
                        .and_then(|v| v.as_str())
                        .and_then(|s| s.parse::<Classification>().ok()),
                };
                // Without a level there is no claim of a breach.
                let Some(level) = level else { return false };
                let (user, department) = if self.field == Field::Department {
                    (None, value.as_str())
                } else {
                    (value.as_str(), record.department.as_deref())
                };
                !entitlements.is_entitled(user, department, level)
            }
        }
    }
}

impl fmt::Display for Condition {
    /// Human-readable, for alert details: `data_classification at least restricted`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.op {
            Op::Equals(s) => write!(f, "{name} = {s}"),
            Op::NotEquals(s) => write!(f, "{name} != {s}"),
            Op::In(list) => write!(f, "{name} in [{}]", join(list)),
            Op::NotIn(list) => write!(f, "{name} not in [{}]", join(list)),
            Op::Gt(n) => write!(f, "{name} > {n}"),
            Op::Gte(n) => write!(f, "{name} >= {n}"),
            Op::Lt(n) => write!(f, "{name} < {n}"),
            Op::Lte(n) => write!(f, "{name} <= {n}"),
            Op::Exists(true) => write!(f, "{name} is present"),
            Op::Exists(false) => write!(f, "{name} is absent"),
            Op::AtLeast(c) => write!(f, "{name} at least {}", c.as_str()),
            Op::Contains(s) => write!(f, "{name} contains \"{s}\""),
            Op::NotEntitledTo(Level::Fixed(c)) => {
                write!(f, "{name} not entitled to {}", c.as_str())
            }
            Op::NotEntitledTo(Level::FromField(_, field)) => {
                write!(f, "{name} not entitled to the level in {field}")
            }
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

/// Empty lists count as absent, so `exists` means "has at least one" for flags.
fn present(value: Option<FieldValue<'_>>) -> bool {
    match value {
        None => false,
        Some(FieldValue::List(list)) => !list.is_empty(),
        Some(_) => true,
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

fn contains(value: FieldValue<'_>, needle: &str) -> bool {
    match value {
        FieldValue::Str(s) => s.contains(needle),
        FieldValue::List(list) => list.iter().any(|item| item == needle),
        FieldValue::Json(serde_json::Value::Array(items)) => {
            items.iter().any(|item| item.as_str() == Some(needle))
        }
        _ => false,
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

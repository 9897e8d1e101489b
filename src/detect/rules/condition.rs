//! Conditions: a field, one operator, a value typed at load time; or an `any` group of them.
//!
//! A condition on a field the record does not have is false (whatever the operator, negations
//! included), except `exists = false`, and `business_hours`, which reads the department only
//! to choose a calendar (a record without one is judged by the `default` calendar): a rule
//! never fires on a value it cannot see.

use super::operator::{self, Level, Op, OPERATORS};
use super::parse::ConditionDoc;
use crate::detect::{Calendars, Entitlements};
use crate::record::{fields, AuditRecord, Classification, Field, FieldValue};
use std::fmt;

/// What conditions may consult besides the record: loaded with the rules, never changed by
/// events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookups<'a> {
    /// Who is cleared for which classification (`not_entitled_to`).
    pub entitlements: &'a Entitlements,
    /// Business hours per department (`business_hours`).
    pub calendars: &'a Calendars,
}

/// A compiled `[[conditions]]` entry.
#[derive(Debug, Clone)]
pub(crate) enum Condition {
    /// One test.
    One(Test),
    /// An `any` group: true when at least one of its tests is.
    Any(Vec<Test>),
}

/// A field and one operator.
#[derive(Debug, Clone)]
pub(crate) struct Test {
    field: Field,
    name: String,
    op: Op,
}

/// More alternatives than this in one `any` group is a list that belongs in `in` or `regex`.
const MAX_ANY: usize = 64;

impl Condition {
    /// Validate and compile; errors are `(path below the condition, message)`, the path being
    /// an operator (`regex`), `field`, or `any[1].regex` inside a group.
    pub(super) fn compile(mut doc: ConditionDoc) -> Result<Condition, (String, String)> {
        let Some(group) = doc.any.take() else {
            return Test::compile(doc).map(Condition::One);
        };
        // A group stands alone, so it is never unclear whether a sibling key is ANDed or ORed.
        let mut beside: Vec<&str> = operator::collect(&mut doc, &Field::parse(""))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        if doc.field.is_some() {
            beside.insert(0, "field");
        }
        if !beside.is_empty() {
            return Err((
                "any".into(),
                format!(
                    "an `any` group stands alone; move {} into one of its conditions, or into \
                     a condition of its own",
                    beside.join(", ")
                ),
            ));
        }
        if group.is_empty() {
            return Err(("any".into(), "needs at least one condition".into()));
        }
        if group.len() > MAX_ANY {
            return Err(("any".into(), format!("at most {MAX_ANY} conditions")));
        }
        let mut tests = Vec::with_capacity(group.len());
        for (j, item) in group.into_iter().enumerate() {
            if item.any.is_some() {
                return Err((
                    format!("any[{j}].any"),
                    "`any` groups do not nest (write the alternatives in one group)".into(),
                ));
            }
            let test = Test::compile(item).map_err(|(op, m)| (format!("any[{j}].{op}"), m))?;
            tests.push(test);
        }
        Ok(Condition::Any(tests))
    }

    /// Whether the record satisfies this condition.
    pub fn matches(&self, record: &AuditRecord, lookups: Lookups<'_>) -> bool {
        match self {
            Condition::One(test) => test.matches(record, lookups),
            Condition::Any(tests) => tests.iter().any(|t| t.matches(record, lookups)),
        }
    }

    /// Why the record satisfied the condition, for alert details: the group member that
    /// matched, and for time-of-day tests the calendar and local time that decided.
    pub fn explain(&self, record: &AuditRecord, lookups: Lookups<'_>) -> String {
        match self {
            Condition::One(test) => test.explain(record, lookups),
            Condition::Any(tests) => tests
                .iter()
                .find(|t| t.matches(record, lookups))
                .map_or_else(|| self.to_string(), |t| t.explain(record, lookups)),
        }
    }
}

impl Test {
    fn compile(mut doc: ConditionDoc) -> Result<Test, (String, String)> {
        let name = match doc.field.as_deref().map(str::trim) {
            Some("") => return Err(("field".into(), "must name a field".into())),
            Some(name) => name.to_string(),
            // The calendar is the department's unless the rule names another field.
            None if doc.business_hours.is_some() => fields::DEPARTMENT.to_string(),
            None => {
                return Err((
                    "field".into(),
                    "a condition needs a `field` and one operator, or `any = [...]`".into(),
                ))
            }
        };
        let field = Field::parse(&name);
        if field == Field::Timestamp {
            return Err((
                "field".into(),
                "`timestamp` cannot be compared in a condition (for time of day, use \
                 `business_hours`)"
                    .into(),
            ));
        }
        let mut ops = operator::collect(&mut doc, &field);
        let op = match ops.len() {
            0 => {
                return Err((
                    "field".into(),
                    format!("condition on `{name}` has no operator (use one of {OPERATORS})"),
                ))
            }
            1 => ops.pop(),
            _ => {
                let names: Vec<&str> = ops.iter().map(|(name, _)| *name).collect();
                return Err((
                    names.join(", "),
                    format!(
                        "condition on `{name}` has {} operators ({}); write one condition per \
                         operator",
                        names.len(),
                        names.join(", ")
                    ),
                ));
            }
        };
        let (op_name, op) = op.ok_or_else(|| ("field".to_string(), "no operator".to_string()))?;
        let op = op.map_err(|message| (op_name.to_string(), message))?;
        Ok(Test { field, name, op })
    }

    fn matches(&self, record: &AuditRecord, lookups: Lookups<'_>) -> bool {
        let value = record.get(&self.field);
        match &self.op {
            Op::Exists(wanted) => return present(value) == *wanted,
            Op::BusinessHours(inside) => {
                let calendar = value.and_then(|v| v.as_str());
                return lookups
                    .calendars
                    .is_business_hours(calendar, record.timestamp)
                    == *inside;
            }
            _ => {}
        }
        let Some(value) = value.filter(|v| present(Some(*v))) else {
            return false;
        };
        match &self.op {
            Op::NotEntitledTo(source) => not_entitled(
                self.field == Field::Department,
                source,
                value,
                record,
                lookups,
            ),
            op => op.eval(value, record),
        }
    }

    fn explain(&self, record: &AuditRecord, lookups: Lookups<'_>) -> String {
        match &self.op {
            Op::BusinessHours(inside) => {
                let calendar = record.get(&self.field).and_then(|v| v.as_str());
                let (name, local) = lookups.calendars.local_time(calendar, record.timestamp);
                let side = if *inside { "inside" } else { "outside" };
                format!("{side} business hours of calendar `{name}` (local time {local})")
            }
            _ => self.to_string(),
        }
    }
}

fn not_entitled(
    on_department: bool,
    source: &Level,
    value: FieldValue<'_>,
    record: &AuditRecord,
    lookups: Lookups<'_>,
) -> bool {
    let level = match source {
        Level::Fixed(level) => Some(*level),
        Level::FromField(field, _) => record
            .get(field)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<Classification>().ok()),
    };
    // Without a level there is no claim of a breach.
    let Some(level) = level else { return false };
    let (user, department) = if on_department {
        (None, value.as_str())
    } else {
        (value.as_str(), record.department.as_deref())
    };
    !lookups.entitlements.is_entitled(user, department, level)
}

impl fmt::Display for Condition {
    /// Human-readable, for alert details: `data_classification at least restricted`,
    /// `any of (policy_flags contains "jailbreak" | security_flags contains "jailbreak")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::One(test) => test.fmt(f),
            Condition::Any(tests) => {
                let parts: Vec<String> = tests.iter().map(Test::to_string).collect();
                write!(f, "any of ({})", parts.join(" | "))
            }
        }
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::BusinessHours(_) => write!(f, "{} ({})", self.op, self.name),
            op => write!(f, "{} {op}", self.name),
        }
    }
}

/// Empty lists count as absent, so `exists` means "has at least one" for flags.
fn present(value: Option<FieldValue<'_>>) -> bool {
    match value {
        None => false,
        Some(FieldValue::List(list)) => !list.is_empty(),
        Some(_) => true,
    }
}

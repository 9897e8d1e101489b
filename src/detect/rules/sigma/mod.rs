//! Rule files as Sigma rules (`aiwarden rules export --format sigma`), so a SIEM can run the
//! same detections in its own query language.
//!
//! - `match` rules become Sigma detection rules.
//! - `threshold` rules become a base detection rule (the conditions) plus one Sigma correlation
//!   rule per tier: `event_count` for `aggregate = "count"`, `value_sum` for a sum; `group-by`
//!   the entity field, `timespan` the tier's window. SIEMs evaluate `timespan` in buckets
//!   rather than aiwarden's sliding windows, so they may fire a little later or not at all on a
//!   burst that straddles two buckets.
//! - `distinct` rules become a `value_count` correlation.
//! - `baseline` and `first_seen` rules are skipped: an entity's own history is not something
//!   Sigma can state. So are rules that consult what only the agent has (entitlements, business-hours
//!   calendars) or name a field no sink emits. Each skip comes with its reason.
//!
//! Field names are the canonical ones (what the Splunk sink sends); the processing pipelines of
//! [`pipelines`] rename them for Elastic and Sentinel from the field catalogue
//! ([`crate::record::catalogue`]). Pure: text in, text out.

mod pipelines;
mod yaml;

pub use pipelines::pipelines;

use super::parse::{self, AggregateName, ConditionDoc, KindName, RuleDoc};
use crate::detect::{RuleError, RuleFile, RuleSet};
use crate::record::catalogue::{self, FieldKind};
use crate::record::{atlas, Classification, Severity};
use serde_json::{json, Map, Value};

/// The `logsource.product` of every exported rule.
pub const LOGSOURCE_PRODUCT: &str = "aiwarden";
/// The `logsource.service` of rules over audit events.
pub const LOGSOURCE_SERVICE: &str = "audit";

/// One exported rule file: a detection rule, or a base rule followed by its correlations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigmaFile {
    /// The aiwarden rule id.
    pub rule_id: String,
    /// File name to write (`aiwarden_<id>.yml`).
    pub file_name: String,
    /// The YAML text (documents separated by `---`).
    pub text: String,
}

/// A rule that has no Sigma form, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    /// The aiwarden rule id.
    pub rule_id: String,
    /// Why it cannot be expressed in Sigma.
    pub reason: String,
}

/// What an export produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigmaExport {
    /// The exported rules, in file order.
    pub files: Vec<SigmaFile>,
    /// The rules left out, with their reasons.
    pub skipped: Vec<SkippedRule>,
}

/// Export every rule file as Sigma. The files are validated first (the same checks as
/// `rules lint`), so an invalid pack is an error rather than a partial export.
pub fn export(files: &[RuleFile]) -> Result<SigmaExport, RuleError> {
    RuleSet::parse(files)?;
    let mut export = SigmaExport::default();
    for file in files {
        let doc: RuleDoc = parse::from_toml(&file.text).map_err(|error| RuleError {
            file: file.name.clone(),
            message: error.message,
        })?;
        let rule_id = doc.id.trim().to_string();
        match convert(&doc) {
            Ok(text) => export.files.push(SigmaFile {
                file_name: format!("aiwarden_{}.yml", rule_id.replace('-', "_")),
                rule_id,
                text,
            }),
            Err(reason) => export.skipped.push(SkippedRule { rule_id, reason }),
        }
    }
    Ok(export)
}

/// The Sigma name of a rule (`aiwarden_mcp_volume`), also used by the content packs.
pub fn sigma_name(rule_id: &str) -> String {
    format!("aiwarden_{}", rule_id.replace(['-', '.'], "_"))
}

fn convert(doc: &RuleDoc) -> Result<String, String> {
    if !doc.enabled {
        return Err("disabled in its rule file".into());
    }
    let id = doc.id.trim();
    let group_by = doc.group_by.trim();
    emitted_field(group_by).map_err(|e| format!("group_by: {e}"))?;
    let detection = detection(&doc.conditions)?;
    let mut fields = vec![group_by.to_string()];
    collect_fields(&doc.conditions, &mut fields);
    let name = sigma_name(id);
    match doc.kind {
        KindName::Match => Ok(yaml::document(&detection_rule(
            doc, &name, None, detection, &fields,
        ))),
        KindName::Baseline => Err(
            "a baseline rule compares an entity's day with its own trailing history, which \
             Sigma cannot express; its alerts reach the SIEM from aiwarden (aiwarden:alert)"
                .into(),
        ),
        KindName::FirstSeen => Err(
            "a first_seen rule fires on a value the entity has never shown before, which needs \
             the entity's history; Sigma cannot express it, so its alerts reach the SIEM from \
             aiwarden (aiwarden:alert)"
                .into(),
        ),
        KindName::Threshold => {
            let Some(threshold) = &doc.threshold else {
                return Err("kind = \"threshold\" without a [threshold] section".into());
            };
            let value_field = match (threshold.aggregate, threshold.field.as_deref()) {
                (AggregateName::Count, _) => None,
                (AggregateName::Sum, Some(field)) => {
                    let field = field.trim();
                    let kind = emitted_field(field).map_err(|e| format!("threshold.field: {e}"))?;
                    if !kind.is_numeric() {
                        return Err(format!("threshold.field: `{field}` is not numeric"));
                    }
                    fields.push(field.to_string());
                    Some(field.to_string())
                }
                (AggregateName::Sum, None) => return Err("sum without a field".into()),
            };
            let base_name = format!("{name}_events");
            let mut documents = vec![yaml::document(&detection_rule(
                doc,
                &base_name,
                Some("matching events"),
                detection,
                &fields,
            ))];
            let tiers = threshold.tiers.len();
            for (i, tier) in threshold.tiers.iter().enumerate() {
                let tier_name = if tiers == 1 {
                    name.clone()
                } else {
                    format!("{name}_tier{}", i + 1)
                };
                let (correlation_type, field) = match &value_field {
                    None => ("event_count", None),
                    Some(field) => ("value_sum", Some(field.as_str())),
                };
                let shape = Correlation {
                    name: &tier_name,
                    base: &base_name,
                    correlation_type,
                    field,
                    group_by,
                    window_ms: tier.window.ms,
                    above: tier.above,
                    severity: tier.severity.unwrap_or(doc.severity),
                    what: format!(
                        "more than {} {} in {}",
                        tier.above,
                        threshold.unit.as_deref().unwrap_or("events"),
                        tier.window.text
                    ),
                };
                documents.push(yaml::document(&correlation_rule(doc, &shape)?));
            }
            Ok(documents.join("---\n"))
        }
        KindName::Distinct => {
            let Some(distinct) = &doc.distinct else {
                return Err("kind = \"distinct\" without a [distinct] section".into());
            };
            let field = distinct.field.trim();
            emitted_field(field).map_err(|e| format!("distinct.field: {e}"))?;
            fields.push(field.to_string());
            let base_name = format!("{name}_events");
            let base = detection_rule(doc, &base_name, Some("matching events"), detection, &fields);
            let shape = Correlation {
                name: &name,
                base: &base_name,
                correlation_type: "value_count",
                field: Some(field),
                group_by,
                window_ms: distinct.window.ms,
                above: f64::from(distinct.above),
                severity: doc.severity,
                what: format!(
                    "more than {} distinct {} in {}",
                    distinct.above, field, distinct.window.text
                ),
            };
            Ok([
                yaml::document(&base),
                yaml::document(&correlation_rule(doc, &shape)?),
            ]
            .join("---\n"))
        }
    }
}

/// The type of a field the sinks emit, or why a SIEM could not query it.
fn emitted_field(name: &str) -> Result<FieldKind, String> {
    match catalogue::event_field(name) {
        Some(field) if field.elastic.is_some() && field.sentinel.is_some() => Ok(field.kind),
        _ => Err(format!(
            "`{name}` is not in the field catalogue (record::catalogue): at most passed through \
             untyped, unmapped in Elastic and no Sentinel column, so no SIEM query can rely on it"
        )),
    }
}

/// The stable id of a Sigma document derived from an aiwarden rule.
fn sigma_id(name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("https://aiwarden.invalid/sigma/{name}").as_bytes(),
    )
    .to_string()
}

fn level(severity: Severity) -> &'static str {
    severity.as_str()
}

/// Tags: ATLAS techniques as `atlas.aml.t0051`, the others under `aiwarden.`.
fn tags(doc: &RuleDoc) -> Vec<String> {
    let techniques = atlas::technique_ids(&doc.tags);
    let mut tags: Vec<String> = techniques
        .iter()
        .map(|id| format!("atlas.{}", id.to_ascii_lowercase()))
        .collect();
    for tag in &doc.tags {
        if tag.contains("AML.T") || tag.trim().eq_ignore_ascii_case("aiwarden") {
            continue;
        }
        let clean: String = tag
            .trim()
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        if !clean.is_empty() {
            tags.push(format!("aiwarden.{clean}"));
        }
    }
    tags.dedup();
    tags
}

fn description(doc: &RuleDoc) -> String {
    let text = doc
        .description
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    format!("{text} (aiwarden rule {} v{}.)", doc.id.trim(), doc.version)
}

fn detection_rule(
    doc: &RuleDoc,
    name: &str,
    suffix: Option<&str>,
    detection: Value,
    fields: &[String],
) -> Value {
    let title = match suffix {
        Some(suffix) => format!("{}: {suffix}", doc.title.trim()),
        None => doc.title.trim().to_string(),
    };
    let mut unique: Vec<&String> = Vec::new();
    for field in fields {
        if !unique.contains(&field) {
            unique.push(field);
        }
    }
    json!({
        "title": title,
        "id": sigma_id(name),
        "name": name,
        "status": "test",
        "description": description(doc),
        "author": "aiwarden",
        "tags": tags(doc),
        "logsource": {"product": LOGSOURCE_PRODUCT, "service": LOGSOURCE_SERVICE},
        "detection": detection,
        "fields": unique,
        "falsepositives": ["See the investigation notes in the description"],
        "level": level(doc.severity),
    })
}

/// One correlation rule's shape.
struct Correlation<'a> {
    name: &'a str,
    base: &'a str,
    correlation_type: &'static str,
    field: Option<&'a str>,
    group_by: &'a str,
    window_ms: i64,
    above: f64,
    severity: Severity,
    what: String,
}

fn correlation_rule(doc: &RuleDoc, shape: &Correlation<'_>) -> Result<Value, String> {
    let mut correlation = Map::new();
    correlation.insert("type".into(), json!(shape.correlation_type));
    correlation.insert("rules".into(), json!([shape.base]));
    correlation.insert("group-by".into(), json!([shape.group_by]));
    correlation.insert("timespan".into(), json!(timespan(shape.window_ms)?));
    // Sigma names the aggregated field inside the condition.
    let mut condition = bound(shape.above);
    if let (Some(field), Some(map)) = (shape.field, condition.as_object_mut()) {
        map.insert("field".into(), json!(field));
    }
    correlation.insert("condition".into(), condition);
    Ok(json!({
        "title": format!("{} ({})", doc.title.trim(), shape.what),
        "id": sigma_id(shape.name),
        "name": shape.name,
        "status": "test",
        "description": description(doc),
        "author": "aiwarden",
        "tags": tags(doc),
        "correlation": Value::Object(correlation),
        "falsepositives": ["See the investigation notes in the description"],
        "level": level(shape.severity),
    }))
}

/// `{gt: n}`; a fractional bound becomes `gte` of the next integer, which is the same test
/// for the integer counts and sums the aggregates produce.
fn bound(above: f64) -> Value {
    if above.fract() == 0.0 {
        json!({"gt": above as i64})
    } else {
        json!({"gte": above.ceil() as i64})
    }
}

/// A Sigma timespan (`30s`, `10m`, `1h`, `1d`) for a window.
fn timespan(ms: i64) -> Result<String, String> {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms % size == 0 {
            return Ok(format!("{}{unit}", ms / size));
        }
    }
    Err(format!(
        "a window of {ms} ms is not a whole number of seconds"
    ))
}

fn collect_fields(conditions: &[ConditionDoc], out: &mut Vec<String>) {
    for condition in conditions {
        if let Some(group) = &condition.any {
            collect_fields(group, out);
        }
        if let Some(field) = &condition.field {
            out.push(field.trim().to_string());
        }
        for other in [&condition.equals_field, &condition.not_equals_field]
            .into_iter()
            .flatten()
        {
            out.push(other.trim().to_string());
        }
    }
}

/// The `detection` section: one named selection per test, ANDed in the rule's order.
fn detection(conditions: &[ConditionDoc]) -> Result<Value, String> {
    let mut selections = Map::new();
    let mut terms = Vec::new();
    for (i, condition) in conditions.iter().enumerate() {
        let prefix = format!("c{}", i + 1);
        match &condition.any {
            Some(group) => {
                let mut alternatives = Vec::new();
                for (j, test) in group.iter().enumerate() {
                    alternatives.push(selection(
                        test,
                        &format!("{prefix}_{}", j + 1),
                        &mut selections,
                    )?);
                }
                terms.push(format!("({})", alternatives.join(" or ")));
            }
            None => terms.push(selection(condition, &prefix, &mut selections)?),
        }
    }
    if terms.is_empty() {
        // Every record has an id: a rule without conditions looks at every event.
        selections.insert("all".into(), json!({"event_id|exists": true}));
        terms.push("all".into());
    }
    selections.insert("condition".into(), json!(terms.join(" and ")));
    Ok(Value::Object(selections))
}

/// Add the selections of one test; return its condition expression.
fn selection(
    test: &ConditionDoc,
    name: &str,
    out: &mut Map<String, Value>,
) -> Result<String, String> {
    if test.business_hours.is_some() {
        return Err(
            "`business_hours` needs aiwarden's per-department calendars, which a SIEM query \
             does not have"
                .into(),
        );
    }
    let field = test.field.as_deref().map(str::trim).unwrap_or_default();
    if test.not_entitled_to.is_some() {
        return Err(
            "`not_entitled_to` needs aiwarden's entitlements file, which a SIEM query does not \
             have"
                .into(),
        );
    }
    let kind = emitted_field(field)?;
    let mut put = |suffix: &str, value: Value| {
        let key = if suffix.is_empty() {
            name.to_string()
        } else {
            format!("{name}_{suffix}")
        };
        out.insert(key.clone(), value);
        key
    };
    let present = |put: &mut dyn FnMut(&str, Value) -> String| {
        put("present", json!({format!("{field}|exists"): true}))
    };
    // aiwarden's negations are false on an absent field; Sigma's `not` is true there, so
    // every negation also requires the field.
    if let Some(value) = &test.equals {
        return Ok(put("", json!({field: literal(value)?})));
    }
    if let Some(value) = &test.not_equals {
        let has = present(&mut put);
        let is = put("value", json!({field: literal(value)?}));
        return Ok(format!("({has} and not {is})"));
    }
    if let Some(values) = &test.in_ {
        let list = values.iter().map(literal).collect::<Result<Vec<_>, _>>()?;
        return Ok(put("", json!({field: list})));
    }
    if let Some(values) = &test.not_in {
        let list = values.iter().map(literal).collect::<Result<Vec<_>, _>>()?;
        let has = present(&mut put);
        let is = put("value", json!({field: list}));
        return Ok(format!("({has} and not {is})"));
    }
    for (op, value) in [
        ("gt", test.gt),
        ("gte", test.gte),
        ("lt", test.lt),
        ("lte", test.lte),
    ] {
        if let Some(n) = value {
            return Ok(put("", json!({format!("{field}|{op}"): number(n)})));
        }
    }
    if let Some(exists) = test.exists {
        return Ok(put("", json!({format!("{field}|exists"): exists})));
    }
    if let Some(level) = &test.at_least {
        let level = level
            .parse::<Classification>()
            .map_err(|e| e.to_string())?
            .level();
        let names: Vec<&str> = Classification::ALL
            .into_iter()
            .filter(|c| c.level() >= level)
            .map(Classification::as_str)
            .collect();
        return Ok(put("", json!({field: names})));
    }
    if let Some(needle) = &test.contains {
        // A list contains an equal item; text contains a substring (as the engine decides).
        let key = if kind == FieldKind::KeywordList {
            field.to_string()
        } else {
            format!("{field}|contains")
        };
        return Ok(put("", json!({key: needle})));
    }
    if let Some(pattern) = &test.regex {
        // Sigma spells case-insensitivity as a modifier; backends differ on inline flags.
        let (key, pattern) = match pattern.strip_prefix("(?i)") {
            Some(rest) => (format!("{field}|re|i"), rest),
            None => (format!("{field}|re"), pattern.as_str()),
        };
        return Ok(put("", json!({key: pattern})));
    }
    for (other, same) in [(&test.equals_field, true), (&test.not_equals_field, false)] {
        if let Some(other) = other {
            let other = other.trim();
            emitted_field(other)?;
            // Both fields must be present: the engine makes no claim without both values.
            let has = present(&mut put);
            let other_has = put("other_present", json!({format!("{other}|exists"): true}));
            let is = put("same", json!({format!("{field}|fieldref"): other}));
            let negation = if same { "" } else { "not " };
            return Ok(format!("({has} and {other_has} and {negation}{is})"));
        }
    }
    Err(format!(
        "condition on `{field}` has no operator Sigma can express"
    ))
}

fn literal(value: &toml::Value) -> Result<Value, String> {
    match value {
        toml::Value::String(s) => Ok(json!(s)),
        toml::Value::Integer(i) => Ok(json!(i)),
        toml::Value::Float(f) => Ok(number(*f)),
        toml::Value::Boolean(b) => Ok(json!(b)),
        other => Err(format!("the value `{other}` has no Sigma form")),
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

#[cfg(test)]
mod tests;

//! pySigma processing pipelines, one per SIEM, generated from the field catalogue: they rename
//! the canonical field names of the exported rules to what each sink emits and point the
//! queries at aiwarden's data (sourcetype, data stream, table).

use super::{yaml, LOGSOURCE_PRODUCT};
use crate::record::catalogue::{names_in, FieldKind, Siem, EVENT_FIELDS};
use serde_json::{json, Map, Value};

/// `(file name, YAML)` of the Splunk, Elastic and Sentinel pipelines.
pub fn pipelines() -> Vec<(&'static str, String)> {
    let for_aiwarden = json!([{"type": "logsource", "product": LOGSOURCE_PRODUCT}]);
    let mut splunk_names = Map::new();
    let mut elastic_names = Map::new();
    let mut sentinel_names = Map::new();
    for field in EVENT_FIELDS {
        let Some(canonical) = field.canonical else {
            continue;
        };
        // Splunk's JSON extraction names the items of an array `name{}`.
        if field.kind == FieldKind::KeywordList {
            splunk_names.insert(canonical.into(), json!(format!("{canonical}{{}}")));
        }
        if let Some(elastic) = field.elastic {
            elastic_names.insert(canonical.into(), json!(elastic));
        }
        if let Some(sentinel) = field.sentinel {
            sentinel_names.insert(canonical.into(), json!(sentinel));
        }
    }
    let splunk = json!({
        "name": "aiwarden events in Splunk (sourcetype aiwarden:event, generated from record::catalogue)",
        "priority": 20,
        "transformations": [
            {"id": "aiwarden_field_names", "type": "field_name_mapping",
             "mapping": splunk_names, "rule_conditions": for_aiwarden},
            {"id": "aiwarden_sourcetype", "type": "add_condition",
             "conditions": {"sourcetype": "aiwarden:event"}, "rule_conditions": for_aiwarden},
        ],
    });
    let elastic = json!({
        "name": "aiwarden events in Elastic (logs-aiwarden.events-*, generated from record::catalogue)",
        "priority": 20,
        "transformations": [
            {"id": "aiwarden_field_names", "type": "field_name_mapping",
             "mapping": elastic_names, "rule_conditions": for_aiwarden},
            {"id": "aiwarden_data_stream", "type": "set_state", "key": "index",
             "val": "logs-aiwarden.events-*", "rule_conditions": for_aiwarden},
        ],
    });
    let sentinel = json!({
        "name": "aiwarden events in Sentinel (AIWardenEvents_CL, generated from record::catalogue)",
        "priority": 20,
        "transformations": [
            {"id": "aiwarden_field_names", "type": "field_name_mapping",
             "mapping": sentinel_names, "rule_conditions": for_aiwarden},
            {"id": "aiwarden_table", "type": "set_state", "key": "query_table",
             "val": "AIWardenEvents_CL", "rule_conditions": for_aiwarden},
        ],
        "postprocessing": sentinel_postprocessing(),
    });
    [
        ("splunk.yml", splunk),
        ("elastic.yml", elastic),
        ("sentinel.yml", sentinel),
    ]
    .into_iter()
    .map(|(name, value): (&'static str, Value)| (name, yaml::document(&value)))
    .collect()
}

/// The Sentinel pipeline's query rewrites, in order (pySigma `replace` steps: Python regular
/// expressions and `\N` group references).
pub fn sentinel_postprocessing() -> Vec<Value> {
    // A custom pipeline gets no table prefix from the Kusto backend: the query needs one.
    let mut steps = vec![
        json!({"type": "replace", "pattern": "^", "replacement": "AIWardenEvents_CL\n| where "}),
    ];
    steps.extend(dynamic_column_rewrites());
    // The Kusto backend compares a list column like a string (`PolicyFlags =~ "x"`), which
    // is never true for a `dynamic` array: the queries are rewritten to test set membership.
    let lists: Vec<&str> = EVENT_FIELDS
        .iter()
        .filter(|field| field.kind == FieldKind::KeywordList && field.canonical.is_some())
        .filter_map(|field| field.sentinel)
        .collect();
    let lists = lists.join("|");
    steps.push(json!({"type": "replace",
        "pattern": format!(r#"\b({lists}) =~ ("(?:[^"\\]|\\.)*")"#),
        "replacement": r"set_has_element(\1, \2)"}));
    steps.push(json!({"type": "replace",
        "pattern": format!(r"\b({lists}) in~ \(([^)]*)\)"),
        "replacement": r"array_length(set_intersect(\1, dynamic([\2]))) > 0"}));
    steps
}

/// Sentinel's `dynamic` object columns (`Extra`, `Chain`, `Checkpoint`): every object column the
/// catalogue declares, whose insides it names as `Column.key`.
pub fn sentinel_dynamic_columns() -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = names_in(Siem::Sentinel)
        .filter(|(name, kind)| *kind == FieldKind::Object && !name.contains('.'))
        .map(|(name, _)| name)
        .collect();
    columns.sort_unstable();
    columns.dedup();
    columns
}

/// Postprocessing that reads fields out of Sentinel's dynamic columns. The Kusto backend quotes
/// a dotted name as one identifier (`'Chain.seq'`), which KQL reads as a string literal, so
/// every comparison on it would test a constant. Each is rewritten to a typed read of the
/// dynamic value (`tolong(Chain.seq)`): numbers and booleans by their catalogued type, so a
/// rule comparing them is not comparing text, and anything else as a string.
fn dynamic_column_rewrites() -> Vec<Value> {
    let columns = sentinel_dynamic_columns();
    let inside = |name: &str| {
        name.split_once('.')
            .is_some_and(|(column, _)| columns.contains(&column))
    };
    let mut rewrites = Vec::new();
    for (kind, conversion) in [
        (FieldKind::Long, "tolong"),
        (FieldKind::Double, "todouble"),
        (FieldKind::Boolean, "tobool"),
    ] {
        let names: Vec<String> = EVENT_FIELDS
            .iter()
            .filter(|field| field.kind == kind && field.canonical.is_some())
            .filter_map(|field| field.sentinel)
            .filter(|name| inside(name))
            .map(regex::escape)
            .collect();
        if !names.is_empty() {
            rewrites.push(json!({"type": "replace",
                "pattern": format!("'({})'", names.join("|")),
                "replacement": format!(r"{conversion}(\1)")}));
        }
    }
    rewrites.push(json!({"type": "replace",
        "pattern": format!(r"'({})\.([A-Za-z_][A-Za-z0-9_]*)'", columns.join("|")),
        "replacement": r"tostring(\1.\2)"}));
    rewrites
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kql` after the Sentinel pipeline's rewrites, applied as pySigma applies them.
    fn rewritten(kql: &str) -> String {
        let group_reference = regex::Regex::new(r"\\(\d)").unwrap();
        sentinel_postprocessing()
            .iter()
            .fold(kql.to_string(), |text, step| {
                let pattern = regex::Regex::new(step["pattern"].as_str().unwrap()).unwrap();
                let replacement = group_reference
                    .replace_all(step["replacement"].as_str().unwrap(), "$${$1}")
                    .into_owned();
                pattern
                    .replace_all(&text, replacement.as_str())
                    .into_owned()
            })
    }

    #[test]
    fn every_dynamic_column_is_read_with_its_type() {
        assert_eq!(sentinel_dynamic_columns(), ["Chain", "Checkpoint", "Extra"]);
        assert_eq!(
            rewritten(r#"'Chain.seq' > 5 and 'Chain.agent_id' =~ "a-1" and 'Extra.role' =~ "admin""#),
            "AIWardenEvents_CL\n| where tolong(Chain.seq) > 5 and tostring(Chain.agent_id) =~ \"a-1\" \
             and tostring(Extra.role) =~ \"admin\""
        );
        assert_eq!(
            rewritten("'Checkpoint.head_seq' == 3 or 'Extra.not_catalogued' =~ \"x\""),
            "AIWardenEvents_CL\n| where tostring(Checkpoint.head_seq) == 3 or \
             tostring(Extra.not_catalogued) =~ \"x\""
        );
        // No catalogued name inside a dynamic column is left quoted (a KQL string literal).
        for field in EVENT_FIELDS {
            let Some(name) = field.sentinel.filter(|name| name.contains('.')) else {
                continue;
            };
            let query = rewritten(&format!("'{name}' == 1"));
            assert!(!query.contains('\''), "{name}: {query}");
        }
        // Top-level columns and list columns are untouched by the dynamic rewrite.
        assert_eq!(
            rewritten(r#"UserId =~ "u" and PolicyFlags =~ "pii""#),
            "AIWardenEvents_CL\n| where UserId =~ \"u\" and set_has_element(PolicyFlags, \"pii\")"
        );
    }
}

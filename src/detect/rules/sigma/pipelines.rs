//! pySigma processing pipelines, one per SIEM, generated from the field catalogue: they rename
//! the canonical field names of the exported rules to what each sink emits and point the
//! queries at aiwarden's data (sourcetype, data stream, table).

use super::{yaml, LOGSOURCE_PRODUCT};
use crate::record::catalogue::{FieldKind, EVENT_FIELDS};
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
    // The Kusto backend compares a list column like a string (`PolicyFlags =~ "x"`), which
    // is never true for a `dynamic` array: the queries are rewritten to test set membership.
    let lists: Vec<&str> = EVENT_FIELDS
        .iter()
        .filter(|field| field.kind == FieldKind::KeywordList && field.canonical.is_some())
        .filter_map(|field| field.sentinel)
        .collect();
    let lists = lists.join("|");
    // Fields passed through in the dynamic `Extra` column are quoted as one name by the Kusto
    // backend (`'Extra.role'`, a string literal in KQL): read them out of `Extra` instead.
    let sentinel_lists = json!([
        // A custom pipeline gets no table prefix from the Kusto backend: the query needs one.
        {"type": "replace", "pattern": "^", "replacement": "AIWardenEvents_CL\n| where "},
        {"type": "replace",
         "pattern": r"'Extra\.([A-Za-z_][A-Za-z0-9_]*)'",
         "replacement": r"tostring(Extra.\1)"},
        {"type": "replace",
         "pattern": format!(r#"\b({lists}) =~ ("(?:[^"\\]|\\.)*")"#),
         "replacement": r"set_has_element(\1, \2)"},
        {"type": "replace",
         "pattern": format!(r"\b({lists}) in~ \(([^)]*)\)"),
         "replacement": r"array_length(set_intersect(\1, dynamic([\2]))) > 0"},
    ]);
    let sentinel = json!({
        "name": "aiwarden events in Sentinel (AIWardenEvents_CL, generated from record::catalogue)",
        "priority": 20,
        "transformations": [
            {"id": "aiwarden_field_names", "type": "field_name_mapping",
             "mapping": sentinel_names, "rule_conditions": for_aiwarden},
            {"id": "aiwarden_table", "type": "set_state", "key": "query_table",
             "val": "AIWardenEvents_CL", "rule_conditions": for_aiwarden},
        ],
        "postprocessing": sentinel_lists,
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

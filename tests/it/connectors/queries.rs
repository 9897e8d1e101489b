//! Every query in `connectors/` (converted detections, hand-written ones, saved searches,
//! analytics rules, hunting queries, dashboards, workbooks) names only fields the catalogue
//! says that SIEM receives, and aggregates only numeric ones with `sum`/`avg`.
//!
//! Queries are read by a small scanner per language: string literals and comments are
//! skipped, function names and keywords are known words, names a query defines itself
//! (`... as x`, `x = ...`) are its own; every other word is a field and must be catalogued.

use super::read_json;
use super::scanner::{problems, Language};
use aiwarden::record::catalogue::{self, FieldKind, Siem};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("connectors")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Files of `dir` (relative to connectors/) ending in `extension`.
fn files(dir: &str, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    paths.sort();
    paths
}

/// What Splunk searches may name: the canonical fields (arrays as `name{}`), the indexed
/// fields, and what `props.conf` derives (CIM aliases and evals, checked against the sink by
/// `splunk_props_name_only_fields_the_hec_sink_sends`).
fn splunk_known() -> BTreeMap<String, FieldKind> {
    let mut known = BTreeMap::new();
    for field in catalogue::EVENT_FIELDS
        .iter()
        .chain(catalogue::ALERT_FIELDS)
    {
        if let (Some(name), Some(search)) = (field.canonical, field.splunk_search_name()) {
            known.insert(name.to_string(), field.kind);
            known.insert(search, field.kind);
        }
    }
    let props = super::conf("connectors/splunk/default/props.conf");
    for stanza in props.values() {
        for (key, value) in stanza {
            if let Some(name) = key.strip_prefix("EVAL-") {
                let kind = if name == "severity_id" {
                    FieldKind::Long
                } else {
                    FieldKind::Keyword
                };
                known.insert(name.to_string(), kind);
            } else if key.starts_with("FIELDALIAS-") {
                if let Some((_, alias)) = value.split_once(" AS ") {
                    known.insert(alias.trim().to_string(), FieldKind::Keyword);
                }
            }
        }
    }
    known
}

fn known_in(siem: Siem) -> BTreeMap<String, FieldKind> {
    catalogue::names_in(siem)
        .map(|(name, kind)| (name.to_string(), kind))
        .collect()
}

/// Every query of the packs with its language and SIEM, named by where it lives.
fn all_queries() -> Vec<(String, Language, Siem, String)> {
    let mut queries = Vec::new();
    let mut add_files = |dir: &str, extension: &str, language: Language, siem: Siem| {
        for path in files(dir, extension) {
            queries.push((path.display().to_string(), language, siem, read(&path)));
        }
    };
    for dir in ["splunk/detections", "splunk/handwritten"] {
        add_files(dir, "spl", Language::Spl, Siem::Splunk);
    }
    for dir in ["elastic/detections", "elastic/handwritten"] {
        add_files(dir, "esql", Language::Esql, Siem::Elastic);
        add_files(dir, "lucene", Language::Lucene, Siem::Elastic);
    }
    for dir in [
        "sentinel/detections",
        "sentinel/handwritten",
        "sentinel/hunting",
    ] {
        add_files(dir, "kql", Language::Kql, Siem::Sentinel);
    }
    let saved = super::conf("connectors/splunk/default/savedsearches.conf");
    for (name, stanza) in &saved {
        if let Some(search) = stanza.get("search") {
            queries.push((
                format!("savedsearches.conf [{name}]"),
                Language::Spl,
                Siem::Splunk,
                search.clone(),
            ));
        }
    }
    let panels = read_json("connectors/governance/panels.json");
    for panel in panels["panels"].as_array().unwrap() {
        let id = panel["id"].as_str().unwrap();
        for (key, language, siem) in [
            ("splunk", Language::Spl, Siem::Splunk),
            ("elastic", Language::Esql, Siem::Elastic),
            ("sentinel", Language::Kql, Siem::Sentinel),
        ] {
            let query = panel[key]
                .as_str()
                .unwrap_or_else(|| panic!("panel {id} has no {key} query"));
            queries.push((
                format!("governance panel {id} ({key})"),
                language,
                siem,
                query.to_string(),
            ));
        }
    }
    let rules = read(&root().join("elastic/detection_rules/aiwarden.ndjson"));
    for line in rules.lines() {
        let rule: Value = serde_json::from_str(line).unwrap();
        let language = match rule["language"].as_str() {
            Some("esql") => Language::Esql,
            Some("lucene") => Language::Lucene,
            other => panic!("detection rule language {other:?}"),
        };
        queries.push((
            format!("elastic rule {}", rule["name"]),
            language,
            Siem::Elastic,
            rule["query"].as_str().unwrap().to_string(),
        ));
    }
    let kibana = read(&root().join("elastic/kibana/aiwarden.ndjson"));
    for line in kibana.lines() {
        let object: Value = serde_json::from_str(line).unwrap();
        if object["type"] == "search" {
            let source: Value = serde_json::from_str(
                object["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            queries.push((
                format!("kibana {}", object["id"]),
                Language::Esql,
                Siem::Elastic,
                source["query"]["esql"].as_str().unwrap().to_string(),
            ));
        }
    }
    let deploy = read_json("connectors/sentinel/azuredeploy.json");
    for resource in deploy["resources"].as_array().unwrap() {
        if let Some(query) = resource["properties"]["query"].as_str() {
            queries.push((
                format!("azuredeploy {}", resource["name"]),
                Language::Kql,
                Siem::Sentinel,
                query.to_string(),
            ));
        }
        if let Some(serialized) = resource["properties"]["serializedData"].as_str() {
            let workbook: Value = serde_json::from_str(serialized).unwrap();
            assert_eq!(
                workbook,
                read_json("connectors/sentinel/workbook.json"),
                "the deployed workbook is workbook.json"
            );
        }
    }
    let workbook = read_json("connectors/sentinel/workbook.json");
    for item in workbook["items"].as_array().unwrap() {
        if let Some(query) = item["content"]["query"].as_str() {
            queries.push((
                format!("workbook {}", item["name"]),
                Language::Kql,
                Siem::Sentinel,
                query.to_string(),
            ));
        }
    }
    // Splunk macros are checked where they are used, expanded as Splunk does.
    for (_, language, _, query) in queries.iter_mut() {
        if *language == Language::Spl {
            *query = expand_macros(query);
        }
    }
    queries
}

/// Replace `` `name` `` and `` `name(a, b)` `` by their definitions in `macros.conf`.
fn expand_macros(query: &str) -> String {
    let macros = super::conf("connectors/splunk/default/macros.conf");
    let mut out = String::new();
    for (index, part) in query.split('`').enumerate() {
        if index % 2 == 0 {
            out.push_str(part);
            continue;
        }
        let (name, arguments): (&str, Vec<&str>) = match part.split_once('(') {
            Some((name, rest)) => (
                name.trim(),
                rest.trim_end_matches(')')
                    .split(',')
                    .map(str::trim)
                    .collect(),
            ),
            None => (part.trim(), Vec::new()),
        };
        let key = if arguments.is_empty() {
            name.to_string()
        } else {
            format!("{name}({})", arguments.len())
        };
        let stanza = macros
            .get(&key)
            .unwrap_or_else(|| panic!("macro `{key}` is not in macros.conf"));
        let mut definition = stanza["definition"].clone();
        let parameters = stanza.get("args").map(String::as_str).unwrap_or("");
        for (parameter, argument) in parameters.split(',').map(str::trim).zip(&arguments) {
            definition = definition.replace(&format!("${parameter}$"), argument);
        }
        out.push_str(&definition);
    }
    out
}

#[test]
fn every_query_in_the_packs_names_only_fields_the_siem_receives() {
    let splunk = splunk_known();
    let elastic = known_in(Siem::Elastic);
    let sentinel = known_in(Siem::Sentinel);
    let queries = all_queries();
    let mut count_by_siem = BTreeMap::new();
    let mut failures = Vec::new();
    for (name, language, siem, query) in &queries {
        *count_by_siem.entry(format!("{siem:?}")).or_insert(0) += 1;
        let known = match siem {
            Siem::Splunk => &splunk,
            Siem::Elastic => &elastic,
            Siem::Sentinel => &sentinel,
        };
        for problem in problems(query, *language, known) {
            failures.push(format!("{name}: {problem}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The packs are really there: detections and dashboards for each SIEM.
    for siem in ["Splunk", "Elastic", "Sentinel"] {
        assert!(
            count_by_siem.get(siem).copied().unwrap_or(0) >= 10,
            "{siem}: {count_by_siem:?}"
        );
    }
}

#[test]
fn the_scanner_catches_a_misspelt_or_mistyped_field() {
    let splunk = splunk_known();
    let elastic = known_in(Siem::Elastic);
    let sentinel = known_in(Siem::Sentinel);
    let cases = [
        (
            Language::Spl,
            &splunk,
            "sourcetype=\"aiwarden:event\" user_idd=\"x\" | stats count by user_id",
            "user_idd",
        ),
        (
            Language::Spl,
            &splunk,
            "sourcetype=\"aiwarden:event\" \"policy_flag{}\"=\"x\"",
            "policy_flag{}",
        ),
        (
            Language::Spl,
            &splunk,
            "sourcetype=x | where NOT 'resource_ownr'='user_id'",
            "resource_ownr",
        ),
        (
            Language::Spl,
            &splunk,
            "sourcetype=x | stats sum(model) as m by user_id",
            "sum(model)",
        ),
        (
            Language::Esql,
            &elastic,
            "from logs-aiwarden.events-* | where aiwarden.event.userid == \"x\"",
            "aiwarden.event.userid",
        ),
        (
            Language::Lucene,
            &elastic,
            "aiwarden.event.policy_flag:x OR aiwarden.event.policy_flags:y",
            "aiwarden.event.policy_flag",
        ),
        (
            Language::Kql,
            &sentinel,
            "AIWardenEvents_CL | where UserID == \"x\"",
            "UserID",
        ),
        (
            Language::Kql,
            &sentinel,
            "AIWardenEvents_CL | summarize s = sum(Department) by UserId",
            "sum(Department)",
        ),
    ];
    for (language, known, query, culprit) in cases {
        let found = problems(query, language, known);
        assert!(
            found.iter().any(|p| p.contains(culprit)),
            "{query}: {found:?}"
        );
        assert_eq!(found.len(), 1, "{query}: {found:?}");
    }
    // Definitions, literals, functions and comments are not fields.
    assert!(problems(
        "AIWardenEvents_CL // UserIdd\n| extend Owner = tostring(Extra.resource_owner) | where Owner != \"NotAField\"",
        Language::Kql,
        &sentinel
    )
    .is_empty());
}

#[test]
fn sigma_rules_and_pipelines_use_catalogue_names() {
    let canonical: BTreeSet<&str> = catalogue::EVENT_FIELDS
        .iter()
        .filter_map(|f| f.canonical)
        .collect();
    for path in files("sigma/rules", "yml") {
        let text = read(&path);
        // Detection keys (`field|modifier:`), `fields:` items, `group-by` items, `field:`.
        let mut in_list = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.ends_with(':') && !trimmed.starts_with('-') {
                in_list = matches!(trimmed, "fields:" | "group-by:");
                continue;
            }
            let name = if in_list && trimmed.starts_with("- ") {
                trimmed[2..].trim_matches('"').to_string()
            } else if let Some((key, _)) = trimmed.split_once(':').filter(|(k, _)| k.contains('|'))
            {
                key.split('|').next().unwrap().to_string()
            } else if let Some(value) = trimmed.strip_prefix("field: ") {
                value.trim_matches('"').to_string()
            } else {
                continue;
            };
            assert!(
                canonical.contains(name.as_str()),
                "{}: `{name}`",
                path.display()
            );
        }
    }
    for (file, siem) in [
        ("elastic.yml", Siem::Elastic),
        ("sentinel.yml", Siem::Sentinel),
    ] {
        let known = known_in(siem);
        let text = read(&root().join("sigma/pipelines").join(file));
        let mut mapped = 0;
        for line in text.lines().map(str::trim) {
            if let Some((key, value)) = line.split_once(": \"") {
                if canonical.contains(key) {
                    let value = value.trim_end_matches('"');
                    assert!(known.contains_key(value), "{file}: {key} -> {value}");
                    mapped += 1;
                }
            }
        }
        assert!(mapped >= canonical.len() - 1, "{file} maps {mapped} fields");
    }
}

//! The Sigma export of each rule kind and operator, and what it refuses.

use super::*;

fn file(text: &str) -> RuleFile {
    RuleFile {
        name: "test.toml".into(),
        text: text.into(),
    }
}

fn export_one(text: &str) -> SigmaExport {
    export(&[file(text)]).unwrap()
}

const HEAD: &str = r#"
id = "r-1"
title = "A rule"
description = "Why it matters."
severity = "high"
tags = ["aiwarden", "mcp", "ATLAS:AML.T0051"]
suppress = "10m"
"#;

#[test]
fn a_match_rule_is_a_detection_rule_with_level_tags_and_logsource() {
    let exported = export_one(&format!(
        r#"{HEAD}
kind = "match"
group_by = "session_id"
[[conditions]]
any = [
    {{ field = "policy_flags", contains = "prompt_injection" }},
    {{ field = "status", contains = "err" }},
]
[[conditions]]
field = "data_classification"
at_least = "confidential"
[[conditions]]
field = "model"
not_equals = "claude-haiku"
[[conditions]]
field = "stop_reason"
regex = "(?i)^max_"
"#
    ));
    assert!(exported.skipped.is_empty(), "{:?}", exported.skipped);
    let text = &exported.files[0].text;
    assert_eq!(exported.files[0].file_name, "aiwarden_r_1.yml");
    for expected in [
        "name: \"aiwarden_r_1\"\n",
        "level: \"high\"\n",
        "  - \"atlas.aml.t0051\"\n  - \"aiwarden.mcp\"\n",
        "logsource:\n  product: \"aiwarden\"\n  service: \"audit\"\n",
        // A list contains an equal item, text a substring.
        "  c1_1:\n    policy_flags: \"prompt_injection\"\n",
        "  c1_2:\n    status|contains: \"err\"\n",
        "  c2:\n    data_classification:\n      - \"confidential\"\n      - \"sensitive\"\n      - \"restricted\"\n",
        // A negation also requires the field, as the engine does.
        "  c3_present:\n    model|exists: true\n  c3_value:\n    model: \"claude-haiku\"\n",
        "  c4:\n    stop_reason|re|i: \"^max_\"\n",
        "  condition: \"(c1_1 or c1_2) and c2 and (c3_present and not c3_value) and c4\"\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    assert!(!text.contains("---"));
}

#[test]
fn threshold_tiers_become_correlations_with_group_by_and_timespan() {
    let exported = export_one(&format!(
        r#"{HEAD}
kind = "threshold"
group_by = "user_id"
[[conditions]]
field = "event_type"
equals = "mcp_auth_failure"
[threshold]
aggregate = "count"
[[threshold.tiers]]
window = "10m"
above = 5
[[threshold.tiers]]
window = "1h"
above = 20.5
severity = "critical"
"#
    ));
    let documents: Vec<&str> = exported.files[0].text.split("---\n").collect();
    assert_eq!(documents.len(), 3);
    assert!(documents[0].contains("name: \"aiwarden_r_1_events\""));
    assert!(documents[1].contains(
        "correlation:\n  type: \"event_count\"\n  rules:\n    - \"aiwarden_r_1_events\"\n  \
         group-by:\n    - \"user_id\"\n  timespan: \"10m\"\n  condition:\n    gt: 5\n"
    ));
    assert!(documents[1].contains("name: \"aiwarden_r_1_tier1\""));
    assert!(documents[2].contains("timespan: \"1h\""));
    // More than 20.5 of an integer count is at least 21.
    assert!(documents[2].contains("condition:\n    gte: 21\n"));
    assert!(documents[2].contains("level: \"critical\""));
    assert_ne!(
        sigma_id("aiwarden_r_1_tier1"),
        sigma_id("aiwarden_r_1_tier2")
    );
}

#[test]
fn sums_are_value_sum_and_distinct_is_value_count() {
    let sum = export_one(&format!(
        r#"{HEAD}
kind = "threshold"
group_by = "session_id"
[threshold]
aggregate = "sum"
field = "mcp_calls"
[[threshold.tiers]]
window = "5m"
above = 100
"#
    ));
    let text = &sum.files[0].text;
    assert!(text.contains("type: \"value_sum\""), "{text}");
    assert!(text.contains("condition:\n    gt: 100\n    field: \"mcp_calls\"\n"));
    // No conditions: every event counts.
    assert!(text.contains("all:\n    event_id|exists: true\n  condition: \"all\""));
    let distinct = export_one(&format!(
        r#"{HEAD}
kind = "distinct"
group_by = "user_id"
[distinct]
field = "ip_address"
window = "1h"
above = 3
"#
    ));
    let text = &distinct.files[0].text;
    assert!(text.contains("type: \"value_count\""), "{text}");
    assert!(text.contains("condition:\n    gt: 3\n    field: \"ip_address\"\n"));
}

#[test]
fn field_comparisons_use_fieldref_and_require_both_fields() {
    let exported = export_one(&format!(
        r#"{HEAD}
kind = "match"
group_by = "user_id"
[[conditions]]
field = "resource_owner"
not_equals_field = "user_id"
"#
    ));
    let text = &exported.files[0].text;
    assert!(text.contains("c1_same:\n    resource_owner|fieldref: \"user_id\"\n"));
    assert!(text.contains("condition: \"(c1_present and c1_other_present and not c1_same)\""));
}

#[test]
fn what_sigma_cannot_say_is_skipped_with_its_reason() {
    let cases = [
        (
            r#"kind = "baseline"
group_by = "user_id"
[baseline]
aggregate = "count"
history_days = 30
ratio = 3.0"#,
            "baseline",
        ),
        (
            r#"kind = "match"
group_by = "user_id"
[[conditions]]
business_hours = false"#,
            "calendars",
        ),
        (
            r#"kind = "match"
group_by = "user_id"
[[conditions]]
field = "user_id"
not_entitled_to = "restricted""#,
            "entitlements",
        ),
        (
            r#"kind = "match"
group_by = "user_id"
[[conditions]]
field = "some_upstream_field"
exists = true"#,
            "not in the field catalogue",
        ),
        (
            r#"kind = "threshold"
group_by = "user_id"
[threshold]
aggregate = "sum"
field = "total_tokens"
[[threshold.tiers]]
window = "1h"
above = 10"#,
            "not in the field catalogue",
        ),
    ];
    for (body, reason) in cases {
        let exported = export_one(&format!("{HEAD}{body}"));
        assert!(exported.files.is_empty(), "{body}");
        assert!(
            exported.skipped[0].reason.contains(reason),
            "{body}: {}",
            exported.skipped[0].reason
        );
    }
}

#[test]
fn an_invalid_pack_is_an_error_not_a_partial_export() {
    let error = export(&[file("id = \"x\"\ntitle = \"t\"")]).unwrap_err();
    assert_eq!(error.file, "test.toml");
}

#[test]
fn the_whole_built_in_pack_exports_or_says_why_not() {
    let files: Vec<RuleFile> = crate::pipeline::rules::BUILTIN_RULES
        .iter()
        .map(|(name, text)| file(text).with_name(name))
        .collect();
    let exported = export(&files).unwrap();
    assert_eq!(
        exported.files.len() + exported.skipped.len(),
        files.len(),
        "every rule is exported or skipped"
    );
    let skipped: Vec<&str> = exported
        .skipped
        .iter()
        .map(|s| s.rule_id.as_str())
        .collect();
    for baseline in ["token-spike", "request-volume"] {
        assert!(skipped.contains(&baseline), "{skipped:?}");
    }
    let exported_ids: Vec<&str> = exported.files.iter().map(|f| f.rule_id.as_str()).collect();
    for id in [
        "mcp-volume",
        "mcp-auth-failures",
        "prompt-injection",
        "cross-user-access",
    ] {
        assert!(exported_ids.contains(&id), "{exported_ids:?}");
    }
}

#[test]
fn pipelines_rename_fields_from_the_catalogue() {
    let pipelines = pipelines();
    let text = |name: &str| {
        pipelines
            .iter()
            .find(|(file, _)| *file == name)
            .map(|(_, text)| text.clone())
            .unwrap()
    };
    assert!(text("splunk.yml").contains("policy_flags: \"policy_flags{}\""));
    assert!(text("splunk.yml").contains("sourcetype: \"aiwarden:event\""));
    assert!(text("elastic.yml").contains("user_id: \"aiwarden.event.user_id\""));
    assert!(text("elastic.yml").contains("ip_address: \"source.ip\""));
    assert!(text("sentinel.yml").contains("user_id: \"UserId\""));
    assert!(text("sentinel.yml").contains("val: \"AIWardenEvents_CL\""));
}

trait WithName {
    fn with_name(self, name: &str) -> RuleFile;
}

impl WithName for RuleFile {
    fn with_name(mut self, name: &str) -> RuleFile {
        self.name = name.to_string();
        self
    }
}

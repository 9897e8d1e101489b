//! Rule files: the shipped pack loads; broken files name the file, the rule and the field.

use super::*;

/// A small valid threshold rule the error cases mutate.
const VALID: &str = r#"
id = "t-rule"
title = "T"
severity = "low"
suppress = "1m"
kind = "threshold"
group_by = "user_id"

[[conditions]]
field = "status"
equals = "error"

[threshold]
aggregate = "count"

[[threshold.tiers]]
window = "10m"
above = 5
"#;

fn parse(rules: &[(&str, &str)]) -> Result<RuleSet, crate::detect::RuleError> {
    RuleSet::parse(&files(rules))
}

#[test]
fn shipped_rule_files_load() {
    for (name, text, kind) in [
        ("mcp-volume.toml", MCP_VOLUME, "threshold"),
        ("token-spike.toml", TOKEN_SPIKE, "baseline"),
        ("restricted-unauthorised.toml", RESTRICTED, "match"),
    ] {
        let set = parse(&[(name, text)]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.len(), 1, "{name}");
        let info = set.info().next().unwrap();
        assert_eq!(format!("{}.toml", info.id), name);
        assert_eq!(info.kind, kind, "{name}");
        assert!(!info.description.is_empty(), "{name}");
    }
    let all = parse(&[("a", MCP_VOLUME), ("b", TOKEN_SPIKE), ("c", RESTRICTED)]).unwrap();
    assert_eq!(
        all.ids().collect::<Vec<_>>(),
        ["mcp-volume", "token-spike", "restricted-unauthorised"]
    );
}

#[test]
fn disabled_rules_are_validated_but_not_counted() {
    let text = VALID.replace("severity = \"low\"", "severity = \"low\"\nenabled = false");
    let set = parse(&[("r.toml", &text)]).unwrap();
    assert!(set.is_empty());
    let broken = text.replace("above = 5", "above = -5");
    assert!(parse(&[("r.toml", &broken)]).is_err());
}

/// Parse `text` (as `rule.toml`) and require an error mentioning every one of `needles`.
fn check_error(text: &str, needles: &[&str]) {
    let error = match parse(&[("rule.toml", text)]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    };
    assert!(error.starts_with("rule.toml: "), "{error}");
    for needle in needles {
        assert!(error.contains(needle), "`{needle}` missing from: {error}");
    }
}

#[test]
fn the_valid_template_is_valid() {
    assert_eq!(parse(&[("rule.toml", VALID)]).unwrap().len(), 1);
}

#[test]
fn unknown_key_names_rule_field_and_line() {
    let text = VALID.replace("kind = ", "treshold = 5\nkind = ");
    check_error(
        &text,
        &["rule `t-rule`", "field `treshold`", "line 6, column 1"],
    );
    let text = VALID.replace("above = 5", "above = 5\nbelow = 2");
    check_error(&text, &["rule `t-rule`", "threshold.tiers[0]", "below"]);
}

#[test]
fn bad_severity() {
    let text = VALID.replace("severity = \"low\"", "severity = \"urgent\"");
    check_error(
        &text,
        &["rule `t-rule`", "field `severity`", "urgent", "line 4"],
    );
    let text = VALID.replace("above = 5", "above = 5\nseverity = \"meh\"");
    check_error(&text, &["field `threshold.tiers[0].severity`", "meh"]);
}

#[test]
fn bad_duration() {
    let text = VALID.replace("window = \"10m\"", "window = \"ten minutes\"");
    check_error(
        &text,
        &[
            "rule `t-rule`",
            "field `threshold.tiers[0].window`",
            "ten minutes",
        ],
    );
    let text = VALID.replace("suppress = \"1m\"", "suppress = \"0s\"");
    check_error(&text, &["field `suppress`", "at least 1ms"]);
}

#[test]
fn duplicate_id_names_both_files() {
    let error = parse(&[("a.toml", VALID), ("b.toml", VALID)])
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("b.toml: "), "{error}");
    assert!(error.contains("rule `t-rule`"), "{error}");
    assert!(error.contains("field `id`"), "{error}");
    assert!(error.contains("a.toml"), "{error}");
}

#[test]
fn conditions_need_exactly_one_operator() {
    let text = VALID.replace("equals = \"error\"", "");
    check_error(&text, &["rule `t-rule`", "conditions[0]", "no operator"]);
    let text = VALID.replace("equals = \"error\"", "equals = \"error\"\nexists = true");
    check_error(&text, &["conditions[0].equals, exists", "2 operators"]);
}

#[test]
fn operator_values_are_typed() {
    let cases: &[(&str, &[&str])] = &[
        ("gt = \"5\"", &["conditions[0].gt", "invalid type"]),
        (
            "exists = \"yes\"",
            &["conditions[0].exists", "invalid type"],
        ),
        ("in = []", &["conditions[0].in", "must not be empty"]),
        ("equals = [1]", &["conditions[0].equals", "found array"]),
        (
            "at_least = \"secret\"",
            &["conditions[0].at_least", "secret"],
        ),
        ("gt = nan", &["conditions[0].gt", "finite"]),
    ];
    for (op, needles) in cases {
        let text = VALID.replace("equals = \"error\"", op);
        check_error(&text, needles);
    }
    let text = VALID.replace("field = \"status\"", "field = \"data_classification\"");
    check_error(
        &text,
        &[
            "conditions[0].equals",
            "unknown data classification `error`",
        ],
    );
}

#[test]
fn kind_sections_are_checked() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "kind = \"threshold\"",
            "kind = \"baseline\"",
            &["field `threshold`", "does not belong"],
        ),
        (
            "kind = \"threshold\"",
            "kind = \"match\"",
            &["field `threshold`", "does not belong"],
        ),
        (
            "kind = \"threshold\"",
            "kind = \"sliding\"",
            &["field `kind`", "sliding"],
        ),
        (
            "above = 5",
            "above = 0",
            &["field `threshold.tiers[0].above`", "positive"],
        ),
        (
            "aggregate = \"count\"",
            "aggregate = \"sum\"",
            &["field `threshold.field`"],
        ),
        (
            "group_by = \"user_id\"",
            "group_by = \"\"",
            &["field `group_by`"],
        ),
        (
            "id = \"t-rule\"",
            "id = \"t rule\"",
            &["field `id`", "not a valid id"],
        ),
    ];
    for (from, to, needles) in cases {
        assert!(VALID.contains(from), "{from}");
        check_error(&VALID.replace(from, to), needles);
    }
    let no_section = VALID.split("[threshold]").next().unwrap();
    check_error(
        no_section,
        &["field `threshold`", "needs a `[threshold]` section"],
    );
    let no_tiers = VALID.split("[[threshold.tiers]]").next().unwrap();
    check_error(no_tiers, &["field `threshold.tiers`", "at least one"]);
}

#[test]
fn baseline_section_is_checked() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "ratio = 3.0",
            "ratio = 0.5",
            &["field `baseline.ratio`", "above 1"],
        ),
        (
            "history_days = 30",
            "history_days = 0",
            &["field `baseline.history_days`"],
        ),
        (
            "min_history_days = 3",
            "min_history_days = 31",
            &["baseline.min_history_days"],
        ),
        (
            "min_volume = 50_000",
            "min_volume = -1",
            &["baseline.min_volume"],
        ),
        (
            "history_days = 30",
            "history_days = \"30\"",
            &["baseline.history_days", "line"],
        ),
    ];
    for (from, to, needles) in cases {
        assert!(TOKEN_SPIKE.contains(from), "{from}");
        let text = TOKEN_SPIKE.replace(from, to);
        let mut needles = needles.to_vec();
        needles.push("rule `token-spike`");
        check_error(&text, &needles);
    }
}

#[test]
fn syntax_error_names_file_and_line() {
    let text = VALID.replace("title = \"T\"", "title = \"T");
    check_error(&text, &["line 3"]);
}

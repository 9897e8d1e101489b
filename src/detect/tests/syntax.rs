//! Load errors of the newer constructs name the file, the rule and the field.

use super::*;

/// A match rule with one condition entry (TOML body after `[[conditions]]`).
fn with_condition(body: &str) -> String {
    format!(
        "id = \"n-rule\"\ntitle = \"N\"\nseverity = \"low\"\nsuppress = \"1m\"\nkind = \"match\"\n\
         group_by = \"user_id\"\n[[conditions]]\n{body}\n"
    )
}

/// Parse `text` as `rule.toml` and require an error naming the rule and every needle.
fn check_error(text: &str, needles: &[&str]) {
    let error = match RuleSet::parse(&files(&[("rule.toml", text)])) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(error) => error.to_string(),
    };
    assert!(error.starts_with("rule.toml: "), "{error}");
    assert!(error.contains("rule `"), "{error}");
    for needle in needles {
        assert!(error.contains(needle), "`{needle}` missing from: {error}");
    }
}

#[test]
fn condition_errors() {
    let cases: &[(&str, &[&str])] = &[
        // regex
        (
            "field = \"model\"\nregex = \"(unclosed\"",
            &["field `conditions[0].regex`", "invalid regular expression"],
        ),
        (
            "field = \"model\"\nregex = \"\"",
            &["conditions[0].regex", "empty"],
        ),
        (
            "field = \"model\"\nregex = 5",
            &["conditions[0].regex", "invalid type"],
        ),
        (
            "field = \"model\"\nregex = \"a\"\ncontains = \"b\"",
            &["conditions[0].contains, regex", "2 operators"],
        ),
        // field to field
        (
            "field = \"resource_owner\"\nnot_equals_field = \"\"",
            &["conditions[0].not_equals_field", "another field"],
        ),
        (
            "field = \"user_id\"\nnot_equals_field = \"user_id\"",
            &["conditions[0].not_equals_field", "itself"],
        ),
        (
            "field = \"user_id\"\nequals_field = \"timestamp\"",
            &["conditions[0].equals_field"],
        ),
        // business hours
        (
            "business_hours = \"no\"",
            &["conditions[0].business_hours", "invalid type", "line 8"],
        ),
        (
            "business_hours = false\nexists = true",
            &["conditions[0].exists, business_hours", "2 operators"],
        ),
        (
            "field = \"timestamp\"\ngt = 5",
            &["conditions[0].field", "business_hours"],
        ),
        ("exists = true", &["conditions[0].field", "needs a `field`"]),
        // any groups
        ("any = []", &["field `conditions[0].any`", "at least one"]),
        (
            "field = \"status\"\nany = [ { field = \"model\", exists = true } ]",
            &["conditions[0].any", "stands alone", "field"],
        ),
        (
            "equals = 1\nany = [ { field = \"model\", exists = true } ]",
            &["conditions[0].any", "stands alone", "equals"],
        ),
        (
            "any = [ { field = \"model\", exists = true }, { any = [] } ]",
            &["conditions[0].any[1].any", "do not nest"],
        ),
        (
            "any = [ { field = \"model\", regex = \"[\" } ]",
            &["conditions[0].any[0].regex", "invalid regular expression"],
        ),
        (
            "any = [ { field = \"model\", equals = \"a\", contains = \"b\" } ]",
            &["conditions[0].any[0].equals, contains", "2 operators"],
        ),
        (
            "any = [ { field = \"model\", contians = \"b\" } ]",
            &["conditions[0].any[0]", "contians"],
        ),
        (
            "any = [ { field = \"model\" } ]",
            &["conditions[0].any[0].field", "no operator"],
        ),
    ];
    for (body, needles) in cases {
        check_error(&with_condition(body), needles);
    }
}

/// A valid distinct rule the error cases mutate.
const DISTINCT: &str = r#"
id = "d-rule"
title = "D"
severity = "low"
suppress = "1m"
kind = "distinct"
group_by = "session_id"

[distinct]
field = "mcp_integrations"
window = "10m"
above = 5
max_values = 50
"#;

#[test]
fn distinct_section_is_checked() {
    assert_eq!(
        RuleSet::parse(&files(&[("d.toml", DISTINCT)]))
            .unwrap()
            .len(),
        1
    );
    let cases: &[(&str, &str, &[&str])] = &[
        ("above = 5", "above = 0", &["field `distinct.above`"]),
        ("above = 5", "above = 10000", &["field `distinct.above`"]),
        ("above = 5", "above = -1", &["distinct.above", "line"]),
        (
            "max_values = 50",
            "max_values = 5",
            &["field `distinct.max_values`", "more than `above`"],
        ),
        (
            "max_values = 50",
            "max_values = 10001",
            &["field `distinct.max_values`"],
        ),
        (
            "field = \"mcp_integrations\"",
            "field = \"\"",
            &["field `distinct.field`"],
        ),
        (
            "field = \"mcp_integrations\"",
            "field = \"timestamp\"",
            &["field `distinct.field`"],
        ),
        (
            "window = \"10m\"",
            "window = \"soon\"",
            &["distinct.window", "soon"],
        ),
        (
            "max_values = 50",
            "max_values = 50\nwindows = \"1m\"",
            &["distinct", "windows"],
        ),
        (
            "kind = \"distinct\"",
            "kind = \"threshold\"",
            &[
                "field `distinct`",
                "does not belong to kind = \"threshold\"",
            ],
        ),
    ];
    for (from, to, needles) in cases {
        assert!(DISTINCT.contains(from), "{from}");
        let mut needles = needles.to_vec();
        needles.push("rule `d-rule`");
        check_error(&DISTINCT.replace(from, to), &needles);
    }
    let no_section = DISTINCT.split("[distinct]").next().unwrap_or_default();
    check_error(
        no_section,
        &["field `distinct`", "needs a `[distinct]` section"],
    );
}

#[test]
fn min_zscore_is_checked() {
    for (value, needles) in [
        (
            "min_zscore = 0",
            &["field `baseline.min_zscore`", "positive"][..],
        ),
        (
            "min_zscore = -2.5",
            &["field `baseline.min_zscore`", "positive"],
        ),
        (
            "min_zscore = nan",
            &["field `baseline.min_zscore`", "positive"],
        ),
        (
            "min_zscore = \"3\"",
            &["baseline.min_zscore", "invalid type"],
        ),
    ] {
        let text = TOKEN_SPIKE.replace(
            "min_history_days = 3",
            &format!("min_history_days = 3\n{value}"),
        );
        let mut needles = needles.to_vec();
        needles.push("rule `token-spike`");
        check_error(&text, &needles);
    }
    let text = TOKEN_SPIKE.replace(
        "min_history_days = 3",
        "min_history_days = 2\nmin_zscore = 3.5",
    );
    check_error(
        &text,
        &[
            "field `baseline.min_zscore`",
            "min_history_days of at least 3",
        ],
    );
    let text = TOKEN_SPIKE.replace(
        "min_history_days = 3",
        "min_history_days = 3\nmin_zscore = 3.5",
    );
    assert!(RuleSet::parse(&files(&[("t.toml", &text)])).is_ok());
}

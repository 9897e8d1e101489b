//! The newer operators (`regex`, `equals_field`, `not_equals_field`) and `any` groups.

use super::conditions::{check, fires, sample};
use super::*;
use serde_json::json;

#[test]
fn regex_matches_text_and_list_items() {
    check(&[
        ("field = \"model\"\nregex = \"^claude-(opus|sonnet)\"", true),
        ("field = \"model\"\nregex = \"^claude-haiku\"", false),
        // Unanchored: a match anywhere counts.
        ("field = \"model\"\nregex = \"opus\"", true),
        // Case-sensitive unless the pattern says otherwise.
        ("field = \"model\"\nregex = \"OPUS\"", false),
        ("field = \"model\"\nregex = \"(?i)OPUS\"", true),
        // Any item of a list.
        ("field = \"policy_flags\"\nregex = \"^sec\"", true),
        ("field = \"policy_flags\"\nregex = \"^x\"", false),
        ("field = \"ctx.tags\"\nregex = \"^b$\"", true),
        ("field = \"tenant\"\nregex = \"^ac\"", true),
        // Numbers and absent fields hold no text.
        ("field = \"prompt_tokens\"\nregex = \"100\"", false),
        ("field = \"stop_reason\"\nregex = \".*\"", false),
        ("field = \"security_flags\"\nregex = \".*\"", false),
    ]);
}

/// Extra fields to set on [`sample`].
type Extras<'a> = &'a [(&'a str, serde_json::Value)];

/// [`sample`] with `resource_owner` (and other extras) set.
fn owned(extra: Extras<'_>) -> AuditRecord {
    let mut r = sample();
    for (key, value) in extra {
        r.extra.insert((*key).to_string(), value.clone());
    }
    r
}

#[test]
fn field_to_field_comparisons() {
    let differs = "field = \"resource_owner\"\nnot_equals_field = \"user_id\"";
    let same = "field = \"resource_owner\"\nequals_field = \"user_id\"";
    let none = Entitlements::default();
    let cases: &[(Extras<'_>, &str, bool)] = &[
        (
            &[("resource_owner", json!("bob@acme.example"))],
            differs,
            true,
        ),
        (
            &[("resource_owner", json!("bob@acme.example"))],
            same,
            false,
        ),
        // The acting user (alice@acme.example) in another spelling is the same user.
        (
            &[("resource_owner", json!(" Alice@ACME.example"))],
            differs,
            false,
        ),
        (
            &[("resource_owner", json!("Alice@ACME.example"))],
            same,
            true,
        ),
        // No owner, or a blank one: nothing to compare, no claim either way.
        (&[], differs, false),
        (&[], same, false),
        (&[("resource_owner", json!(""))], differs, false),
        (&[("resource_owner", json!(null))], differs, false),
        // Numbers compare as numbers, also against text holding one.
        (
            &[("a", json!(5)), ("b", json!("5.0"))],
            "field = \"a\"\nequals_field = \"b\"",
            true,
        ),
        (
            &[("a", json!(5)), ("b", json!(6))],
            "field = \"a\"\nnot_equals_field = \"b\"",
            true,
        ),
        // Lists compare item by item.
        (
            &[("flags", json!(["PII", "secrets"]))],
            "field = \"policy_flags\"\nequals_field = \"flags\"",
            false,
        ),
        (
            &[("flags", json!(["PII", "secrets"]))],
            "field = \"policy_flags\"\nnot_equals_field = \"flags\"",
            true,
        ),
        // A known field against an extra one, either way round.
        (
            &[("home_department", json!("legal"))],
            "field = \"department\"\nequals_field = \"home_department\"",
            true,
        ),
        (
            &[("home_department", json!("finance"))],
            "field = \"home_department\"\nnot_equals_field = \"department\"",
            true,
        ),
    ];
    for (extra, condition, expected) in cases {
        assert_eq!(
            fires(condition, &owned(extra), &none),
            *expected,
            "{condition} with {extra:?}"
        );
    }
}

#[test]
fn any_groups_hold_when_one_member_holds() {
    check(&[
        (
            "any = [ { field = \"status\", equals = \"success\" }, \
             { field = \"policy_flags\", contains = \"pii\" } ]",
            true,
        ),
        (
            "any = [ { field = \"status\", equals = \"success\" }, \
             { field = \"policy_flags\", contains = \"jailbreak\" } ]",
            false,
        ),
        // An absent field makes its member false, not the group.
        (
            "any = [ { field = \"stop_reason\", not_equals = \"x\" }, \
             { field = \"model\", regex = \"opus\" } ]",
            true,
        ),
        // `exists = false` inside a group.
        ("any = [ { field = \"latency_ms\", exists = false } ]", true),
    ]);
}

/// A match rule whose conditions are `conditions` (TOML), alert details if it fired.
fn details(conditions: &str, record: &AuditRecord) -> Option<String> {
    let rule = format!(
        "id = \"g\"\ntitle = \"G\"\nseverity = \"low\"\nsuppress = \"1ms\"\nkind = \"match\"\n\
         group_by = \"user_id\"\n{conditions}\n"
    );
    let mut engine = engine(&rule);
    run(&mut engine, std::slice::from_ref(record))
        .pop()
        .map(|a| a.details)
}

#[test]
fn any_groups_are_anded_with_other_conditions() {
    let conditions = "[[conditions]]\nany = [ { field = \"policy_flags\", contains = \"x\" }, \
                      { field = \"policy_flags\", contains = \"secrets\" } ]\n\
                      [[conditions]]\nfield = \"status\"\nequals = \"error\"\n";
    let mut record = sample();
    let text = details(conditions, &record).expect("both conditions hold");
    // The details name the member that matched, not the whole group.
    assert!(
        text.contains("policy_flags contains \"secrets\"; status = \"error\""),
        "{text}"
    );
    assert!(!text.contains("contains \"x\""), "{text}");
    record.status = Some("success".into());
    assert_eq!(details(conditions, &record), None);
    record.status = Some("error".into());
    record.policy_flags.clear();
    assert_eq!(details(conditions, &record), None);
}

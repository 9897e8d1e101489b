//! Each condition operator, through a one-condition `match` rule.

use super::*;
use crate::record::Classification;
use serde_json::json;

/// Whether a `match` rule with this one condition fires for `record`.
pub(super) fn fires(condition: &str, record: &AuditRecord, entitlements: &Entitlements) -> bool {
    let rule = format!(
        "id = \"c\"\ntitle = \"C\"\nseverity = \"low\"\nsuppress = \"1ms\"\nkind = \"match\"\n\
         group_by = \"user_id\"\n[[conditions]]\n{condition}\n"
    );
    let mut engine = engine_with(&[("c.toml", &rule)], entitlements.clone(), settings());
    !run(&mut engine, std::slice::from_ref(record)).is_empty()
}

/// A record with a little of everything.
pub(super) fn sample() -> AuditRecord {
    let mut r = request("e-1", 0, "alice@acme.example", "s-1");
    r.model = "claude-opus-4".into();
    r.status = Some("error".into());
    r.prompt_tokens = Some(100);
    r.completion_tokens = Some(20);
    r.data_classification = Some(Classification::Confidential);
    r.policy_flags = vec!["pii".into(), "secrets".into()];
    r.department = Some("Legal".into());
    r.extra.insert("tenant".into(), json!("acme"));
    r.extra
        .insert("ctx".into(), json!({"region": "eu", "tags": ["a", "b"]}));
    r
}

/// `(condition, expected)` against [`sample`], no entitlements.
pub(super) fn check(cases: &[(&str, bool)]) {
    let record = sample();
    for (condition, expected) in cases {
        assert_eq!(
            fires(condition, &record, &Entitlements::default()),
            *expected,
            "{condition}"
        );
    }
}

#[test]
fn equals_and_not_equals() {
    check(&[
        ("field = \"status\"\nequals = \"error\"", true),
        ("field = \"status\"\nequals = \"success\"", false),
        ("field = \"prompt_tokens\"\nequals = 100", true),
        ("field = \"total_tokens\"\nequals = 120", true),
        ("field = \"tenant\"\nequals = \"acme\"", true),
        ("field = \"ctx.region\"\nequals = \"eu\"", true),
        (
            "field = \"data_classification\"\nequals = \"Confidential\"",
            true,
        ),
        (
            "field = \"data_classification\"\nequals = \"sensitive\"",
            false,
        ),
        ("field = \"status\"\nnot_equals = \"success\"", true),
        ("field = \"status\"\nnot_equals = \"error\"", false),
        // Absent fields never match, negations included.
        ("field = \"stop_reason\"\nnot_equals = \"x\"", false),
        ("field = \"stop_reason\"\nequals = \"x\"", false),
    ]);
}

#[test]
fn in_and_not_in() {
    check(&[
        ("field = \"status\"\nin = [\"error\", \"timeout\"]", true),
        ("field = \"status\"\nin = [\"success\"]", false),
        ("field = \"prompt_tokens\"\nin = [1, 100]", true),
        ("field = \"status\"\nnot_in = [\"success\"]", true),
        ("field = \"status\"\nnot_in = [\"error\"]", false),
        ("field = \"error_type\"\nnot_in = [\"x\"]", false),
    ]);
}

#[test]
fn numeric_comparisons() {
    check(&[
        ("field = \"prompt_tokens\"\ngt = 99", true),
        ("field = \"prompt_tokens\"\ngt = 100", false),
        ("field = \"prompt_tokens\"\ngte = 100", true),
        ("field = \"prompt_tokens\"\ngte = 100.5", false),
        ("field = \"prompt_tokens\"\nlt = 101", true),
        ("field = \"prompt_tokens\"\nlt = 100", false),
        ("field = \"prompt_tokens\"\nlte = 100", true),
        ("field = \"prompt_tokens\"\nlte = 99", false),
        ("field = \"latency_ms\"\nlt = 1e9", false),
        ("field = \"status\"\ngt = 0", false),
    ]);
}

#[test]
fn exists() {
    check(&[
        ("field = \"status\"\nexists = true", true),
        ("field = \"status\"\nexists = false", false),
        ("field = \"latency_ms\"\nexists = false", true),
        ("field = \"latency_ms\"\nexists = true", false),
        ("field = \"policy_flags\"\nexists = true", true),
        // An empty list counts as absent.
        ("field = \"security_flags\"\nexists = false", true),
        ("field = \"ctx.missing\"\nexists = false", true),
    ]);
}

#[test]
fn at_least_compares_levels() {
    check(&[
        (
            "field = \"data_classification\"\nat_least = \"internal\"",
            true,
        ),
        (
            "field = \"data_classification\"\nat_least = \"confidential\"",
            true,
        ),
        // Sensitive and confidential are one level.
        (
            "field = \"data_classification\"\nat_least = \"sensitive\"",
            true,
        ),
        (
            "field = \"data_classification\"\nat_least = \"restricted\"",
            false,
        ),
        ("field = \"status\"\nat_least = \"public\"", false),
    ]);
}

#[test]
fn contains_lists_and_text() {
    check(&[
        ("field = \"policy_flags\"\ncontains = \"pii\"", true),
        ("field = \"policy_flags\"\ncontains = \"pi\"", false),
        ("field = \"model\"\ncontains = \"opus\"", true),
        ("field = \"model\"\ncontains = \"haiku\"", false),
        ("field = \"ctx.tags\"\ncontains = \"b\"", true),
        ("field = \"security_flags\"\ncontains = \"pii\"", false),
    ]);
}

#[test]
fn not_entitled_to() {
    let entitlements = Entitlements::parse(
        "ent.toml",
        "[restricted]\nusers = [\"Bob@acme.example\"]\ndepartments = [\"legal\"]\n\
         [confidential]\nusers = [\"carol@acme.example\"]\n[internal]\nusers = [\"*\"]\n",
    )
    .unwrap();
    let with = |user: &str, department: Option<&str>| {
        let mut r = sample();
        r.user_id = user.into();
        r.department = department.map(str::to_string);
        r
    };
    let cases: &[(&str, Option<&str>, &str, bool)] = &[
        ("dave@acme.example", None, "restricted", true),
        // Listed by name (case-insensitively), or through the department.
        ("bob@acme.example", None, "restricted", false),
        ("dave@acme.example", Some("LEGAL"), "restricted", false),
        // Clearance covers lower levels, not higher ones.
        ("bob@acme.example", None, "confidential", false),
        ("carol@acme.example", None, "confidential", false),
        ("carol@acme.example", None, "restricted", true),
        ("dave@acme.example", None, "internal", false),
        ("dave@acme.example", None, "public", false),
        // The level taken from the record (confidential).
        ("carol@acme.example", None, "data_classification", false),
        ("dave@acme.example", None, "data_classification", true),
    ];
    for (user, department, level, expected) in cases {
        let condition = format!("field = \"user_id\"\nnot_entitled_to = \"{level}\"");
        assert_eq!(
            fires(&condition, &with(user, *department), &entitlements),
            *expected,
            "{user} {department:?} {level}"
        );
    }
}

#[test]
fn entitlements_file_errors() {
    for (text, needle) in [
        ("[secret]\nusers = [\"a\"]", "secret"),
        ("[restricted]\nuser = [\"a\"]", "restricted"),
        ("[restricted]\nusers = [\"\"]", "restricted.users"),
        ("[restricted]\nusers = \"a\"", "line 2"),
    ] {
        let error = Entitlements::parse("ent.toml", text)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("ent.toml: "), "{error}");
        assert!(error.contains(needle), "`{needle}` missing from {error}");
    }
    let nobody = Entitlements::default();
    assert!(!nobody.is_entitled(Some("a"), Some("b"), Classification::Internal));
    assert!(nobody.is_entitled(Some("a"), None, Classification::Public));
}

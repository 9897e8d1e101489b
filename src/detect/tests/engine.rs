//! The engine with the shipped rules: mcp-volume, restricted-unauthorised, dedup, ids, caps.

use super::*;
use crate::record::{Classification, Severity};

#[test]
fn mcp_volume_fires_at_the_51st_call_in_ten_minutes() {
    let mut engine = engine(MCP_VOLUME);
    let alerts = run(&mut engine, &burst("s-19", 51, 0, 590));
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.rule_id, "mcp-volume");
    assert_eq!(alert.severity, Severity::Medium);
    assert_eq!(alert.entity.entity_type, "session_id");
    assert_eq!(alert.entity.entity_key, "s-19");
    assert_eq!(alert.observed, 51.0);
    assert_eq!(alert.threshold, 50.0);
    assert_eq!(alert.window.as_deref(), Some("10m"));
    assert_eq!(alert.evidence.event_count, 51);
    assert_eq!(alert.evidence.event_ids, ["s-19-0", "s-19-1", "s-19-2"]);
    assert_eq!(alert.timestamp, at(590 * 50 / 51));
    assert_eq!(
        alert.details,
        "session_id s-19: 51 MCP calls in 10m (threshold: more than 50)"
    );
}

#[test]
fn mcp_volume_quiet_cases() {
    for (what, records) in [
        ("50 calls in 10 minutes", burst("s-1", 50, 0, 590)),
        ("60 calls over an hour", burst("s-1", 60, 0, 3600)),
        ("51 calls in 11 minutes, evenly", burst("s-1", 51, 0, 660)),
        ("30 calls in each of two sessions", {
            let mut r = burst("s-1", 30, 0, 300);
            r.extend(burst("s-2", 30, 0, 300));
            r
        }),
    ] {
        let alerts = run(&mut engine(MCP_VOLUME), &records);
        assert!(alerts.is_empty(), "{what}: {alerts:?}");
    }
}

#[test]
fn mcp_volume_sums_requests_reporting_calls() {
    let with_calls = |id: &str, secs: i64, calls: Option<u64>| {
        let mut r = request(id, secs, "u-1", "s-1");
        r.mcp_calls = calls;
        r
    };
    let records = [
        with_calls("a", 0, Some(30)),
        with_calls("b", 10, None),
        with_calls("c", 20, Some(0)),
        with_calls("d", 30, Some(21)),
    ];
    let alerts = run(&mut engine(MCP_VOLUME), &records);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].observed, 51.0);
    assert_eq!(alerts[0].evidence.event_ids, ["a", "d"]);
    assert_eq!(alerts[0].evidence.event_count, 2);
}

#[test]
fn mcp_volume_second_tier() {
    let alerts = run(&mut engine(MCP_VOLUME), &burst("s-7", 101, 0, 240));
    let seen: Vec<_> = alerts
        .iter()
        .map(|a| (a.severity, a.observed, a.window.clone().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            (Severity::Medium, 51.0, "10m".to_string()),
            (Severity::High, 101.0, "5m".to_string())
        ]
    );
    assert_ne!(alerts[0].alert_id, alerts[1].alert_id);
    assert_eq!(alerts[1].threshold, 100.0);
}

#[test]
fn simultaneous_tiers_raise_only_the_most_severe() {
    let mut r = request("big", 0, "u-1", "s-1");
    r.mcp_calls = Some(150);
    let mut engine = engine(MCP_VOLUME);
    let alerts = run(&mut engine, &[r]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].severity, Severity::High);
    // The lesser tier was opened silently: once the 5m tier has moved past the big event,
    // the 10m tier still sees it but stays quiet within its suppression window.
    let alerts = run(&mut engine, &burst("s-1", 20, 400, 60));
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn dedup_suppresses_then_refires_with_count() {
    // 130 calls, one every 10s: crosses 50 at call 51 (500s) and stays above until the end.
    let mut engine = engine(MCP_VOLUME);
    let alerts = run(&mut engine, &burst("s-1", 130, 0, 1300));
    let seen: Vec<_> = alerts
        .iter()
        .map(|a| (a.timestamp, a.suppressed_count))
        .collect();
    // Alert at 500s; calls at 510s..1090s are suppressed (59); the next alert at 1100s.
    assert_eq!(seen, [(at(500), 0), (at(1100), 59)]);
}

/// A restricted-class request by `user` (department `dept`) at `secs`.
fn restricted(id: &str, secs: i64, user: &str, dept: Option<&str>) -> AuditRecord {
    let mut r = request(id, secs, user, "s-1");
    r.data_classification = Some(Classification::Restricted);
    r.department = dept.map(str::to_string);
    r
}

fn entitlements() -> Entitlements {
    Entitlements::parse(
        "ent.toml",
        "[restricted]\nusers = [\"alice@acme.example\"]\ndepartments = [\"legal\"]\n",
    )
    .unwrap()
}

#[test]
fn restricted_unauthorised_who_and_what() {
    let cases = [
        (
            "unentitled user",
            restricted("a", 0, "bob@acme.example", Some("sales")),
            true,
        ),
        (
            "no department",
            restricted("a", 0, "bob@acme.example", None),
            true,
        ),
        (
            "entitled user",
            restricted("a", 0, "alice@acme.example", Some("sales")),
            false,
        ),
        (
            "entitled department",
            restricted("a", 0, "bob@acme.example", Some("legal")),
            false,
        ),
        (
            "lower classification",
            {
                let mut r = restricted("a", 0, "bob@acme.example", None);
                r.data_classification = Some(Classification::Sensitive);
                r
            },
            false,
        ),
        (
            "no classification",
            request("a", 0, "bob@acme.example", "s-1"),
            false,
        ),
    ];
    for (what, record, expected) in cases {
        let mut engine = engine_with(&[("r.toml", RESTRICTED)], entitlements(), settings());
        let alerts = run(&mut engine, &[record]);
        assert_eq!(alerts.len(), usize::from(expected), "{what}");
    }
}

#[test]
fn restricted_alert_fills_every_field() {
    let mut engine = engine_with(&[("r.toml", RESTRICTED)], entitlements(), settings());
    let mut record = restricted("ev-1", 42, "bob@acme.example", Some("sales"));
    record.application_id = "app-7".into();
    let alert = run(&mut engine, &[record]).pop().unwrap();
    assert_eq!(
        alert.alert_id,
        super::super::alert::alert_id("restricted-unauthorised", 0, "bob@acme.example", "ev-1")
    );
    assert_eq!(alert.timestamp, at(42));
    assert_eq!(alert.rule_version, 1);
    assert_eq!(alert.severity, Severity::High);
    assert_eq!(
        alert.title,
        "Restricted data submitted by a user not entitled to it"
    );
    assert_eq!(
        alert.details,
        "user_id bob@acme.example: data_classification at least restricted; user_id not \
         entitled to restricted (event ev-1)"
    );
    assert_eq!(alert.entity.entity_type, "user_id");
    assert_eq!(alert.entity.entity_key, "bob@acme.example");
    assert_eq!(alert.entity.user_id.as_deref(), Some("bob@acme.example"));
    assert_eq!(alert.entity.session_id.as_deref(), Some("s-1"));
    assert_eq!(alert.entity.department.as_deref(), Some("sales"));
    assert_eq!(alert.entity.application_id.as_deref(), Some("app-7"));
    assert_eq!(
        (alert.observed, alert.threshold, alert.baseline),
        (1.0, 0.0, None)
    );
    assert_eq!(alert.window, None);
    assert_eq!(alert.evidence.event_ids, ["ev-1"]);
    assert_eq!(alert.evidence.event_count, 1);
    assert!(alert.tags.contains(&"ATLAS:AML.T0057".to_string()));
    assert_eq!(alert.source, "aiwarden");
    assert_eq!(alert.deployment, "claude_deployment");
    assert_eq!(alert.agent.host, "test-host");
    assert_eq!(alert.suppressed_count, 0);
    assert!(!alert.auto_blocked);
}

#[test]
fn restricted_dedup_per_user_and_hour() {
    let mut engine = engine(RESTRICTED);
    let records = [
        restricted("1", 0, "bob", None),
        restricted("2", 600, "bob", None),
        restricted("3", 1200, "carol", None),
        restricted("4", 1800, "bob", None),
        restricted("5", 3599, "bob", None),
        restricted("6", 3600, "bob", None),
        restricted("7", 3700, "bob", None),
    ];
    let seen: Vec<_> = run(&mut engine, &records)
        .into_iter()
        .map(|a| {
            (
                a.evidence.event_ids[0].clone(),
                a.entity.entity_key,
                a.suppressed_count,
            )
        })
        .collect();
    let expected = [("1", "bob", 0), ("3", "carol", 0), ("6", "bob", 3)];
    let expected: Vec<_> = expected
        .iter()
        .map(|(id, user, n)| (id.to_string(), user.to_string(), *n))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn alert_ids_are_deterministic() {
    let records = burst("s-1", 101, 0, 240);
    let first = run(&mut engine(MCP_VOLUME), &records);
    let second = run(&mut engine(MCP_VOLUME), &records);
    assert_eq!(first.len(), 2);
    assert_eq!(first, second);
    let id = uuid::Uuid::parse_str(&first[0].alert_id).unwrap();
    assert_eq!(id.get_version_num(), 5);
    let ids = [
        super::super::alert::alert_id("r", 0, "k", "e"),
        super::super::alert::alert_id("r", 1, "k", "e"),
        super::super::alert::alert_id("r", 0, "k2", "e"),
        super::super::alert::alert_id("r", 0, "k", "e2"),
        super::super::alert::alert_id("r2", 0, "k", "e"),
    ];
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
}

#[test]
fn entity_cap_refuses_then_evicts_idle_entities() {
    let mut settings = settings();
    settings.max_entities_per_rule = 2;
    let mut engine = engine_with(&[("m.toml", MCP_VOLUME)], Entitlements::default(), settings);
    let alerts = run(
        &mut engine,
        &[mcp("a", 0, "s-a"), mcp("b", 1, "s-b"), mcp("c", 2, "s-c")],
    );
    let stats = engine.stats();
    assert_eq!(
        (stats.rules[0].entities, stats.rules[0].refused_entities),
        (2, 1)
    );
    // The cap biting is itself worth one alert.
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].rule_id, "aiwarden-entity-cap");
    assert_eq!(alerts[0].entity.entity_key, "mcp-volume");
    assert_eq!(alerts[0].evidence.event_ids, vec!["c".to_string()]);
    // Known entities keep counting at the cap.
    let again = run(&mut engine, &[mcp("a2", 3, "s-a")]);
    assert!(again.is_empty(), "{again:#?}");
    assert_eq!(engine.stats().rules[0].refused_entities, 1);
    // Two hours later s-a and s-b are idle beyond the 10m horizon: swept, s-d admitted.
    run(&mut engine, &[mcp("d", 7200, "s-d")]);
    let stats = engine.stats();
    assert_eq!(stats.rules[0].rule_id, "mcp-volume");
    assert_eq!(
        (stats.rules[0].entities, stats.rules[0].refused_entities),
        (1, 1)
    );
}

#[test]
fn match_rules_alert_even_when_refused_at_the_cap() {
    let mut settings = settings();
    settings.max_entities_per_rule = 1;
    let mut engine = engine_with(&[("r.toml", RESTRICTED)], Entitlements::default(), settings);
    let alerts = run(
        &mut engine,
        &[
            restricted("1", 0, "bob", None),
            restricted("2", 1, "carol", None),
        ],
    );
    let raised = alerts
        .iter()
        .filter(|a| a.rule_id == "restricted-unauthorised")
        .count();
    assert_eq!(raised, 2);
    assert_eq!(engine.stats().rules[0].refused_entities, 1);
    // The cap alert comes once, however many entities are refused afterwards.
    let more = run(
        &mut engine,
        &[
            restricted("3", 2, "dave", None),
            restricted("4", 3, "erin", None),
        ],
    );
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.rule_id == "aiwarden-entity-cap")
            .count(),
        1
    );
    assert!(
        more.iter().all(|a| a.rule_id != "aiwarden-entity-cap"),
        "{more:#?}"
    );
}

#[test]
fn window_memory_stays_bounded_by_the_horizon() {
    // A day of one call every 15 seconds keeps at most a 10-minute window per session.
    let mut engine = engine(MCP_VOLUME);
    let alerts = run(&mut engine, &burst("s-1", 5_760, 0, 86_400));
    assert!(alerts.is_empty(), "{alerts:?}");
    let (_, entries) = &engine.rules_for_test()[0];
    assert!(*entries <= 40, "window holds {entries} entries");
}

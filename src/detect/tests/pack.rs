//! The newer rules of the default pack, loaded from their shipped text, with events that must
//! and must not fire them.

use super::*;
use crate::detect::Calendars;
use crate::record::{Classification, Severity};
use serde_json::json;

/// Rule id and entity of every alert.
fn fired(rule: &str, records: &[AuditRecord]) -> Vec<(String, String)> {
    let mut engine = engine(rule);
    run(&mut engine, records)
        .into_iter()
        .map(|a| (a.rule_id, a.entity.entity_key))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn every_new_rule_loads_with_its_kind_severity_and_tags() {
    for (name, text, kind, severity, atlas) in [
        (
            "request-volume",
            REQUEST_VOLUME,
            "baseline",
            Severity::Low,
            &["AML.T0034"][..],
        ),
        (
            "off-hours-sensitive",
            OFF_HOURS,
            "match",
            Severity::Low,
            &[],
        ),
        (
            "mcp-auth-failures",
            MCP_AUTH,
            "threshold",
            Severity::Medium,
            &[],
        ),
        (
            "cross-user-access",
            CROSS_USER,
            "match",
            Severity::High,
            &["AML.T0057"],
        ),
        (
            "prompt-injection",
            PROMPT_INJECTION,
            "match",
            Severity::Critical,
            &["AML.T0051", "AML.T0054"],
        ),
        (
            "system-prompt-leak",
            PROMPT_LEAK,
            "match",
            Severity::High,
            &["AML.T0056"],
        ),
    ] {
        let set = RuleSet::parse(&files(&[(name, text)])).unwrap_or_else(|e| panic!("{e}"));
        let info = set.info().next().unwrap();
        assert_eq!((info.id, info.kind, info.severity), (name, kind, severity));
        assert!(!info.description.is_empty(), "{name}");
        let tags: Vec<String> = toml::from_str::<toml::Table>(text).unwrap()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        assert_eq!(crate::record::atlas::technique_ids(&tags), atlas, "{name}");
    }
    // The template loads (as a disabled rule) alongside the whole pack.
    let all = RuleSet::parse(&files(&[
        ("a", MCP_VOLUME),
        ("b", TOKEN_SPIKE),
        ("c", RESTRICTED),
        ("d", REQUEST_VOLUME),
        ("e", OFF_HOURS),
        ("f", MCP_AUTH),
        ("g", CROSS_USER),
        ("h", PROMPT_INJECTION),
        ("i", PROMPT_LEAK),
        ("template", TEMPLATE),
    ]))
    .unwrap();
    assert_eq!(all.len(), 9);
}

#[test]
fn request_volume_compares_requests_with_the_users_own_days() {
    // 3 days of history at 10:00, then today's requests at 08:00 + 10 s each.
    let mut records = Vec::new();
    let mut add = |user: &str, day: i64, n: i64, event: EventType| {
        for i in 0..n {
            let mut r = request(
                &format!("{user}-{day}-{i}"),
                day * 86_400 + 28_800 + i * 10,
                user,
                "s",
            );
            r.event_type = event.clone();
            records.push(r);
        }
    };
    for day in 0..3 {
        add("quiet", day, 50, EventType::ApiRequest);
        add("busy", day, 100, EventType::ApiRequest);
    }
    // Today: quiet makes 600 requests (more than 10 × 50, and over 500); busy makes 600 too
    // (under 10 × 100); a third user's 2,000 MCP calls are not requests.
    add("quiet", 3, 600, EventType::ApiRequest);
    add("busy", 3, 600, EventType::ApiRequest);
    add("agent", 0, 40, EventType::ApiRequest);
    add("agent", 1, 40, EventType::ApiRequest);
    add("agent", 2, 40, EventType::ApiRequest);
    add("agent", 3, 2_000, EventType::McpCall);
    records.sort_by_key(|r| r.timestamp);
    let mut engine = engine(REQUEST_VOLUME);
    let alerts = run(&mut engine, &records);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].entity.entity_key, "quiet");
    assert_eq!(alerts[0].observed, 501.0);
    assert_eq!(alerts[0].baseline, Some(50.0));
    assert!(
        alerts[0].details.contains("501 requests"),
        "{}",
        alerts[0].details
    );
}

/// An `api_request` at an RFC 3339 time, with classification and department.
fn at_time(id: &str, at: &str, class: Classification, department: Option<&str>) -> AuditRecord {
    let ts: DateTime<Utc> = at.parse().unwrap();
    let mut r = AuditRecord::new(id, ts, EventType::ApiRequest, "u-1", id);
    r.data_classification = Some(class);
    r.department = department.map(str::to_string);
    r
}

#[test]
fn off_hours_sensitive_uses_department_calendars() {
    use Classification::{Confidential, Internal, Restricted, Sensitive};
    let calendars = Calendars::parse(
        "calendars.toml",
        "[legal]\ntimezone = \"Europe/Berlin\"\nhours = \"08:00-18:00\"\n",
    )
    .unwrap();
    let rules = RuleSet::parse(&files(&[("off-hours-sensitive.toml", OFF_HOURS)])).unwrap();
    let mut engine =
        Engine::new(rules, Entitlements::default(), settings()).with_calendars(calendars);
    let alerts = run(
        &mut engine,
        &[
            // Saturday: off hours for everyone.
            at_time("sat", "2025-03-29T10:00:00Z", Confidential, None),
            // Monday 10:00 UTC: inside the default calendar.
            at_time("mon", "2025-03-31T10:00:00Z", Restricted, Some("finance")),
            // Monday 07:00 UTC: 09:00 in Berlin (legal is in), 07:00 by default (finance is not).
            at_time("legal-in", "2025-03-31T07:00:00Z", Sensitive, Some("legal")),
            at_time(
                "finance-early",
                "2025-03-31T07:00:00Z",
                Restricted,
                Some("finance"),
            ),
            // Off hours but only internal data.
            at_time("internal", "2025-03-29T22:00:00Z", Internal, None),
            // Monday 17:00 UTC: 19:00 in Berlin.
            at_time(
                "legal-late",
                "2025-03-31T17:00:00Z",
                Confidential,
                Some("Legal"),
            ),
        ],
    );
    let fired: Vec<&str> = alerts
        .iter()
        .map(|a| a.entity.entity_key.as_str())
        .collect();
    assert_eq!(fired, ["sat", "finance-early", "legal-late"]);
    assert!(
        alerts[2]
            .details
            .contains("calendar `legal` (local time Mon 2025-03-31 19:00 Europe/Berlin)"),
        "{}",
        alerts[2].details
    );
    // One alert per session: the same session again is suppressed.
    let more = run(
        &mut engine,
        &[at_time("sat", "2025-03-29T11:00:00Z", Confidential, None)],
    );
    assert!(more.is_empty());
}

#[test]
fn mcp_auth_failures_counts_failures_per_user_in_ten_minutes() {
    let failure = |id: &str, secs: i64, user: &str| {
        AuditRecord::new(id, at(secs), EventType::McpAuthFailure, user, id)
    };
    let mut records: Vec<AuditRecord> = Vec::new();
    // alice: 6 failures in 5 minutes, across sessions.
    records.extend((0..6).map(|i| failure(&format!("a{i}"), i * 60, "alice")));
    // bob: 5 failures, then a sixth 11 minutes after the first.
    records.extend((0..5).map(|i| failure(&format!("b{i}"), i * 60, "bob")));
    records.push(failure("b5", 660, "bob"));
    // carol: 10 successful MCP calls.
    records.extend((0..10).map(|i| {
        let mut r = mcp(&format!("c{i}"), i, "s-carol");
        r.user_id = "carol".into();
        r
    }));
    records.sort_by_key(|r| r.timestamp);
    assert_eq!(
        fired(MCP_AUTH, &records),
        pairs(&[("mcp-auth-failures", "alice")])
    );
}

#[test]
fn cross_user_access_needs_another_owner() {
    let with_owner = |id: &str, owner: Option<serde_json::Value>| {
        let mut r = request(id, 0, "alice@acme.example", "s-1");
        if let Some(owner) = owner {
            r.extra.insert("resource_owner".into(), owner);
        }
        r
    };
    let records = [
        with_owner("own", Some(json!("alice@acme.example"))),
        with_owner("own-cased", Some(json!("Alice@ACME.example"))),
        with_owner("none", None),
        with_owner("blank", Some(json!(""))),
        with_owner("bob", Some(json!("bob@acme.example"))),
    ];
    let mut engine = engine(CROSS_USER);
    let alerts = run(&mut engine, &records);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].evidence.event_ids, ["bob"]);
    assert_eq!(alerts[0].severity, Severity::High);
    assert!(
        alerts[0]
            .details
            .contains("resource_owner differs from user_id"),
        "{}",
        alerts[0].details
    );
}

/// A request in session `id` carrying these policy and security flags.
fn flagged(id: &str, policy: &[&str], security: &[&str]) -> AuditRecord {
    let mut r = request(id, 0, "u-1", id);
    r.policy_flags = policy.iter().map(|s| s.to_string()).collect();
    r.security_flags = security.iter().map(|s| s.to_string()).collect();
    r
}

#[test]
fn prompt_injection_fires_on_either_flag_in_either_list() {
    let records = [
        flagged("p-inj", &["prompt_injection"], &[]),
        flagged("s-inj", &[], &["pii", "prompt_injection"]),
        flagged("p-jb", &["jailbreak"], &[]),
        flagged("s-jb", &[], &["jailbreak"]),
        // Other flags, or a flag that merely contains the word, do not count.
        flagged("other", &["pii"], &["system_prompt_leak"]),
        flagged("partial", &["possible_jailbreak"], &[]),
        flagged("none", &[], &[]),
    ];
    let mut engine = engine(PROMPT_INJECTION);
    let alerts = run(&mut engine, &records);
    let sessions: Vec<&str> = alerts
        .iter()
        .map(|a| a.entity.entity_key.as_str())
        .collect();
    assert_eq!(sessions, ["p-inj", "s-inj", "p-jb", "s-jb"]);
    assert!(alerts.iter().all(|a| a.severity == Severity::Critical));
    assert!(
        alerts[1]
            .details
            .contains("security_flags contains \"prompt_injection\""),
        "{}",
        alerts[1].details
    );
}

#[test]
fn system_prompt_leak_fires_on_its_flag_only() {
    let records = [
        flagged("p", &["system_prompt_leak"], &[]),
        flagged("s", &[], &["system_prompt_leak"]),
        flagged("injection", &["prompt_injection"], &["jailbreak"]),
    ];
    assert_eq!(
        fired(PROMPT_LEAK, &records),
        pairs(&[("system-prompt-leak", "p"), ("system-prompt-leak", "s")])
    );
}

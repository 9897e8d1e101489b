//! `kind = "distinct"`: distinct values per entity in a sliding window, with a memory cap.

use super::*;
use crate::detect::distinct::DistinctValues;
use crate::record::FieldValue;

/// Distinct `mcp_integrations` per session: more than `above` within `window`.
fn rule(window: &str, above: u32, max_values: Option<u32>) -> String {
    let cap = max_values.map_or(String::new(), |n| format!("max_values = {n}\n"));
    format!(
        "id = \"d\"\ntitle = \"D\"\nseverity = \"medium\"\nsuppress = \"1ms\"\n\
         kind = \"distinct\"\ngroup_by = \"session_id\"\n\
         [distinct]\nfield = \"mcp_integrations\"\nwindow = \"{window}\"\nabove = {above}\n\
         unit = \"MCP integrations\"\n{cap}"
    )
}

/// An `mcp_call` in `session` at `secs` naming `integrations`.
fn call(id: &str, secs: i64, session: &str, integrations: &[&str]) -> AuditRecord {
    let mut r = mcp(id, secs, session);
    r.mcp_integrations = integrations.iter().map(|s| s.to_string()).collect();
    r
}

#[test]
fn fires_when_more_distinct_values_than_the_bound_are_in_the_window() {
    let mut engine = engine(&rule("10m", 3, None));
    let alerts = run(
        &mut engine,
        &[
            call("e1", 0, "s-1", &["github"]),
            call("e2", 60, "s-1", &["github", "jira"]),
            // Repeats do not count twice.
            call("e3", 120, "s-1", &["jira", "github"]),
            call("e4", 180, "s-1", &["drive"]),
            // Another session's values are its own.
            call("x1", 190, "s-2", &["slack", "box", "s3", "gmail"]),
            call("e5", 240, "s-1", &["snowflake"]),
        ],
    );
    let fired: Vec<(&str, f64)> = alerts
        .iter()
        .map(|a| (a.entity.entity_key.as_str(), a.observed))
        .collect();
    assert_eq!(fired, [("s-2", 4.0), ("s-1", 4.0)]);
    let alert = &alerts[1];
    assert_eq!(alert.threshold, 3.0);
    assert_eq!(alert.window.as_deref(), Some("10m"));
    assert_eq!(
        alert.details,
        "session_id s-1: 4 MCP integrations in 10m (threshold: more than 3)"
    );
    // The events that last showed the newest values, oldest first (sample of 3).
    assert_eq!(alert.evidence.event_ids, ["e3", "e4", "e5"]);
    assert_eq!(alert.evidence.event_count, 3);
}

#[test]
fn values_older_than_the_window_no_longer_count() {
    let mut engine = engine(&rule("10m", 2, None));
    let alerts = run(
        &mut engine,
        &[
            call("e1", 0, "s-1", &["a"]),
            call("e2", 300, "s-1", &["b"]),
            // `a` left the window (600 s after it was seen): two values, not three.
            call("e3", 600, "s-1", &["c"]),
            // `b` seen again stays in; then `a` is back: a, b and c within 10 minutes.
            call("e4", 800, "s-1", &["b"]),
            call("e5", 850, "s-1", &["a"]),
        ],
    );
    let fired: Vec<&str> = alerts
        .iter()
        .map(|a| a.evidence.event_ids[2].as_str())
        .collect();
    assert_eq!(fired, ["e5"]);
    assert_eq!(alerts[0].observed, 3.0);
}

#[test]
fn memory_per_entity_is_capped_and_the_decision_stays_exact() {
    // 1,000 different values in one session with max_values = 20.
    let mut engine = engine(&rule("1h", 10, Some(20)));
    let records: Vec<AuditRecord> = (0..1000)
        .map(|i| call(&format!("e{i}"), i, "s-1", &[&format!("v{i}")]))
        .collect();
    let alerts = run(&mut engine, &records);
    assert_eq!(engine.rules_for_test(), [("d".to_string(), 20)]);
    // Fires once the 11th value arrives; the count is reported as "at least" the cap.
    assert_eq!(alerts.len(), 990);
    assert_eq!(alerts[0].observed, 11.0);
    assert_eq!(alerts[0].evidence.event_ids, ["e8", "e9", "e10"]);
    let last = alerts.last().unwrap();
    assert_eq!(last.observed, 20.0);
    assert!(
        last.details.contains("at least 20 MCP integrations"),
        "{}",
        last.details
    );
}

/// Distinct values at the newest time, brute force: values last seen after `newest - window`.
fn brute(events: &[(i64, u32)], window: i64) -> usize {
    let newest = events.iter().map(|e| e.0).max().unwrap_or(0);
    let mut values: Vec<u32> = events
        .iter()
        .filter(|e| e.0 > newest - window)
        .map(|e| e.1)
        .collect();
    values.sort_unstable();
    values.dedup();
    values.len()
}

#[test]
fn capped_counts_match_brute_force_under_disorder() {
    // A deterministic pseudo-random stream: times jitter backwards within the window, values
    // repeat. The capped count must be min(true count, cap) after every insert.
    let (window, cap) = (1_000_i64, 8_usize);
    let mut state = 0x2545_f491_u64;
    let mut next = |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 33) % n
    };
    let mut values = DistinctValues::new(window, cap, 0);
    let mut kept: Vec<(i64, u32)> = Vec::new();
    let mut newest = 0_i64;
    for i in 0..5_000 {
        let ts = (i * 7 - next(400) as i64).max(0);
        let value = next(30) as u32;
        let text = value.to_string();
        let accepted = values.insert(ts, FieldValue::Str(&text), "e");
        assert_eq!(accepted, ts > newest - window, "event {i}");
        if accepted {
            newest = newest.max(ts);
            kept.push((ts, value));
            kept.retain(|e| e.0 > newest - window);
        }
        let expected = brute(&kept, window).min(cap);
        assert_eq!(values.count(), expected, "after event {i} at {ts}");
    }
}

#[test]
fn records_without_values_create_no_entity() {
    let mut engine = engine(&rule("10m", 1, None));
    let mut plain = request("e1", 0, "u", "s-1");
    plain.mcp_integrations.clear();
    run(&mut engine, &[plain]);
    assert_eq!(engine.stats().rules[0].entities, 0);
}

#[test]
fn distinct_ip_addresses_per_user() {
    let rule = "id = \"ips\"\ntitle = \"IPs\"\nseverity = \"medium\"\nsuppress = \"1h\"\n\
                kind = \"distinct\"\ngroup_by = \"user_id\"\n\
                [distinct]\nfield = \"ip_address\"\nwindow = \"1h\"\nabove = 2\n";
    let mut engine = engine(rule);
    let from = |id: &str, secs: i64, ip: &str| {
        let mut r = request(id, secs, "alice", id);
        r.ip_address = Some(ip.into());
        r
    };
    let alerts = run(
        &mut engine,
        &[
            from("e1", 0, "10.0.0.1"),
            from("e2", 10, "10.0.0.1"),
            from("e3", 20, "192.0.2.7"),
            from("e4", 30, "198.51.100.9"),
            // Suppressed for an hour: counted, not raised.
            from("e5", 40, "203.0.113.1"),
        ],
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].details,
        "user_id alice: 3 distinct ip_address values in 1h (threshold: more than 2)"
    );
}

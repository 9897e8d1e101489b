//! Sliding windows: eviction, out-of-order inserts, late events.

use super::*;
use crate::detect::window::Window;

#[test]
fn slides_and_evicts() {
    let mut w = Window::new([10_000], 0);
    for (ts, expected) in [
        (0, (1.0, 1)),
        (4_000, (2.0, 2)),
        (9_999, (3.0, 3)),
        // The window is (newest - 10s, newest]: the event at 0 leaves exactly at 10s.
        (10_000, (3.0, 3)),
        (25_000, (1.0, 1)),
    ] {
        assert!(w.insert(ts, 1.0, &format!("e{ts}")));
        assert_eq!(w.total(0), expected, "after {ts}");
    }
    assert_eq!(w.len(), 1);
    assert_eq!(w.sample(0, 5), ["e25000"]);
}

#[test]
fn out_of_order_events_land_in_order() {
    let mut w = Window::new([10_000, 5_000], 20_000);
    for (ts, id) in [
        (20_000, "c"),
        (18_000, "b"),
        (12_000, "a"),
        (10_000, "old"),
        (15_000, "edge"),
    ] {
        w.insert(ts, 1.0, id);
    }
    // 10s tier: (10s, 20s] holds a, edge, b, c; the event exactly at 10s is in no window.
    assert_eq!(w.total(0), (4.0, 4));
    assert_eq!(w.sample(0, 10), ["a", "edge", "b", "c"]);
    assert_eq!(w.sample(0, 2), ["a", "edge"]);
    // 5s tier: (15s, 20s] holds b, c; the event exactly at 15s is just outside.
    assert_eq!(w.total(1), (2.0, 2));
    assert_eq!(w.sample(1, 10), ["b", "c"]);
    assert_eq!(w.len(), 4);
}

#[test]
fn matches_brute_force_under_disorder() {
    let widths = [7_000, 3_000, 11_000];
    let mut w = Window::new(widths, 0);
    let mut kept: Vec<(i64, f64)> = Vec::new();
    let mut newest = 0;
    let mut seed: u64 = 42;
    for i in 0..2_000 {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        // Mostly forward, sometimes up to 4s back.
        let jitter = (seed >> 33) % 5_000;
        let ts = (i * 400 + 4_000) as i64 - jitter as i64;
        let value = ((seed >> 20) % 7) as f64;
        if w.insert(ts, value, "e") {
            kept.push((ts, value));
        } else {
            assert!(ts <= newest - 11_000, "refused an event inside the horizon");
        }
        newest = newest.max(ts);
        for (tier, width) in widths.iter().enumerate() {
            let (sum, count) = kept
                .iter()
                .filter(|(t, _)| *t > newest - width && *t <= newest)
                .fold((0.0, 0), |(s, c), (_, v)| (s + v, c + 1));
            assert_eq!(w.total(tier), (sum, count), "tier {tier} after event {i}");
        }
    }
}

#[test]
fn too_old_for_every_window_is_refused() {
    let mut w = Window::new([10_000], 50_000);
    assert!(w.insert(50_000, 1.0, "a"));
    assert!(!w.insert(40_000, 1.0, "b"));
    assert!(w.insert(40_001, 1.0, "c"));
    assert_eq!(w.total(0), (2.0, 2));
}

/// Count of `status = error` per user above 2 in 10 minutes.
const ERRORS: &str = r#"
id = "errors"
title = "Errors"
severity = "low"
suppress = "1ms"
kind = "threshold"
group_by = "user_id"
[[conditions]]
field = "status"
equals = "error"
[threshold]
aggregate = "count"
[[threshold.tiers]]
window = "10m"
above = 2
"#;

fn error_event(id: &str, secs: i64) -> AuditRecord {
    let mut r = request(id, secs, "u-1", "s-1");
    r.status = Some("error".into());
    r
}

#[test]
fn late_within_allowed_lateness_counts() {
    let mut engine = engine(ERRORS);
    // Newest event time 1000s; 800s is 200s behind (lateness 300s): still counted.
    let alerts = run(
        &mut engine,
        &[
            error_event("a", 1000),
            error_event("b", 1000),
            error_event("c", 800),
        ],
    );
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence.event_ids, ["c", "a", "b"]);
    assert_eq!(alerts[0].timestamp, at(800));
    assert_eq!(engine.take_late_events(), 0);
}

#[test]
fn late_beyond_allowed_lateness_is_counted_not_windowed() {
    let mut engine = engine(ERRORS);
    let mut records = vec![error_event("a", 1000), error_event("b", 1000)];
    // 699s is 301s behind the newest event time: late, as is 0s.
    records.push(error_event("late-1", 699));
    records.push(error_event("late-2", 0));
    let alerts = run(&mut engine, &records);
    assert!(alerts.is_empty(), "{alerts:?}");
    assert_eq!(engine.take_late_events(), 2);
    assert_eq!(engine.take_late_events(), 0, "taking resets");
    // The third in-time event fires.
    let alerts = run(&mut engine, &[error_event("c", 1001)]);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence.event_count, 3);
}

#[test]
fn match_rules_still_see_late_events() {
    let mut engine = engine(RESTRICTED);
    let mut late = request("late", 0, "u-9", "s-9");
    late.data_classification = Some(crate::record::Classification::Restricted);
    let alerts = run(&mut engine, &[request("now", 10_000, "u-1", "s-1"), late]);
    assert_eq!(engine.take_late_events(), 1);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].evidence.event_ids, ["late"]);
}

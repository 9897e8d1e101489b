//! Daily baselines: the ring of daily totals and the token-spike rule.

use super::*;
use crate::detect::baseline::{DailyTotals, History, DAY_MS};
use crate::record::Severity;

const DAY: i64 = 86_400;

#[test]
fn daily_totals_roll_over_days() {
    let mut days = DailyTotals::new(3, 0);
    let day = |d: i64, h: i64| d * DAY_MS + h * 3_600_000;
    for (ts, value) in [
        (day(0, 1), 10.0),
        (day(0, 5), 5.0),
        (day(1, 0), 20.0),
        (day(3, 2), 7.0),
    ] {
        assert!(days.add(ts, value, "e", 2));
    }
    assert_eq!(days.today(), 3);
    assert_eq!(days.today_total(), 7.0);
    // Day 2 was silent: the average is over active days 0 (15) and 1 (20).
    assert_eq!(
        days.history(),
        History {
            average: 17.5,
            active_days: 2
        }
    );
    // Late into yesterday counts towards history; older than the ring does not.
    assert!(days.add(day(2, 23), 3.0, "e", 2));
    assert!(!days.add(day(-1, 0), 100.0, "e", 2));
    assert_eq!(days.history().active_days, 3);
    // A long silence clears everything.
    assert!(days.add(day(40, 0), 1.0, "e", 2));
    assert_eq!(
        days.history(),
        History {
            average: 0.0,
            active_days: 0
        }
    );
    assert_eq!(days.today_total(), 1.0);
}

#[test]
fn daily_totals_keep_the_oldest_evidence_of_today() {
    let mut days = DailyTotals::new(3, 0);
    for (ts, id) in [(500, "c"), (100, "a"), (900, "d"), (300, "b")] {
        days.add(ts, 1.0, id, 2);
    }
    assert_eq!(days.evidence(), ["a", "b"]);
    assert_eq!(days.today_events(), 4);
    days.add(DAY_MS + 1, 1.0, "next", 2);
    assert_eq!(days.evidence(), ["next"]);
    assert_eq!(days.today_events(), 1);
}

/// A request of `tokens` total tokens by `user` at `secs`.
fn tokens(id: &str, secs: i64, user: &str, tokens: u64) -> AuditRecord {
    let mut r = request(id, secs, user, "s-1");
    r.prompt_tokens = Some(tokens / 2);
    r.completion_tokens = Some(tokens - tokens / 2);
    r
}

/// One request per listed day (day index, tokens) at 10:00 UTC, for `user`.
fn history(user: &str, days: &[(i64, u64)]) -> Vec<AuditRecord> {
    days.iter()
        .map(|(day, n)| tokens(&format!("{user}-d{day}"), day * DAY + 36_000, user, *n))
        .collect()
}

#[test]
fn token_spike_fires_when_today_crosses_three_times_the_average() {
    let mut records = history(
        "alice",
        &[(0, 20_000), (1, 20_000), (2, 20_000), (3, 20_000)],
    );
    // Day 5: 25k + 25k = 50k (not above 60k), then +15k = 65k.
    records.push(tokens("t1", 5 * DAY + 3_600, "alice", 25_000));
    records.push(tokens("t2", 5 * DAY + 7_200, "alice", 25_000));
    records.push(tokens("t3", 5 * DAY + 10_800, "alice", 15_000));
    records.push(tokens("t4", 5 * DAY + 14_400, "alice", 15_000));
    let alerts = run(&mut engine(TOKEN_SPIKE), &records);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert.timestamp, at(5 * DAY + 10_800));
    assert_eq!(alert.rule_id, "token-spike");
    assert_eq!(alert.severity, Severity::Low);
    assert_eq!(
        (alert.observed, alert.baseline, alert.threshold),
        (65_000.0, Some(20_000.0), 60_000.0)
    );
    assert_eq!(alert.window.as_deref(), Some("1d"));
    assert_eq!(alert.entity.entity_key, "alice");
    assert_eq!(alert.evidence.event_ids, ["t1", "t2", "t3"]);
    assert_eq!(alert.evidence.event_count, 3);
    assert!(alert.tags.contains(&"ATLAS:AML.T0034".to_string()));
    assert_eq!(
        alert.details,
        "user_id alice: 65000 tokens on 2024-05-06 (UTC), 3.2× the daily average of 20000 over 4 \
         active days in the previous 30 (threshold: more than 3× = 60000)"
    );
}

#[test]
fn token_spike_quiet_cases() {
    // (what, history as (day, tokens), tokens today)
    type Case<'a> = (&'a str, &'a [(i64, u64)], u64);
    let cases: &[Case] = &[
        ("new user", &[], 1_000_000),
        (
            "two days of history",
            &[(0, 20_000), (1, 20_000)],
            1_000_000,
        ),
        (
            "below the minimum volume",
            &[(0, 1_000), (1, 1_000), (2, 1_000)],
            49_000,
        ),
        (
            "normal variation",
            &[(0, 20_000), (1, 25_000), (2, 15_000), (3, 30_000)],
            55_000,
        ),
        (
            "history older than 30 days",
            &[(-40, 1_000), (-39, 1_000), (-38, 1_000)],
            1_000_000,
        ),
    ];
    for (what, days, today) in cases {
        let mut records = history("bob", days);
        records.push(tokens("today", 5 * DAY, "bob", *today));
        let alerts = run(&mut engine(TOKEN_SPIKE), &records);
        assert!(alerts.is_empty(), "{what}: {alerts:?}");
    }
}

#[test]
fn token_spike_average_ignores_idle_days() {
    // Active on three days out of thirty: the average is theirs (20k), not 2k.
    let mut records = history("carol", &[(0, 20_000), (10, 20_000), (20, 20_000)]);
    records.push(tokens("today", 29 * DAY, "carol", 55_000));
    assert!(run(&mut engine(TOKEN_SPIKE), &records).is_empty());
    records.push(tokens("more", 29 * DAY + 60, "carol", 6_000));
    assert_eq!(run(&mut engine(TOKEN_SPIKE), &records).len(), 1);
}

#[test]
fn token_spike_is_per_user_and_suppressed_for_a_day() {
    let mut records = history("alice", &[(0, 20_000), (1, 20_000), (2, 20_000)]);
    records.extend(history("dave", &[(0, 100_000), (1, 100_000), (2, 100_000)]));
    for (i, user) in ["alice", "dave"].iter().enumerate() {
        // Day 4: 70k each; only alice is far above her normal.
        records.push(tokens(&format!("x{i}"), 4 * DAY + 3_600, user, 70_000));
    }
    records.push(tokens("y", 4 * DAY + 7_200, "alice", 10_000));
    // Day 5, 12:00: above again, more than a day after the first alert.
    records.push(tokens("z", 5 * DAY + 43_200, "alice", 200_000));
    let seen: Vec<_> = run(&mut engine(TOKEN_SPIKE), &records)
        .into_iter()
        .map(|a| (a.entity.entity_key, a.timestamp, a.suppressed_count))
        .collect();
    assert_eq!(
        seen,
        [
            ("alice".to_string(), at(4 * DAY + 3_600), 0),
            ("alice".to_string(), at(5 * DAY + 43_200), 1)
        ]
    );
}

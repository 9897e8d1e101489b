//! Baselines with `min_zscore`: the robust z-score (median/MAD) ANDed with the ratio.

use super::*;
use crate::detect::baseline::{robust_zscore, DailyTotals, DAY_MS};

const DAY: i64 = 86_400;

#[test]
fn robust_zscore_uses_median_and_mad() {
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-3);
    // Median 11; absolute deviations 1, 1, 0, 2, 2 have median 1.
    let z = robust_zscore(20.0, vec![10.0, 12.0, 11.0, 13.0, 9.0]);
    assert!(close(z, 9.0 / 1.4826), "{z:?}");
    // One huge day in the history does not hide the next one (a mean and deviation would).
    let z = robust_zscore(20.0, vec![10.0, 12.0, 11.0, 13.0, 1_000.0]);
    assert!(close(z, 8.0 / 1.4826), "{z:?}");
    // Even count: the median is the mean of the middle two (11.5); deviations 1.5, 0.5, 0.5,
    // 1.5 have median 1.
    let z = robust_zscore(13.0, vec![10.0, 11.0, 12.0, 13.0]);
    assert!(close(z, 1.5 / 1.4826), "{z:?}");
    // MAD zero (most days equal): the scaled mean absolute deviation stands in:
    // median 10, deviations 0, 0, 0, 2, mean 0.5.
    let z = robust_zscore(14.0, vec![10.0, 10.0, 10.0, 12.0]);
    assert!(close(z, 4.0 / (1.2533 * 0.5)), "{z:?}");
    // Every day the same: any excess is unbounded, none is zero.
    assert_eq!(robust_zscore(11.0, vec![10.0; 5]), Some(f64::INFINITY));
    assert_eq!(robust_zscore(10.0, vec![10.0; 5]), Some(0.0));
    assert_eq!(robust_zscore(11.0, vec![]), None);
}

#[test]
fn active_history_leaves_out_silent_days_and_today() {
    let mut days = DailyTotals::new(5, 0);
    for (day, value) in [(0, 3.0), (2, 5.0), (3, 7.0), (5, 100.0)] {
        assert!(days.add(day * DAY_MS, value, "e", 1));
    }
    let mut history = days.active_history();
    history.sort_by(f64::total_cmp);
    assert_eq!(history, [3.0, 5.0, 7.0]);
}

/// A `baseline` rule over the count of requests per user: ratio 3, no volume floor.
fn rule(min_zscore: Option<f64>) -> String {
    let z = min_zscore.map_or(String::new(), |z| format!("min_zscore = {z}\n"));
    format!(
        "id = \"b\"\ntitle = \"B\"\nseverity = \"low\"\nsuppress = \"1d\"\nkind = \"baseline\"\n\
         group_by = \"user_id\"\n[baseline]\naggregate = \"count\"\nunit = \"requests\"\n\
         history_days = 30\nratio = 3.0\nmin_history_days = 3\n{z}"
    )
}

/// `per_day[d]` requests of `user` on day `d`, spread over the working day.
fn days(user: &str, per_day: &[usize]) -> Vec<AuditRecord> {
    let mut records = Vec::new();
    for (day, &n) in per_day.iter().enumerate() {
        for i in 0..n {
            let secs = day as i64 * DAY + 28_800 + i as i64 * 10;
            records.push(request(&format!("{user}-{day}-{i}"), secs, user, "s"));
        }
    }
    records
}

/// Users whose alert fired, in order.
fn fired(rule: &str, users: &[(&str, &[usize])]) -> Vec<(String, String)> {
    let mut engine = engine(rule);
    let mut records: Vec<AuditRecord> = users
        .iter()
        .flat_map(|(user, per_day)| days(user, per_day))
        .collect();
    records.sort_by_key(|r| r.timestamp);
    run(&mut engine, &records)
        .into_iter()
        .map(|a| (a.entity.entity_key, a.details))
        .collect()
}

#[test]
fn min_zscore_quiets_entities_whose_days_swing_anyway() {
    // `steady` does about 50 a day, `swinging` alternates 10 and 150 (average 80). Today
    // both do 260: above 3 × their averages (150 and 240).
    let steady: &[usize] = &[50, 52, 48, 51, 49, 50, 260];
    let swinging: &[usize] = &[10, 150, 10, 150, 10, 150, 260];
    let users = [("steady", steady), ("swinging", swinging)];
    let without = fired(&rule(None), &users);
    let names: Vec<&str> = without.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(names, ["steady", "swinging"]);
    // Swinging: median 80, MAD 70, z = (241 - 80) / (1.4826 × 70) ≈ 1.6 when it crosses the
    // ratio; steady: median 50, MAD 1, z ≈ 68.
    let with = fired(&rule(Some(3.5)), &users);
    assert_eq!(with.len(), 1, "{with:?}");
    assert_eq!(with[0].0, "steady");
    assert!(with[0].1.contains("robust z-score"), "{}", with[0].1);
    assert!(
        with[0].1.contains("(threshold: at least 3.5)"),
        "{}",
        with[0].1
    );
    // Both tests must pass: a z-score alone does not fire below the ratio.
    let small: &[usize] = &[50, 52, 48, 51, 49, 50, 140];
    assert!(fired(&rule(Some(3.5)), &[("small", small)]).is_empty());
}

#[test]
fn a_perfectly_regular_history_makes_any_crossing_unusual() {
    let regular: &[usize] = &[20, 20, 20, 20, 80];
    let alerts = fired(&rule(Some(10.0)), &[("regular", regular)]);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].1.contains("z-score unbounded"), "{}", alerts[0].1);
}

//! `kind = "first_seen"`: a value an entity has not shown before, after a learning period.

use super::*;

const DAY: i64 = 86_400;

/// New `ip_network` per user, learning for a day, remembering for ten.
fn rule(max_values: Option<u32>) -> String {
    let cap = max_values.map_or(String::new(), |n| format!("max_values = {n}\n"));
    format!(
        "id = \"f\"\ntitle = \"F\"\nseverity = \"medium\"\nsuppress = \"1ms\"\n\
         kind = \"first_seen\"\ngroup_by = \"user_id\"\n\
         [first_seen]\nfield = \"ip_network\"\nlearning = \"1d\"\nremember = \"10d\"\n\
         unit = \"IP networks\"\n{cap}"
    )
}

fn sign_in(id: &str, secs: i64, user: &str, network: &str) -> AuditRecord {
    let mut r = request(id, secs, user, "s");
    r.extra.insert("ip_network".into(), network.into());
    r
}

fn fired(alerts: &[Alert]) -> Vec<(String, String)> {
    alerts
        .iter()
        .map(|a| (a.entity.entity_key.clone(), a.evidence.event_ids.join(",")))
        .collect()
}

#[test]
fn a_new_value_after_learning_fires_once_and_known_ones_never() {
    let mut engine = engine(&rule(None));
    let alerts = run(
        &mut engine,
        &[
            // Learning: the first day only learns, however many networks.
            sign_in("e1", 0, "u1", "10.0.0.0/24"),
            sign_in("e2", 3_600, "u1", "10.0.1.0/24"),
            sign_in("e3", 2 * DAY, "u1", "10.0.0.0/24"),
            sign_in("e4", 2 * DAY + 60, "u1", "198.51.100.0/24"),
            sign_in("e5", 2 * DAY + 120, "u1", "198.51.100.0/24"),
            // Another user's first sign-in is learning for them, not news.
            sign_in("x1", 2 * DAY + 180, "u2", "198.51.100.0/24"),
        ],
    );
    assert_eq!(fired(&alerts), [("u1".to_string(), "e4".to_string())]);
    let alert = &alerts[0];
    assert_eq!(alert.observed, 1.0);
    assert_eq!(alert.baseline, Some(2.0));
    assert!(
        alert.details.contains("1 new IP networks"),
        "{}",
        alert.details
    );
}

#[test]
fn a_value_not_seen_for_longer_than_remember_is_new_again() {
    let mut engine = engine(&rule(None));
    let alerts = run(
        &mut engine,
        &[
            sign_in("e1", 0, "u1", "10.0.0.0/24"),
            sign_in("e2", 2 * DAY, "u1", "10.0.1.0/24"),
            sign_in("e3", 11 * DAY, "u1", "10.0.1.0/24"),
            sign_in("e4", 14 * DAY, "u1", "10.0.0.0/24"),
        ],
    );
    assert_eq!(
        fired(&alerts),
        [("u1".into(), "e2".into()), ("u1".into(), "e4".into())]
    );
}

#[test]
fn memory_per_entity_is_capped() {
    let mut engine = engine(&rule(Some(4)));
    let events: Vec<AuditRecord> = (0..50)
        .map(|n| sign_in(&format!("e{n}"), n * 60, "u1", &format!("10.0.{n}.0/24")))
        .collect();
    run(&mut engine, &events);
    let held: usize = engine
        .rules_for_test()
        .iter()
        .filter(|(id, _)| id == "f")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(held, 4);
}

#[test]
fn the_section_is_validated() {
    let bad = rule(None).replace("learning = \"1d\"", "learning = \"20d\"");
    let error = RuleSet::parse(&files(&[("f.toml", &bad)]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("first_seen.learning"), "{error}");
    let missing = "id = \"f\"\ntitle = \"F\"\nseverity = \"low\"\nsuppress = \"1h\"\nkind = \"first_seen\"\ngroup_by = \"user_id\"\n";
    let error = RuleSet::parse(&files(&[("f.toml", missing)]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("[first_seen]"), "{error}");
}

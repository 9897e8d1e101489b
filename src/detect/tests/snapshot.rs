//! Detection state survives a restart through a snapshot; a changed rule starts afresh.

use super::*;

/// Five ordinary days of 20,000 tokens for `user`, then a day of 10,000-token calls.
fn history_then_spike(user: &str) -> (Vec<AuditRecord>, Vec<AuditRecord>) {
    let day = 86_400;
    let mut history = Vec::new();
    for d in 0..5 {
        for n in 0..10 {
            let mut record = request(
                &format!("h-{d}-{n}"),
                d * day + 9 * 3600 + n * 600,
                user,
                "s",
            );
            record.prompt_tokens = Some(1500);
            record.completion_tokens = Some(500);
            history.push(record);
        }
    }
    let spike = (0..10)
        .map(|n| {
            let mut record = request(
                &format!("spike-{n}"),
                5 * day + 9 * 3600 + n * 600,
                user,
                "s2",
            );
            record.prompt_tokens = Some(8000);
            record.completion_tokens = Some(2000);
            record
        })
        .collect();
    (history, spike)
}

#[test]
fn a_snapshot_carries_baselines_across_a_restart() {
    let (history, spike) = history_then_spike("tina");
    let mut before = engine(TOKEN_SPIKE);
    assert!(run(&mut before, &history).is_empty());
    let text = serde_json::to_string(&before.snapshot()).unwrap();
    drop(before);

    // Without the snapshot a fresh engine has no history: the spike goes unnoticed.
    let mut forgetful = engine(TOKEN_SPIKE);
    assert!(run(&mut forgetful, &spike).is_empty());

    let mut after = engine(TOKEN_SPIKE);
    let report = after.restore(serde_json::from_str(&text).unwrap());
    assert_eq!(report.rules, 1);
    assert_eq!(report.entities, 1);
    assert!(report.skipped_rules.is_empty());
    let alerts = run(&mut after, &spike);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].baseline, Some(20_000.0));
    assert_eq!(alerts[0].observed, 70_000.0);
}

#[test]
fn a_changed_rule_does_not_take_old_state() {
    let (history, _) = history_then_spike("tina");
    let mut before = engine(TOKEN_SPIKE);
    run(&mut before, &history);
    let snapshot = before.snapshot();
    let changed = TOKEN_SPIKE.replace("ratio = 3.0", "ratio = 4.0");
    assert_ne!(changed, TOKEN_SPIKE, "the test must change the rule");
    let mut after = engine(&changed);
    let report = after.restore(snapshot);
    assert_eq!(report.rules, 0);
    assert_eq!(report.skipped_rules, vec!["token-spike".to_string()]);
}

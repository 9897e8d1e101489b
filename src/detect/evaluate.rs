//! Evaluating a threshold or baseline entity after an event was added: did it cross, and
//! is the crossing suppressed? The answer is a [`Finding`] ready to become an alert.
//! (`distinct` rules are evaluated next to their state, in `distinct.rs`.)

use super::alert::{num, Finding};
use super::baseline::{robust_zscore, DailyTotals, DAY_MS};
use super::dedup::{self, Suppression, Verdict};
use super::engine::display_key;
use super::rules::{BaselineSpec, Rule, ThresholdSpec};
use super::window::Window;
use crate::record::Evidence;

/// Evaluate every tier; the most severe tier that fired speaks, the others count as suppressed.
pub(crate) fn threshold<'a>(
    rule: &Rule,
    spec: &ThresholdSpec,
    window: &Window,
    dedup: &mut [Option<Suppression>],
    key: &'a str,
    ts: i64,
    sample: usize,
) -> Option<Finding<'a>> {
    let fired: Vec<usize> = (0..spec.tiers.len())
        .filter(|&i| window.total(i).0 > spec.tiers[i].above)
        .collect();
    // Most severe wins; between equal severities the later tier (usually the tighter one).
    let top = fired
        .iter()
        .copied()
        .max_by_key(|&i| (spec.tiers[i].severity, i))?;
    for &i in fired.iter().filter(|&&i| i != top) {
        dedup::absorb(&mut dedup[i], ts, rule.suppress_ms);
    }
    let Verdict::Emit { suppressed } = dedup::check(&mut dedup[top], ts, rule.suppress_ms) else {
        return None;
    };
    let tier = &spec.tiers[top];
    let (observed, count) = window.total(top);
    let details = format!(
        "{} {}: {} {} in {} (threshold: more than {})",
        rule.group_by_name,
        display_key(key),
        num(observed),
        spec.unit,
        tier.window_text,
        num(tier.above)
    );
    Some(Finding {
        tier: top,
        severity: tier.severity,
        entity_key: key,
        observed,
        baseline: None,
        threshold: tier.above,
        window: Some(tier.window_text.clone()),
        details,
        evidence: Evidence {
            event_ids: window.sample(top, sample),
            event_count: count,
        },
        suppressed_count: suppressed,
    })
}

/// Compare the entity's current day with its own trailing average.
pub(crate) fn baseline<'a>(
    rule: &Rule,
    spec: &BaselineSpec,
    days: &DailyTotals,
    dedup: &mut [Option<Suppression>],
    key: &'a str,
    ts: i64,
) -> Option<Finding<'a>> {
    let today = days.today_total();
    let history = days.history();
    let bound = spec.ratio * history.average;
    let fires =
        history.active_days >= spec.min_history_days && today >= spec.min_volume && today > bound;
    if !fires {
        return None;
    }
    // The z-score is only computed for a day that already passed the ratio: it sorts the
    // history, and most events of most days never get this far.
    let zscore = match spec.min_zscore {
        None => None,
        Some(min) => {
            let z = robust_zscore(today, days.active_history())?;
            if z < min {
                return None;
            }
            Some((z, min))
        }
    };
    let Verdict::Emit { suppressed } = dedup::check(&mut dedup[0], ts, rule.suppress_ms) else {
        return None;
    };
    let date = chrono::DateTime::from_timestamp(days.today() * (DAY_MS / 1000), 0)
        .map(|d| d.date_naive().to_string())
        .unwrap_or_default();
    let mut details = format!(
        "{} {}: {} {} on {date} (UTC), {:.1}× the daily average of {} over {} active days in the \
         previous {} (threshold: more than {}× = {})",
        rule.group_by_name,
        display_key(key),
        num(today),
        spec.unit,
        today / history.average,
        num(history.average),
        history.active_days,
        spec.history_days,
        num(spec.ratio),
        num(bound)
    );
    if let Some((z, min)) = zscore {
        let z = if z.is_finite() {
            format!("{z:.1}")
        } else {
            "unbounded (every earlier day was the same)".to_string()
        };
        details.push_str(&format!(
            "; robust z-score {z} against the median of those days (threshold: at least {min})"
        ));
    }
    Some(Finding {
        tier: 0,
        severity: rule.severity,
        entity_key: key,
        observed: today,
        baseline: Some(history.average),
        threshold: bound,
        window: Some("1d".to_string()),
        details,
        evidence: Evidence {
            event_ids: days.evidence(),
            event_count: days.today_events(),
        },
        suppressed_count: suppressed,
    })
}

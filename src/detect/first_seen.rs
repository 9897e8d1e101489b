//! Values an entity has shown, for `first_seen` rules: which of an event's values are new.
//!
//! Like `distinct`, values are kept as 64-bit hashes with the time they were last seen, never
//! as text, and at most `max_values` per entity (the least recently seen is forgotten first).
//! A value not seen for `remember` is forgotten and counts as new when it comes back. The
//! entity's first `learning` of event time only learns: without it, a first start (or a new
//! user) would alert on every value it shows.

use super::alert::Finding;
use super::dedup::{self, Suppression, Verdict};
use super::distinct::for_each_value;
use super::engine::display_key;
use super::rules::{FirstSeenSpec, Rule};
use crate::record::{Evidence, FieldValue};
use std::collections::BTreeSet;

/// The values one entity has shown.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct SeenValues {
    /// Hash of the value to when it was last seen.
    seen: super::StateMap<u64, i64>,
    /// The same, ordered by last seen, oldest first, to expire and evict cheaply.
    order: BTreeSet<(i64, u64)>,
    /// Event time of the entity's first event: learning ends `learning` after it.
    first: i64,
}

impl SeenValues {
    /// Empty, for an entity whose first event is at `ts`.
    pub fn new(ts: i64) -> SeenValues {
        SeenValues {
            seen: super::StateMap::default(),
            order: BTreeSet::new(),
            first: ts,
        }
    }

    /// Values remembered.
    pub fn count(&self) -> usize {
        self.seen.len()
    }

    /// Remember the event's values; returns how many of them were new (not remembered).
    pub fn insert(&mut self, spec: &FirstSeenSpec, ts: i64, value: FieldValue<'_>) -> usize {
        let cutoff = ts.saturating_sub(spec.remember_ms);
        while let Some(&(last, hash)) = self.order.first().filter(|(last, _)| *last < cutoff) {
            self.order.remove(&(last, hash));
            self.seen.remove(&hash);
        }
        self.first = self.first.min(ts);
        let mut new = 0;
        for_each_value(value, |hash| match self.seen.get(&hash).copied() {
            Some(last) => {
                if ts > last {
                    self.order.remove(&(last, hash));
                    self.order.insert((ts, hash));
                    self.seen.insert(hash, ts);
                }
            }
            None => {
                new += 1;
                if self.seen.len() >= spec.max_values {
                    if let Some(oldest) = self.order.pop_first() {
                        self.seen.remove(&oldest.1);
                    }
                }
                self.seen.insert(hash, ts);
                self.order.insert((ts, hash));
            }
        });
        new
    }

    /// Whether the entity is past its learning period at `ts`.
    pub fn learned(&self, spec: &FirstSeenSpec, ts: i64) -> bool {
        ts >= self.first.saturating_add(spec.learning_ms)
    }
}

/// Judge an event that showed `new` values the entity had not shown before.
#[allow(clippy::too_many_arguments)]
pub(crate) fn evaluate<'a>(
    rule: &Rule,
    spec: &FirstSeenSpec,
    values: &SeenValues,
    new: usize,
    dedup: &mut [Option<Suppression>],
    key: &'a str,
    ts: i64,
    event_id: &str,
) -> Option<Finding<'a>> {
    if new == 0 || !values.learned(spec, ts) {
        return None;
    }
    let Verdict::Emit { suppressed } = dedup::check(&mut dedup[0], ts, rule.suppress_ms) else {
        return None;
    };
    let known = values.count().saturating_sub(new);
    let details = format!(
        "{} {}: {new} new {} (not seen before among {known} known; event {event_id})",
        rule.group_by_name,
        display_key(key),
        spec.unit,
    );
    Some(Finding {
        tier: 0,
        severity: rule.severity,
        entity_key: key,
        observed: new as f64,
        baseline: Some(known as f64),
        threshold: 0.0,
        window: Some(format!("learning {}", spec.learning_text)),
        details,
        evidence: Evidence {
            event_count: 1,
            event_ids: vec![event_id.to_string()],
        },
        suppressed_count: suppressed,
    })
}

//! Distinct values per entity over a sliding window of event time, for `distinct` rules.
//!
//! Values are remembered as 64-bit hashes with the time they were last seen and the id of
//! that event (for evidence), never as text: a hostile field of megabyte values costs the same
//! as `10.0.0.1`, and no raw value (an IP address, say) is kept beyond the record. A collision
//! would merge two values into one; at 64 bits and at most 10,000 values per entity, that is
//! about one chance in 10^11.
//!
//! At most `max_values` are remembered per entity; past that the least recently seen value is
//! forgotten. Within the window, the `max_values` most recently seen values are exactly the
//! ones kept, so the count reported is `min(true count, max_values)`.

use super::alert::{num, Finding};
use super::dedup::{self, Suppression, Verdict};
use super::engine::display_key;
use super::event_ref::EventRef;
use super::rules::{DistinctSpec, Rule};
use crate::record::{Evidence, FieldValue};
use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

/// The distinct values one entity showed within the rule's window.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DistinctValues {
    /// Hash of the value to (last seen, id of the event that last showed it).
    seen: super::StateMap<u64, (i64, EventRef)>,
    /// The same values ordered by last seen, oldest first, to expire and evict cheaply.
    order: BTreeSet<(i64, u64)>,
    /// Newest event time of the entity: the window ends here.
    newest: i64,
    window_ms: i64,
    max_values: usize,
}

impl DistinctValues {
    /// Empty, for a window of `window_ms` ending at `ts`, remembering at most `max_values`.
    pub fn new(window_ms: i64, max_values: usize, ts: i64) -> DistinctValues {
        DistinctValues {
            seen: super::StateMap::default(),
            order: BTreeSet::new(),
            newest: ts,
            window_ms,
            max_values,
        }
    }

    /// Distinct values in the window (at most `max_values`).
    pub fn count(&self) -> usize {
        self.seen.len()
    }

    /// Add the values an event shows; false (nothing kept) when it is older than the window.
    pub fn insert(&mut self, ts: i64, value: FieldValue<'_>, event_id: &str) -> bool {
        if ts <= self.newest.saturating_sub(self.window_ms) {
            return false;
        }
        if ts > self.newest {
            self.newest = ts;
            let cutoff = self.newest - self.window_ms;
            while let Some(&(last, hash)) = self.order.first().filter(|(last, _)| *last <= cutoff) {
                self.order.remove(&(last, hash));
                self.seen.remove(&hash);
            }
        }
        for_each_value(value, |hash| self.see(hash, ts, event_id));
        true
    }

    fn see(&mut self, hash: u64, ts: i64, event_id: &str) {
        if let Some((last, id)) = self.seen.get_mut(&hash) {
            if ts > *last {
                self.order.remove(&(*last, hash));
                self.order.insert((ts, hash));
                *last = ts;
                *id = EventRef::new(event_id);
            }
            return;
        }
        if self.seen.len() >= self.max_values {
            // Full: the least recently seen value goes, unless this late event is older still.
            match self.order.first().copied() {
                Some((oldest, _)) if oldest > ts => return,
                Some(entry) => {
                    self.order.remove(&entry);
                    self.seen.remove(&entry.1);
                }
                None => return,
            }
        }
        self.seen.insert(hash, (ts, EventRef::new(event_id)));
        self.order.insert((ts, hash));
    }

    /// How many events last showed the values kept (one event may show several values).
    pub fn events(&self) -> u64 {
        let ids: std::collections::HashSet<&EventRef> =
            self.seen.values().map(|(_, id)| id).collect();
        ids.len() as u64
    }

    /// Ids of the events that last showed the `n` most recently seen values, oldest first.
    pub fn sample(&self, n: usize) -> Vec<String> {
        let mut ids: Vec<&EventRef> = Vec::with_capacity(n.min(self.order.len()));
        for (_, hash) in self.order.iter().rev() {
            if ids.len() >= n {
                break;
            }
            if let Some((_, id)) = self.seen.get(hash) {
                // One event may show several values; name it once.
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.iter().rev().map(|id| id.to_string()).collect()
    }
}

/// Call `see` with the hash of every value in `value`: the value itself, or each list item.
pub(crate) fn for_each_value(value: FieldValue<'_>, mut see: impl FnMut(u64)) {
    match value {
        FieldValue::Str(s) => see(hash_text(s)),
        FieldValue::List(items) => items.iter().for_each(|item| see(hash_text(item))),
        FieldValue::Num(n) => see(hash_text(&num(n))),
        FieldValue::Bool(b) => see(hash_text(if b { "true" } else { "false" })),
        FieldValue::Json(serde_json::Value::Array(items)) => {
            for item in items {
                match item {
                    serde_json::Value::String(s) => see(hash_text(s)),
                    serde_json::Value::Null => {}
                    other => see(hash_text(&other.to_string())),
                }
            }
        }
        FieldValue::Json(other) => see(hash_text(&other.to_string())),
    }
}

fn hash_text(text: &str) -> u64 {
    // Fixed keys: the hash only lives in this process, and must be the same for the same text.
    let mut hasher = DefaultHasher::new();
    text.trim().hash(&mut hasher);
    hasher.finish()
}

/// Judge the entity after an insert: more than `above` distinct values in the window?
pub(crate) fn evaluate<'a>(
    rule: &Rule,
    spec: &DistinctSpec,
    values: &DistinctValues,
    dedup: &mut [Option<Suppression>],
    key: &'a str,
    ts: i64,
    sample: usize,
) -> Option<Finding<'a>> {
    let count = values.count();
    if count <= spec.above {
        return None;
    }
    let Verdict::Emit { suppressed } = dedup::check(&mut dedup[0], ts, rule.suppress_ms) else {
        return None;
    };
    let at_least = if count >= spec.max_values {
        "at least "
    } else {
        ""
    };
    let details = format!(
        "{} {}: {at_least}{count} {} in {} (threshold: more than {})",
        rule.group_by_name,
        display_key(key),
        spec.unit,
        spec.window_text,
        spec.above
    );
    let evidence = values.sample(sample);
    Some(Finding {
        tier: 0,
        severity: rule.severity,
        entity_key: key,
        observed: count as f64,
        baseline: None,
        threshold: spec.above as f64,
        window: Some(spec.window_text.clone()),
        details,
        evidence: Evidence {
            event_count: values.events(),
            event_ids: evidence,
        },
        suppressed_count: suppressed,
    })
}

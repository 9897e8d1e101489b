//! Detection state that survives a restart: a versioned, serialisable copy of every rule's
//! per-entity state (windows, daily baselines, distinct values, suppression).
//!
//! Pure: the engine hands out a [`Snapshot`] and takes one back; the pipeline writes and reads
//! the file. State is restored only for a rule whose definition is unchanged (same id and the
//! same fingerprint of its logic, thresholds, conditions and version): a changed rule starts
//! afresh rather than judging with state gathered under other terms.

use super::{Engine, Entity};
use crate::detect::rules::Rule;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The snapshot format version; a file of another version is not restored.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Every rule's per-entity state at one moment of event time.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    version: u32,
    /// The engine's event-time clock (newest event time seen, ms).
    watermark: Option<i64>,
    rules: Vec<RuleSnapshot>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RuleSnapshot {
    id: String,
    fingerprint: String,
    entities: Vec<(String, Entity)>,
}

/// What a restore kept and what it left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Rules whose state was restored.
    pub rules: usize,
    /// Entities restored in all.
    pub entities: usize,
    /// Rules in the snapshot that changed (or are gone) since: their state was dropped.
    pub skipped_rules: Vec<String>,
}

/// A digest of everything that decides how a rule judges events (not its wording).
fn fingerprint(rule: &Rule) -> String {
    let logic = format!(
        "{}|{}|{}|{:?}|{:?}|{:?}",
        rule.id, rule.version, rule.suppress_ms, rule.group_by, rule.conditions, rule.kind
    );
    hex::encode(&Sha256::digest(logic.as_bytes())[..12])
}

impl Engine {
    /// A copy of every rule's per-entity state.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: SNAPSHOT_VERSION,
            watermark: self.watermark,
            rules: self
                .rules
                .iter()
                .map(|state| RuleSnapshot {
                    id: state.rule.id.clone(),
                    fingerprint: fingerprint(&state.rule),
                    entities: state
                        .store
                        .entities
                        .iter()
                        .map(|(key, entity)| (key.to_string(), Entity::clone(entity)))
                        .collect(),
                })
                .collect(),
        }
    }

    /// Take back state from a snapshot, for the rules that did not change; within each rule's
    /// entity cap.
    pub fn restore(&mut self, snapshot: Snapshot) -> RestoreReport {
        let mut report = RestoreReport::default();
        if snapshot.version != SNAPSHOT_VERSION {
            report.skipped_rules = snapshot.rules.into_iter().map(|rule| rule.id).collect();
            return report;
        }
        let cap = self.settings.max_entities_per_rule;
        for saved in snapshot.rules {
            let target = self.rules.iter_mut().find(|state| {
                state.rule.id == saved.id && fingerprint(&state.rule) == saved.fingerprint
            });
            let Some(target) = target else {
                report.skipped_rules.push(saved.id);
                continue;
            };
            // Newest first, so a cap keeps the entities most likely to matter.
            let mut entities = saved.entities;
            entities.sort_by_key(|(_, entity)| std::cmp::Reverse(entity.newest));
            for (key, entity) in entities.into_iter().take(cap) {
                target
                    .store
                    .entities
                    .insert(key.into_boxed_str(), Box::new(entity));
                report.entities += 1;
            }
            report.rules += 1;
        }
        self.watermark = match (self.watermark, snapshot.watermark) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        report
    }
}

//! Detection: rules over event time, per-entity windows and baselines, de-duplicated alerts.
//!
//! Pure: no I/O, no wall clock, no tokio. Rule files arrive as text (the pipeline reads them),
//! records arrive one at a time in stream order, alerts come out. Every clock in here is the
//! records' own `timestamp`, so replaying last month yields the alerts living through it did.
//!
//! - [`RuleSet::parse`] turns TOML rule files into validated rules (see `rules/` in the
//!   repository for the format, documented on [`RuleSet`]).
//! - [`Entitlements::parse`] reads who is cleared for which data classification.
//! - [`Calendars::parse`] reads business hours per department (time zone, working days,
//!   hours, holidays), for `business_hours` conditions; [`Engine::with_calendars`] takes them.
//! - [`Engine`] keeps bounded per-rule, per-entity state (sliding windows, daily baselines,
//!   suppression) and raises [`Alert`](crate::record::Alert)s.
//!
//! Rule kinds:
//!
//! - `match`: every event that satisfies the conditions is an alert.
//! - `threshold`: the count (or sum of a field) of matching events per entity within a sliding
//!   window exceeds a bound; several tiers (window, bound, severity) per rule.
//! - `baseline`: an entity's daily count or sum (UTC days) exceeds `ratio` × its own average
//!   over its active days in the trailing `history_days` (and, with `min_zscore`, its robust
//!   z-score over the same days reaches that bound).
//! - `distinct`: the distinct values of a field per entity within a sliding window exceed a
//!   bound; at most `max_values` values are remembered per entity, as hashes.

mod alert;
mod baseline;
mod calendar;
mod dedup;
mod distinct;
mod engine;
mod entitlements;
mod evaluate;
mod event_ref;
mod first_seen;
mod rules;
mod window;

/// The hash map of detection state: foldhash (seeded per process) instead of SipHash, whose
/// hashing was a visible share of detection in the end-to-end profile; hashbrown's for
/// `entry_ref`, which finds or inserts an entity by `&str` in one lookup.
type StateMap<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests;

pub use calendar::Calendars;
pub use engine::{Engine, EngineStats, RestoreReport, RuleStats, Snapshot, SNAPSHOT_VERSION};
pub use entitlements::Entitlements;
pub use rules::{sigma, RuleInfo, RuleSet};

use crate::record::AgentInfo;

/// One rule file's name and text, as read by the caller.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// File name (for error messages).
    pub name: String,
    /// TOML text.
    pub text: String,
}

/// A rule file that could not be loaded: names the file, the rule and the field.
///
/// The message reads like ``rule `mcp-volume`, field `threshold.tiers[0].window`: invalid
/// duration ... (line 14, column 10)``, leaving out the parts that are not known (a syntax
/// error may come before the id; semantic checks have no position).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RuleError {
    /// The file.
    pub file: String,
    /// What is wrong, naming the rule id and field.
    pub message: String,
}

/// Settings of the engine that are not rules.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Identity stamped on alerts.
    pub agent: AgentInfo,
    /// The deployment tag stamped on alerts.
    pub deployment: String,
    /// How far behind the newest event time an event may arrive and still count in windows.
    pub allowed_lateness: std::time::Duration,
    /// Most entities tracked per rule.
    pub max_entities_per_rule: usize,
    /// Most evidence event ids per alert.
    pub evidence_sample: usize,
}

//! The engine: per-rule, per-entity state over event time, and the alerts it raises.
//!
//! Memory is bounded per rule by `max_entities_per_rule`. Entities idle for longer than the
//! rule's horizon (its longest window, baseline history or suppression, whichever is longest)
//! are evicted in sweeps: every [`SWEEP_EVERY`] records, and when a rule at its cap meets a new
//! entity (at most once per `cap` records, so a sweep's cost is amortised). A new entity that
//! still finds the rule at its cap is refused and counted (see [`Engine::stats`]).

use super::alert::{self, num, Finding};
use super::baseline::{DailyTotals, DAY_MS};
use super::dedup::{self, Suppression, Verdict};
use super::distinct::{self, DistinctValues};
use super::evaluate;
use super::first_seen::{self, SeenValues};
use super::rules::{Kind, Lookups, Rule};
use super::window::Window;
use super::{Calendars, EngineSettings, Entitlements, RuleSet};
use crate::record::{Alert, AuditRecord, Evidence, FieldValue};
use hashbrown::hash_map::EntryRef;
use std::borrow::Cow;

#[path = "snapshot.rs"]
mod snapshot;

pub use snapshot::{RestoreReport, Snapshot, SNAPSHOT_VERSION};

/// Id of the alert raised when a rule reaches its entity cap.
pub const ENTITY_CAP_RULE: &str = "aiwarden-entity-cap";

/// The one alert a rule raises when its entity cap first refuses a new entity: detection for
/// new users or sessions of that rule is blind until entities go idle, which may be a flood of
/// random ids meant to do exactly that.
fn cap_alert(rule: &Rule, record: &AuditRecord, settings: &EngineSettings) -> Alert {
    let cap = settings.max_entities_per_rule;
    let key = format!("{}|{}|{}", ENTITY_CAP_RULE, rule.id, record.event_id);
    Alert {
        alert_id: uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()).to_string(),
        timestamp: record.timestamp,
        rule_id: ENTITY_CAP_RULE.to_string(),
        rule_version: 1,
        severity: crate::record::Severity::Medium,
        title: "Detection state cap reached".to_string(),
        details: format!(
            "rule {} tracks max_entities_per_rule = {cap} entities and refused a new one: it cannot \
             judge new {} values until others go idle (a flood of random ids would do this); \
             see aiwarden_refused_entities, raise detect.max_entities_per_rule if the load is genuine",
            rule.id, rule.group_by_name
        ),
        entity: crate::record::AlertEntity {
            entity_type: "rule".to_string(),
            entity_key: rule.id.clone(),
            user_id: Some(record.user_id.clone()),
            session_id: Some(record.session_id.clone()),
            department: record.department.clone(),
            application_id: Some(record.application_id.clone()).filter(|a| !a.is_empty()),
            real_user_id: None,
        },
        observed: cap as f64,
        baseline: None,
        threshold: cap as f64,
        window: None,
        evidence: Evidence {
            event_ids: vec![record.event_id.clone()],
            event_count: 1,
        },
        tags: vec!["aiwarden".to_string(), "self-monitoring".to_string()],
        source: "aiwarden".to_string(),
        deployment: settings.deployment.clone(),
        agent: settings.agent.clone(),
        suppressed_count: 0,
        auto_blocked: false,
    }
}

/// Records between periodic eviction sweeps.
pub const SWEEP_EVERY: u64 = 16_384;

/// The detection engine.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<RuleState>,
    entitlements: Entitlements,
    calendars: Calendars,
    settings: EngineSettings,
    lateness_ms: i64,
    /// Newest event time seen (ms): the engine's notion of "now".
    watermark: Option<i64>,
    late: u64,
    since_sweep: u64,
}

/// Counters for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleStats {
    /// The rule.
    pub rule_id: String,
    /// Entities currently tracked.
    pub entities: usize,
    /// New entities refused because the rule was at `max_entities_per_rule` (since start).
    pub refused_entities: u64,
}

/// A snapshot of the engine's state sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStats {
    /// Per rule, in rule order.
    pub rules: Vec<RuleStats>,
}

/// One rule and its entities.
#[derive(Debug)]
struct RuleState {
    rule: Rule,
    store: Store,
}

/// The entities of one rule, bounded.
#[derive(Debug)]
struct Store {
    /// How long an idle entity's state still matters (ms).
    horizon_ms: i64,
    /// Boxed: a table sized for growth holds pointers, not 120-byte entities (2 MB less at
    /// 2,000 users over the default pack).
    entities: super::StateMap<Box<str>, Box<Entity>>,
    refused: u64,
    /// Whether the cap alert was raised for this rule (once per run: the counter tells the rest).
    cap_alerted: bool,
    /// Records since this rule's last sweep, to amortise sweeps at the cap.
    since_sweep: u64,
}

/// One entity of one rule.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Entity {
    /// Newest event time (ms) of the entity, for eviction.
    newest: i64,
    /// Suppression per tier (one slot for rules without tiers).
    dedup: Box<[Option<Suppression>]>,
    state: State,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum State {
    Match,
    Threshold(Window),
    Baseline(DailyTotals),
    Distinct(DistinctValues),
    FirstSeen(SeenValues),
}

/// What every rule evaluation needs besides its own state.
struct Context<'a> {
    settings: &'a EngineSettings,
    lookups: Lookups<'a>,
    watermark: i64,
}

impl Engine {
    /// A new engine. Business hours follow the default calendar (Monday to Friday, 08:00 to
    /// 18:00 UTC) until [`Engine::with_calendars`] gives the departments' own.
    pub fn new(rules: RuleSet, entitlements: Entitlements, settings: EngineSettings) -> Engine {
        let rules = rules
            .into_rules()
            .into_iter()
            .map(|rule| {
                let reach = match &rule.kind {
                    Kind::Match => 0,
                    Kind::Threshold(spec) => spec.longest_window_ms(),
                    Kind::Baseline(spec) => (i64::from(spec.history_days) + 1) * DAY_MS,
                    Kind::Distinct(spec) => spec.window_ms,
                    Kind::FirstSeen(spec) => spec.remember_ms,
                };
                RuleState {
                    store: Store {
                        horizon_ms: reach.max(rule.suppress_ms),
                        entities: super::StateMap::default(),
                        refused: 0,
                        cap_alerted: false,
                        since_sweep: 0,
                    },
                    rule,
                }
            })
            .collect();
        let lateness_ms = i64::try_from(settings.allowed_lateness.as_millis()).unwrap_or(i64::MAX);
        Engine {
            rules,
            entitlements,
            calendars: Calendars::default(),
            settings,
            lateness_ms,
            watermark: None,
            late: 0,
            since_sweep: 0,
        }
    }

    /// The same engine, judging `business_hours` conditions by these calendars.
    pub fn with_calendars(mut self, calendars: Calendars) -> Engine {
        self.calendars = calendars;
        self
    }

    /// Feed one record; alerts it raises are appended to `alerts`.
    pub fn process(&mut self, record: &AuditRecord, alerts: &mut Vec<Alert>) {
        let ts = record.timestamp.timestamp_millis();
        let late = self
            .watermark
            .is_some_and(|w| ts < w.saturating_sub(self.lateness_ms));
        if late {
            self.late += 1;
        } else {
            self.watermark = Some(self.watermark.map_or(ts, |w| w.max(ts)));
        }
        let watermark = self.watermark.unwrap_or(ts);
        self.since_sweep += 1;
        let sweep = self.since_sweep >= SWEEP_EVERY;
        if sweep {
            self.since_sweep = 0;
        }
        let context = Context {
            settings: &self.settings,
            lookups: Lookups {
                entitlements: &self.entitlements,
                calendars: &self.calendars,
            },
            watermark,
        };
        for state in &mut self.rules {
            if sweep {
                state.store.sweep(watermark);
            }
            state.process(record, ts, late, &context, alerts);
            if state.store.refused > 0 && !state.store.cap_alerted {
                state.store.cap_alerted = true;
                alerts.push(cap_alert(&state.rule, record, &self.settings));
            }
        }
    }

    /// Events that arrived too late to count in windows since the last call.
    pub fn take_late_events(&mut self) -> u64 {
        std::mem::take(&mut self.late)
    }

    /// Entities tracked and refused, per rule.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            rules: self
                .rules
                .iter()
                .map(|s| RuleStats {
                    rule_id: s.rule.id.clone(),
                    entities: s.store.entities.len(),
                    refused_entities: s.store.refused,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
impl Engine {
    /// Per rule: id and window entries held over all entities (memory-bound tests).
    pub(crate) fn rules_for_test(&self) -> Vec<(String, usize)> {
        self.rules
            .iter()
            .map(|s| {
                let entries = s
                    .store
                    .entities
                    .values()
                    .map(|e| match &e.state {
                        State::Threshold(window) => window.len(),
                        State::Distinct(values) => values.count(),
                        State::FirstSeen(values) => values.count(),
                        _ => 0,
                    })
                    .sum();
                (s.rule.id.clone(), entries)
            })
            .collect()
    }
}

impl Store {
    /// Drop entities whose newest event is older than the horizon before the watermark.
    fn sweep(&mut self, watermark: i64) {
        let oldest = watermark.saturating_sub(self.horizon_ms);
        self.entities.retain(|_, entity| entity.newest >= oldest);
        self.since_sweep = 0;
    }

    /// The entity's state, created if there is room; `None` when refused at the cap.
    fn entity(
        &mut self,
        rule: &Rule,
        key: &str,
        ts: i64,
        context: &Context<'_>,
    ) -> Option<&mut Entity> {
        let cap = context.settings.max_entities_per_rule;
        // Below the cap (always, except under a flood of new keys) one lookup finds or creates
        // the entity; at the cap a new key first needs room.
        if self.entities.len() >= cap && !self.entities.contains_key(key) {
            if self.since_sweep >= cap as u64 {
                self.sweep(context.watermark);
            }
            if self.entities.len() >= cap {
                self.refused += 1;
                return None;
            }
        }
        let entity = match self.entities.entry_ref(key) {
            EntryRef::Occupied(occupied) => occupied.into_mut(),
            // The key is built from the very `&str` looked up, so it is the equivalent key
            // `insert_with_key` requires.
            EntryRef::Vacant(vacant) => {
                vacant.insert_with_key(key.into(), Box::new(new_entity(rule, ts)))
            }
        };
        Some(&mut **entity)
    }
}

/// A fresh entity for `rule`, first seen at `ts`.
fn new_entity(rule: &Rule, ts: i64) -> Entity {
    let (slots, state) = match &rule.kind {
        Kind::Match => (1, State::Match),
        Kind::Threshold(spec) => (
            spec.tiers.len(),
            State::Threshold(Window::new(spec.tiers.iter().map(|t| t.window_ms), ts)),
        ),
        Kind::Baseline(spec) => (1, State::Baseline(DailyTotals::new(spec.history_days, ts))),
        Kind::Distinct(spec) => (
            1,
            State::Distinct(DistinctValues::new(spec.window_ms, spec.max_values, ts)),
        ),
        Kind::FirstSeen(_) => (1, State::FirstSeen(SeenValues::new(ts))),
    };
    Entity {
        newest: ts,
        dedup: vec![None; slots].into_boxed_slice(),
        state,
    }
}

impl RuleState {
    fn process(
        &mut self,
        record: &AuditRecord,
        ts: i64,
        late: bool,
        context: &Context<'_>,
        alerts: &mut Vec<Alert>,
    ) {
        self.store.since_sweep += 1;
        let rule = &self.rule;
        if !rule
            .conditions
            .iter()
            .all(|c| c.matches(record, context.lookups))
        {
            return;
        }
        let key = entity_key(record, rule);
        match &rule.kind {
            Kind::Match => {
                self.process_match(record, ts, key.as_deref().unwrap_or(""), context, alerts)
            }
            // Late events would rewrite windows and days that were already judged.
            _ if late => {}
            Kind::Threshold(_) | Kind::Baseline(_) | Kind::Distinct(_) | Kind::FirstSeen(_) => {
                // Without the entity field there is nothing to group by.
                if let Some(key) = key {
                    self.process_stateful(record, ts, &key, context, alerts);
                }
            }
        }
    }

    fn process_match(
        &mut self,
        record: &AuditRecord,
        ts: i64,
        key: &str,
        context: &Context<'_>,
        alerts: &mut Vec<Alert>,
    ) {
        let suppress_ms = self.rule.suppress_ms;
        let verdict = match self.store.entity(&self.rule, key, ts, context) {
            Some(entity) => {
                entity.newest = entity.newest.max(ts);
                dedup::check(&mut entity.dedup[0], ts, suppress_ms)
            }
            // Refused at the cap: better an undeduplicated alert than a missed breach.
            None => Verdict::Emit { suppressed: 0 },
        };
        let Verdict::Emit { suppressed } = verdict else {
            return;
        };
        let rule = &self.rule;
        let reasons: Vec<String> = rule
            .conditions
            .iter()
            .map(|c| c.explain(record, context.lookups))
            .collect();
        let details = format!(
            "{} {}: {} (event {})",
            rule.group_by_name,
            display_key(key),
            if reasons.is_empty() {
                "matched".to_string()
            } else {
                reasons.join("; ")
            },
            record.event_id
        );
        let finding = Finding {
            tier: 0,
            severity: rule.severity,
            entity_key: key,
            observed: 1.0,
            baseline: None,
            threshold: 0.0,
            window: None,
            details,
            evidence: Evidence {
                event_ids: single_evidence(record, context),
                event_count: 1,
            },
            suppressed_count: suppressed,
        };
        alerts.push(alert::build(rule, record, context.settings, finding));
    }

    fn process_stateful(
        &mut self,
        record: &AuditRecord,
        ts: i64,
        key: &str,
        context: &Context<'_>,
        alerts: &mut Vec<Alert>,
    ) {
        let input = match &self.rule.kind {
            Kind::Threshold(spec) => spec.aggregate.value(record).map(Input::Amount),
            Kind::Baseline(spec) => spec.aggregate.value(record).map(Input::Amount),
            // Nothing to count in an absent or empty field: no entity is created for it.
            Kind::Distinct(spec) => record
                .get(&spec.field)
                .filter(|v| !matches!(v, FieldValue::Str("") | FieldValue::List([])))
                .map(Input::Values),
            Kind::FirstSeen(spec) => record
                .get(&spec.field)
                .filter(|v| !matches!(v, FieldValue::Str("") | FieldValue::List([])))
                .map(Input::Values),
            Kind::Match => None,
        };
        let Some(input) = input else { return };
        let sample = context.settings.evidence_sample;
        let Some(entity) = self.store.entity(&self.rule, key, ts, context) else {
            return;
        };
        let rule = &self.rule;
        entity.newest = entity.newest.max(ts);
        let finding = match (&rule.kind, &mut entity.state, input) {
            (Kind::Threshold(spec), State::Threshold(window), Input::Amount(value)) => {
                if !window.insert(ts, value, &record.event_id) {
                    return;
                }
                evaluate::threshold(rule, spec, window, &mut entity.dedup, key, ts, sample)
            }
            (Kind::Baseline(spec), State::Baseline(days), Input::Amount(value)) => {
                if !days.add(ts, value, &record.event_id, sample) {
                    return;
                }
                evaluate::baseline(rule, spec, days, &mut entity.dedup, key, ts)
            }
            (Kind::Distinct(spec), State::Distinct(values), Input::Values(value)) => {
                if !values.insert(ts, value, &record.event_id) {
                    return;
                }
                distinct::evaluate(rule, spec, values, &mut entity.dedup, key, ts, sample)
            }
            (Kind::FirstSeen(spec), State::FirstSeen(values), Input::Values(value)) => {
                let new = values.insert(spec, ts, value);
                let event_id = &record.event_id;
                first_seen::evaluate(
                    rule,
                    spec,
                    values,
                    new,
                    &mut entity.dedup,
                    key,
                    ts,
                    event_id,
                )
            }
            _ => None,
        };
        if let Some(finding) = finding {
            alerts.push(alert::build(rule, record, context.settings, finding));
        }
    }
}

/// What one matching event brings to a stateful rule.
enum Input<'r> {
    /// An amount for a window or a day (threshold, baseline).
    Amount(f64),
    /// The values of a field (distinct).
    Values(FieldValue<'r>),
}

/// The group_by value as text, or `None` when the record lacks it.
fn entity_key<'r>(record: &'r AuditRecord, rule: &Rule) -> Option<Cow<'r, str>> {
    match record.get(&rule.group_by)? {
        FieldValue::Str("") => None,
        FieldValue::Str(s) => Some(Cow::Borrowed(s)),
        FieldValue::Num(n) => Some(Cow::Owned(num(n))),
        FieldValue::Bool(b) => Some(Cow::Owned(b.to_string())),
        FieldValue::List([]) => None,
        FieldValue::List(list) => Some(Cow::Owned(list.join(","))),
        FieldValue::Json(value) => Some(Cow::Owned(value.to_string())),
    }
}

pub(crate) fn display_key(key: &str) -> &str {
    if key.is_empty() {
        "(none)"
    } else {
        key
    }
}

fn single_evidence(record: &AuditRecord, context: &Context<'_>) -> Vec<String> {
    if context.settings.evidence_sample == 0 {
        Vec::new()
    } else {
        vec![record.event_id.clone()]
    }
}

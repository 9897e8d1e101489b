//! Turning a rule that fired into a complete, self-explaining [`Alert`].

use super::rules::Rule;
use super::EngineSettings;
use crate::record::{Alert, AlertEntity, AuditRecord, Evidence, Severity};
use uuid::Uuid;

/// Namespace of alert ids: v5 UUIDs over rule, tier, entity and triggering event.
const ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x5d1e_a3c4_9b2f_4e07_8a61_7c0d_2f4b_91e3);

/// What a rule found, before it is dressed as an alert.
#[derive(Debug)]
pub(crate) struct Finding<'a> {
    /// Tier index (0 for rules without tiers).
    pub tier: usize,
    /// Severity of the tier (or rule).
    pub severity: Severity,
    /// The group_by value.
    pub entity_key: &'a str,
    /// The value that crossed.
    pub observed: f64,
    /// The entity's own baseline, for baseline rules.
    pub baseline: Option<f64>,
    /// The bound crossed.
    pub threshold: f64,
    /// The window, as shown (`10m`, `1d`).
    pub window: Option<String>,
    /// Human-readable explanation.
    pub details: String,
    /// The evidence sample.
    pub evidence: Evidence,
    /// Repeats suppressed since the previous alert of this rule, tier and entity.
    pub suppressed_count: u64,
}

/// The deterministic id: the same input replayed yields the same alert id.
pub(crate) fn alert_id(rule_id: &str, tier: usize, entity_key: &str, event_id: &str) -> String {
    // Unit separators keep ("a-b", "c") and ("a", "b-c") apart.
    let name = format!("{rule_id}\u{1f}{tier}\u{1f}{entity_key}\u{1f}{event_id}");
    Uuid::new_v5(&ALERT_NAMESPACE, name.as_bytes()).to_string()
}

/// Dress a finding as an alert triggered by `record`.
pub(crate) fn build(
    rule: &Rule,
    record: &AuditRecord,
    settings: &EngineSettings,
    finding: Finding<'_>,
) -> Alert {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Alert {
        alert_id: alert_id(&rule.id, finding.tier, finding.entity_key, &record.event_id),
        timestamp: record.timestamp,
        rule_id: rule.id.clone(),
        rule_version: rule.version,
        severity: finding.severity,
        title: rule.title.clone(),
        details: finding.details,
        entity: AlertEntity {
            entity_type: rule.group_by_name.clone(),
            entity_key: finding.entity_key.to_string(),
            user_id: non_empty(&record.user_id),
            session_id: non_empty(&record.session_id),
            department: record.department.clone(),
            application_id: non_empty(&record.application_id),
            real_user_id: None,
        },
        observed: finding.observed,
        baseline: finding.baseline,
        threshold: finding.threshold,
        window: finding.window,
        evidence: finding.evidence,
        tags: rule.tags.clone(),
        source: "aiwarden".to_string(),
        deployment: settings.deployment.clone(),
        agent: settings.agent.clone(),
        suppressed_count: finding.suppressed_count,
        auto_blocked: false,
    }
}

/// A number for people: integers without a fraction, others with two decimals.
pub(crate) fn num(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
    }
}

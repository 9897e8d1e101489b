//! The alert record (SPEC §3 "Alert record").

use super::Severity;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// An alert raised by a rule: self-explaining, de-duplicated, observation only.
///
/// `alert_id` is derived from the rule, the entity and the triggering event, so the same input
/// replayed after a crash yields the same id and a SIEM can de-duplicate at-least-once resends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic UUID (v5) of this alert.
    pub alert_id: String,
    /// Event time of the record that triggered the alert.
    pub timestamp: DateTime<Utc>,
    /// The rule's id, e.g. `mcp-volume`.
    pub rule_id: String,
    /// The rule's version, bumped by the analyst when the logic changes.
    pub rule_version: u32,
    /// Severity from the rule (or the tier that fired).
    pub severity: Severity,
    /// Short title from the rule.
    pub title: String,
    /// Human-readable explanation: what was observed against what threshold.
    pub details: String,
    /// Who or what the alert is about.
    #[serde(flatten)]
    pub entity: AlertEntity,
    /// The observed value (count, sum, ratio...).
    pub observed: f64,
    /// The entity's own baseline, for baseline rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The threshold the observed value crossed.
    pub threshold: f64,
    /// The window the value was measured over (e.g. `10m`, `1d`), absent for single-event rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Evidence: a bounded sample of the events behind the alert.
    pub evidence: Evidence,
    /// Tags, including MITRE ATLAS technique ids where one fits.
    pub tags: Vec<String>,
    /// Always `aiwarden`.
    pub source: String,
    /// The configurable deployment tag (default `claude_deployment`).
    pub deployment: String,
    /// The agent that raised the alert.
    pub agent: AgentInfo,
    /// Repeats of this rule and entity suppressed since the previous alert.
    pub suppressed_count: u64,
    /// Always false: aiwarden observes, it does not block.
    pub auto_blocked: bool,
}

/// The entity an alert is about, with whatever context the triggering record had.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AlertEntity {
    /// The field the rule groups by (`user_id`, `session_id`, ...).
    pub entity_type: String,
    /// The value of that field.
    pub entity_key: String,
    /// The user, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The session, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The department, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// The application, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// The real user behind a pseudonymised `user_id`: set only on the way to a sink allowed to
    /// receive real identities (`real_identity = true`), never by detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_user_id: Option<String>,
}

/// A bounded sample of the events behind an alert.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// Ids of (up to a bounded number of) contributing events, oldest first.
    pub event_ids: Vec<String>,
    /// How many events contributed in all (may exceed the sample).
    pub event_count: u64,
}

/// Identity of the agent that produced a record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgentInfo {
    /// Host name.
    pub host: String,
    /// aiwarden version.
    pub version: String,
}

impl AgentInfo {
    /// This agent: the machine's host name (or the configured one) and the crate version.
    pub fn local(host_override: Option<&str>) -> AgentInfo {
        let host = match host_override {
            Some(host) => host.to_string(),
            None => gethostname::gethostname().to_string_lossy().into_owned(),
        };
        AgentInfo {
            host,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

//! Detection: rules over event time, per-entity windows and baselines, de-duplicated alerts.
//!
//! Pure: no I/O, no wall clock, no tokio. Rule files arrive as text (the pipeline reads them),
//! records arrive one at a time in stream order, alerts come out.

use crate::record::{AgentInfo, Alert, AuditRecord};

/// One rule file's name and text, as read by the caller.
#[derive(Debug, Clone)]
pub struct RuleFile {
    /// File name (for error messages).
    pub name: String,
    /// TOML text.
    pub text: String,
}

/// A rule file that could not be loaded: names the file, the rule and the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RuleError {
    /// The file.
    pub file: String,
    /// What is wrong, naming the rule id and field.
    pub message: String,
}

/// Validated, compiled rules.
#[derive(Debug, Default)]
pub struct RuleSet {}

impl RuleSet {
    /// Parse and validate rule files.
    pub fn parse(files: &[RuleFile]) -> Result<RuleSet, RuleError> {
        let _ = files;
        Ok(RuleSet {})
    }

    /// Number of enabled rules.
    pub fn len(&self) -> usize {
        0
    }

    /// Whether no rule is enabled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who is cleared for which classification.
#[derive(Debug, Default, Clone)]
pub struct Entitlements {}

impl Entitlements {
    /// Parse an entitlements file.
    pub fn parse(name: &str, text: &str) -> Result<Entitlements, RuleError> {
        let _ = (name, text);
        Ok(Entitlements {})
    }
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

/// The detection engine.
#[derive(Debug)]
pub struct Engine {}

impl Engine {
    /// A new engine.
    pub fn new(rules: RuleSet, entitlements: Entitlements, settings: EngineSettings) -> Engine {
        let _ = (rules, entitlements, settings);
        Engine {}
    }

    /// Feed one record; alerts it raises are appended to `alerts`.
    pub fn process(&mut self, record: &AuditRecord, alerts: &mut Vec<Alert>) {
        let _ = (record, alerts);
    }

    /// Events that arrived too late to count in windows since the last call.
    pub fn take_late_events(&mut self) -> u64 {
        0
    }
}

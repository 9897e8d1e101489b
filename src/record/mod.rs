//! The wire types: the canonical audit record, the alert, and the small enums they share.
//!
//! This module is a leaf: it depends on nothing else in the crate, and every other module speaks
//! these types. Field names that appear on the wire are `const`s in [`fields`], so a sink, a rule
//! and a SIEM connector cannot spell them differently.

mod alert;
pub mod atlas;
mod audit;
pub mod catalogue;
pub mod fields;
mod json;
mod vocabulary;

pub use alert::{AgentInfo, Alert, AlertEntity, Evidence};
pub use audit::{AuditRecord, Field, FieldValue, RecordView};
pub(crate) use json::Object;
pub use vocabulary::{Classification, EventType, UnknownClassification};

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Severity of an alert, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look in a weekly review.
    Low,
    /// Worth a look today.
    Medium,
    /// Worth a look now.
    High,
    /// An attack in progress or a policy breach with data at stake.
    Critical,
}

impl Severity {
    /// All severities, least severe first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The lowercase name used on the wire and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `low`, `medium`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}` (expected low, medium, high or critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            other => Err(UnknownSeverity(other.to_string())),
        }
    }
}

/// One item flowing from detection to the sinks: a normalised audit event or an alert.
///
/// Both are reference-counted because one item fans out to every sink without being copied.
#[derive(Debug, Clone)]
pub enum Output {
    /// A normalised audit record.
    Event(std::sync::Arc<AuditRecord>),
    /// An alert raised by a rule.
    Alert(std::sync::Arc<Alert>),
}

impl Output {
    /// The severity used for per-sink filtering; events have none and always pass.
    pub fn severity(&self) -> Option<Severity> {
        match self {
            Output::Event(_) => None,
            Output::Alert(alert) => Some(alert.severity),
        }
    }
}

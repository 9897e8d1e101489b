//! The record's closed vocabularies: what kind of event it is, and how sensitive its data is.

use std::fmt;
use std::str::FromStr;

/// What kind of event a record describes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A model call.
    ApiRequest,
    /// A session began.
    SessionStart,
    /// A session ended.
    SessionEnd,
    /// A call to an MCP tool or server.
    McpCall,
    /// A failed authentication towards an MCP-connected system.
    McpAuthFailure,
    /// Approvals, exceptions, permission changes.
    PolicyEvent,
    /// A security event raised upstream.
    SecurityEvent,
    /// Something that happened on the AI platform itself (Anthropic Activity Feed).
    PlatformActivity,
    /// Aggregated usage or cost of a period (Anthropic usage and cost reports).
    Usage,
    /// Any other type, kept as written.
    Other(String),
}

impl EventType {
    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            EventType::ApiRequest => "api_request",
            EventType::SessionStart => "session_start",
            EventType::SessionEnd => "session_end",
            EventType::McpCall => "mcp_call",
            EventType::McpAuthFailure => "mcp_auth_failure",
            EventType::PolicyEvent => "policy_event",
            EventType::SecurityEvent => "security_event",
            EventType::PlatformActivity => "platform_activity",
            EventType::Usage => "usage",
            EventType::Other(name) => name,
        }
    }

    /// Parse a wire name; unknown names become [`EventType::Other`], never an error.
    pub fn parse(name: &str) -> EventType {
        match name {
            "api_request" => EventType::ApiRequest,
            "session_start" => EventType::SessionStart,
            "session_end" => EventType::SessionEnd,
            "mcp_call" => EventType::McpCall,
            "mcp_auth_failure" => EventType::McpAuthFailure,
            "policy_event" => EventType::PolicyEvent,
            "security_event" => EventType::SecurityEvent,
            "platform_activity" => EventType::PlatformActivity,
            "usage" => EventType::Usage,
            other => EventType::Other(other.to_string()),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Data classification, ordered: `public` < `internal` < `confidential` = `sensitive` < `restricted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Classification {
    /// Public data.
    Public,
    /// Internal data.
    Internal,
    /// Confidential data (same level as sensitive).
    Confidential,
    /// Sensitive data (same level as confidential).
    Sensitive,
    /// Restricted data: only entitled users may submit it.
    Restricted,
}

impl Classification {
    /// Every classification, lowest level first.
    pub const ALL: [Classification; 5] = [
        Classification::Public,
        Classification::Internal,
        Classification::Confidential,
        Classification::Sensitive,
        Classification::Restricted,
    ];

    /// The level used for "at or above" comparisons.
    pub fn level(self) -> u8 {
        match self {
            Classification::Public => 0,
            Classification::Internal => 1,
            Classification::Confidential | Classification::Sensitive => 2,
            Classification::Restricted => 3,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Confidential => "confidential",
            Classification::Sensitive => "sensitive",
            Classification::Restricted => "restricted",
        }
    }
}

/// A classification name that is not one of the known levels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown data classification `{0}` (expected public, internal, confidential, sensitive or restricted)"
)]
pub struct UnknownClassification(pub String);

impl FromStr for Classification {
    type Err = UnknownClassification;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Compared in place: rules parse the record's classification for every event they test
        // (`at_least`), and a lower-cased copy per call was an allocation each time. The record's
        // own classification is always spelt canonically: that needs neither trim nor case fold.
        if let Some(level) = Classification::ALL.into_iter().find(|l| l.as_str() == s) {
            return Ok(level);
        }
        let name = s.trim();
        Classification::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownClassification(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifications_parse_trimmed_and_in_any_case_and_nothing_else() {
        for (text, level) in [
            ("public", Classification::Public),
            (" Internal\t", Classification::Internal),
            ("CONFIDENTIAL", Classification::Confidential),
            ("sensitive", Classification::Sensitive),
            ("\nRestricted ", Classification::Restricted),
        ] {
            assert_eq!(text.parse::<Classification>(), Ok(level), "{text:?}");
        }
        for text in ["", "secret", "publicx", "restrict", "in ternal"] {
            assert_eq!(
                text.parse::<Classification>(),
                Err(UnknownClassification(text.to_string())),
                "{text:?}"
            );
        }
    }
}

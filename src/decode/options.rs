//! Per-source decoding settings: `[sources.<name>.decode]`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// Settings the format-specific decoders need beyond the bytes of a line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeOptions {
    /// Claude Code: the attribute (on the record or its resource) naming the user when neither
    /// `user.email` nor `user.account_uuid` is set, e.g. set through
    /// `OTEL_RESOURCE_ATTRIBUTES=enduser.id=jdoe@acme.example`; `user.id` is the last resort.
    #[serde(default = "default_identity_attribute")]
    pub identity_attribute: String,
    /// Claude Code: the attribute (on the record or its resource) naming the department.
    #[serde(default = "default_department_attribute")]
    pub department_attribute: String,
    /// User → department, for users whose telemetry carries no department attribute.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub departments: BTreeMap<String, String>,
    /// Bedrock: a user's calls further apart than this start a new derived session.
    #[serde(
        default = "default_session_idle_gap",
        deserialize_with = "duration_from_text",
        serialize_with = "duration_to_text"
    )]
    pub session_idle_gap: Duration,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            identity_attribute: default_identity_attribute(),
            department_attribute: default_department_attribute(),
            departments: BTreeMap::new(),
            session_idle_gap: default_session_idle_gap(),
        }
    }
}

impl DecodeOptions {
    /// Whether every setting is at its default (then nothing is printed for it).
    pub fn is_default(&self) -> bool {
        *self == DecodeOptions::default()
    }

    /// Check what serde cannot: the key and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.session_idle_gap.is_zero() {
            return Err((
                "decode.session_idle_gap".into(),
                "must be greater than zero".into(),
            ));
        }
        if self.identity_attribute.trim().is_empty() {
            return Err((
                "decode.identity_attribute".into(),
                "must not be empty".into(),
            ));
        }
        if self.department_attribute.trim().is_empty() {
            return Err((
                "decode.department_attribute".into(),
                "must not be empty".into(),
            ));
        }
        Ok(())
    }
}

fn default_identity_attribute() -> String {
    "enduser.id".to_string()
}
fn default_department_attribute() -> String {
    "department".to_string()
}
fn default_session_idle_gap() -> Duration {
    Duration::from_secs(30 * 60)
}

fn duration_from_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

fn duration_to_text<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*value).to_string())
}

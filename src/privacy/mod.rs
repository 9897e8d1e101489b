//! Privacy on the way out (SPEC §6): keyed pseudonyms for identities, masked IP addresses, and
//! redacted content, applied per sink to what leaves the host.
//!
//! Detection never sees this module's output: the processor and the engine work on the real
//! record, and each sink applies [`Transform::apply`] with its own [`SinkPrivacy`] just before it
//! encodes an item. What a sink receives under the default configuration: identities as they are
//! unless `[privacy] pseudonymise = true`, IP addresses cut to /24 (IPv4) or /48 (IPv6), and no
//! raw prompt or response text; with `forward_content = true` the text is sent redacted.
//!
//! - [`pseudonym`]: HMAC-SHA-256 pseudonyms with key ids, keys from a private file.
//! - [`ipmask`]: prefix masking or removal of addresses.
//! - [`redact`]: typed placeholders for secrets and personal data in text.

pub mod ipmask;
pub mod pseudonym;
pub mod redact;
mod transform;

pub use ipmask::{IpMaskMode, IpMasking};
pub use pseudonym::{KeyError, PseudonymKey, PseudonymKeys, PSEUDONYM_PREFIX};
pub use redact::{ExtraPattern, PatternError, Redaction, Redactor};
pub use transform::{SinkPrivacy, Transform, REAL_USER_ID};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Privacy settings: `[privacy]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Replace `user_id` (and `pseudonymise_fields`) with a keyed pseudonym
    /// (`psn:<key id>:<hex>`) in everything sent to sinks. Detection still sees real identities.
    #[serde(default)]
    pub pseudonymise: bool,
    /// The pseudonym key file: one `<key id> <64 hex digits>` per line, the last one active;
    /// readable only by the service (mode 0600). Create or rotate with `aiwarden keygen pseudonym`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Further fields to pseudonymise, as names or dotted paths into the record, e.g.
    /// `["user.email", "resource_owner"]`.
    #[serde(default)]
    pub pseudonymise_fields: Vec<String>,
    /// `prefix` (default: keep `ipv4_prefix`/`ipv6_prefix` bits), `remove`, or `off`.
    #[serde(default)]
    pub ip_masking: IpMaskMode,
    /// Bits of an IPv4 address kept by `prefix` masking (default 24).
    #[serde(default = "default_ipv4_prefix")]
    pub ipv4_prefix: u8,
    /// Bits of an IPv6 address kept by `prefix` masking (default 48).
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// Extra redaction patterns for forwarded content, e.g.
    /// `[{ name = "employee_id", pattern = "EMP-\\d{6}" }]`.
    #[serde(default)]
    pub redact_patterns: Vec<ExtraPattern>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            pseudonymise: false,
            key_file: None,
            pseudonymise_fields: Vec::new(),
            ip_masking: IpMaskMode::default(),
            ipv4_prefix: default_ipv4_prefix(),
            ipv6_prefix: default_ipv6_prefix(),
            redact_patterns: Vec::new(),
        }
    }
}

fn default_ipv4_prefix() -> u8 {
    24
}
fn default_ipv6_prefix() -> u8 {
    48
}

impl PrivacyConfig {
    /// Check what serde cannot: the key (relative to `[privacy]`) and the reason. Does not read
    /// the key file; [`Transform::from_config`] does.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.pseudonymise && self.key_file.is_none() {
            return Err((
                "key_file".into(),
                "pseudonymise = true needs a key file (create one with `aiwarden keygen pseudonym`)"
                    .into(),
            ));
        }
        if self.ipv4_prefix > 32 {
            return Err(("ipv4_prefix".into(), "must be 0 to 32".into()));
        }
        if self.ipv6_prefix > 128 {
            return Err(("ipv6_prefix".into(), "must be 0 to 128".into()));
        }
        if let Some(field) = self
            .pseudonymise_fields
            .iter()
            .find(|f| f.trim().is_empty())
        {
            return Err((
                "pseudonymise_fields".into(),
                format!("`{field}` is not a field name"),
            ));
        }
        Redactor::new(&self.redact_patterns)
            .map_err(|error| ("redact_patterns".into(), error.to_string()))?;
        Ok(())
    }

    /// The IP masking these settings ask for.
    pub fn ip_masking(&self) -> IpMasking {
        IpMasking {
            mode: self.ip_masking,
            ipv4_prefix: self.ipv4_prefix,
            ipv6_prefix: self.ipv6_prefix,
        }
    }
}

/// Why the privacy transform cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The pseudonym keys cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An extra redaction pattern does not compile.
    #[error(transparent)]
    Pattern(#[from] PatternError),
    /// Pseudonymisation is on without a key file.
    #[error("[privacy] pseudonymise = true needs key_file")]
    NoKeyFile,
}

#[cfg(test)]
mod tests;

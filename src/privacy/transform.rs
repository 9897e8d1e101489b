//! The per-sink privacy transform: what a sink's copy of an event or alert looks like.

use super::redact::ExtraPattern;
use super::{IpMasking, PrivacyConfig, PrivacyError, PseudonymKeys, Redactor};
use crate::record::{fields, Alert, AuditRecord, Output};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// Field (on events) holding the real user for sinks allowed to receive it.
pub const REAL_USER_ID: &str = "real_user_id";

/// What one sink may receive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkPrivacy {
    /// Raw prompt/response text may be sent (redacted); otherwise it is removed.
    pub forward_content: bool,
    /// The real user travels next to the pseudonym (`real_user_id`), for a SIEM whose readers
    /// may see identities.
    pub real_identity: bool,
}

/// Pseudonymisation, IP masking and redaction, built once from `[privacy]` and shared by sinks.
#[derive(Debug)]
pub struct Transform {
    keys: Option<PseudonymKeys>,
    extra_fields: Vec<String>,
    ip_masking: IpMasking,
    /// Operator patterns, checked at load; the redactor is compiled from them at the first
    /// record a sink forwards content for: most deployments forward none, and its automata
    /// are 1.6 MB of heap (README "Benchmarks").
    redact_patterns: Vec<ExtraPattern>,
    redactor: OnceLock<Option<Redactor>>,
}

impl Transform {
    /// Load the keys and compile the patterns `[privacy]` names.
    pub fn from_config(config: &PrivacyConfig) -> Result<Transform, PrivacyError> {
        let keys = if config.pseudonymise {
            let path = config.key_file.as_deref().ok_or(PrivacyError::NoKeyFile)?;
            Some(PseudonymKeys::load(path)?)
        } else {
            None
        };
        Ok(Transform {
            keys,
            extra_fields: config.pseudonymise_fields.clone(),
            ip_masking: config.ip_masking(),
            // Compiled once here only to refuse a bad pattern at start.
            redact_patterns: {
                Redactor::new(&config.redact_patterns)?;
                config.redact_patterns.clone()
            },
            redactor: OnceLock::new(),
        })
    }

    /// A transform from parts (tests, tools).
    pub fn new(
        keys: Option<PseudonymKeys>,
        extra_fields: Vec<String>,
        ip_masking: IpMasking,
        redactor: Redactor,
    ) -> Transform {
        Transform {
            keys,
            extra_fields,
            ip_masking,
            redact_patterns: Vec::new(),
            redactor: OnceLock::from(Some(redactor)),
        }
    }

    /// The content redactor; `None` only if patterns accepted at load no longer compile,
    /// which cannot happen (compilation is deterministic).
    pub fn redactor(&self) -> Option<&Redactor> {
        self.redactor
            .get_or_init(|| Redactor::new(&self.redact_patterns).ok())
            .as_ref()
    }

    /// The pseudonym of `value` under the active key, when pseudonymisation is on.
    pub fn pseudonym(&self, value: &str) -> Option<String> {
        self.keys.as_ref().map(|keys| keys.pseudonym(value))
    }

    /// The item as `policy` allows it to leave the host; borrowed when nothing changes.
    pub fn apply<'a>(&self, item: &'a Output, policy: &SinkPrivacy) -> Cow<'a, Output> {
        match item {
            Output::Event(record) => match self.event(record, policy) {
                Some(changed) => Cow::Owned(Output::Event(Arc::new(changed))),
                None => Cow::Borrowed(item),
            },
            Output::Alert(alert) => match self.alert(alert, policy) {
                Some(changed) => Cow::Owned(Output::Alert(Arc::new(changed))),
                None => Cow::Borrowed(item),
            },
        }
    }

    fn event(&self, record: &AuditRecord, policy: &SinkPrivacy) -> Option<AuditRecord> {
        // Asked without allocating: the detect stage has usually masked the address already.
        let ip_changes = record
            .ip_address
            .as_deref()
            .is_some_and(|ip| self.ip_masking.changes(ip));
        let has_content = record.prompt_raw.is_some() || record.response_raw.is_some();
        if self.keys.is_none() && !ip_changes && !(policy.forward_content && has_content) {
            return None;
        }
        let mut out = if policy.forward_content {
            record.clone()
        } else {
            // RecordView would leave the text out anyway; a copy that holds none cannot leak it.
            record.clone_without_content()
        };
        self.ip_masking.mask_in_place(&mut out.ip_address);
        if policy.forward_content {
            let redactor = self.redactor();
            for text in [&mut out.prompt_raw, &mut out.response_raw] {
                if let Some(original) = text.as_deref() {
                    match redactor.map(|r| r.redact(original)) {
                        Some(Cow::Owned(redacted)) => *text = Some(redacted),
                        Some(Cow::Borrowed(_)) => {}
                        // Never unredacted text: without a redactor the text stays behind.
                        None => *text = None,
                    }
                }
            }
        }
        if let Some(keys) = &self.keys {
            let real = std::mem::take(&mut out.user_id);
            out.user_id = keys.pseudonym(&real);
            for field in &self.extra_fields {
                match field.as_str() {
                    fields::USER_ID => {}
                    fields::SESSION_ID => out.session_id = keys.pseudonym(&out.session_id),
                    path => pseudonymise_path(&mut out.extra, path, keys),
                }
            }
            if policy.real_identity {
                out.extra.insert(REAL_USER_ID.into(), Value::String(real));
            }
        }
        Some(out)
    }

    fn alert(&self, alert: &Alert, policy: &SinkPrivacy) -> Option<Alert> {
        let keys = self.keys.as_ref()?;
        let mut out = alert.clone();
        let entity = &mut out.entity;
        let mut replaced: Vec<(String, String)> = Vec::new();
        if let Some(real) = entity.user_id.take() {
            let pseudonym = keys.pseudonym(&real);
            entity.user_id = Some(pseudonym.clone());
            if policy.real_identity {
                entity.real_user_id = Some(real.clone());
            }
            replaced.push((real, pseudonym));
        }
        let key_is_identity = entity.entity_type == fields::USER_ID
            || self.extra_fields.contains(&entity.entity_type);
        if key_is_identity {
            let real = std::mem::take(&mut entity.entity_key);
            let pseudonym = keys.pseudonym(&real);
            entity.entity_key = pseudonym.clone();
            replaced.push((real, pseudonym));
        }
        if self.extra_fields.iter().any(|f| f == fields::SESSION_ID) {
            if let Some(session) = entity.session_id.take() {
                let pseudonym = keys.pseudonym(&session);
                entity.session_id = Some(pseudonym.clone());
                replaced.push((session, pseudonym));
            }
        }
        // The details explain the alert in words and name the entity; they must not undo the
        // pseudonym.
        for (real, pseudonym) in &replaced {
            out.details = replace_token(&out.details, real, pseudonym);
            out.title = replace_token(&out.title, real, pseudonym);
        }
        Some(out)
    }
}

/// Pseudonymise the value at `path`: a flat key first (OpenTelemetry-style `user.email`), else
/// the dotted path into nested objects. Strings, numbers and lists of them are replaced.
fn pseudonymise_path(extra: &mut Map<String, Value>, path: &str, keys: &PseudonymKeys) {
    if let Some(value) = extra.get_mut(path) {
        pseudonymise_value(value, keys);
        return;
    }
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return;
    };
    let mut current = match extra.get_mut(first) {
        Some(value) => value,
        None => return,
    };
    for part in parts {
        current = match current.as_object_mut().and_then(|map| map.get_mut(part)) {
            Some(value) => value,
            None => return,
        };
    }
    pseudonymise_value(current, keys);
}

fn pseudonymise_value(value: &mut Value, keys: &PseudonymKeys) {
    match value {
        Value::String(text) => *text = keys.pseudonym(text),
        Value::Number(number) => *value = Value::String(keys.pseudonym(&number.to_string())),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| pseudonymise_value(item, keys)),
        _ => {}
    }
}

/// `text` with whole-token occurrences of `needle` replaced: `bob` in `bob's session` is replaced,
/// the `bob` in `bobby` is not.
fn replace_token(text: &str, needle: &str, replacement: &str) -> String {
    if needle.is_empty() || !text.contains(needle) {
        return text.to_string();
    }
    let is_word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut previous: Option<char> = None;
    while let Some(found) = rest.find(needle) {
        let before = rest[..found].chars().next_back().or(previous);
        let after = rest[found + needle.len()..].chars().next();
        // A trailing `.` ends a sentence, it does not continue the identity.
        let after_is_word = after.is_some_and(|c| {
            is_word(c)
                && !(c == '.'
                    && rest[found + needle.len() + 1..]
                        .chars()
                        .next()
                        .is_none_or(char::is_whitespace))
        });
        out.push_str(&rest[..found]);
        if before.is_some_and(is_word) || after_is_word {
            out.push_str(needle);
        } else {
            out.push_str(replacement);
        }
        previous = needle.chars().next_back();
        rest = &rest[found + needle.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::replace_token;

    #[test]
    fn replace_token_replaces_whole_identities_only() {
        assert_eq!(
            replace_token("user_id bob: 5 calls; bobby too. bob.", "bob", "P"),
            "user_id P: 5 calls; bobby too. P."
        );
        assert_eq!(
            replace_token("a@x.example:a@x.example", "a@x.example", "P"),
            "P:P"
        );
    }
}

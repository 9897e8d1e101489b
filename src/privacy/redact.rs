//! Content redaction: secrets and personal data in prompt/response text replaced by typed
//! placeholders (`[REDACTED:aws_access_key]`) before text leaves the host.
//!
//! Each detector is a regular expression, optionally narrowed by a checksum or a structural check
//! (Luhn for card numbers, ISO 7064 mod 97 for IBANs, a JSON header for JWTs, a digit count for
//! phone numbers), so look-alikes such as order numbers, dates and version strings stay. Where
//! matches overlap, the detector listed first wins (secrets before personal data, the longest
//! match for one detector), so a JWT is not also half an e-mail address.

use base64::Engine as _;
use regex::Regex;
use std::borrow::Cow;

/// A configured extra pattern whose regular expression does not compile.
#[derive(Debug, thiserror::Error)]
#[error("redaction pattern `{name}`: {reason}")]
pub struct PatternError {
    /// The pattern's name.
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

/// An operator-defined pattern: matches become `[REDACTED:<name>]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraPattern {
    /// The placeholder's type, e.g. `employee_id` (letters, digits, `_`).
    pub name: String,
    /// A regular expression (Rust `regex` syntax), e.g. `EMP-\d{6}`.
    pub pattern: String,
}

/// One redaction made: its type and byte range in the original text (never the text itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// The placeholder type, e.g. `payment_card`.
    pub kind: String,
    /// Start byte in the original text.
    pub start: usize,
    /// End byte (exclusive) in the original text.
    pub end: usize,
}

type Check = fn(&str) -> bool;

struct Detector {
    kind: String,
    regex: Regex,
    /// The capture group that is replaced (0: the whole match), e.g. only the password of a URL.
    group: usize,
    check: Option<Check>,
}

/// The built-in detectors plus the configured ones, compiled once.
pub struct Redactor {
    detectors: Vec<Detector>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self.detectors.iter().map(|d| d.kind.as_str()).collect();
        f.debug_struct("Redactor").field("kinds", &kinds).finish()
    }
}

/// The placeholder types of the built-in detectors, in priority order.
pub const BUILT_IN_KINDS: &[&str] = &[
    "private_key",
    "jwt",
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "slack_token",
    "slack_webhook",
    "anthropic_api_key",
    "openai_api_key",
    "google_api_key",
    "password_in_url",
    "email",
    "iban",
    "payment_card",
    "phone_number",
];

/// (kind, pattern, replaced group, check) of every built-in detector, in priority order.
const BUILT_IN: &[(&str, &str, usize, Option<Check>)] = &[
    (
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\z)",
        0,
        None,
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}",
        0,
        Some(jwt_header_is_json),
    ),
    (
        "aws_access_key",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AIDA|AROA)[0-9A-Z]{16}\b",
        0,
        None,
    ),
    (
        "aws_secret_key",
        r#"(?i)\baws_?secret_?(?:access_?)?key\b["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})\b"#,
        1,
        None,
    ),
    (
        "github_token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{60,255})\b",
        0,
        None,
    ),
    (
        "slack_token",
        r"\bxox[abposr]-(?:[0-9A-Za-z]+-){1,4}[0-9A-Za-z]{8,}\b",
        0,
        None,
    ),
    (
        "slack_webhook",
        r"https://hooks\.slack\.com/(?:services|workflows)/T[0-9A-Z]{6,}/[A-Z0-9]{6,}/[A-Za-z0-9]{16,}",
        0,
        None,
    ),
    (
        "anthropic_api_key",
        r"\bsk-ant-[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{32,}",
        0,
        None,
    ),
    (
        "openai_api_key",
        r"\bsk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})\b",
        0,
        None,
    ),
    (
        "google_api_key",
        r"\bAIza[0-9A-Za-z_-]{35}(?:\b|$)",
        0,
        None,
    ),
    (
        "password_in_url",
        r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://[^\s:/@]+:([^\s/@]+)@[A-Za-z0-9.-]",
        1,
        None,
    ),
    (
        "email",
        // Not followed by `:path`: `git@github.com:acme/app.git` is an scp-style remote.
        r"\b([A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b)(?:$|[^:@\w.-]|\.(?:$|\W)|:(?:$|[^~/\w]))",
        1,
        None,
    ),
    (
        "iban",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",
        0,
        Some(iban_is_valid),
    ),
    (
        "payment_card",
        r"\b\d(?:[ -]?\d){12,18}\b",
        0,
        Some(card_is_valid),
    ),
    (
        "phone_number",
        r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\b\d{2,4}(?:[ .-]\d{2,4}){1,4}\b|\+\d{8,15}\b",
        0,
        Some(phone_is_plausible),
    ),
];

impl Redactor {
    /// The built-in detectors followed by `extra` (which rank after them).
    pub fn new(extra: &[ExtraPattern]) -> Result<Redactor, PatternError> {
        let mut detectors = Vec::with_capacity(BUILT_IN.len() + extra.len());
        for (kind, pattern, group, check) in BUILT_IN {
            let regex = Regex::new(pattern).map_err(|error| PatternError {
                name: (*kind).to_string(),
                reason: error.to_string(),
            })?;
            detectors.push(Detector {
                kind: (*kind).to_string(),
                regex,
                group: *group,
                check: *check,
            });
        }
        for pattern in extra {
            if pattern.name.is_empty()
                || !pattern
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(PatternError {
                    name: pattern.name.clone(),
                    reason: "a name is letters, digits and `_`".into(),
                });
            }
            let regex = Regex::new(&pattern.pattern).map_err(|error| PatternError {
                name: pattern.name.clone(),
                reason: error.to_string(),
            })?;
            detectors.push(Detector {
                kind: pattern.name.clone(),
                regex,
                group: 0,
                check: None,
            });
        }
        Ok(Redactor { detectors })
    }

    /// Every redaction `redact` would make in `text`, in text order, without overlaps.
    pub fn find(&self, text: &str) -> Vec<Redaction> {
        let mut chosen: Vec<Redaction> = Vec::new();
        for detector in &self.detectors {
            for captures in detector.regex.captures_iter(text) {
                let Some(span) = captures.get(detector.group) else {
                    continue;
                };
                if span.is_empty() {
                    continue;
                }
                let (start, mut end) = (span.start(), span.end());
                if let Some(check) = detector.check {
                    match checked_end(text, start, end, check) {
                        Some(shorter) => end = shorter,
                        None => continue,
                    }
                }
                let overlaps = chosen
                    .iter()
                    .any(|taken| start < taken.end && taken.start < end);
                if !overlaps {
                    chosen.push(Redaction {
                        kind: detector.kind.clone(),
                        start,
                        end,
                    });
                }
            }
        }
        chosen.sort_by_key(|redaction| redaction.start);
        chosen
    }

    /// `text` with every secret and personal datum replaced by `[REDACTED:<type>]`.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let found = self.find(text);
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for redaction in &found {
            out.push_str(&text[at..redaction.start]);
            out.push_str("[REDACTED:");
            out.push_str(&redaction.kind);
            out.push(']');
            at = redaction.end;
        }
        out.push_str(&text[at..]);
        Cow::Owned(out)
    }
}

/// The end of the longest prefix of `text[start..end]`, cut at a separator, that passes `check`.
///
/// A greedy pattern may swallow a following group (`DE89 3704 0044 0532 0130 00 1234`), which
/// the checksum then refuses; the prefix without it is still the number.
fn checked_end(text: &str, start: usize, end: usize, check: Check) -> Option<usize> {
    if check(&text[start..end]) {
        return Some(end);
    }
    let candidate = &text[start..end];
    candidate
        .char_indices()
        .rev()
        .filter(|(_, c)| matches!(c, ' ' | '-' | '.'))
        .map(|(offset, _)| start + offset)
        .find(|&cut| check(&text[start..cut]))
}

/// Luhn checksum over the digits of `candidate`, plus a known issuer prefix and length, so
/// that arbitrary 16-digit ids that happen to pass Luhn (one in ten) mostly do not count.
pub fn card_is_valid(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) || !luhn(&digits) {
        return false;
    }
    let prefix = |n: usize| digits.iter().take(n).fold(0u32, |acc, d| acc * 10 + d);
    let length = digits.len();
    match digits[0] {
        4 => matches!(length, 13 | 16 | 19),
        5 => (51..=55).contains(&prefix(2)) && length == 16,
        2 => (2221..=2720).contains(&prefix(4)) && length == 16,
        3 => {
            matches!(prefix(2), 34 | 37) && length == 15
                || (3528..=3589).contains(&prefix(4)) && (16..=19).contains(&length)
                || matches!(prefix(2), 36 | 38 | 39) && (14..=19).contains(&length)
        }
        6 => {
            (prefix(4) == 6011 || prefix(2) == 65 || (644..=649).contains(&prefix(3)))
                && (16..=19).contains(&length)
                || prefix(2) == 62 && (16..=19).contains(&length)
        }
        _ => false,
    }
}

/// The Luhn (mod 10) check of a digit sequence.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// ISO 13616 IBAN: country code, check digits, 11 to 30 alphanumerics, mod 97 equal to 1.
pub fn iban_is_valid(candidate: &str) -> bool {
    let compact: Vec<char> = candidate.chars().filter(|c| !c.is_whitespace()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let rearranged = compact[4..].iter().chain(compact[..4].iter());
    let mut remainder: u64 = 0;
    for c in rearranged {
        let value = match c.to_digit(36) {
            Some(value) => u64::from(value),
            None => return false,
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// A phone number has 8 to 15 digits (E.164) and is not a date, a version or an address.
fn phone_is_plausible(candidate: &str) -> bool {
    let digits = candidate.chars().filter(char::is_ascii_digit).count();
    if !(8..=15).contains(&digits) {
        return false;
    }
    let international = candidate.starts_with('+');
    let has_area_code = candidate.contains('(');
    let groups: Vec<&str> = candidate
        .split(|c: char| !c.is_ascii_digit())
        .filter(|group| !group.is_empty())
        .collect();
    // Dots throughout without a `+` look like versions and IP addresses; dashes in a
    // 4-2-2 shape are dates.
    if !international && candidate.contains('.') && !candidate.contains(' ') {
        return false;
    }
    if groups.len() == 3 && groups[0].len() == 4 && groups[1].len() == 2 && groups[2].len() == 2 {
        return false;
    }
    // Without a country code or area code, require the common 3-3-4 national shape.
    international
        || has_area_code
        || groups.len() == 3 && groups[0].len() == 3 && groups[1].len() == 3 && groups[2].len() == 4
}

/// A JWT's first segment decodes to a JSON object with `alg`.
fn jwt_header_is_json(candidate: &str) -> bool {
    let Some(header) = candidate.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| value.get("alg").cloned())
        .is_some()
}

//! The canonical record written as JSON straight into a byte buffer, the way the sinks' hot path
//! needs it.
//!
//! The bytes are exactly what serialising [`RecordView`] through `serde_json` gives (same keys,
//! order, escaping and number forms; `tests/it/json_writer.rs` holds them equal on the benchmark
//! data set and on hostile strings), written without serde's per-field state machine and with
//! a string escaper that copies clean runs whole: the serde path was ~10 % of the agent's cycles
//! in the end-to-end profile, most of it in string escaping.

use super::alert::Alert;
use super::audit::{AuditRecord, RecordView};
use super::fields;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

impl RecordView<'_> {
    /// Append the record as one JSON object, byte for byte what its `Serialize` writes.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write_record(self, true, out);
    }

    /// [`RecordView::write_json`] without `ip_address` (ECS carries it in `source.ip`).
    pub fn write_json_without_ip_address(&self, out: &mut Vec<u8>) {
        write_record(self, false, out);
    }
}

impl Alert {
    /// Append the alert as one JSON object, byte for byte what its `Serialize` writes: serde's
    /// `flatten` of the entity sends every alert through a map serializer, ~14,000 instructions
    /// an alert (one record in eleven on the benchmark), ~3 % of the agent's total.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let mut object = Object::open(out);
        object.str("alert_id", &self.alert_id);
        object.serde("timestamp", &self.timestamp);
        object.str("rule_id", &self.rule_id);
        object.u64("rule_version", u64::from(self.rule_version));
        object.str("severity", self.severity.as_str());
        object.str("title", &self.title);
        object.str("details", &self.details);
        let entity = &self.entity;
        object.str("entity_type", &entity.entity_type);
        object.str("entity_key", &entity.entity_key);
        object.opt_str("user_id", entity.user_id.as_deref());
        object.opt_str("session_id", entity.session_id.as_deref());
        object.opt_str("department", entity.department.as_deref());
        object.opt_str("application_id", entity.application_id.as_deref());
        object.opt_str("real_user_id", entity.real_user_id.as_deref());
        object.serde("observed", &self.observed);
        if let Some(baseline) = self.baseline {
            object.serde("baseline", &baseline);
        }
        object.serde("threshold", &self.threshold);
        object.opt_str("window", self.window.as_deref());
        object.key("evidence");
        let mut evidence = Object::open(object.out);
        evidence.array("event_ids", &self.evidence.event_ids);
        evidence.u64("event_count", self.evidence.event_count);
        evidence.close();
        object.array("tags", &self.tags);
        object.str("source", &self.source);
        object.str("deployment", &self.deployment);
        object.key("agent");
        let mut agent = Object::open(object.out);
        agent.str("host", &self.agent.host);
        agent.str("version", &self.agent.version);
        agent.close();
        object.u64("suppressed_count", self.suppressed_count);
        object.key("auto_blocked");
        object
            .out
            .extend_from_slice(if self.auto_blocked { b"true" } else { b"false" });
        object.close();
    }
}

fn write_record(view: &RecordView<'_>, with_ip_address: bool, out: &mut Vec<u8>) {
    let r: &AuditRecord = view.record;
    let mut object = Object::open(out);
    object.str(fields::EVENT_ID, &r.event_id);
    object.key(fields::TIMESTAMP);
    write_timestamp(object.out, &r.timestamp);
    object.str(fields::EVENT_TYPE, r.event_type.as_str());
    object.str(fields::USER_ID, &r.user_id);
    object.str(fields::SESSION_ID, &r.session_id);
    object.str(fields::APPLICATION_ID, &r.application_id);
    object.opt_str(fields::DEPARTMENT, r.department.as_deref());
    object.str(fields::MODEL, &r.model);
    object.opt_str(fields::PROMPT_HASH, r.prompt_hash.as_deref());
    object.opt_str(fields::RESPONSE_HASH, r.response_hash.as_deref());
    object.opt_u64(fields::PROMPT_TOKENS, r.prompt_tokens);
    object.opt_u64(fields::COMPLETION_TOKENS, r.completion_tokens);
    object.opt_u64(fields::LATENCY_MS, r.latency_ms);
    object.opt_str(
        fields::DATA_CLASSIFICATION,
        r.data_classification.map(|c| c.as_str()),
    );
    object.list(fields::MCP_INTEGRATIONS, &r.mcp_integrations);
    object.opt_u64(fields::MCP_CALLS, r.mcp_calls);
    object.list(fields::POLICY_FLAGS, &r.policy_flags);
    object.list(fields::SECURITY_FLAGS, &r.security_flags);
    if with_ip_address {
        object.opt_str(fields::IP_ADDRESS, r.ip_address.as_deref());
    }
    object.opt_str(fields::STATUS, r.status.as_deref());
    object.opt_str(fields::ERROR_TYPE, r.error_type.as_deref());
    object.opt_str(fields::STOP_REASON, r.stop_reason.as_deref());
    if view.include_content {
        object.opt_str(fields::PROMPT_RAW, r.prompt_raw.as_deref());
        object.opt_str(fields::RESPONSE_RAW, r.response_raw.as_deref());
    }
    for (key, value) in &r.extra {
        object.escaped_key(key);
        // A `Value` always serialises (its keys are strings); the rare extra field is not
        // worth a writer of its own.
        let _ = serde_json::to_writer(&mut *object.out, value);
    }
    object.close();
}

/// A JSON object being written: commas and the closing brace.
pub(crate) struct Object<'o> {
    /// The buffer written to.
    pub out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Object<'o> {
    /// Write `{`.
    pub fn open(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, first: true }
    }

    /// Write the separator and `"key":` for a name from the code; the caller writes the value.
    /// Such names are plain identifiers, so they are copied without the escaper's scan (a
    /// record has ~20 of them; `tests/it/json_writer.rs` holds the bytes equal to serde's).
    pub fn key(&mut self, key: &'static str) {
        debug_assert!(!key.bytes().any(needs_escape), "{key:?} needs escaping");
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.reserve(key.len() + 3);
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// [`Object::key`] for a name from the input, escaped.
    pub fn escaped_key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// A string member.
    pub fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// A string member, left out when `None`.
    pub fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// A number member, left out when `None`.
    pub fn opt_u64(&mut self, key: &'static str, value: Option<u64>) {
        if let Some(value) = value {
            self.u64(key, value);
        }
    }

    /// An array of strings, left out when empty.
    pub fn list(&mut self, key: &'static str, values: &[String]) {
        if !values.is_empty() {
            self.array(key, values);
        }
    }

    /// An array of strings, `[]` when empty.
    pub fn array(&mut self, key: &'static str, values: &[String]) {
        self.key(key);
        self.out.push(b'[');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            write_str(self.out, value);
        }
        self.out.push(b']');
    }

    /// An unsigned number member.
    pub fn u64(&mut self, key: &'static str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A member whose value goes through `serde_json` (floats, chrono times: their exact
    /// forms are serde's to decide, and they are few per record).
    pub fn serde(&mut self, key: &'static str, value: &impl serde::Serialize) {
        self.key(key);
        // Floats and timestamps always serialise (a non-finite float is `null`).
        let _ = serde_json::to_writer(&mut *self.out, value);
    }

    /// Write `}`.
    pub fn close(self) {
        self.out.push(b'}');
    }
}

/// Append `value` as a JSON string, escaped as `serde_json` escapes it: `"` and `\`, the short
/// forms `\b \f \n \r \t`, and `\u00XX` (lower-case hex) for the other control characters.
fn write_str(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean_from = 0;
    while let Some(at) = next_escape(bytes, clean_from) {
        out.extend_from_slice(&bytes[clean_from..at]);
        let Some(&byte) = bytes.get(at) else { break };
        clean_from = at + 1;
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(control >> 4)]);
                out.push(HEX[usize::from(control & 0xf)]);
            }
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// Whether `byte` must be escaped in a JSON string.
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The position of the first byte at or after `from` that needs escaping. Most strings have
/// none: they are stepped over eight bytes at a time, and the last few bytes are read as one
/// padded word rather than one by one (short strings are most of a record's).
#[inline]
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(word) = bytes.get(at..at + 8) {
        let mask = escape_mask(u64::from_le_bytes(word.try_into().unwrap_or([0; 8])));
        if mask != 0 {
            return Some(at + (mask.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = bytes.get(at..).filter(|tail| !tail.is_empty())?;
    // Padding with a byte that needs no escape keeps the mask's lowest bit within the tail.
    let mut word = [b' '; 8];
    word[..tail.len()].copy_from_slice(tail);
    let mask = escape_mask(u64::from_le_bytes(word));
    (mask != 0).then(|| at + (mask.trailing_zeros() / 8) as usize)
}

/// A mask with the high bit set in (at least) the lowest byte of `word` (little-endian) that
/// needs escaping, and zero when none does. SWAR "has less than" and "has byte" tests: a borrow
/// can only flag bytes *above* a byte that truly matches, so the lowest flagged byte is exact,
/// for any byte values (a byte of 0x80 or more never matches and never borrows).
#[inline]
fn escape_mask(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    let has = |byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGH
    };
    below_space | has(b'"') | has(b'\\')
}

/// Append the timestamp as the record's `Serialize` writes it: RFC 3339, milliseconds, `Z`.
fn write_timestamp(out: &mut Vec<u8>, timestamp: &DateTime<Utc>) {
    let year = timestamp.year();
    if !(0..=9999).contains(&year) {
        // chrono writes such years with a sign and more digits; leave them to it.
        write_str(out, &timestamp.to_rfc3339_opts(SecondsFormat::Millis, true));
        return;
    }
    let two = |out: &mut Vec<u8>, n: u32| {
        out.push(b'0' + (n / 10 % 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    };
    // The range check above makes the year fit four digits.
    let year = year as u32;
    out.push(b'"');
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, timestamp.month());
    out.push(b'-');
    two(out, timestamp.day());
    out.push(b'T');
    two(out, timestamp.hour());
    out.push(b':');
    two(out, timestamp.minute());
    out.push(b':');
    // A leap second is carried in the nanoseconds (>= 1e9); chrono prints it as second 60.
    let nanos = timestamp.nanosecond();
    let (second, nanos) = if nanos >= 1_000_000_000 {
        (timestamp.second() + 1, nanos - 1_000_000_000)
    } else {
        (timestamp.second(), nanos)
    };
    two(out, second);
    out.push(b'.');
    let millis = nanos / 1_000_000;
    out.push(b'0' + (millis / 100) as u8);
    two(out, millis % 100);
    out.extend_from_slice(b"Z\"");
}

//! ArcSight Common Event Format payloads (PROTOCOLS.md §4, "CEF"); pure functions.
//!
//! `CEF:0|aiwarden|aiwarden|<version>|<signature>|<name>|<severity>|<extension>`, following the
//! "Micro Focus Security ArcSight Common Event Format, Implementing ArcSight CEF" guide (v25):
//! header fields escape `\` and `|`; extension values escape `\`, `=` and line breaks; field
//! lengths as its extension dictionary gives them.
//!
//! Alerts: signature = rule id, name = title, severity low 3, medium 5, high 8, critical 10.
//! Events: signature and name = the event type, severity 1 (informational, the bottom of
//! ArcSight's "Low" band: an event is a record of use, not a finding); raw prompt and response
//! text never goes into CEF.

use crate::record::{atlas, fields, Alert, AuditRecord, Output, Severity};

/// CEF name (header) limit, in characters.
const NAME_MAX: usize = 512;
/// CEF signature id (header) limit, in characters.
const SIGNATURE_MAX: usize = 1023;
/// `externalId` limit.
const EXTERNAL_ID_MAX: usize = 40;
/// `msg`, `suser`, `cat`, `dhost` limit.
const STRING_MAX: usize = 1023;
/// `csN` limit.
const CUSTOM_STRING_MAX: usize = 4000;
/// CEF severity of events.
pub const EVENT_SEVERITY: u8 = 1;

/// CEF severity (0–10) of an alert.
pub fn severity(severity: Severity) -> u8 {
    match severity {
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

/// Append a header field: at most `max` characters, `\` and `|` escaped; line breaks and other
/// control characters (which the header cannot carry) become spaces.
pub fn write_header_field(out: &mut String, value: &str, max: usize) {
    for c in value.chars().take(max) {
        match c {
            '\\' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Append an extension value: at most `max` characters, `\`, `=`, `\n` and `\r` escaped.
pub fn write_extension_value(out: &mut String, value: &str, max: usize) {
    for c in value.chars().take(max) {
        match c {
            '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// The extension: `key=value` pairs separated by spaces, in insertion order.
#[derive(Default)]
struct Extension(String);

impl Extension {
    fn text(&mut self, key: &str, value: Option<&str>, max: usize) {
        let Some(value) = value.filter(|value| !value.is_empty()) else {
            return;
        };
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(key);
        self.0.push('=');
        write_extension_value(&mut self.0, value, max);
    }

    fn labelled(&mut self, key: &str, label: &str, value: Option<&str>, max: usize) {
        if value.is_some_and(|value| !value.is_empty()) {
            self.text(&format!("{key}Label"), Some(label), max);
            self.text(key, value, max);
        }
    }

    fn long(&mut self, key: &str, label: &str, value: f64) {
        // `as` saturates at the i64 bounds and maps NaN to 0: always a valid long.
        let value = (value.round() as i64).to_string();
        self.labelled(key, label, Some(&value), CUSTOM_STRING_MAX);
    }

    /// `src` for an IPv4 address, `c6a2` (source IPv6) for an IPv6 one, nothing otherwise.
    fn source_address(&mut self, address: Option<&str>) {
        match address.and_then(|text| text.parse::<std::net::IpAddr>().ok()) {
            Some(std::net::IpAddr::V4(ip)) => self.text("src", Some(&ip.to_string()), 15),
            Some(std::net::IpAddr::V6(ip)) => self.text("c6a2", Some(&ip.to_string()), 45),
            None => {}
        }
    }
}

fn header(out: &mut String, signature: &str, name: &str, severity: u8) {
    out.push_str("CEF:0|aiwarden|aiwarden|");
    write_header_field(out, env!("CARGO_PKG_VERSION"), 31);
    out.push('|');
    write_header_field(out, signature, SIGNATURE_MAX);
    out.push('|');
    write_header_field(out, name, NAME_MAX);
    out.push('|');
    out.push_str(&severity.to_string());
    out.push('|');
}

fn alert_extension(alert: &Alert) -> Extension {
    let entity = &alert.entity;
    let mut ext = Extension::default();
    ext.text(
        "rt",
        Some(&alert.timestamp.timestamp_millis().to_string()),
        20,
    );
    ext.text("externalId", Some(&alert.alert_id), EXTERNAL_ID_MAX);
    ext.text("cat", Some(&alert.tags.join(",")), STRING_MAX);
    ext.text("suser", entity.user_id.as_deref(), STRING_MAX);
    if entity.entity_type == fields::IP_ADDRESS {
        ext.source_address(Some(&entity.entity_key));
    }
    ext.text("dhost", entity.application_id.as_deref(), STRING_MAX);
    ext.text("msg", Some(&alert.details), STRING_MAX);
    ext.labelled(
        "cs1",
        "sessionId",
        entity.session_id.as_deref(),
        CUSTOM_STRING_MAX,
    );
    ext.labelled(
        "cs2",
        "department",
        entity.department.as_deref(),
        CUSTOM_STRING_MAX,
    );
    let techniques = atlas::technique_ids(&alert.tags).join(",");
    ext.labelled(
        "cs3",
        "atlasTechnique",
        Some(&techniques),
        CUSTOM_STRING_MAX,
    );
    ext.long("cn1", "observed", alert.observed);
    ext.long("cn2", "threshold", alert.threshold);
    ext
}

fn event_extension(record: &AuditRecord) -> Extension {
    let mut ext = Extension::default();
    ext.text(
        "rt",
        Some(&record.timestamp.timestamp_millis().to_string()),
        20,
    );
    ext.text("externalId", Some(&record.event_id), EXTERNAL_ID_MAX);
    ext.text("suser", Some(&record.user_id), STRING_MAX);
    ext.source_address(record.ip_address.as_deref());
    ext.text("dhost", Some(&record.application_id), STRING_MAX);
    ext.labelled(
        "cs1",
        "sessionId",
        Some(&record.session_id),
        CUSTOM_STRING_MAX,
    );
    ext.labelled(
        "cs2",
        "department",
        record.department.as_deref(),
        CUSTOM_STRING_MAX,
    );
    ext
}

/// The CEF line of one record.
pub fn line(item: &Output) -> String {
    let mut out = String::with_capacity(512);
    let extension = match item {
        Output::Alert(alert) => {
            header(
                &mut out,
                &alert.rule_id,
                &alert.title,
                severity(alert.severity),
            );
            alert_extension(alert)
        }
        Output::Event(record) => {
            let event_type = record.event_type.as_str();
            header(&mut out, event_type, event_type, EVENT_SEVERITY);
            event_extension(record)
        }
    };
    out.push_str(&extension.0);
    out
}

/// Append the CEF line of one record.
pub fn write(item: &Output, out: &mut Vec<u8>) {
    out.extend_from_slice(line(item).as_bytes());
}

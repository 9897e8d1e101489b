//! Records to RFC 5424 messages (PROTOCOLS.md §4), and the transport framings; pure functions.
//!
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`, where MSG is an optional UTF-8
//! byte order mark followed by the record as JSON or as CEF ([`super::cef`]).

use super::cef;
use super::config::{Facility, PayloadFormat};
use crate::evidence::encoded::EncodedShape;
use crate::record::{Output, RecordView, Severity};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use std::io::Write;

/// The UTF-8 byte order mark that starts a UTF-8 MSG (RFC 5424 §6.4).
pub const BOM: &[u8] = b"\xEF\xBB\xBF";
/// MSGID of alerts.
pub const MSGID_ALERT: &str = "alert";
/// MSGID of events.
pub const MSGID_EVENT: &str = "event";
/// Syslog severity of events: informational.
pub const EVENT_SEVERITY: u8 = 6;

/// RFC 5424 §6 length limits of the header fields.
const HOSTNAME_MAX: usize = 255;
const APP_NAME_MAX: usize = 48;
const PROCID_MAX: usize = 128;
const MSGID_MAX: usize = 32;
/// RFC 5424 §6.3.2/§6.3.3: SD-NAME is at most 32 characters.
const SD_NAME_MAX: usize = 32;

/// What every message of a sink shares; header fields are made valid once, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSettings {
    facility: Facility,
    hostname: String,
    app_name: String,
    procid: String,
    sd_id: String,
    bom: bool,
    format: PayloadFormat,
}

impl MessageSettings {
    /// Settings with each header field reduced to what RFC 5424 allows.
    pub fn new(
        facility: Facility,
        hostname: &str,
        app_name: &str,
        procid: &str,
        enterprise_number: u32,
        bom: bool,
        format: PayloadFormat,
    ) -> Self {
        MessageSettings {
            facility,
            hostname: header_field(hostname, HOSTNAME_MAX),
            app_name: header_field(app_name, APP_NAME_MAX),
            procid: header_field(procid, PROCID_MAX),
            sd_id: sd_name(&format!("aiwarden@{enterprise_number}")),
            bom,
            format,
        }
    }

    /// The HOSTNAME written (also CEF's host).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// How the evidence chain finds the JSON in these messages and writes checkpoint messages
    /// with the same header; `None` for CEF, whose payload has no place for a stamp.
    pub fn evidence_shape(&self) -> Option<EncodedShape> {
        match self.format {
            PayloadFormat::Json => Some(EncodedShape::SyslogJson {
                pri: pri(self.facility, EVENT_SEVERITY),
                hostname: self.hostname.clone(),
                app_name: self.app_name.clone(),
                procid: self.procid.clone(),
                sd_id: self.sd_id.clone(),
                bom: self.bom,
            }),
            PayloadFormat::Cef => None,
        }
    }
}

/// Syslog severity of an alert: critical 2, high 3, medium 4, low 5.
pub fn alert_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// PRI = facility × 8 + severity.
pub fn pri(facility: Facility, severity: u8) -> u8 {
    facility.code() * 8 + severity
}

/// RFC 3339 in UTC with at most 6 fraction digits (none, 3 or 6, whichever is exact).
pub fn timestamp(time: DateTime<Utc>) -> String {
    time.trunc_subsecs(6)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A header field: printable US-ASCII only (anything else becomes `_`), at most `max`
/// characters, `-` (NILVALUE) when empty.
pub fn header_field(value: &str, max: usize) -> String {
    let field: String = value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if field.is_empty() {
        "-".to_string()
    } else {
        field
    }
}

/// An SD-ID or PARAM-NAME: printable US-ASCII except `=`, space, `]` and `"`, at most 32.
pub fn sd_name(name: &str) -> String {
    let valid = |c: &char| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"');
    let name: String = name.chars().filter(valid).take(SD_NAME_MAX).collect();
    if name.is_empty() {
        "_".to_string()
    } else {
        name
    }
}

/// Append a PARAM-VALUE with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
pub fn write_param_value(out: &mut Vec<u8>, value: &str) {
    for byte in value.bytes() {
        if matches!(byte, b'"' | b'\\' | b']') {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// Append one SD-ELEMENT; parameters with no value are left out.
pub fn write_sd_element(out: &mut Vec<u8>, sd_id: &str, params: &[(&str, Option<&str>)]) {
    out.push(b'[');
    out.extend_from_slice(sd_id.as_bytes());
    for (name, value) in params {
        let Some(value) = value else { continue };
        out.push(b' ');
        out.extend_from_slice(sd_name(name).as_bytes());
        out.extend_from_slice(b"=\"");
        write_param_value(out, value);
        out.push(b'"');
    }
    out.push(b']');
}

/// Append one record as a complete SYSLOG-MSG (no transport framing).
pub fn encode(
    item: &Output,
    settings: &MessageSettings,
    forward_content: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let (severity, time, msgid) = match item {
        Output::Alert(alert) => (alert_severity(alert.severity), alert.timestamp, MSGID_ALERT),
        Output::Event(record) => (EVENT_SEVERITY, record.timestamp, MSGID_EVENT),
    };
    write!(
        out,
        "<{}>1 {} {} {} {} {} ",
        pri(settings.facility, severity),
        timestamp(time),
        settings.hostname,
        settings.app_name,
        settings.procid,
        header_field(msgid, MSGID_MAX),
    )
    .map_err(|error| error.to_string())?;
    match item {
        Output::Alert(alert) => write_sd_element(
            out,
            &settings.sd_id,
            &[
                ("rule_id", Some(&alert.rule_id)),
                ("severity", Some(alert.severity.as_str())),
                ("user_id", alert.entity.user_id.as_deref()),
                ("session_id", alert.entity.session_id.as_deref()),
            ],
        ),
        Output::Event(record) => write_sd_element(
            out,
            &settings.sd_id,
            &[
                ("event_type", Some(record.event_type.as_str())),
                ("user_id", Some(&record.user_id)),
                ("session_id", Some(&record.session_id)),
            ],
        ),
    }
    out.push(b' ');
    if settings.bom {
        out.extend_from_slice(BOM);
    }
    match (settings.format, item) {
        (PayloadFormat::Json, Output::Alert(alert)) => {
            serde_json::to_writer(&mut *out, alert.as_ref()).map_err(|error| error.to_string())
        }
        (PayloadFormat::Json, Output::Event(record)) => serde_json::to_writer(
            &mut *out,
            &RecordView {
                record,
                include_content: forward_content,
            },
        )
        .map_err(|error| error.to_string()),
        (PayloadFormat::Cef, item) => {
            cef::write(item, out);
            Ok(())
        }
    }
}

/// Append `message` framed by octet counting: `MSG-LEN SP SYSLOG-MSG` (RFC 6587 §3.4.1).
pub fn frame_octet_counted(message: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
}

/// Append `message` followed by `\n` (RFC 6587 §3.4.2), a newline inside it written as `\n`.
pub fn frame_newline(message: &[u8], out: &mut Vec<u8>) {
    for &byte in message {
        if byte == b'\n' {
            out.extend_from_slice(b"\\n");
        } else {
            out.push(byte);
        }
    }
    out.push(b'\n');
}

/// Cut the message that starts at `start` in `buffer` (and runs to its end) to the longest
/// prefix of at most `max` bytes that ends on a UTF-8 boundary; `true` when it had to be cut.
/// The bytes before `start` (other records of the group) are left alone.
pub fn truncate_utf8(buffer: &mut Vec<u8>, start: usize, max: usize) -> bool {
    if buffer.len().saturating_sub(start) <= max {
        return false;
    }
    let mut end = start + max;
    // Back off over continuation bytes (10xxxxxx) to the start of the cut character.
    while end > start && (buffer[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    buffer.truncate(end);
    true
}

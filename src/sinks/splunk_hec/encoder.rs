//! Records to HEC event envelopes (PROTOCOLS.md §1): one JSON object per record, concatenated.

use crate::record::{Object, Output, RecordView};

/// Sourcetype of alerts.
pub const SOURCETYPE_ALERT: &str = "aiwarden:alert";
/// Sourcetype of normalised audit events.
pub const SOURCETYPE_EVENT: &str = "aiwarden:event";

/// The envelope metadata shared by every record of a sink.
#[derive(Debug, Clone)]
pub struct EnvelopeSettings {
    /// `host`.
    pub host: String,
    /// `source`.
    pub source: String,
    /// `index`, when configured.
    pub index: Option<String>,
    /// The deployment tag, sent as an indexed field.
    pub deployment: String,
}

/// Append one record's envelope to `out`.
pub fn encode(
    item: &Output,
    settings: &EnvelopeSettings,
    forward_content: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    // Written by hand, the same bytes serde wrote from the envelope structs before
    // (`tests/it/json_writer.rs` holds them equal).
    let mut envelope = Object::open(out);
    let timestamp = match item {
        Output::Alert(alert) => alert.timestamp,
        Output::Event(record) => record.timestamp,
    };
    // Epoch seconds with a millisecond fraction, as HEC's `time` wants it.
    envelope.serde("time", &(timestamp.timestamp_millis() as f64 / 1000.0));
    envelope.str("host", &settings.host);
    envelope.str("source", &settings.source);
    match item {
        Output::Alert(alert) => {
            envelope.str("sourcetype", SOURCETYPE_ALERT);
            envelope.opt_str("index", settings.index.as_deref());
            envelope.key("event");
            alert.write_json(envelope.out);
            // Indexed fields: flat, string values only (nested objects are HEC error 15), in
            // name order.
            envelope.key("fields");
            let mut fields = Object::open(envelope.out);
            fields.str("deployment", &settings.deployment);
            fields.str("rule_id", &alert.rule_id);
            fields.opt_str("session_id", alert.entity.session_id.as_deref());
            fields.str("severity", alert.severity.as_str());
            fields.opt_str("user_id", alert.entity.user_id.as_deref());
            fields.close();
        }
        Output::Event(record) => {
            envelope.str("sourcetype", SOURCETYPE_EVENT);
            envelope.opt_str("index", settings.index.as_deref());
            envelope.key("event");
            RecordView {
                record,
                include_content: forward_content,
            }
            .write_json(envelope.out);
            envelope.key("fields");
            let mut fields = Object::open(envelope.out);
            fields.str("deployment", &settings.deployment);
            fields.str("event_type", record.event_type.as_str());
            fields.str("session_id", &record.session_id);
            fields.str("user_id", &record.user_id);
            fields.close();
        }
    }
    envelope.close();
    out.push(b'\n');
    Ok(())
}

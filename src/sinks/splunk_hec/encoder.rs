//! Records to HEC event envelopes (PROTOCOLS.md §1): one JSON object per record, concatenated.

use crate::record::{Object, Output, RecordView};
use serde::Serialize;

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

/// A HEC alert envelope (events are written by hand in the same shape); no other top-level
/// keys are ever sent.
#[derive(Serialize)]
struct Envelope<'a, E: Serialize> {
    /// Epoch seconds with a millisecond fraction, as HEC's `time` wants it.
    time: f64,
    host: &'a str,
    source: &'a str,
    sourcetype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    event: E,
    /// Indexed fields: flat, string values only (nested objects are HEC error 15).
    fields: IndexedFields<'a>,
}

/// An alert's indexed fields, in name order (as a sorted map would write them), borrowed from
/// the alert: no map is built per record.
#[derive(Serialize)]
struct IndexedFields<'a> {
    deployment: &'a str,
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    severity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

/// Append one record's envelope to `out`.
pub fn encode(
    item: &Output,
    settings: &EnvelopeSettings,
    forward_content: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match item {
        Output::Alert(alert) => serde_json::to_writer(
            &mut *out,
            &Envelope {
                time: alert.timestamp.timestamp_millis() as f64 / 1000.0,
                host: &settings.host,
                source: &settings.source,
                sourcetype: SOURCETYPE_ALERT,
                index: settings.index.as_deref(),
                event: alert.as_ref(),
                fields: IndexedFields {
                    deployment: &settings.deployment,
                    rule_id: &alert.rule_id,
                    session_id: alert.entity.session_id.as_deref(),
                    severity: alert.severity.as_str(),
                    user_id: alert.entity.user_id.as_deref(),
                },
            },
        )
        .map_err(|error| error.to_string())?,
        Output::Event(record) => {
            // Events are nearly every envelope: written by hand, the same bytes as the
            // `Envelope` (a test holds them equal).
            let mut envelope = Object::open(out);
            envelope.key("time");
            let time = record.timestamp.timestamp_millis() as f64 / 1000.0;
            serde_json::to_writer(&mut *envelope.out, &time).map_err(|e| e.to_string())?;
            envelope.str("host", &settings.host);
            envelope.str("source", &settings.source);
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
            envelope.close();
        }
    }
    out.push(b'\n');
    Ok(())
}

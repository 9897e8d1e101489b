//! Records to HEC event envelopes (PROTOCOLS.md §1): one JSON object per record, concatenated.

use crate::record::{Output, RecordView};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

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

/// A HEC envelope; no other top-level keys are ever sent.
#[derive(Serialize)]
struct Envelope<'a, E: Serialize> {
    time: Value,
    host: &'a str,
    source: &'a str,
    sourcetype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    event: E,
    /// Indexed fields: flat, string values only (nested objects are HEC error 15).
    fields: BTreeMap<&'static str, &'a str>,
}

/// Epoch seconds with a millisecond fraction, as HEC's `time` wants it.
fn epoch_seconds(millis: i64) -> Value {
    serde_json::Number::from_f64(millis as f64 / 1000.0)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Append one record's envelope to `out`.
pub fn encode(
    item: &Output,
    settings: &EnvelopeSettings,
    forward_content: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let mut fields = BTreeMap::new();
    fields.insert("deployment", settings.deployment.as_str());
    let written = match item {
        Output::Alert(alert) => {
            fields.insert("rule_id", alert.rule_id.as_str());
            fields.insert("severity", alert.severity.as_str());
            if let Some(user) = &alert.entity.user_id {
                fields.insert("user_id", user);
            }
            if let Some(session) = &alert.entity.session_id {
                fields.insert("session_id", session);
            }
            serde_json::to_writer(
                &mut *out,
                &Envelope {
                    time: epoch_seconds(alert.timestamp.timestamp_millis()),
                    host: &settings.host,
                    source: &settings.source,
                    sourcetype: SOURCETYPE_ALERT,
                    index: settings.index.as_deref(),
                    event: alert.as_ref(),
                    fields,
                },
            )
        }
        Output::Event(record) => {
            fields.insert("user_id", &record.user_id);
            fields.insert("session_id", &record.session_id);
            fields.insert("event_type", record.event_type.as_str());
            serde_json::to_writer(
                &mut *out,
                &Envelope {
                    time: epoch_seconds(record.timestamp.timestamp_millis()),
                    host: &settings.host,
                    source: &settings.source,
                    sourcetype: SOURCETYPE_EVENT,
                    index: settings.index.as_deref(),
                    event: RecordView {
                        record,
                        include_content: forward_content,
                    },
                    fields,
                },
            )
        }
    };
    written.map_err(|error| error.to_string())?;
    out.push(b'\n');
    Ok(())
}

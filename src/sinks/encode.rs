//! Encoding for the local sinks: JSON lines, and a one-line text form for people.

use crate::record::{Output, RecordView};
use std::io::Write;

/// Append one item as a JSON line to `buffer`.
pub fn write_json_line(item: &Output, forward_content: bool, buffer: &mut Vec<u8>) {
    match item {
        Output::Event(record) => RecordView {
            record,
            include_content: forward_content,
        }
        .write_json(buffer),
        Output::Alert(alert) => {
            let written = serde_json::to_writer(&mut *buffer, alert.as_ref());
            // Serialising an alert into memory cannot fail: keys are strings, numbers finite.
            debug_assert!(written.is_ok());
        }
    }
    buffer.push(b'\n');
}

/// Append one item as a readable line: alerts explain themselves, events are summarised.
pub fn write_text_line(item: &Output, buffer: &mut Vec<u8>) {
    let _ = match item {
        Output::Alert(alert) => {
            // The details already name the entity.
            writeln!(
                buffer,
                "{time} ALERT [{severity}] {rule}: {details}",
                time = alert.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                severity = alert.severity,
                rule = alert.rule_id,
                details = alert.details,
            )
        }
        Output::Event(record) => writeln!(
            buffer,
            "{time} event {etype} user={user} session={session} id={id}",
            time = record.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            etype = record.event_type,
            user = record.user_id,
            session = record.session_id,
            id = record.event_id,
        ),
    };
}

//! Records to Kafka messages (pure).
//!
//! The shared driver hands a sink one framed body per request, so each record is encoded as one
//! self-delimiting frame that [`split_frames`] cuts apart again:
//! `<kind><key length>:<key><JSON record>\n`, where kind is `e` (event) or `a` (alert). The
//! frame stays readable in a dead-letter file, and JSON never holds a raw newline.
//!
//! The message key is the detection key: the record's `user_id` (a pseudonym if the privacy
//! settings replaced it upstream), so Kafka's default partitioner puts all of one user's records
//! in one partition and one detector member sees all of them. An alert is keyed by its user when
//! it has one, else by its entity.
//!
//! With `[evidence]` on, the driver stamps the JSON of each frame (`chain`) and adds signed
//! checkpoint frames (`record_type = "aiwarden_checkpoint"`, kind `e`, keyed by the agent id):
//! the JSON value of every message is what `aiwarden verify` checks in a topic dump.

use crate::record::Output;
use crate::sinks::write_json_line;

/// Which topic a frame goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A canonical record: the records topic.
    Event,
    /// An alert: the alerts topic.
    Alert,
}

/// One message cut from a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Records or alerts topic.
    pub kind: FrameKind,
    /// The message key (the detection key).
    pub key: &'a [u8],
    /// The message value: one JSON object.
    pub value: &'a [u8],
}

/// The detection key of a record.
pub fn detection_key(item: &Output) -> &str {
    match item {
        Output::Event(record) => &record.user_id,
        Output::Alert(alert) => alert
            .entity
            .user_id
            .as_deref()
            .unwrap_or(&alert.entity.entity_key),
    }
}

/// Append one record's frame to `out`.
pub fn encode(item: &Output, forward_content: bool, out: &mut Vec<u8>) {
    let key = detection_key(item);
    out.push(match item {
        Output::Event(_) => b'e',
        Output::Alert(_) => b'a',
    });
    out.extend_from_slice(key.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(key.as_bytes());
    write_json_line(item, forward_content, out);
}

/// Cut a body into frames; `None` if it is not a sequence of whole frames (a driver bug, since
/// only [`encode`] writes bodies).
pub fn split_frames(mut body: &[u8]) -> Option<Vec<Frame<'_>>> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let kind = match body.first()? {
            b'e' => FrameKind::Event,
            b'a' => FrameKind::Alert,
            _ => return None,
        };
        let rest = &body[1..];
        let colon = rest.iter().position(|byte| *byte == b':')?;
        let length: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
        let rest = &rest[colon + 1..];
        let key = rest.get(..length)?;
        let rest = &rest[length..];
        let newline = rest.iter().position(|byte| *byte == b'\n')?;
        frames.push(Frame {
            kind,
            key,
            value: &rest[..newline],
        });
        body = &rest[newline + 1..];
    }
    Some(frames)
}

//! Stamping records already encoded for a network sink, and checkpoint records in each SIEM's
//! shape: what the delivery driver calls on intake, once per record, before queueing the bytes.
//!
//! The stamp goes into the object the SIEM stores, so `verify` finds it in the export: the HEC
//! envelope's `event` (Splunk's `_raw`), the `_bulk` document (`aiwarden.chain`, Elastic
//! `_source`), the Sentinel row (`Chain`, a `dynamic` column), the JSON MSG of a syslog message
//! (what rsyslog writes after its header), the JSON value of a Kafka message. Metadata outside
//! that object (HEC `time`, `host`, `fields`; the bulk action line; the syslog header and
//! structured data; the Kafka key) is not covered by the hash.

use super::chain::{Stamp, StampLocation, ELASTIC_STAMP, JSON_LINES_STAMP, SENTINEL_STAMP};
use super::checkpoint::CHECKPOINT_RECORD_TYPE;
use super::{EvidenceError, SinkEvidence};
use serde_json::{json, Map, Value};

/// MSGID of syslog checkpoint messages.
pub const CHECKPOINT_MSGID: &str = "checkpoint";

/// How a sink's encoder lays out one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodedShape {
    /// One JSON object and a newline (file, stdout).
    JsonLine,
    /// A HEC envelope (and a newline); the stored object is its `event`.
    HecEnvelope {
        /// `host` of checkpoint envelopes.
        host: String,
        /// `source` of checkpoint envelopes.
        source: String,
        /// `index` of checkpoint envelopes, when configured.
        index: Option<String>,
    },
    /// A `_bulk` action line and a document line; the stored object is the document.
    BulkPair {
        /// The data stream checkpoints go to (the events stream).
        index: String,
    },
    /// One Sentinel row (the driver frames rows into an array). Checkpoint rows hold only
    /// `TimeGenerated`, `RecordType`, `Checkpoint` and `Chain`, which both tables declare.
    SentinelRow,
    /// An RFC 5424 message whose MSG is a JSON object (`syslog` sink, `format = "json"`): the
    /// header and structured data are kept as they are, the JSON is stamped.
    SyslogJson {
        /// PRI of checkpoint messages (facility × 8 + 6, informational).
        pri: u8,
        /// HOSTNAME of checkpoint messages.
        hostname: String,
        /// APP-NAME of checkpoint messages.
        app_name: String,
        /// PROCID of checkpoint messages.
        procid: String,
        /// SD-ID of the structured-data element of checkpoint messages.
        sd_id: String,
        /// Whether MSG starts with the UTF-8 byte order mark.
        bom: bool,
    },
    /// A `kafka` sink frame, `<kind><key length>:<key><JSON>\n`: the JSON (the message value)
    /// is stamped. Checkpoints go to the records topic keyed by the agent id.
    KafkaFrame,
}

impl EncodedShape {
    /// Where this shape's stored object carries its stamp.
    pub fn location(&self) -> StampLocation {
        match self {
            EncodedShape::JsonLine
            | EncodedShape::HecEnvelope { .. }
            | EncodedShape::SyslogJson { .. }
            | EncodedShape::KafkaFrame => JSON_LINES_STAMP,
            EncodedShape::BulkPair { .. } => ELASTIC_STAMP,
            EncodedShape::SentinelRow => SENTINEL_STAMP,
        }
    }
}

fn malformed(reason: &str) -> EvidenceError {
    EvidenceError::Encoded(reason.to_string())
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, EvidenceError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed("not a JSON object")),
    }
}

fn push_line(value: &impl serde::Serialize, out: &mut Vec<u8>) -> Result<(), EvidenceError> {
    serde_json::to_writer(&mut *out, value).map_err(|e| malformed(&e.to_string()))?;
    out.push(b'\n');
    Ok(())
}

/// Stamp one encoded record in place: parse the stored object out of `bytes`, stamp it, and
/// write the record back in the same shape.
pub fn stamp_encoded(
    evidence: &mut SinkEvidence,
    shape: &EncodedShape,
    bytes: &mut Vec<u8>,
) -> Result<Stamp, EvidenceError> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let location = shape.location();
    let chain = evidence.chain_mut();
    let mut out = Vec::with_capacity(bytes.len() + 256);
    let stamp = match shape {
        EncodedShape::JsonLine | EncodedShape::SentinelRow => {
            let mut object = parse_object(text)?;
            let stamp = chain.stamp(&mut object, location);
            serde_json::to_writer(&mut out, &object).map_err(|e| malformed(&e.to_string()))?;
            if bytes.ends_with(b"\n") {
                out.push(b'\n');
            }
            stamp
        }
        EncodedShape::HecEnvelope { .. } => {
            let mut envelope = parse_object(text)?;
            let Some(Value::Object(event)) = envelope.get_mut("event") else {
                return Err(malformed("a HEC envelope without an `event` object"));
            };
            let stamp = chain.stamp(event, location);
            push_line(&envelope, &mut out)?;
            stamp
        }
        EncodedShape::BulkPair { .. } => {
            let Some(split) = text.iter().position(|b| *b == b'\n') else {
                return Err(malformed("a bulk record without a document line"));
            };
            let mut document = parse_object(&text[split + 1..])?;
            let stamp = chain.stamp(&mut document, location);
            out.extend_from_slice(&text[..=split]);
            push_line(&document, &mut out)?;
            stamp
        }
        EncodedShape::SyslogJson { .. } | EncodedShape::KafkaFrame => {
            let json = framed_json(shape, text)
                .ok_or_else(|| malformed("a framed record without its JSON object"))?;
            let mut document = parse_object(&text[json.clone()])?;
            let stamp = chain.stamp(&mut document, location);
            out.extend_from_slice(&text[..json.start]);
            serde_json::to_writer(&mut out, &document).map_err(|e| malformed(&e.to_string()))?;
            out.extend_from_slice(&text[json.end..]);
            if bytes.ends_with(b"\n") {
                out.push(b'\n');
            }
            stamp
        }
    };
    *bytes = out;
    Ok(stamp)
}

/// Where the JSON object sits in a framed record (`text` without its final newline).
fn framed_json(shape: &EncodedShape, text: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = match shape {
        EncodedShape::SyslogJson { .. } => syslog_msg_start(text)?,
        EncodedShape::KafkaFrame => kafka_value_start(text)?,
        _ => 0,
    };
    (text.get(start) == Some(&b'{')).then_some(start..text.len())
}

/// The UTF-8 byte order mark that may start a syslog MSG.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the JSON of an RFC 5424 message starts: after the six header fields, the structured
/// data (`-`, or elements whose quoted values may hold escaped `"`, `\` and `]`), one space and
/// an optional byte order mark.
pub fn syslog_msg_start(message: &[u8]) -> Option<usize> {
    let mut at = 0;
    // PRI+VERSION, TIMESTAMP, HOSTNAME, APP-NAME, PROCID, MSGID: none holds a space.
    for _ in 0..6 {
        at += message.get(at..)?.iter().position(|b| *b == b' ')? + 1;
    }
    match message.get(at)? {
        b'-' => at += 1,
        b'[' => {
            while message.get(at) == Some(&b'[') {
                at += 1;
                let mut quoted = false;
                loop {
                    let byte = *message.get(at)?;
                    at += 1;
                    match byte {
                        b'\\' if quoted => at += 1,
                        b'"' => quoted = !quoted,
                        b']' if !quoted => break,
                        _ => {}
                    }
                }
            }
        }
        _ => return None,
    }
    if message.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    if message.get(at..)?.starts_with(BOM) {
        at += BOM.len();
    }
    Some(at)
}

/// Where the value of a Kafka frame starts: after the kind byte, `<key length>:` and the key.
fn kafka_value_start(frame: &[u8]) -> Option<usize> {
    let colon = frame.iter().position(|b| *b == b':')?;
    let length: usize = std::str::from_utf8(frame.get(1..colon)?)
        .ok()?
        .parse()
        .ok()?;
    let start = colon.checked_add(1)?.checked_add(length)?;
    (start <= frame.len()).then_some(start)
}

/// A checkpoint record in `shape`, signed and stamped, when one is due (`force`: whenever
/// anything was stamped since the last one, e.g. at shutdown).
pub fn checkpoint_encoded(
    evidence: &mut SinkEvidence,
    shape: &EncodedShape,
    force: bool,
) -> Option<(Stamp, Vec<u8>)> {
    let body = evidence.sign_head_if_due(force)?;
    let created = body.created.clone();
    let location = shape.location();
    let mut out = Vec::new();
    let stamp = match shape {
        EncodedShape::JsonLine | EncodedShape::HecEnvelope { .. } => {
            let mut document = object(json!({
                "record_type": CHECKPOINT_RECORD_TYPE,
                "timestamp": created,
                "checkpoint": body,
            }));
            let stamp = evidence.stamp_checkpoint(&mut document, location);
            let written = match shape {
                EncodedShape::HecEnvelope {
                    host,
                    source,
                    index,
                } => {
                    let mut envelope = object(json!({
                        "time": chrono::DateTime::parse_from_rfc3339(&created)
                            .map(|t| t.timestamp_millis() as f64 / 1000.0)
                            .unwrap_or(0.0),
                        "host": host,
                        "source": source,
                        "sourcetype": "aiwarden:checkpoint",
                    }));
                    if let Some(index) = index {
                        envelope.insert("index".into(), json!(index));
                    }
                    envelope.insert("event".into(), Value::Object(document));
                    push_line(&envelope, &mut out)
                }
                _ => push_line(&document, &mut out),
            };
            written.ok()?;
            stamp
        }
        EncodedShape::BulkPair { index } => {
            let mut document = object(json!({
                "@timestamp": created,
                "event": {"kind": "event", "action": CHECKPOINT_RECORD_TYPE, "dataset": "aiwarden.events"},
                "aiwarden": {"record_type": CHECKPOINT_RECORD_TYPE, "checkpoint": body},
            }));
            let stamp = evidence.stamp_checkpoint(&mut document, location);
            let id = format!("checkpoint-{}-{}-{}", stamp.agent_id, stamp.sink, stamp.seq);
            push_line(&json!({"create": {"_index": index, "_id": id}}), &mut out).ok()?;
            push_line(&document, &mut out).ok()?;
            stamp
        }
        EncodedShape::SentinelRow => {
            // Only columns both tables declare: a stream's checkpoints go to its own table.
            let mut row = object(json!({
                "TimeGenerated": created,
                "RecordType": CHECKPOINT_RECORD_TYPE,
                "Checkpoint": body,
            }));
            let stamp = evidence.stamp_checkpoint(&mut row, location);
            serde_json::to_writer(&mut out, &row).ok()?;
            stamp
        }
        EncodedShape::SyslogJson {
            pri,
            hostname,
            app_name,
            procid,
            sd_id,
            bom,
        } => {
            let mut document = object(json!({
                "record_type": CHECKPOINT_RECORD_TYPE,
                "timestamp": created,
                "checkpoint": body,
            }));
            let stamp = evidence.stamp_checkpoint(&mut document, location);
            // `created` is RFC 3339 UTC with milliseconds, a valid RFC 5424 TIMESTAMP.
            out.extend_from_slice(
                format!(
                    "<{pri}>1 {created} {hostname} {app_name} {procid} {CHECKPOINT_MSGID} [{sd_id} record_type=\"{CHECKPOINT_RECORD_TYPE}\"] "
                )
                .as_bytes(),
            );
            if *bom {
                out.extend_from_slice(BOM);
            }
            serde_json::to_writer(&mut out, &document).ok()?;
            stamp
        }
        EncodedShape::KafkaFrame => {
            let mut document = object(json!({
                "record_type": CHECKPOINT_RECORD_TYPE,
                "timestamp": created,
                "checkpoint": body,
            }));
            let stamp = evidence.stamp_checkpoint(&mut document, location);
            // The records topic (`e`), keyed by the agent: one partition holds a chain's
            // checkpoints in order.
            let key = &stamp.agent_id;
            out.extend_from_slice(format!("e{}:{key}", key.len()).as_bytes());
            push_line(&document, &mut out).ok()?;
            stamp
        }
    };
    Some((stamp, out))
}

/// The stamp an encoded record of `shape` carries, if any (to resume a chain from the newest
/// record of a sink's queue after a crash).
pub fn stamp_of_encoded(shape: &EncodedShape, bytes: &[u8]) -> Option<Stamp> {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut stored = match shape {
        EncodedShape::JsonLine | EncodedShape::SentinelRow => parse_object(text).ok()?,
        EncodedShape::HecEnvelope { .. } => match parse_object(text).ok()?.remove("event")? {
            Value::Object(event) => event,
            _ => return None,
        },
        EncodedShape::BulkPair { .. } => {
            let split = text.iter().position(|b| *b == b'\n')?;
            parse_object(&text[split + 1..]).ok()?
        }
        EncodedShape::SyslogJson { .. } | EncodedShape::KafkaFrame => {
            parse_object(&text[framed_json(shape, text)?]).ok()?
        }
    };
    Stamp::from_value(&shape.location().take(&mut stored)?)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

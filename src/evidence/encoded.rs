//! Stamping records already encoded for a network sink, and checkpoint records in each SIEM's
//! shape: what the delivery driver calls on intake, once per record, before queueing the bytes.
//!
//! The stamp goes into the object the SIEM stores, so `verify` finds it in the export: the HEC
//! envelope's `event` (Splunk's `_raw`), the `_bulk` document (`aiwarden.chain`, Elastic
//! `_source`), the Sentinel row (`Chain`, a `dynamic` column). Envelope metadata outside that
//! object (HEC `time`, `host`, `fields`; the bulk action line) is not covered by the hash.

use super::chain::{Stamp, StampLocation, ELASTIC_STAMP, JSON_LINES_STAMP, SENTINEL_STAMP};
use super::checkpoint::CHECKPOINT_RECORD_TYPE;
use super::{EvidenceError, SinkEvidence};
use serde_json::{json, Map, Value};

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
    /// One Sentinel row (the driver frames rows into an array).
    SentinelRow,
}

impl EncodedShape {
    /// Where this shape's stored object carries its stamp.
    pub fn location(&self) -> StampLocation {
        match self {
            EncodedShape::JsonLine | EncodedShape::HecEnvelope { .. } => JSON_LINES_STAMP,
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
    };
    *bytes = out;
    Ok(stamp)
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
            let mut row = object(json!({
                "TimeGenerated": created,
                "EventType": CHECKPOINT_RECORD_TYPE,
                "RecordType": CHECKPOINT_RECORD_TYPE,
                "Checkpoint": body,
            }));
            let stamp = evidence.stamp_checkpoint(&mut row, location);
            serde_json::to_writer(&mut out, &row).ok()?;
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
    };
    Stamp::from_value(&shape.location().take(&mut stored)?)
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

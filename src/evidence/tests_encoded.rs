//! The driver's path for the network sinks: the sink's own encoder, then `stamp_encoded`, then
//! checkpoints in the sink's shape; the stored objects read back as each SIEM (or a syslog file,
//! or a Kafka topic dump) gives them to `verify`.

use super::encoded::{checkpoint_encoded, stamp_encoded, stamp_of_encoded, EncodedShape};
use super::export::{read_json, ExportedRecord};
use super::*;
use crate::record::{AuditRecord, EventType, Output};
use crate::sinks::{elastic, sentinel, splunk_hec};
use chrono::TimeZone;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn evidence(dir: &Path, sink: &str) -> (SinkEvidence, std::path::PathBuf, EvidenceConfig) {
    let signer = CheckpointSigner::generate();
    let key = dir.join(format!("{sink}.key"));
    std::fs::write(&key, signer.secret_hex()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let config = EvidenceConfig {
        enabled: true,
        signing_key_file: Some(key.clone()),
        agent_id: Some("agent-7".into()),
        checkpoint_every: 3,
        ..Default::default()
    };
    (
        SinkEvidence::open(&config, dir, sink, JSON_LINES_STAMP).unwrap(),
        key,
        config,
    )
}

fn items() -> Vec<Output> {
    (0..7)
        .map(|i| {
            let mut record = AuditRecord::new(
                format!("e{i}"),
                chrono::Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, i).unwrap(),
                EventType::ApiRequest,
                "psn:k1:abc",
                "s1",
            );
            record.prompt_tokens = Some(100 + u64::from(i));
            record.ip_address = Some("10.20.30.0".into());
            record
                .extra
                .insert("tool".into(), json!({"name": "x", "n": 1.5}));
            Output::Event(Arc::new(record))
        })
        .collect()
}

fn verify_objects(objects: Vec<Map<String, Value>>, config: &EvidenceConfig) -> ChainReport {
    let signer = CheckpointSigner::load(config.signing_key_file.as_ref().unwrap()).unwrap();
    let records = objects
        .into_iter()
        .enumerate()
        .map(|(i, document)| ExportedRecord {
            origin: format!("x:{i}"),
            document,
        })
        .collect();
    let report = verify::verify(
        records,
        &[signer.verifying_key()],
        &VerifyOptions::default(),
    );
    assert_eq!(report.chains.len(), 1, "{report:?}");
    report.chains[0].clone()
}

/// Encode, stamp and add due checkpoints; return the encoded bytes per record.
fn run(
    evidence: &mut SinkEvidence,
    shape: &EncodedShape,
    mut encode: impl FnMut(&Output, &mut Vec<u8>),
) -> Vec<Vec<u8>> {
    let mut encoded = Vec::new();
    for item in items() {
        let mut bytes = Vec::new();
        encode(&item, &mut bytes);
        stamp_encoded(evidence, shape, &mut bytes).unwrap();
        encoded.push(bytes);
        if let Some((_, bytes)) = checkpoint_encoded(evidence, shape, false) {
            encoded.push(bytes);
        }
    }
    if let Some((_, bytes)) = checkpoint_encoded(evidence, shape, true) {
        encoded.push(bytes);
    }
    encoded
}

#[test]
fn splunk_hec_envelopes_verify_from_raw() {
    let dir = tempfile::tempdir().unwrap();
    let (mut evidence, _, config) = evidence(dir.path(), "splunk");
    let settings = splunk_hec::EnvelopeSettings {
        host: "gw".into(),
        source: "aiwarden".into(),
        index: Some("ai".into()),
        deployment: "d".into(),
    };
    let shape = EncodedShape::HecEnvelope {
        host: "gw".into(),
        source: "aiwarden".into(),
        index: Some("ai".into()),
    };
    let encoded = run(&mut evidence, &shape, |item, out| {
        splunk_hec::encode(item, &settings, false, out).unwrap()
    });
    // Splunk keeps `event` verbatim as `_raw`.
    let stored: Vec<Map<String, Value>> = encoded
        .iter()
        .map(|bytes| {
            let envelope: Value = serde_json::from_slice(bytes).unwrap();
            let keys: Vec<&String> = envelope.as_object().unwrap().keys().collect();
            for key in keys {
                assert!(
                    [
                        "time",
                        "host",
                        "source",
                        "sourcetype",
                        "index",
                        "event",
                        "fields"
                    ]
                    .contains(&key.as_str()),
                    "HEC allows no other top-level key: {key}"
                );
            }
            object(envelope["event"].clone())
        })
        .collect();
    let report = verify_objects(stored, &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.checkpoints_verified, 3);
    assert_eq!(report.unsigned_tail, 1, "only the final checkpoint itself");
}

#[test]
fn elastic_bulk_documents_verify_from_source() {
    let dir = tempfile::tempdir().unwrap();
    let (mut evidence, _, config) = evidence(dir.path(), "elastic");
    let settings = elastic::DocumentSettings {
        namespace: "default".into(),
        host: "gw".into(),
        deployment: "d".into(),
    };
    let shape = EncodedShape::BulkPair {
        index: "logs-aiwarden.events-default".into(),
    };
    let encoded = run(&mut evidence, &shape, |item, out| {
        elastic::encode(item, &settings, false, out).unwrap()
    });
    let stored: Vec<Map<String, Value>> = encoded
        .iter()
        .map(|bytes| {
            let text = String::from_utf8(bytes.clone()).unwrap();
            let mut lines = text.lines();
            let action: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            assert!(action["create"]["_id"].is_string());
            let mut document: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
            document["event"]["ingested"] = json!("2026-11-23T09:00:09Z");
            object(document)
        })
        .collect();
    let report = verify_objects(stored, &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.checkpoints_verified, 3);
}

#[test]
fn sentinel_rows_verify_from_a_query_export() {
    let dir = tempfile::tempdir().unwrap();
    let (mut evidence, _, config) = evidence(dir.path(), "sentinel");
    let shape = EncodedShape::SentinelRow;
    let encoded = run(&mut evidence, &shape, |item, out| {
        let Output::Event(record) = item else {
            panic!()
        };
        serde_json::to_writer(out, &sentinel::event_row(record, "d", "gw", false)).unwrap()
    });
    // As Log Analytics gives rows back: system columns added, datetimes with 7 digits,
    // dynamic columns as JSON text.
    let stored: Vec<Map<String, Value>> = encoded
        .iter()
        .map(|bytes| {
            let mut row: Value = serde_json::from_slice(bytes).unwrap();
            row["TenantId"] = json!("t");
            row["Type"] = json!("AIWardenEvents_CL");
            row["_ItemId"] = json!("i");
            row["Chain"] = json!(row["Chain"].to_string());
            if let Some(text) = row["TimeGenerated"].as_str() {
                let seven = text.replace('Z', "0000Z");
                row["TimeGenerated"] = json!(seven);
            }
            if !row["Extra"].is_null() {
                row["Extra"] = json!(row["Extra"].to_string());
            }
            object(row)
        })
        .collect();
    let report = verify_objects(stored, &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.checkpoints_verified, 3);
}

fn syslog_settings(
    format: crate::sinks::syslog::PayloadFormat,
) -> crate::sinks::syslog::MessageSettings {
    crate::sinks::syslog::MessageSettings::new(
        crate::sinks::syslog::Facility::Local0,
        "gw-01",
        "aiwarden",
        "4242",
        32473,
        true,
        format,
    )
}

#[test]
fn syslog_json_messages_keep_their_header_and_verify_from_an_rsyslog_file() {
    use crate::sinks::syslog::{self, PayloadFormat};
    let dir = tempfile::tempdir().unwrap();
    let (mut evidence, _, config) = evidence(dir.path(), "syslog");
    let settings = syslog_settings(PayloadFormat::Json);
    let shape = settings.evidence_shape().unwrap();
    assert!(syslog_settings(PayloadFormat::Cef)
        .evidence_shape()
        .is_none());
    let mut headers = Vec::new();
    let encoded = run(&mut evidence, &shape, |item, out| {
        // A user id with what structured data must escape, and braces, in the header.
        let Output::Event(record) = item else {
            panic!()
        };
        let mut record = (**record).clone();
        record.user_id = "we{ird] \"user\\".into();
        syslog::encode(&Output::Event(Arc::new(record)), &settings, false, out).unwrap();
        let json = out
            .iter()
            .position(|b| *b == b'{' && out.ends_with(b"}"))
            .unwrap();
        let start = super::encoded::syslog_msg_start(out).unwrap();
        assert!(start > json, "the brace in the header is not the JSON");
        headers.push(out[..start].to_vec());
    });
    let mut file = String::new();
    let mut events = 0;
    for (i, message) in encoded.iter().enumerate() {
        let start = super::encoded::syslog_msg_start(message).unwrap();
        let header = std::str::from_utf8(&message[..start]).unwrap();
        if header.contains(" checkpoint [aiwarden@32473 record_type=\"aiwarden_checkpoint\"] ") {
            assert!(header.starts_with("<134>1 "), "local0.info: {header}");
            assert!(
                header.contains(" gw-01 aiwarden 4242 checkpoint "),
                "{header}"
            );
        } else {
            assert_eq!(message[..start], headers[events], "the header is kept");
            events += 1;
        }
        assert_eq!(
            stamp_of_encoded(&shape, message).map(|stamp| stamp.seq),
            Some(i as u64 + 1)
        );
        let msg = std::str::from_utf8(&message[start - BOM_LEN..]).unwrap();
        // As rsyslog writes them: RSYSLOG_FileFormat, or the whole RFC 5424 line.
        if i % 2 == 0 {
            file.push_str(&format!(
                "2026-11-23T09:00:0{}.000000+00:00 gw-01 aiwarden[4242]: {msg}\n",
                i % 10
            ));
        } else {
            file.push_str(std::str::from_utf8(message).unwrap());
            file.push('\n');
        }
    }
    assert_eq!(events, 7);
    let read = read_json(&file, "syslog.log");
    assert!(read.unreadable.is_empty(), "{:?}", read.unreadable);
    let stored = read.records.into_iter().map(|r| r.document).collect();
    let report = verify_objects(stored, &config);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.checkpoints_verified, 3);
}

const BOM_LEN: usize = 3;

#[test]
fn kafka_frames_keep_their_key_and_checkpoints_are_keyed_by_the_agent() {
    use crate::sinks::kafka::{self, split_frames, FrameKind};
    let dir = tempfile::tempdir().unwrap();
    let (mut evidence, _, config) = evidence(dir.path(), "kafka");
    let shape = EncodedShape::KafkaFrame;
    let encoded = run(&mut evidence, &shape, |item, out| {
        kafka::encode(item, false, out)
    });
    let body: Vec<u8> = encoded.concat();
    let frames = split_frames(&body).unwrap();
    assert_eq!(frames.len(), 10);
    let mut dump = String::new();
    let mut envelopes = String::new();
    for (offset, frame) in frames.iter().enumerate() {
        let value: Value = serde_json::from_slice(frame.value).unwrap();
        assert_eq!(value["chain"]["seq"], offset as u64 + 1);
        if value["record_type"] == "aiwarden_checkpoint" {
            assert_eq!(frame.key, b"agent-7");
            assert_eq!(frame.kind, FrameKind::Event);
        } else {
            assert_eq!(frame.key, b"psn:k1:abc", "the detection key is kept");
        }
        let text = std::str::from_utf8(frame.value).unwrap();
        dump.push_str(text);
        dump.push('\n');
        // `kcat -J`: the value as text in `payload`.
        let envelope = json!({"topic": "aiwarden-records", "partition": 0, "offset": offset,
            "key": String::from_utf8_lossy(frame.key), "payload": text});
        envelopes.push_str(&format!("{envelope}\n"));
    }
    for text in [dump, envelopes] {
        let read = read_json(&text, "topic.jsonl");
        assert!(read.unreadable.is_empty(), "{:?}", read.unreadable);
        let stored = read.records.into_iter().map(|r| r.document).collect();
        let report = verify_objects(stored, &config);
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.checkpoints_verified, 3);
    }
}

#[test]
fn a_framed_record_without_its_json_is_refused_not_stamped() {
    let dir = tempfile::tempdir().unwrap();
    let (mut evidence, _, _) = evidence(dir.path(), "bad");
    let shape = syslog_settings(crate::sinks::syslog::PayloadFormat::Json)
        .evidence_shape()
        .unwrap();
    for message in [
        &b"<134>1 2026-11-23T09:00:00Z gw aiwarden 1 event [unterminated x=\"] {}"[..],
        b"<134>1 2026-11-23T09:00:00Z gw aiwarden 1 event - CEF:0|aiwarden|x",
        b"<134>1 too short",
    ] {
        let mut bytes = message.to_vec();
        assert!(stamp_encoded(&mut evidence, &shape, &mut bytes).is_err());
        assert_eq!(bytes, message, "left as it was");
    }
    for frame in [&b"e99:short{}\n"[..], b"ex:{}\n", b"e0:not json\n"] {
        let mut bytes = frame.to_vec();
        assert!(stamp_encoded(&mut evidence, &EncodedShape::KafkaFrame, &mut bytes).is_err());
    }
    assert_eq!(evidence.chain_mut().head().0, 0, "nothing was stamped");
    // A syslog line whose braces never close into an object is unreadable, not a panic.
    let read = read_json("Nov 23 gw x: {{{{ not json }\nplain text\n", "x.log");
    assert_eq!(read.records.len(), 0);
    assert_eq!(read.unreadable.len(), 2);
}

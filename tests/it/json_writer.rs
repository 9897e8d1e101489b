//! Issue 14: events are written as JSON by hand (`RecordView::write_json`, the HEC event
//! envelope) instead of through serde's state machine. The bytes must be exactly what serde
//! wrote, for every record of the benchmark data set and for the hostile strings and odd
//! timestamps the data set lacks.

use crate::dataset;
use aiwarden::decode::decode_native;
use aiwarden::record::{
    AgentInfo, Alert, AlertEntity, AuditRecord, Classification, EventType, Evidence, Output,
    RecordView, Severity,
};
use aiwarden::sinks::splunk_hec::{encode, EnvelopeSettings, SOURCETYPE_ALERT, SOURCETYPE_EVENT};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};
use std::sync::Arc;

fn by_hand(view: RecordView<'_>) -> String {
    let mut out = Vec::new();
    view.write_json(&mut out);
    String::from_utf8(out).expect("the writer writes UTF-8")
}

fn by_serde(view: RecordView<'_>) -> String {
    serde_json::to_string(&view).expect("a record serialises")
}

fn assert_same(record: &AuditRecord) {
    for include_content in [false, true] {
        let view = RecordView {
            record,
            include_content,
        };
        assert_eq!(by_hand(view), by_serde(view), "content {include_content}");
    }
}

fn dataset_records() -> Vec<AuditRecord> {
    dataset::lines(3_000, 200)
        .map(|line| decode_native(line.as_bytes()).expect("the data set decodes"))
        .collect()
}

#[test]
fn every_record_of_the_data_set_is_written_as_serde_writes_it() {
    let records = dataset_records();
    assert!(records.iter().any(|r| r.prompt_raw.is_some()));
    assert!(records.iter().any(|r| !r.mcp_integrations.is_empty()));
    for record in &records {
        assert_same(record);
    }
}

/// Every byte that needs escaping, at every offset of the eight-byte steps and around them.
fn hostile_strings() -> Vec<String> {
    let mut strings = vec![
        String::new(),
        "\"".into(),
        "\\".into(),
        "\u{7f}\u{80}\u{ff}é€😀\u{2028}\u{2029}\u{feff}".into(),
        "a\"b\\c\nd\re\tf\u{8}g\u{c}h\u{0}i\u{1f}j\u{1}".into(),
        "plain text long enough to span several eight-byte words without anything to escape".into(),
    ];
    for special in (0u8..0x20).chain([b'"', b'\\', b'/', b'\'', 0x7f]) {
        let special = char::from(special);
        // Every position in strings of up to five eight-byte words, so an escape falls in
        // whole words and in the padded tail alike; a second one follows at a word's distance.
        for len in 0..40 {
            for at in 0..=len {
                let mut text: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
                    .chars()
                    .take(len)
                    .collect();
                text.insert(at, special);
                if at + 8 <= text.len() {
                    text.insert(at + 8, special);
                }
                strings.push(text);
            }
        }
        // Multi-byte characters around the escape, so words hold high bytes.
        strings.push(format!("€€€{special}😀😀é"));
    }
    strings
}

#[test]
fn hostile_strings_are_escaped_as_serde_escapes_them() {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 9, 14, 5, 7)
        .single()
        .expect("a time");
    for text in hostile_strings() {
        let mut record = AuditRecord::new(
            text.clone(),
            at,
            EventType::ApiRequest,
            text.clone(),
            text.clone(),
        );
        // Every field set, so a field the serde path writes and the writer forgets shows here.
        record.application_id = text.clone();
        record.model = text.clone();
        record.department = Some(text.clone());
        record.prompt_hash = Some(text.clone());
        record.response_hash = Some(text.clone());
        record.prompt_tokens = Some(u64::MAX);
        record.completion_tokens = Some(0);
        record.latency_ms = Some(1_234_567);
        record.data_classification = Some(Classification::Restricted);
        record.mcp_integrations = vec![text.clone(), "x".into()];
        record.mcp_calls = Some(10);
        record.policy_flags = vec![text.clone()];
        record.security_flags = vec!["a".into(), text.clone()];
        record.ip_address = Some(text.clone());
        record.status = Some(text.clone());
        record.error_type = Some(text.clone());
        record.stop_reason = Some(text.clone());
        record.prompt_raw = Some(text.clone());
        record.response_raw = Some(text.clone());
        record
            .extra
            .insert(text.clone(), json!({"k": text, "n": [1, 2.5, null]}));
        assert_same(&record);
    }
}

#[test]
fn timestamps_are_written_as_chrono_writes_them() {
    let millis = |date: NaiveDate, ms: i64| -> DateTime<Utc> {
        let midnight = date.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
        midnight + chrono::Duration::milliseconds(ms)
    };
    let mut times = Vec::new();
    for (y, m, d) in [
        (2026, 1, 1),
        (1970, 1, 1),
        (0, 1, 1),
        (9999, 12, 31),
        (1, 2, 28),
    ] {
        let date = NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        for ms in [0, 1, 9, 10, 99, 100, 999, 59_999, 86_399_999] {
            times.push(millis(date, ms));
        }
    }
    // Outside four digits chrono adds a sign and digits: the writer defers to it.
    for y in [-1, 10_000, 262_000] {
        let date = NaiveDate::from_ymd_opt(y, 6, 15).expect("a date");
        times.push(millis(date, 1_234));
    }
    // A leap second (nanoseconds past a billion) and sub-millisecond precision.
    let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
        .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
        .expect("a leap second")
        .and_utc();
    times.push(leap);
    times.push(Utc.timestamp_nanos(1_700_000_000_123_999_999));
    for at in times {
        let record = AuditRecord::new("e", at, EventType::SessionStart, "u", "s");
        assert_same(&record);
    }
}

/// The HEC event envelope as serde wrote it before it was written by hand.
fn reference_envelope(record: &AuditRecord, settings: &EnvelopeSettings, content: bool) -> String {
    let mut envelope = serde_json::Map::new();
    envelope.insert(
        "time".into(),
        json!(record.timestamp.timestamp_millis() as f64 / 1000.0),
    );
    envelope.insert("host".into(), json!(settings.host));
    envelope.insert("source".into(), json!(settings.source));
    envelope.insert("sourcetype".into(), json!(SOURCETYPE_EVENT));
    if let Some(index) = &settings.index {
        envelope.insert("index".into(), json!(index));
    }
    let view = RecordView {
        record,
        include_content: content,
    };
    envelope.insert(
        "event".into(),
        serde_json::to_value(view).expect("a record serialises"),
    );
    envelope.insert(
        "fields".into(),
        json!({
            "deployment": settings.deployment,
            "event_type": record.event_type.as_str(),
            "session_id": record.session_id,
            "user_id": record.user_id,
        }),
    );
    let mut text = serde_json::to_string(&Value::Object(envelope)).expect("serialises");
    text.push('\n');
    text
}

#[test]
fn hec_event_envelopes_are_the_bytes_serde_wrote() {
    let mut settings = EnvelopeSettings {
        host: "gw-\"1\"".into(),
        source: "aiwarden".into(),
        index: None,
        deployment: "eu\\west".into(),
    };
    let records = dataset_records();
    for index in [None, Some("llm_audit".to_string())] {
        settings.index = index;
        for record in &records {
            for content in [false, true] {
                let mut out = Vec::new();
                let item = Output::Event(Arc::new(record.clone()));
                encode(&item, &settings, content, &mut out).expect("encodes");
                let written = String::from_utf8(out).expect("UTF-8");
                assert_eq!(written, reference_envelope(record, &settings, content));
            }
        }
    }
}

/// An alert with every field set to `text` (or derived from it), optional ones included.
fn alert_of(text: &str, at: DateTime<Utc>) -> Alert {
    Alert {
        alert_id: text.into(),
        timestamp: at,
        rule_id: text.into(),
        rule_version: u32::MAX,
        severity: Severity::Critical,
        title: text.into(),
        details: text.into(),
        entity: AlertEntity {
            entity_type: text.into(),
            entity_key: text.into(),
            user_id: Some(text.into()),
            session_id: Some(text.into()),
            department: Some(text.into()),
            application_id: Some(text.into()),
            real_user_id: Some(text.into()),
        },
        observed: 97_139.5,
        baseline: Some(0.1 + 0.2),
        threshold: 1e21,
        window: Some(text.into()),
        evidence: Evidence {
            event_ids: vec![text.into(), "e-2".into()],
            event_count: u64::MAX,
        },
        tags: vec!["aiwarden".into(), text.into()],
        source: text.into(),
        deployment: text.into(),
        agent: AgentInfo {
            host: text.into(),
            version: text.into(),
        },
        suppressed_count: 7,
        auto_blocked: true,
    }
}

/// The same alert with every optional field left out, lists empty and odd numbers.
fn sparse_alert(at: DateTime<Utc>, observed: f64) -> Alert {
    let mut alert = alert_of("x", at);
    alert.entity = AlertEntity {
        entity_type: "user_id".into(),
        entity_key: String::new(),
        ..AlertEntity::default()
    };
    alert.severity = Severity::Low;
    alert.observed = observed;
    alert.baseline = None;
    alert.threshold = -0.0;
    alert.window = None;
    alert.evidence = Evidence::default();
    alert.tags = Vec::new();
    alert.suppressed_count = 0;
    alert.auto_blocked = false;
    alert
}

fn alerts() -> Vec<Alert> {
    let at = Utc
        .with_ymd_and_hms(2026, 3, 9, 14, 5, 7)
        .single()
        .expect("a time");
    let mut alerts: Vec<Alert> = hostile_strings()
        .iter()
        .map(|text| alert_of(text, at))
        .collect();
    // Sub-second times (chrono picks the digits), and floats serde writes as `null`.
    for (nanos, observed) in [
        (0, 0.0),
        (123_000_000, f64::NAN),
        (123_456_000, f64::INFINITY),
        (1, f64::MIN_POSITIVE),
        (999_999_999, 42.0),
    ] {
        alerts.push(sparse_alert(
            at + chrono::Duration::nanoseconds(nanos),
            observed,
        ));
    }
    alerts
}

#[test]
fn alerts_are_written_as_serde_writes_them() {
    for alert in alerts() {
        let mut out = Vec::new();
        alert.write_json(&mut out);
        let written = String::from_utf8(out).expect("UTF-8");
        assert_eq!(
            written,
            serde_json::to_string(&alert).expect("an alert serialises")
        );
    }
}

/// The HEC alert envelope as serde wrote it before it was written by hand.
#[derive(serde::Serialize)]
struct ReferenceAlertEnvelope<'a> {
    time: f64,
    host: &'a str,
    source: &'a str,
    sourcetype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<&'a str>,
    event: &'a Alert,
    fields: ReferenceAlertFields<'a>,
}

#[derive(serde::Serialize)]
struct ReferenceAlertFields<'a> {
    deployment: &'a str,
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    severity: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

#[test]
fn hec_alert_envelopes_are_the_bytes_serde_wrote() {
    let mut settings = EnvelopeSettings {
        host: "gw-\"1\"".into(),
        source: "aiwarden".into(),
        index: None,
        deployment: "eu\\west".into(),
    };
    for index in [None, Some("llm_alerts".to_string())] {
        settings.index = index;
        for alert in alerts() {
            let reference = ReferenceAlertEnvelope {
                time: alert.timestamp.timestamp_millis() as f64 / 1000.0,
                host: &settings.host,
                source: &settings.source,
                sourcetype: SOURCETYPE_ALERT,
                index: settings.index.as_deref(),
                event: &alert,
                fields: ReferenceAlertFields {
                    deployment: &settings.deployment,
                    rule_id: &alert.rule_id,
                    session_id: alert.entity.session_id.as_deref(),
                    severity: alert.severity.as_str(),
                    user_id: alert.entity.user_id.as_deref(),
                },
            };
            let mut expected = serde_json::to_string(&reference).expect("serialises");
            expected.push('\n');
            let mut out = Vec::new();
            encode(&Output::Alert(Arc::new(alert)), &settings, false, &mut out).expect("encodes");
            assert_eq!(String::from_utf8(out).expect("UTF-8"), expected);
        }
    }
}

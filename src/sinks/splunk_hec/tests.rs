//! Envelopes and the meaning of every HEC answer (PROTOCOLS.md §1), without a network.

use super::*;
use crate::record::{AuditRecord, EventType};
use crate::sinks::driver::ItemVerdict;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn settings(index: Option<&str>) -> EnvelopeSettings {
    EnvelopeSettings {
        host: "gw-01".into(),
        source: "aiwarden".into(),
        index: index.map(str::to_string),
        deployment: "claude_deployment".into(),
    }
}

fn event() -> Output {
    let time = chrono::DateTime::parse_from_rfc3339("2026-11-23T09:14:03.512Z")
        .unwrap()
        .to_utc();
    let mut record = AuditRecord::new("e-1", time, EventType::ApiRequest, "u-7f3a", "s-19");
    record.prompt_raw = Some("secret prompt".into());
    Output::Event(Arc::new(record))
}

fn encoded(item: &Output, index: Option<&str>, content: bool) -> Value {
    let mut out = Vec::new();
    encode(item, &settings(index), content, &mut out).unwrap();
    assert_eq!(out.last(), Some(&b'\n'));
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn an_event_envelope_has_exactly_the_contract_keys() {
    let envelope = encoded(&event(), Some("ai_audit"), false);
    let keys: Vec<_> = envelope.as_object().unwrap().keys().cloned().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "event",
            "fields",
            "host",
            "index",
            "source",
            "sourcetype",
            "time"
        ]
    );
    assert_eq!(envelope["time"], json!(1_795_425_243.512));
    assert_eq!(envelope["host"], "gw-01");
    assert_eq!(envelope["source"], "aiwarden");
    assert_eq!(envelope["sourcetype"], "aiwarden:event");
    assert_eq!(envelope["index"], "ai_audit");
    assert_eq!(envelope["event"]["event_id"], "e-1");
    assert_eq!(
        envelope["fields"],
        json!({"deployment": "claude_deployment", "event_type": "api_request", "session_id": "s-19", "user_id": "u-7f3a"})
    );
    assert!(
        envelope["event"].get("prompt_raw").is_none(),
        "content is not forwarded by default"
    );
    let with_content = encoded(&event(), None, true);
    assert_eq!(with_content["event"]["prompt_raw"], "secret prompt");
    assert!(
        with_content.get("index").is_none(),
        "no index key unless configured"
    );
}

fn reply(code: i64, text: &str) -> HecReply {
    HecReply {
        text: text.into(),
        code: Some(code),
        ack_id: None,
        invalid_event_number: None,
    }
}

fn check(status: u16, hec: HecReply, count: usize, ack: bool) -> Answer {
    classify(
        "splunk",
        StatusCode::from_u16(status).unwrap(),
        Some(Duration::from_secs(5)),
        &hec,
        count,
        ack,
    )
}

fn misconfigured_mentions(answer: Answer, needle: &str) {
    match answer {
        Answer::Done(Classified::Misconfigured { reason }) => {
            assert!(reason.contains(needle), "`{reason}` lacks `{needle}`")
        }
        other => panic!("expected misconfigured, got {other:?}"),
    }
}

#[test]
fn every_hec_code_is_sorted_as_the_contract_says() {
    assert_eq!(
        check(200, reply(0, "Success"), 3, false),
        Answer::Done(Classified::Delivered)
    );
    assert_eq!(
        check(200, reply(24, "approaching"), 3, false),
        Answer::Done(Classified::Delivered)
    );
    let mut acked = reply(0, "Success");
    acked.ack_id = Some(7);
    assert_eq!(check(200, acked, 3, true), Answer::AwaitAck(7));
    for (status, code) in [(403, 1), (401, 2), (401, 3), (403, 4)] {
        misconfigured_mentions(
            check(status, reply(code, "Invalid token"), 3, false),
            "sinks.splunk.token",
        );
    }
    misconfigured_mentions(
        check(400, reply(7, "Incorrect index"), 3, false),
        "sinks.splunk.index",
    );
    misconfigured_mentions(
        check(400, reply(10, "Data channel is missing"), 3, false),
        "acknowledgements = true",
    );
    misconfigured_mentions(
        check(400, reply(14, "ACK is disabled"), 3, true),
        "acknowledgements = false",
    );
    misconfigured_mentions(
        check(404, HecReply::default(), 3, false),
        "sinks.splunk.endpoint",
    );
    for (status, code) in [
        (500, 8),
        (503, 9),
        (503, 18),
        (503, 19),
        (503, 20),
        (503, 23),
        (429, 26),
        (429, 27),
    ] {
        match check(status, reply(code, "busy"), 3, false) {
            Answer::Done(Classified::Retry { after, .. }) => {
                assert_eq!(after, Some(Duration::from_secs(5)))
            }
            other => panic!("code {code}: expected retry, got {other:?}"),
        }
    }
    assert!(matches!(
        check(400, reply(11, "Invalid data channel"), 3, true),
        Answer::Done(Classified::Retry { .. })
    ));
    assert!(matches!(
        check(413, HecReply::default(), 3, false),
        Answer::Done(Classified::Split { .. })
    ));
    assert!(matches!(
        check(400, reply(5, "No data"), 1, false),
        Answer::Done(Classified::Rejected { .. })
    ));
}

#[test]
fn invalid_event_number_delivers_before_rejects_it_and_resends_after() {
    let mut bad = reply(6, "Invalid data format");
    bad.invalid_event_number = Some(1);
    let Answer::Done(Classified::PerItem(verdicts)) = check(400, bad, 3, false) else {
        panic!("expected per-item verdicts");
    };
    assert_eq!(verdicts[0], ItemVerdict::Delivered);
    assert!(matches!(&verdicts[1], ItemVerdict::Rejected(reason) if reason.contains("code 6")));
    assert!(matches!(verdicts[2], ItemVerdict::Retry(_)));

    // With indexer acknowledgement nothing before it is confirmed: resend those too.
    let mut bad = reply(6, "Invalid data format");
    bad.invalid_event_number = Some(1);
    let Answer::Done(Classified::PerItem(verdicts)) = check(400, bad, 3, true) else {
        panic!("expected per-item verdicts");
    };
    assert!(matches!(verdicts[0], ItemVerdict::Retry(_)));

    // Without the index, halve until the bad envelope is alone, then reject it.
    assert!(matches!(
        check(400, reply(6, "Invalid data format"), 4, false),
        Answer::Done(Classified::Split { .. })
    ));
    assert!(matches!(
        check(400, reply(6, "Invalid data format"), 1, false),
        Answer::Done(Classified::Split { .. })
    ));
}

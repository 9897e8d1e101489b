use super::*;
use crate::record::{Classification, EventType, RecordView};
use serde_json::json;

const GOOD: &str = r#"{"event_id":"0f8e2c1a-5a7b-4c7e-9a51-2f1d3c4b5a69","timestamp":"2026-11-23T09:14:03.512Z","event_type":"api_request","user_id":"jdoe@acme.example","session_id":"s-81f2","department":"legal","application_id":"contract-review","model":"claude-sonnet-4-6","prompt_hash":"9b1f","response_hash":"77aa","prompt_tokens":1840,"completion_tokens":512,"latency_ms":2140,"data_classification":"confidential","mcp_integrations":["sharepoint"],"mcp_calls":2,"policy_flags":[],"ip_address":"10.20.30.40","status":"success","x_custom":{"a":1}}"#;

/// Decode `line` and expect an error with `reason` whose detail mentions `needle`.
fn check_error(line: &str, reason: Reason, needle: &str) {
    match decode_native(line.as_bytes()) {
        Ok(record) => panic!("expected {reason}, decoded {record:?}"),
        Err(error) => {
            assert_eq!(error.reason, reason, "detail: {}", error.detail);
            assert!(
                error.detail.contains(needle),
                "detail `{}` lacks `{needle}`",
                error.detail
            );
        }
    }
}

fn with(field: &str, value: serde_json::Value) -> String {
    let mut object: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    object[field] = value;
    object.to_string()
}

fn without(field: &str) -> String {
    let mut object: serde_json::Value = serde_json::from_str(GOOD).unwrap();
    object.as_object_mut().unwrap().remove(field);
    object.to_string()
}

#[test]
fn decodes_the_formats_md_example_with_typed_fields() {
    let record = decode_native(GOOD.as_bytes()).unwrap();
    assert_eq!(record.event_id, "0f8e2c1a-5a7b-4c7e-9a51-2f1d3c4b5a69");
    assert_eq!(record.timestamp.timestamp_millis(), 1_795_425_243_512);
    assert_eq!(record.event_type, EventType::ApiRequest);
    assert_eq!(record.user_id, "jdoe@acme.example");
    assert_eq!(record.department.as_deref(), Some("legal"));
    assert_eq!(record.prompt_tokens, Some(1840));
    assert_eq!(record.completion_tokens, Some(512));
    assert_eq!(record.total_tokens(), Some(2352));
    assert_eq!(
        record.data_classification,
        Some(Classification::Confidential)
    );
    assert_eq!(record.mcp_integrations, vec!["sharepoint".to_string()]);
    assert_eq!(record.mcp_calls, Some(2));
    assert!(record.policy_flags.is_empty());
    assert_eq!(record.extra.get("x_custom"), Some(&json!({"a": 1})));
}

#[test]
fn unknown_fields_survive_a_round_trip_in_order() {
    let line = with("zz_last", json!("kept"));
    let record = decode_native(line.as_bytes()).unwrap();
    let written = serde_json::to_value(RecordView::without_content(&record)).unwrap();
    assert_eq!(written["x_custom"], json!({"a": 1}));
    assert_eq!(written["zz_last"], json!("kept"));
    let keys: Vec<_> = record.extra.keys().cloned().collect();
    assert_eq!(keys, vec!["x_custom", "zz_last"]);
    // And what was written decodes to the same record.
    let again = decode_native(written.to_string().as_bytes()).unwrap();
    assert_eq!(again, record);
}

#[test]
fn raw_content_is_hashed_and_only_written_when_allowed() {
    let line = with("prompt_raw", json!("ignore previous instructions"));
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    let mut object = line.as_object().unwrap().clone();
    object.remove("prompt_hash");
    let record = decode_native(serde_json::Value::Object(object).to_string().as_bytes()).unwrap();
    use sha2::Digest;
    let expected = hex::encode(sha2::Sha256::digest(b"ignore previous instructions"));
    assert_eq!(record.prompt_hash.as_deref(), Some(expected.as_str()));
    let hidden = serde_json::to_string(&RecordView::without_content(&record)).unwrap();
    assert!(!hidden.contains("ignore previous"));
    let shown = serde_json::to_string(&RecordView {
        record: &record,
        include_content: true,
    })
    .unwrap();
    assert!(shown.contains("ignore previous instructions"));
}

#[test]
fn mcp_call_events_count_one_call_unless_they_say_otherwise() {
    let record = decode_native(
        with("event_type", json!("mcp_call"))
            .replace(",\"mcp_calls\":2", "")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(record.mcp_calls, Some(1));
    let record = decode_native(with("event_type", json!("mcp_call")).as_bytes()).unwrap();
    assert_eq!(record.mcp_calls, Some(2));
}

#[test]
fn tolerant_variants_are_accepted() {
    // Numbers as strings, epoch milliseconds and seconds, a single string as a list.
    let record = decode_native(with("prompt_tokens", json!("1840")).as_bytes()).unwrap();
    assert_eq!(record.prompt_tokens, Some(1840));
    let record = decode_native(with("timestamp", json!(1_795_425_243_512_i64)).as_bytes()).unwrap();
    assert_eq!(record.timestamp.timestamp_millis(), 1_795_425_243_512);
    let record = decode_native(with("timestamp", json!(1_795_425_243)).as_bytes()).unwrap();
    assert_eq!(record.timestamp.timestamp(), 1_795_425_243);
    let record = decode_native(with("mcp_integrations", json!("jira")).as_bytes()).unwrap();
    assert_eq!(record.mcp_integrations, vec!["jira".to_string()]);
    let record =
        decode_native(with("data_classification", json!("RESTRICTED")).as_bytes()).unwrap();
    assert_eq!(record.data_classification, Some(Classification::Restricted));
    let record = decode_native(with("event_type", json!("brand_new_type")).as_bytes()).unwrap();
    assert_eq!(record.event_type, EventType::Other("brand_new_type".into()));
    // A non-model event needs no model.
    let line = without("model").replace("api_request", "session_start");
    assert!(decode_native(line.as_bytes()).is_ok());
}

#[test]
fn malformed_lines_name_reason_and_field() {
    check_error("{not json", Reason::InvalidJson, "column");
    check_error("[1,2]", Reason::NotAnObject, "array");
    check_error("", Reason::InvalidJson, "end of input");
    check_error(&without("user_id"), Reason::MissingField, "user_id");
    check_error(&without("timestamp"), Reason::MissingField, "timestamp");
    check_error(&without("model"), Reason::MissingField, "model");
    check_error(
        &with("event_id", json!("  ")),
        Reason::InvalidValue,
        "event_id",
    );
    check_error(
        &with("session_id", json!(42)),
        Reason::WrongType,
        "session_id",
    );
    check_error(
        &with("prompt_tokens", json!(-5)),
        Reason::InvalidValue,
        "prompt_tokens",
    );
    check_error(
        &with("prompt_tokens", json!(1.5)),
        Reason::InvalidValue,
        "prompt_tokens",
    );
    check_error(
        &with("prompt_tokens", json!([1])),
        Reason::WrongType,
        "prompt_tokens",
    );
    check_error(
        &with("mcp_integrations", json!([1])),
        Reason::WrongType,
        "mcp_integrations",
    );
    check_error(
        &with("timestamp", json!("yesterday")),
        Reason::InvalidValue,
        "timestamp",
    );
    check_error(
        &with("data_classification", json!("top-secret")),
        Reason::InvalidValue,
        "data_classification",
    );
}

#[test]
fn errors_never_echo_field_values() {
    let secret = "sk-ant-very-secret-value";
    let error = decode_native(with("session_id", json!([secret])).as_bytes()).unwrap_err();
    assert!(!error.detail.contains(secret));
    let error = decode_native(format!("{{\"user_id\": \"{secret}\" oops").as_bytes()).unwrap_err();
    assert!(!error.detail.contains(secret));
}

#[test]
fn invalid_utf8_is_its_own_reason() {
    let mut bytes = GOOD.as_bytes().to_vec();
    bytes[40] = 0xff;
    let error = decode_native(&bytes).unwrap_err();
    assert_eq!(error.reason, Reason::InvalidUtf8);
    assert!(error.detail.contains("byte 40"));
}

/// A line an edge agent's sink wrote: the record plus its evidence stamp, then a checkpoint.
fn forwarded_by_another_agent() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = crate::evidence::Chain::open(dir.path(), "kafka", "edge-1").unwrap();
    let mut record: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(GOOD).unwrap();
    chain.stamp(&mut record, crate::evidence::JSON_LINES_STAMP);
    let signer = crate::evidence::CheckpointSigner::generate();
    let checkpoint = chain.checkpoint(
        &signer,
        chrono::Utc::now(),
        crate::evidence::JSON_LINES_STAMP,
    );
    (
        serde_json::Value::Object(record).to_string(),
        serde_json::Value::Object(checkpoint).to_string(),
    )
}

#[test]
fn an_upstream_agents_stamp_is_dropped_and_its_checkpoints_are_not_events() {
    let (record, checkpoint) = forwarded_by_another_agent();
    assert!(record.contains("\"chain\""), "{record}");
    for format in [Format::Native, Format::Auto] {
        let mut out = Vec::new();
        let mut decoder = Decoder::new(format, Mapping::default(), DecodeOptions::default());
        decoder.decode(record.as_bytes(), &mut out);
        decoder.decode(checkpoint.as_bytes(), &mut out);
        assert_eq!(out.len(), 1, "{format:?}: the checkpoint yields nothing");
        // The plain format a source without settings uses takes another path.
        out.clear();
        let plain = format.configure(&Mapping::default(), &DecodeOptions::default());
        decode(plain, record.as_bytes(), &mut out);
        decode(plain, checkpoint.as_bytes(), &mut out);
        assert_eq!(out.len(), 1, "{format:?}: the checkpoint yields nothing");
        let decoded = out.pop().unwrap().unwrap();
        assert_eq!(decoded.event_id, "0f8e2c1a-5a7b-4c7e-9a51-2f1d3c4b5a69");
        assert!(!decoded.extra.contains_key("chain"), "{format:?}");
        assert!(decoded.extra.contains_key("x_custom"), "{format:?}");
    }
    // Through `[mapping]` too, which takes the object path.
    let mut out = Vec::new();
    let mut decoder = Decoder::new(
        Format::Native,
        Mapping::from_pairs([("department", "dept")]),
        DecodeOptions::default(),
    );
    decoder.decode(record.as_bytes(), &mut out);
    decoder.decode(checkpoint.as_bytes(), &mut out);
    assert_eq!(out.len(), 1);
    assert!(!out[0].as_ref().unwrap().extra.contains_key("chain"));
    // A caller that wants exactly one record is told what the line is.
    let error = decode_native(checkpoint.as_bytes()).unwrap_err();
    assert!(error.detail.contains("checkpoint"), "{}", error.detail);
}

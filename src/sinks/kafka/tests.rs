use super::*;
use crate::record::Output;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::Arc;

fn event(user: &str, id: &str) -> Output {
    let line = format!(
        r#"{{"event_id":"{id}","timestamp":"2026-11-23T10:00:00Z","event_type":"api_request","user_id":"{user}","session_id":"s1","application_id":"gw","model":"m","prompt_raw":"secret words"}}"#
    );
    let mut out = Vec::new();
    crate::decode::decode(crate::decode::Format::Native, line.as_bytes(), &mut out);
    let record = out.pop().unwrap().unwrap();
    Output::Event(Arc::new(record))
}

#[test]
fn frames_round_trip_with_the_user_as_key() {
    let mut body = Vec::new();
    encode(&event("alice@acme.example", "e1"), false, &mut body);
    encode(&event("bob:with:colons", "e2"), false, &mut body);
    let frames = split_frames(&body).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].key, b"alice@acme.example");
    assert_eq!(frames[1].key, b"bob:with:colons");
    assert_eq!(frames[0].kind, FrameKind::Event);
    let value: serde_json::Value = serde_json::from_slice(frames[1].value).unwrap();
    assert_eq!(value["event_id"], "e2");
}

#[test]
fn content_stays_home_unless_forwarding_is_on() {
    let mut body = Vec::new();
    encode(&event("alice", "e1"), false, &mut body);
    assert!(!String::from_utf8_lossy(&body).contains("secret words"));
    let mut body = Vec::new();
    encode(&event("alice", "e1"), true, &mut body);
    assert!(String::from_utf8_lossy(&body).contains("secret words"));
}

#[test]
fn an_encoded_event_decodes_back_to_the_same_record() {
    let original = event("carol", "e9");
    let mut body = Vec::new();
    encode(&original, true, &mut body);
    let frames = split_frames(&body).unwrap();
    let mut decoded = Vec::new();
    crate::decode::decode(crate::decode::Format::Native, frames[0].value, &mut decoded);
    let record = decoded.pop().unwrap().unwrap();
    let Output::Event(original) = original else {
        unreachable!()
    };
    assert_eq!(record.event_id, original.event_id);
    assert_eq!(record.user_id, original.user_id);
    assert_eq!(record.timestamp, original.timestamp);
    assert_eq!(record.prompt_raw, original.prompt_raw);
}

#[test]
fn damaged_bodies_are_refused_not_misread() {
    assert_eq!(split_frames(b""), Some(vec![]));
    assert!(split_frames(b"x1:a{}\n").is_none());
    assert!(split_frames(b"e9:a{}\n").is_none());
    assert!(split_frames(b"e1:a{}").is_none());
    assert!(split_frames(b"enope:a{}\n").is_none());
}

#[test]
fn errors_sort_into_retry_reject_and_fix_the_settings() {
    let produce = |code| KafkaError::MessageProduction(code);
    assert!(matches!(
        classify_error(&produce(RDKafkaErrorCode::MessageTimedOut)),
        DeliveryProblem::Transient(_)
    ));
    assert!(matches!(
        classify_error(&produce(RDKafkaErrorCode::NotEnoughReplicas)),
        DeliveryProblem::Transient(_)
    ));
    assert!(matches!(
        classify_error(&produce(RDKafkaErrorCode::MessageSizeTooLarge)),
        DeliveryProblem::Rejected(_)
    ));
    assert!(matches!(
        classify_error(&produce(RDKafkaErrorCode::TopicAuthorizationFailed)),
        DeliveryProblem::Misconfigured(_)
    ));
}

fn config(text: &str) -> KafkaSinkConfig {
    toml::from_str(text).unwrap()
}

#[test]
fn alerts_need_their_own_topic() {
    let base = "brokers = [\"k:9092\"]\ntopic = \"events\"\n";
    assert!(config(base).validate().is_ok());
    let error = config(&format!("{base}records = \"both\""))
        .validate()
        .unwrap_err();
    assert_eq!(error.0, "alerts_topic");
    let error = config(&format!(
        "{base}records = \"both\"\nalerts_topic = \"events\""
    ))
    .validate()
    .unwrap_err();
    assert_eq!(error.0, "alerts_topic");
    assert!(config(&format!(
        "{base}records = \"both\"\nalerts_topic = \"alerts\""
    ))
    .validate()
    .is_ok());
}

#[test]
fn guarantees_cannot_be_overridden_and_sasl_needs_its_keys() {
    let base = "brokers = [\"k:9092\"]\ntopic = \"events\"\n";
    let error = config(&format!("{base}librdkafka_options = {{ acks = \"1\" }}"))
        .validate()
        .unwrap_err();
    assert_eq!(error.0, "librdkafka_options.acks");
    let error = config(&format!("{base}sasl = {{ mechanism = \"scram-sha-512\" }}"))
        .validate()
        .unwrap_err();
    assert_eq!(error.0, "sasl.username");
    let error = config(&format!(
        "{base}sasl = {{ mechanism = \"oauthbearer\", client_id = \"c\" }}"
    ))
    .validate()
    .unwrap_err();
    assert_eq!(error.0, "sasl.token_endpoint");
    let error = config("brokers = []\ntopic = \"t\"")
        .validate()
        .unwrap_err();
    assert_eq!(error.0, "brokers");
}

#[test]
fn security_settings_become_librdkafka_properties() {
    std::env::set_var("AIWARDEN_TEST_KAFKA_PASSWORD", "pw");
    let sink = config(
        "brokers = [\"a:9093\", \"b:9093\"]\ntopic = \"t\"\n\
         tls = { ca_file = \"/etc/ca.pem\" }\n\
         sasl = { mechanism = \"scram-sha-512\", username = \"u\", password = { env = \"AIWARDEN_TEST_KAFKA_PASSWORD\" } }\n",
    );
    let client = sink.connection().client_config().unwrap();
    assert_eq!(client.get("bootstrap.servers"), Some("a:9093,b:9093"));
    assert_eq!(client.get("security.protocol"), Some("sasl_ssl"));
    assert_eq!(client.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
    assert_eq!(client.get("sasl.username"), Some("u"));
    assert_eq!(client.get("sasl.password"), Some("pw"));
    assert_eq!(client.get("ssl.ca.location"), Some("/etc/ca.pem"));
    let printed = format!("{sink:?}");
    assert!(
        !printed.contains("pw\""),
        "the password must not be printed"
    );
}

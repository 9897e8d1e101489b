//! The `otlp` source fed by the real OpenTelemetry Rust exporter over gRPC, http/protobuf and
//! http/json, with Claude Code-shaped events: the right canonical records, and an MCP burst that
//! fires `mcp-volume`. Plus malformed bodies, auth and gzip answers.

use super::start;
use crate::util::{read_json_lines, wait_until};
use aiwarden::sources::otlp::{run_on, OtlpSourceConfig};
use aiwarden::sources::receiver::Listener;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const TOKEN: &str = "otlp-t0ken";

async fn receiver() -> (super::Running, String, String) {
    let http = Listener::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let grpc = Listener::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let http_url = format!("http://{}", http.local_addr().unwrap());
    let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
    let config: OtlpSourceConfig =
        toml::from_str(&format!("auth = {{ tokens = [\"{TOKEN}\"] }}")).unwrap();
    let running = start(move |context| Box::pin(run_on(config, Some(http), Some(grpc), context)));
    (running, http_url, grpc_url)
}

/// Emit Claude Code-shaped events through an SDK logger provider with `exporter`.
fn emit_session<E: opentelemetry_sdk::logs::LogExporter + 'static>(
    exporter: E,
    session: &str,
    mcp_calls: usize,
) {
    let provider = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("claude-code")
                .with_attribute(opentelemetry::KeyValue::new("department", "legal"))
                .build(),
        )
        .with_simple_exporter(exporter)
        .build();
    let logger = provider.logger("com.anthropic.claude_code.events");
    let emit = |name: &'static str, attributes: Vec<(&'static str, AnyValue)>| {
        let mut record = logger.create_log_record();
        record.set_body(AnyValue::from(format!("claude_code.{name}")));
        record.add_attribute("event.name", name);
        record.add_attribute("session.id", session.to_string());
        record.add_attribute("user.email", "jdoe@acme.example");
        record.add_attribute("event.timestamp", "2026-11-23T10:00:00.000Z");
        for (key, value) in attributes {
            record.add_attribute(key, value);
        }
        logger.emit(record);
    };
    emit(
        "api_request",
        vec![
            ("model", AnyValue::from("claude-sonnet-4-6")),
            ("input_tokens", AnyValue::from("1840")),
            ("output_tokens", AnyValue::Int(512)),
            ("duration_ms", AnyValue::Int(2140)),
        ],
    );
    for call in 0..mcp_calls {
        emit(
            "tool_result",
            vec![
                ("tool_name", AnyValue::from("mcp_tool")),
                ("tool_use_id", AnyValue::from(format!("tu-{call}"))),
                ("success", AnyValue::from("true")),
                (
                    "tool_parameters",
                    AnyValue::from(r#"{"mcp_server_name":"github","mcp_tool_name":"search"}"#),
                ),
            ],
        );
    }
    provider.shutdown().unwrap();
}

fn headers() -> HashMap<String, String> {
    HashMap::from([("authorization".to_string(), format!("Bearer {TOKEN}"))])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_otlp_exporter_over_grpc_and_http_arrives_as_canonical_records_and_alerts() {
    let (running, http_url, grpc_url) = receiver().await;
    let grpc_url_clone = grpc_url.clone();
    let http = http_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        let grpc = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(grpc_url_clone)
            .with_metadata(metadata)
            .with_compression(opentelemetry_otlp::Compression::Gzip)
            .build()
            .unwrap();
        // 60 MCP calls in one session: more than 50 in 10 minutes.
        emit_session(grpc, "s-grpc", 60);
        for (protocol, session) in [
            (Protocol::HttpBinary, "s-proto"),
            (Protocol::HttpJson, "s-json"),
        ] {
            let exporter = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(protocol)
                .with_endpoint(format!("{http}/v1/logs"))
                .with_headers(headers())
                .build()
                .unwrap();
            emit_session(exporter, session, 2);
        }
    })
    .await
    .unwrap();
    let events = read_json_lines(&running.events());
    let by_session = |session: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["session_id"] == session)
            .collect()
    };
    for (session, calls) in [("s-grpc", 60), ("s-proto", 2), ("s-json", 2)] {
        let records = by_session(session);
        assert_eq!(
            records.len(),
            calls + 1,
            "{session}: every record delivered before success"
        );
        let request = records
            .iter()
            .find(|e| e["event_type"] == "api_request")
            .unwrap();
        assert_eq!(request["user_id"], "jdoe@acme.example");
        assert_eq!(request["department"], "legal");
        assert_eq!(request["prompt_tokens"], 1840);
        assert_eq!(request["completion_tokens"], 512);
        assert_eq!(request["application_id"], "claude-code");
        let mcp = records
            .iter()
            .filter(|e| e["event_type"] == "mcp_call")
            .count();
        assert_eq!(mcp, calls, "{session}");
        assert!(records
            .iter()
            .any(|e| e["mcp_integrations"] == serde_json::json!(["github"])));
    }
    wait_until(Duration::from_secs(5), "the mcp-volume alert", || {
        read_json_lines(&running.alerts())
            .iter()
            .any(|a| a["rule_id"] == "mcp-volume" && a["session_id"] == "s-grpc")
    });
    assert!(
        !read_json_lines(&running.alerts())
            .iter()
            .any(|a| a["session_id"] == "s-json"),
        "two calls fire nothing"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_http_answers_malformed_unauthorised_and_partial_requests_per_the_spec() {
    let (running, http_url, grpc_url) = receiver().await;
    let url = format!("{http_url}/v1/logs");
    let client = reqwest::Client::new();
    let post = |content_type: &'static str, body: Vec<u8>| {
        client
            .post(&url)
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_eq!(
        post("application/x-protobuf", vec![0xff, 0xff, 0xff])
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post("application/json", b"{\"resourceLogs\":7}".to_vec())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        post("text/plain", b"x".to_vec()).await.unwrap().status(),
        415
    );
    let unauthorised = client
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);

    // One good record and one without a session: success with partialSuccess, gzip.
    let line = include_str!("../../fixtures/claude_code/session.jsonl")
        .lines()
        .nth(2)
        .unwrap();
    let mut export: Value = serde_json::from_str(line).unwrap();
    let good = export["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0].clone();
    let mut bad = good.clone();
    bad["attributes"]
        .as_array_mut()
        .unwrap()
        .retain(|a| a["key"] != "session.id");
    export["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = serde_json::json!([good, bad]);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, export.to_string().as_bytes()).unwrap();
    let answer = client
        .post(&url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(encoder.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: Value = serde_json::from_slice(&answer.bytes().await.unwrap()).unwrap();
    assert_eq!(body["partialSuccess"]["rejectedLogRecords"], "1");
    assert!(body["partialSuccess"]["errorMessage"]
        .as_str()
        .unwrap()
        .contains("session.id"));

    // gRPC: no token is UNAUTHENTICATED, not retried.
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    let mut grpc = LogsServiceClient::connect(grpc_url).await.unwrap();
    let status = grpc
        .export(
            opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    running.stop().await;
}

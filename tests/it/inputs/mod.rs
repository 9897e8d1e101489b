//! The push receivers end to end on loopback: the `http` source (`http_source.rs`) and the
//! `otlp` source fed by the real OpenTelemetry Rust exporter (`otlp.rs`), through the whole
//! pipeline into file sinks.

mod http_source;
mod otlp;
mod packaged_config;
mod python_sdk;
mod tls;

use aiwarden::config::Config;
use aiwarden::pipeline::{Pipeline, Shutdown};
use aiwarden::sources::{SourceContext, SourceTask};
use std::path::PathBuf;
use std::time::Duration;

/// A pipeline running in the test's runtime with events and alerts written to files.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub shutdown: Shutdown,
    pub handle: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn events(&self) -> PathBuf {
        self.dir.path().join("events.jsonl")
    }
    pub fn alerts(&self) -> PathBuf {
        self.dir.path().join("alerts.jsonl")
    }
    pub async fn stop(self) {
        self.shutdown.begin(Duration::from_secs(5));
        tokio::time::timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("pipeline stops")
            .unwrap();
    }
}

/// Start a pipeline whose only source is built by `source`.
pub fn start(source: impl FnOnce(SourceContext) -> SourceTask + Send + 'static) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.agent.state_dir = dir.path().join("state");
    #[derive(serde::Deserialize)]
    struct Sinks {
        sinks: std::collections::BTreeMap<String, aiwarden::sinks::SinkConfig>,
    }
    let sinks = format!(
        "[sinks.events]\ntype = \"file\"\npath = \"{0}/events.jsonl\"\nrecords = \"events\"\n[sinks.alerts]\ntype = \"file\"\npath = \"{0}/alerts.jsonl\"\nrecords = \"alerts\"\n",
        dir.path().display()
    );
    config.sinks = toml::from_str::<Sinks>(&sinks).unwrap().sinks;
    let mut pipeline = Pipeline::new(config);
    pipeline.add_source("push", Box::new(source));
    let shutdown = Shutdown::new();
    let run_shutdown = shutdown.clone();
    let handle = tokio::spawn(async move {
        pipeline.run(run_shutdown).await.unwrap();
    });
    Running {
        dir,
        shutdown,
        handle,
    }
}

/// An OTLP export of `calls` Claude Code MCP tool results in `session`, built from the proto
/// types (what a gRPC or http/protobuf client sends).
pub fn mcp_export(
    session: &str,
    calls: usize,
) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    let text = |value: &str| {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        })
    };
    let attribute = |key: &str, value: &str| KeyValue {
        key: key.to_string(),
        value: text(value),
        ..Default::default()
    };
    let log_records = (0..calls)
        .map(|call| LogRecord {
            body: text("claude_code.tool_result"),
            attributes: vec![
                attribute("event.name", "tool_result"),
                attribute(
                    "event.timestamp",
                    &format!("2026-11-23T15:00:{:02}.000Z", call % 60),
                ),
                attribute("session.id", session),
                attribute("user.email", "jdoe@acme.example"),
                attribute("tool_name", "mcp_tool"),
                attribute("tool_use_id", &format!("toolu_{call}")),
                attribute("success", "true"),
                attribute(
                    "tool_parameters",
                    r#"{"mcp_server_name":"github","mcp_tool_name":"search"}"#,
                ),
            ],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", "claude-code")],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

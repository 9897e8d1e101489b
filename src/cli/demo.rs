//! `aiwarden demo`: the default rules over a bundled sample stream, alerts on standard output.

use super::Failure;
use crate::config::Config;
use crate::decode::Format;
use crate::pipeline::{Pipeline, Shutdown};
use crate::sinks::stdout::{StdoutEncoding, StdoutSinkConfig};
use crate::sinks::{RecordKinds, SinkConfig};
use crate::sources::file::default_max_line_bytes;
use crate::sources::stdin::read_stream;
use crate::telemetry::{init_logging, LogFormat};
use anyhow::Context;

/// A day of a small organisation's LLM use with three planted incidents (see examples/demo/).
const SAMPLE_STREAM: &[u8] = include_bytes!("../../examples/demo/audit.jsonl");
/// Who is cleared for restricted data in the sample organisation.
const SAMPLE_ENTITLEMENTS: &str = include_str!("../../examples/demo/entitlements.toml");

/// Run the demo.
pub fn demo(json: bool, events: bool) -> Result<(), Failure> {
    init_logging("warn", LogFormat::Text);
    let state = tempfile::Builder::new()
        .prefix("aiwarden-demo-")
        .tempdir()
        .context("creating a temporary state directory")
        .map_err(Failure::runtime)?;
    let entitlements = state.path().join("entitlements.toml");
    std::fs::write(&entitlements, SAMPLE_ENTITLEMENTS)
        .context("writing the sample entitlements")
        .map_err(Failure::runtime)?;

    let mut config = Config::default();
    config.agent.state_dir = state.path().to_path_buf();
    config.detect.entitlements_file = Some(entitlements);
    config.sinks.insert(
        "stdout".into(),
        SinkConfig::Stdout(StdoutSinkConfig {
            records: if events {
                RecordKinds::Both
            } else {
                RecordKinds::Alerts
            },
            encoding: if json {
                StdoutEncoding::Json
            } else {
                StdoutEncoding::Text
            },
            ..StdoutSinkConfig::default()
        }),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::runtime)?;
    runtime.block_on(async move {
        let mut pipeline = Pipeline::new(config);
        let metrics = pipeline.metrics();
        pipeline.add_source(
            "demo",
            Box::new(|context| {
                Box::pin(read_stream(
                    SAMPLE_STREAM,
                    "examples/demo/audit.jsonl",
                    Format::Native,
                    default_max_line_bytes(),
                    context,
                ))
            }),
        );
        pipeline
            .run(Shutdown::new())
            .await
            .context("running the demo pipeline")
            .map_err(Failure::runtime)?;
        eprintln!(
            "demo: {} events read, {} alerts raised, {} lines dead-lettered (the default rule pack over examples/demo/audit.jsonl)",
            metrics.total("records_decoded_total"),
            metrics.total("alerts_total"),
            metrics.total("records_dead_lettered_total"),
        );
        Ok(())
    })
}

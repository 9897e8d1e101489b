//! The push receivers end to end on loopback: the `http` source (`http_source.rs`) and the
//! `otlp` source fed by the real OpenTelemetry Rust exporter (`otlp.rs`), through the whole
//! pipeline into file sinks.

mod http_source;
mod otlp;

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

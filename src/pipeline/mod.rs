//! The pipeline: sources → decode → detect → sinks, with acknowledgement flowing back.
//!
//! ```text
//! source tasks ──SourceBatch──► processor (decode, dead-letter, detect) ──SinkBatch──► sink tasks
//!      ▲                                                                                  │
//!      └──────────────────────────── AckToken: delivered by every sink ◄──────────────────┘
//! ```
//!
//! Channels are bounded, so a slow sink slows the processor, which slows the sources
//! (backpressure). The processor is two stages in a row, decode (a thread) and detect (a task),
//! each taking batches in order, so records of a stream stay in order through detection.
//!
//! Shutdown: the `intake` token stops the sources; each waits for its outstanding batches and
//! commits its position, then drops its sender. The processor ends when every sender is gone, and
//! closes the sink channels; each sink drains and ends. If that takes longer than the grace
//! period, the `abort` token makes sinks give up: their unacknowledged batches are not committed
//! and will be read again on the next start.

pub mod ack;
mod decode_stage;
pub mod partitioned;
mod processor;
pub mod reload;
pub mod rules;
pub mod snapshot;

use crate::config::Config;
use crate::dead_letter::DeadLetterWriter;
use crate::detect::{Engine, EngineSettings};
use crate::enrich::scan::Scanner;
use crate::record::AgentInfo;
use crate::sinks::{SinkContext, SinkError, SinkTask};
use crate::sources::{SourceBatch, SourceContext, SourceTask};
use crate::telemetry::Metrics;
use processor::Processor;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use rules::RulesLoadError;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The state directory cannot be created.
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Rules or entitlements did not load.
    #[error(transparent)]
    Rules(#[from] RulesLoadError),
    /// A sink could not start.
    #[error("sink `{name}`: {source}")]
    Sink {
        /// The sink.
        name: String,
        /// Why.
        #[source]
        source: SinkError,
    },
}

/// The stop signals of a running pipeline.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    /// Stop reading new input; drain what is in flight.
    pub intake: CancellationToken,
    /// Stop waiting: give up on what is still in flight (it will be read again).
    pub abort: CancellationToken,
}

impl Shutdown {
    /// Fresh, untriggered signals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop intake now, and abort if draining takes longer than `grace`.
    pub fn begin(&self, grace: Duration) {
        if self.intake.is_cancelled() {
            return;
        }
        self.intake.cancel();
        let abort = self.abort.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            abort.cancel();
        });
    }
}

/// The content scanner when `scan_content` is on, with the system-prompt canaries. Compiling
/// its automata takes a while (a second in a debug build), so it happens on a thread of its own
/// and records without raw text never wait for it.
pub(crate) fn background_scanner(
    detect: &crate::config::DetectConfig,
) -> Option<(Arc<std::sync::OnceLock<Scanner>>, Vec<String>)> {
    detect.scan_content.then(|| {
        let scanner = Arc::new(std::sync::OnceLock::new());
        let background = Arc::clone(&scanner);
        std::thread::spawn(move || {
            background.get_or_init(Scanner::builtin);
        });
        (scanner, detect.system_prompt_markers.clone())
    })
}

/// Run a source, keeping its state for `/ready`: healthy while it runs, failing when it stopped
/// on an error (a source that simply ended, like stdin at end of input, is not a failure).
fn watch_source(name: &str, task: SourceTask, metrics: &Arc<Metrics>) -> SourceTask {
    let name = name.to_string();
    let metrics = Arc::clone(metrics);
    metrics.set_source_health(&name, crate::telemetry::SinkHealth::Healthy);
    Box::pin(async move {
        let outcome = task.await;
        if let Err(error) = &outcome {
            metrics.set_source_health(
                &name,
                crate::telemetry::SinkHealth::Failing(error.to_string()),
            );
        }
        outcome
    })
}

/// The channels into the sinks, in configuration order.
type SinkSenders = Vec<mpsc::Sender<crate::sinks::SinkBatch>>;

/// Build every configured sink, each with its channel of `agent.channel_capacity` batches.
pub(crate) fn build_sinks(
    config: &Config,
    metrics: &Arc<Metrics>,
    shutdown: &Shutdown,
    agent: &AgentInfo,
    own_alerts: &mpsc::Sender<crate::record::Alert>,
) -> Result<(SinkSenders, Vec<(String, SinkTask)>), PipelineError> {
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    for (name, sink) in config.effective_sinks() {
        let (sender, receiver) = mpsc::channel(config.agent.channel_capacity);
        let context = SinkContext {
            name: Arc::from(name.as_str()),
            metrics: Arc::clone(metrics),
            abort: shutdown.abort.clone(),
            stop_intake: shutdown.intake.clone(),
            state_dir: config.agent.state_dir.clone(),
            agent: agent.clone(),
            deployment: Arc::from(config.agent.deployment_tag.as_str()),
            alerts: Some(own_alerts.clone()),
            outbound: Some(crate::sinks::file::Outbound {
                privacy: config.privacy.clone(),
                evidence: config.evidence.clone(),
            }),
        };
        let task = sink
            .build(context, receiver)
            .map_err(|source| PipelineError::Sink {
                name: name.clone(),
                source,
            })?;
        metrics.set_sink_health(&name, crate::telemetry::SinkHealth::Healthy);
        senders.push(sender);
        tasks.push((name, task));
    }
    Ok((senders, tasks))
}

/// A source added by code rather than configuration (`demo`, tests).
pub type SourceBuilder = Box<dyn FnOnce(SourceContext) -> SourceTask + Send>;

/// A configured pipeline, ready to run.
pub struct Pipeline {
    config: Config,
    metrics: Arc<Metrics>,
    extra_sources: Vec<(String, SourceBuilder)>,
    reloads: mpsc::Receiver<rules::Detection>,
    reload_sender: mpsc::Sender<rules::Detection>,
}

/// Hands new rules to a running pipeline (SIGHUP, a changed rules file).
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    sender: mpsc::Sender<rules::Detection>,
}

impl ReloadHandle {
    /// Load the rules, entitlements and calendars as configured and swap them in; unchanged
    /// rules keep their state. A broken file keeps the running rules and returns the error.
    pub async fn reload(
        &self,
        config: &crate::config::DetectConfig,
    ) -> Result<usize, RulesLoadError> {
        let detection = rules::load_detection(config)?;
        let count = detection.rules.len();
        // The pipeline may be stopping; then there is nothing to reload.
        let _ = self.sender.send(detection).await;
        Ok(count)
    }
}

impl Pipeline {
    /// A pipeline for a validated configuration.
    pub fn new(config: Config) -> Self {
        let (reload_sender, reloads) = mpsc::channel(1);
        Pipeline {
            config,
            metrics: Arc::new(Metrics::new()),
            extra_sources: Vec::new(),
            reloads,
            reload_sender,
        }
    }

    /// The counters (shared: read them while or after it runs).
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// A handle to swap rules while it runs.
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle {
            sender: self.reload_sender.clone(),
        }
    }

    /// Add a source that is not in the configuration.
    pub fn add_source(&mut self, name: &str, builder: SourceBuilder) {
        self.extra_sources.push((name.to_string(), builder));
    }

    /// Run until every source has ended and everything is drained, or until `shutdown`.
    pub async fn run(self, shutdown: Shutdown) -> Result<(), PipelineError> {
        let Pipeline {
            config,
            metrics,
            extra_sources,
            reloads,
            reload_sender,
        } = self;
        // Only the handles given out keep the channel open; the pipeline's own is not one.
        drop(reload_sender);
        std::fs::create_dir_all(&config.agent.state_dir).map_err(|source| {
            PipelineError::StateDir {
                path: config.agent.state_dir.display().to_string(),
                source,
            }
        })?;

        let detection = rules::load_detection(&config.detect)?;
        let engine_settings = EngineSettings {
            agent: AgentInfo::local(config.agent.hostname.as_deref()),
            deployment: config.agent.deployment_tag.clone(),
            allowed_lateness: config.detect.allowed_lateness,
            max_entities_per_rule: config.detect.max_entities_per_rule,
            evidence_sample: config.detect.evidence_sample,
        };
        let mut engine = Engine::new(
            detection.rules,
            detection.entitlements,
            engine_settings.clone(),
        )
        .with_calendars(detection.calendars);

        let snapshot_path = snapshot::path(&config.agent.state_dir);
        snapshot::restore(&mut engine, &snapshot_path);

        let capacity = config.agent.channel_capacity;
        let (own_alert_sender, own_alerts) = mpsc::channel(16);
        let (sink_senders, sink_tasks) = build_sinks(
            &config,
            &metrics,
            &shutdown,
            &AgentInfo::local(config.agent.hostname.as_deref()),
            &own_alert_sender,
        )?;

        let (batch_sender, batch_receiver) = mpsc::channel::<SourceBatch>(capacity);
        let source_context = |name: &str| SourceContext {
            name: Arc::from(name),
            out: batch_sender.clone(),
            shutdown: shutdown.intake.clone(),
            state_dir: config.agent.state_dir.clone(),
            metrics: Arc::clone(&metrics),
        };
        let mut source_handles = Vec::new();
        for (name, source) in &config.sources {
            let task = source.build(source_context(name));
            source_handles.push((
                name.clone(),
                tokio::spawn(watch_source(name, task, &metrics)),
            ));
        }
        for (name, builder) in extra_sources {
            let task = builder(source_context(&name));
            source_handles.push((
                name.clone(),
                tokio::spawn(watch_source(&name, task, &metrics)),
            ));
        }
        // Only the sources hold senders now: the processor ends when the last source does.
        drop(batch_sender);

        let processor = Processor {
            engine,
            dead_letters: DeadLetterWriter::new(
                config.dead_letter_path(),
                config.dead_letter.max_raw_bytes,
            ),
            sinks: sink_senders,
            metrics: Arc::clone(&metrics),
            snapshot_path,
            snapshot_every: config.detect.snapshot_interval,
            engine_settings,
            max_clock_skew: chrono::Duration::from_std(config.detect.max_clock_skew)
                .unwrap_or(chrono::Duration::MAX),
            scanner: background_scanner(&config.detect),
            ip_masking: config.privacy.ip_masking(),
        };
        drop(own_alert_sender);
        let processor_handle = tokio::spawn(processor.run(batch_receiver, reloads, own_alerts));
        let sink_handles: Vec<_> = sink_tasks
            .into_iter()
            .map(|(name, task)| (name, tokio::spawn(task)))
            .collect();

        for (name, handle) in source_handles {
            match handle.await {
                Ok(Ok(())) => tracing::debug!(source = %name, "Source finished."),
                Ok(Err(error)) => {
                    tracing::error!(source = %name, %error, "Source stopped with an error.")
                }
                Err(error) => tracing::error!(source = %name, %error, "Source task failed."),
            }
        }
        if let Err(error) = processor_handle.await {
            tracing::error!(%error, "Processor task failed.");
        }
        for (name, handle) in sink_handles {
            match handle.await {
                Ok(Ok(())) => tracing::debug!(sink = %name, "Sink finished."),
                Ok(Err(error)) => {
                    tracing::error!(sink = %name, %error, "Sink stopped with an error.")
                }
                Err(error) => tracing::error!(sink = %name, %error, "Sink task failed."),
            }
        }
        Ok(())
    }
}

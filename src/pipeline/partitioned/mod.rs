//! The detector tier: `kafka` sources with `state = "partitioned"` get one detection engine per
//! assigned partition, instead of the agent's one engine.
//!
//! ```text
//!                       ┌─ partition 0 ─► Processor (own Engine) ─┐
//! kafka member thread ──┼─ partition 3 ─► Processor (own Engine) ─┼──SinkBatch──► sinks
//!   (commits offsets)   └─ partition 7 ─► Processor (own Engine) ─┘
//!           ▲                                                          │
//!           └──────────────── AckToken: delivered by every sink ◄──────┘
//! ```
//!
//! Kafka places the records: the edge agents key them by user, so all of a user's (and hence a
//! session's) records are in one partition, and a partition has one member at a time. On
//! assignment the owner restores the partition's snapshot from the state topic and replays any
//! gap up to the committed offset without output; on revocation the member thread has already
//! waited for every acknowledgement and committed, and the owner closes the partition's
//! processor (which drains and snapshots) and writes the snapshot to the state topic. A
//! partition's windows and event-time clock are its own, so a lagging partition is never judged
//! late against a faster one.

mod reloads;
mod state;

pub use state::{Ownership, PartitionState, Saved, StateStore};

use super::processor::Processor;
use super::{rules, snapshot, watch_source, Pipeline, PipelineError, Shutdown};
use crate::dead_letter::DeadLetterWriter;
use crate::detect::{Engine, EngineSettings};
use crate::enrich::scan::Scanner;
use crate::record::{AgentInfo, Alert};
use crate::sinks::SinkBatch;
use crate::sources::kafka::{KafkaSourceConfig, PartitionOwner, StateMode, TopicPartition};
use crate::sources::{SourceBatch, SourceConfig, SourceContext};
use crate::telemetry::Metrics;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Whether a configuration runs the detector tier (a `kafka` source with per-partition state).
pub fn is_detector(config: &crate::config::Config) -> bool {
    config.sources.values().any(|source| {
        matches!(source, SourceConfig::Kafka(kafka) if kafka.state == StateMode::Partitioned)
    })
}

/// What it takes to start one partition's processor.
struct ProcessorFactory {
    config: crate::config::Config,
    engine_settings: EngineSettings,
    sinks: Vec<mpsc::Sender<SinkBatch>>,
    metrics: Arc<Metrics>,
    scanner: Option<(Arc<OnceLock<Scanner>>, Vec<String>)>,
    /// Where SIGHUP and the rules-file watch reach each partition's processor.
    reloads: Arc<reloads::PartitionReloads>,
}

impl ProcessorFactory {
    /// A fresh engine with the configured rules (read again, so a partition assigned after a
    /// rules change gets the new rules).
    fn engine(&self) -> Engine {
        match rules::load_detection(&self.config.detect) {
            Ok(detection) => Engine::new(
                detection.rules,
                detection.entitlements,
                self.engine_settings.clone(),
            )
            .with_calendars(detection.calendars),
            Err(error) => {
                // The rules loaded at start; a file broken since must not stop the partition.
                tracing::error!(%error, "Cannot load the rules for a partition; it runs without rules until the files are fixed and it is reassigned.");
                Engine::new(
                    Default::default(),
                    Default::default(),
                    self.engine_settings.clone(),
                )
            }
        }
    }

    fn partition_file(&self, partition: &TopicPartition, what: &str, extension: &str) -> PathBuf {
        let name = format!(
            "{what}-{}-{}.{extension}",
            sanitise(&partition.topic),
            partition.partition
        );
        self.config.agent.state_dir.join("partitions").join(name)
    }

    /// A processor for `partition` whose engine starts from the snapshot file; `with_sinks`
    /// false makes a replay processor (detection only, nothing delivered).
    fn processor(&self, partition: &TopicPartition, with_sinks: bool) -> Processor {
        let snapshot_path = self.partition_file(partition, "detection-state", "json");
        let mut engine = self.engine();
        snapshot::restore(&mut engine, &snapshot_path);
        let dead_letter_path = if with_sinks {
            self.partition_file(partition, "dead_letter", "jsonl")
        } else {
            // Replayed lines were dead-lettered when first read; keep the replay's apart.
            self.partition_file(partition, "replay-dead_letter", "jsonl")
        };
        Processor {
            engine,
            scanner: self.scanner.clone(),
            dead_letters: DeadLetterWriter::new(
                dead_letter_path,
                self.config.dead_letter.max_raw_bytes,
            ),
            sinks: if with_sinks {
                self.sinks.clone()
            } else {
                Vec::new()
            },
            metrics: Arc::clone(&self.metrics),
            snapshot_path,
            snapshot_every: self.config.detect.snapshot_interval,
            engine_settings: self.engine_settings.clone(),
            max_clock_skew: chrono::Duration::from_std(self.config.detect.max_clock_skew)
                .unwrap_or(chrono::Duration::MAX),
            ip_masking: self.config.privacy.ip_masking(),
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of a map of handles; the map
/// itself is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

fn sanitise(topic: &str) -> String {
    topic
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Runs one engine per partition for a `kafka` source.
struct PartitionedOwner {
    source: Arc<str>,
    format: crate::decode::Format,
    runtime: tokio::runtime::Handle,
    factory: Arc<ProcessorFactory>,
    store: StateStore,
    live: Mutex<HashMap<TopicPartition, JoinHandle<()>>>,
    /// What `acquire` read from the state topic, for the `assigned` call that follows it.
    acquired: Mutex<HashMap<TopicPartition, Saved>>,
    /// This process's name in owner records.
    member: String,
    /// Longest wait for a previous owner's release: the group's session timeout, after which
    /// an owner that has not let go is gone.
    handover_wait: std::time::Duration,
}

impl PartitionedOwner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TopicPartition, JoinHandle<()>>> {
        lock(&self.live)
    }

    /// Put the partition's saved state in its snapshot file and replay any gap up to
    /// `committed` through a processor without sinks.
    fn restore(&self, partition: &TopicPartition, saved: Saved, committed: Option<i64>) {
        let path = self
            .factory
            .partition_file(partition, "detection-state", "json");
        if let Some(parent) = path.parent() {
            if let Err(error) = std::fs::create_dir_all(parent) {
                tracing::error!(path = %parent.display(), %error, "Cannot create the partition state directory.");
            }
        }
        // Only the state topic is authoritative: a local file may be an older owner's.
        let _ = std::fs::remove_file(&path);
        let saved = saved.state;
        // A snapshot is usable only if it does not run ahead of where consumption resumes:
        // the group's offsets may have been reset or expired since it was written, and
        // restoring it would count its records twice. Without one, the partition's state is
        // rebuilt by replaying from its beginning.
        let saved = saved.filter(|saved| match committed {
            Some(resume) if saved.offset <= resume => true,
            _ => {
                tracing::warn!(partition = %partition, snapshot_offset = saved.offset, committed = ?committed, "The saved state is ahead of the group's offset; rebuilding it by replay instead.");
                false
            }
        });
        let mut replay_from = None;
        if let Some(saved) = saved {
            match serde_json::to_vec(&saved.snapshot) {
                Ok(bytes) => match std::fs::write(&path, bytes) {
                    Ok(()) => replay_from = Some(saved.offset),
                    Err(error) => {
                        tracing::error!(path = %path.display(), %error, "Cannot write the partition snapshot; rebuilding it by replay.");
                    }
                },
                Err(error) => tracing::error!(%error, "Cannot re-encode the partition snapshot."),
            }
        }
        let Some(until) = committed else {
            // A partition the group never committed: it is read from its start, which builds
            // the state as it goes.
            return;
        };
        if replay_from.is_some_and(|from| from >= until) {
            return;
        }
        let started = std::time::Instant::now();
        let processor = self.factory.processor(partition, false);
        let (sender, receiver) = mpsc::channel(4);
        let (_, reloads) = mpsc::channel(1);
        let (_, own_alerts) = mpsc::channel::<Alert>(1);
        let task = self
            .runtime
            .spawn(processor.run(receiver, reloads, own_alerts));
        let stream: Arc<str> = Arc::from(partition.to_string());
        let replayed = self
            .store
            .replay(partition, replay_from, until, &sender, |lines| {
                let (ack, _unobserved) = crate::pipeline::ack::batch_ack();
                SourceBatch {
                    source: Arc::clone(&self.source),
                    stream: Arc::clone(&stream),
                    format: self.format,
                    lines,
                    ack,
                    read_at: std::time::Instant::now(),
                }
            });
        drop(sender);
        // The replay processor saves its engine to the snapshot file as it ends.
        if let Err(error) = self.runtime.block_on(task) {
            tracing::error!(partition = %partition, %error, "The replay processor failed.");
        }
        match replayed {
            Ok(records) => {
                tracing::info!(partition = %partition, from = ?replay_from, until, records, elapsed_ms = started.elapsed().as_millis() as u64, "Partition state rebuilt by replay.")
            }
            Err(error) => {
                tracing::error!(partition = %partition, %error, "Replay incomplete; the partition's windows may miss history.")
            }
        }
    }
}

impl PartitionOwner for PartitionedOwner {
    fn acquire(&self, partition: &TopicPartition) {
        let deadline = std::time::Instant::now() + self.handover_wait;
        let saved = match self.store.load(partition, Some((&self.member, deadline))) {
            Ok(saved) => saved,
            Err(error) => {
                tracing::error!(partition = %partition, %error, "Cannot read the partition's saved state; rebuilding it by replay.");
                Saved::default()
            }
        };
        let claim = Ownership {
            member: self.member.clone(),
            released: false,
        };
        if let Err(error) = self.store.save_owner(partition, &claim) {
            tracing::warn!(partition = %partition, %error, "Cannot record this member's claim on the partition.");
        }
        lock(&self.acquired).insert(partition.clone(), saved);
    }

    fn assigned(
        &self,
        partition: &TopicPartition,
        committed: Option<i64>,
    ) -> mpsc::Sender<SourceBatch> {
        let saved = lock(&self.acquired).remove(partition).unwrap_or_default();
        self.restore(partition, saved, committed);
        let processor = self.factory.processor(partition, true);
        let (sender, receiver) = mpsc::channel(self.factory.config.agent.channel_capacity);
        let reloads = self.factory.reloads.register(&self.source, partition);
        let (_, own_alerts) = mpsc::channel::<Alert>(1);
        let task = self
            .runtime
            .spawn(processor.run(receiver, reloads, own_alerts));
        self.lock().insert(partition.clone(), task);
        sender
    }

    fn released(&self, partition: &TopicPartition, committed: Option<i64>, lost: bool) {
        self.factory.reloads.remove(&self.source, partition);
        let Some(task) = self.lock().remove(partition) else {
            return;
        };
        self.save_state(partition, task, committed);
        if lost {
            // Another member holds it already; a release written now would stand for theirs.
            return;
        }
        let release = Ownership {
            member: self.member.clone(),
            released: true,
        };
        if let Err(error) = self.store.save_owner(partition, &release) {
            tracing::warn!(partition = %partition, %error, "Cannot record the release; the next owner waits out the session timeout.");
        }
    }
}

impl PartitionedOwner {
    /// Wait for the partition's processor to drain and save its engine, then write that
    /// snapshot to the state topic for `committed` (none: keep the previous one).
    fn save_state(&self, partition: &TopicPartition, task: JoinHandle<()>, committed: Option<i64>) {
        // The member dropped the partition's sender: the processor drains and saves its engine.
        if let Err(error) = self.runtime.block_on(task) {
            tracing::error!(partition = %partition, %error, "The partition's processor failed.");
            return;
        }
        let path = self
            .factory
            .partition_file(partition, "detection-state", "json");
        let Some(offset) = committed else {
            // Without a commit the snapshot would run ahead of the group: keep the previous one,
            // and the next owner replays from it.
            return;
        };
        let snapshot = std::fs::read(&path)
            .map_err(|error| error.to_string())
            .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()));
        match snapshot {
            Ok(snapshot) => {
                let state = PartitionState {
                    version: 1,
                    offset,
                    snapshot,
                };
                match self.store.save(partition, &state) {
                    Ok(()) => {
                        tracing::info!(partition = %partition, offset, "Partition state saved to the state topic.")
                    }
                    Err(error) => {
                        tracing::error!(partition = %partition, %error, "Cannot save the partition state; the next owner replays.")
                    }
                }
            }
            Err(error) => {
                tracing::error!(partition = %partition, %error, "Cannot read the partition snapshot; the next owner replays.")
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

impl Pipeline {
    /// Run as configured: the detector tier when a `kafka` source keeps per-partition state,
    /// otherwise [`Pipeline::run`].
    pub async fn run_for_role(self, shutdown: Shutdown) -> Result<(), PipelineError> {
        if is_detector(&self.config) {
            self.run_detector(shutdown).await
        } else {
            self.run(shutdown).await
        }
    }

    /// The detector tier: per-partition processors behind every `kafka` source (other sources
    /// are refused by validation), the configured sinks, and alerts about the agent itself.
    async fn run_detector(self, shutdown: Shutdown) -> Result<(), PipelineError> {
        let Pipeline {
            config,
            metrics,
            extra_sources: _,
            reloads,
            reload_sender,
        } = self;
        // Only the handles given out (SIGHUP, the rules-file watch) keep the channel open.
        drop(reload_sender);
        std::fs::create_dir_all(config.agent.state_dir.join("partitions")).map_err(|source| {
            PipelineError::StateDir {
                path: config.agent.state_dir.display().to_string(),
                source,
            }
        })?;
        // Fail at start, not at the first assignment, on broken rules.
        rules::load_detection(&config.detect)?;
        let agent = AgentInfo::local(config.agent.hostname.as_deref());
        let engine_settings = EngineSettings {
            agent: agent.clone(),
            deployment: config.agent.deployment_tag.clone(),
            allowed_lateness: config.detect.allowed_lateness,
            max_entities_per_rule: config.detect.max_entities_per_rule,
            evidence_sample: config.detect.evidence_sample,
        };
        let (own_alert_sender, own_alerts) = mpsc::channel(16);
        let (sink_senders, sink_tasks) =
            super::build_sinks(&config, &metrics, &shutdown, &agent, &own_alert_sender)?;
        let sink_handles: Vec<_> = sink_tasks
            .into_iter()
            .map(|(name, task)| (name, tokio::spawn(task)))
            .collect();
        drop(own_alert_sender);
        let sources_done = tokio_util::sync::CancellationToken::new();
        let own_alerts_task = tokio::spawn(forward_own_alerts(
            own_alerts,
            sink_senders.clone(),
            sources_done.clone(),
        ));

        let scanner = super::background_scanner(&config.detect);
        let partition_reloads = Arc::new(reloads::PartitionReloads::default());
        let reload_task = tokio::spawn(reloads::fan_out(
            reloads,
            Arc::clone(&partition_reloads),
            config.detect.clone(),
        ));
        let factory = Arc::new(ProcessorFactory {
            config: config.clone(),
            engine_settings,
            sinks: sink_senders,
            metrics: Arc::clone(&metrics),
            scanner,
            reloads: partition_reloads,
        });

        // Validation admits only partitioned kafka sources beside a detector one
        // (`check_detector_sources`); this channel only satisfies the context's type.
        let (unused_sender, _unused) = mpsc::channel::<SourceBatch>(1);
        let mut source_handles = Vec::new();
        for (name, source) in &config.sources {
            let SourceConfig::Kafka(kafka) = source else {
                tracing::error!(source = %name, "The detector tier reads only partitioned kafka sources; this one is not started.");
                continue;
            };
            let kafka: KafkaSourceConfig = (**kafka).clone();
            let owner = detector_owner(name, &kafka, &factory).await?;
            let context = SourceContext {
                name: Arc::from(name.as_str()),
                out: unused_sender.clone(),
                shutdown: shutdown.intake.clone(),
                state_dir: config.agent.state_dir.clone(),
                metrics: Arc::clone(&metrics),
            };
            let task: crate::sources::SourceTask =
                Box::pin(crate::sources::kafka::run_with_owner(kafka, context, owner));
            source_handles.push((
                name.clone(),
                tokio::spawn(watch_source(name, task, &metrics)),
            ));
        }
        drop(unused_sender);
        // The factory holds sink senders: once the sources end, every partition processor has
        // ended too (each was released), and dropping it lets the sinks drain and stop.
        drop(factory);

        for (name, handle) in source_handles {
            match handle.await {
                Ok(Ok(())) => tracing::debug!(source = %name, "Source finished."),
                Ok(Err(error)) => {
                    tracing::error!(source = %name, %error, "Source stopped with an error.")
                }
                Err(error) => tracing::error!(source = %name, %error, "Source task failed."),
            }
        }
        sources_done.cancel();
        reload_task.abort();
        let _ = own_alerts_task.await;
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

/// The owner for one partitioned `kafka` source: its state store (topic created if missing).
async fn detector_owner(
    name: &str,
    kafka: &KafkaSourceConfig,
    factory: &Arc<ProcessorFactory>,
) -> Result<Arc<dyn PartitionOwner>, PipelineError> {
    let state_error = |error: crate::kafka::KafkaError| PipelineError::Sink {
        name: format!("{name} (state topic)"),
        source: crate::sinks::SinkError::Config(error.to_string()),
    };
    let store = StateStore::new(&kafka.connection(), &kafka.state_topic()).map_err(state_error)?;
    if let Err(error) = store.ensure_topic(kafka.state_replication).await {
        tracing::warn!(source = %name, %error, "Cannot create the state topic; assuming it exists.");
    }
    Ok(Arc::new(PartitionedOwner {
        source: Arc::from(name),
        format: kafka.format.configure(&kafka.mapping, &kafka.decode),
        runtime: tokio::runtime::Handle::current(),
        factory: Arc::clone(factory),
        store,
        live: Mutex::new(HashMap::new()),
        acquired: Mutex::new(HashMap::new()),
        member: format!(
            "{}-{}-{}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
        handover_wait: kafka.session_timeout,
    }))
}

/// Alerts the sinks raise about themselves (a full queue) go to every sink; nothing waits to
/// commit on them.
async fn forward_own_alerts(
    mut alerts: mpsc::Receiver<Alert>,
    sinks: Vec<mpsc::Sender<SinkBatch>>,
    sources_done: tokio_util::sync::CancellationToken,
) {
    loop {
        let alert = tokio::select! {
            _ = sources_done.cancelled() => break,
            alert = alerts.recv() => alert,
        };
        let Some(alert) = alert else { break };
        super::processor::send_to_every_sink(&sinks, alert).await;
    }
}

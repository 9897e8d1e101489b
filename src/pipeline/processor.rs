//! The processor: decode each line, dead-letter what cannot be used, run detection, and hand
//! the resulting events and alerts to every sink.
//!
//! Two stages joined by a bounded channel of batches, so that both cores work: the decode stage
//! (`decode_stage.rs`: decode, dead-letter, content scan) on a thread of its own, and the detect
//! stage here (detection, alert latency, fan-out, snapshots, reloads). Each stage takes batches
//! in order, so the records of a source reach detection and the sinks in the order they were
//! read. A batch's token is settled by the detect stage once every sink has its share.

use super::decode_stage::{DecodeStage, DecodedBatch};
use super::rules::Detection;
use crate::dead_letter::DeadLetterWriter;
use crate::detect::{Engine, EngineSettings};
use crate::enrich::scan::Scanner;
use crate::privacy::IpMasking;
use crate::record::{Alert, Output};
use crate::sinks::SinkBatch;
use crate::sources::SourceBatch;
use crate::telemetry::Metrics;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

pub(super) struct Processor {
    pub engine: Engine,
    /// The content scanner (compiled in the background at start) and the system-prompt
    /// canaries, when scanning is on.
    pub scanner: Option<(Arc<OnceLock<Scanner>>, Vec<String>)>,
    pub dead_letters: DeadLetterWriter,
    pub sinks: Vec<mpsc::Sender<SinkBatch>>,
    pub metrics: Arc<Metrics>,
    /// Where detection state is saved, and how often.
    pub snapshot_path: std::path::PathBuf,
    pub snapshot_every: std::time::Duration,
    /// For rebuilding the engine on a reload.
    pub engine_settings: EngineSettings,
    /// Events stamped further ahead of the wall clock are kept out of detection.
    pub max_clock_skew: chrono::Duration,
    /// `[privacy]`'s IP masking, which every sink applies: done once here, after detection.
    pub ip_masking: IpMasking,
}

impl Processor {
    /// Run both stages until every source has ended: decoding on a thread of its own
    /// ([`DecodeStage`]), detection and fan-out here. Batches keep their order through both.
    pub async fn run(
        self,
        batches: mpsc::Receiver<SourceBatch>,
        reloads: mpsc::Receiver<Detection>,
        own_alerts: mpsc::Receiver<Alert>,
    ) {
        let Processor {
            engine,
            scanner,
            dead_letters,
            sinks,
            metrics,
            snapshot_path,
            snapshot_every,
            engine_settings,
            max_clock_skew,
            ip_masking,
        } = self;
        let decode_stage = DecodeStage {
            scanner,
            dead_letters,
            metrics: Arc::clone(&metrics),
        };
        let (decoded, crashed) = match decode_stage.spawn(batches) {
            Ok(started) => started,
            Err(error) => {
                // Without the thread nothing can be decoded; the sources see their batches fail.
                tracing::error!(%error, "Cannot start the decode thread.");
                return;
            }
        };
        let mut detect = DetectStage {
            engine,
            sinks,
            metrics,
            snapshot_path,
            snapshot_every,
            engine_settings,
            max_clock_skew,
            ip_masking,
        };
        detect.run(decoded, reloads, own_alerts).await;
        if crashed.happened() {
            // Batches after the crash were never processed: the state is not a drained one.
            tracing::error!("The decode thread failed; the detection state is not saved.");
        } else {
            // Drained: everything read has been processed, so the state matches the checkpoints.
            detect.save_snapshot();
        }
    }
}

/// The second half of the processor: detection over decoded batches, then fan-out to the sinks.
struct DetectStage {
    engine: Engine,
    sinks: Vec<mpsc::Sender<SinkBatch>>,
    metrics: Arc<Metrics>,
    snapshot_path: std::path::PathBuf,
    snapshot_every: std::time::Duration,
    engine_settings: EngineSettings,
    max_clock_skew: chrono::Duration,
    ip_masking: IpMasking,
}

impl DetectStage {
    async fn run(
        &mut self,
        mut batches: mpsc::Receiver<DecodedBatch>,
        mut reloads: mpsc::Receiver<Detection>,
        mut own_alerts: mpsc::Receiver<Alert>,
    ) {
        let mut last_snapshot = std::time::Instant::now();
        let mut gauges_at: Option<std::time::Instant> = None;
        let mut alerts = Vec::new();
        loop {
            let batch = tokio::select! {
                batch = batches.recv() => batch,
                Some(detection) = reloads.recv() => {
                    self.swap_rules(detection);
                    continue;
                }
                Some(alert) = own_alerts.recv() => {
                    self.send_own_alert(alert).await;
                    continue;
                }
            };
            let Some(batch) = batch else { break };
            let DecodedBatch {
                source,
                stream,
                records,
                ack,
                read_at,
                dead_letter_failed,
            } = batch;
            let mut items = Vec::with_capacity(records.len() + records.len() / 8);
            // Only the pipeline reads the wall clock; detection itself runs on event time.
            let horizon = chrono::Utc::now()
                .checked_add_signed(self.max_clock_skew)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let mut future = 0u64;
            for mut record in records {
                if record.timestamp > horizon {
                    // Forwarded as it is, but it must not move event time.
                    future += 1;
                } else {
                    self.engine.process(&record, &mut alerts);
                }
                // Detection has seen the real address; every sink would mask it the same way,
                // each on a copy of the record. Masked here, in the one record they share, the
                // sinks' own masking finds nothing left to change and copies nothing. (The Arc
                // is the decode stage's only one; were it shared, the sinks still mask.)
                if let Some(unique) = Arc::get_mut(&mut record) {
                    self.ip_masking.mask_in_place(&mut unique.ip_address);
                }
                items.push(Output::Event(record));
                if !alerts.is_empty() {
                    let latency = read_at.elapsed();
                    self.metrics.record_latencies(
                        "ingest_to_alert_latency",
                        Vec::new(),
                        alerts.iter().map(|_| latency),
                    );
                }
                for alert in alerts.drain(..) {
                    self.metrics
                        .alert_raised(&alert.rule_id, alert.severity.as_str());
                    items.push(Output::Alert(Arc::new(alert)));
                }
            }
            if future > 0 {
                self.metrics.future_events(&source, future);
                tracing::warn!(source = %source, stream = %stream, records = future, "Records stamped in the future beyond detect.max_clock_skew: forwarded, kept out of detection.");
            }
            self.metrics.late_events(self.engine.take_late_events());
            // Entity counts change slowly; refreshing them once a second spares every batch the
            // walk over the rules and the label strings.
            if gauges_at.is_none_or(|at: std::time::Instant| {
                at.elapsed() >= std::time::Duration::from_secs(1)
            }) {
                gauges_at = Some(std::time::Instant::now());
                self.refresh_gauges();
            }

            let items = Arc::new(items);
            for sink in &self.sinks {
                // A sink that has stopped (aborting) drops its share: the batch is not committed.
                let _ = sink
                    .send(SinkBatch {
                        items: Arc::clone(&items),
                        ack: ack.clone(),
                        read_at,
                    })
                    .await;
            }
            if dead_letter_failed {
                ack.failed();
            } else {
                ack.delivered();
            }
            if last_snapshot.elapsed() >= self.snapshot_every {
                self.save_snapshot();
                last_snapshot = std::time::Instant::now();
            }
        }
    }

    fn refresh_gauges(&self) {
        for rule in self.engine.stats().rules {
            let labels = vec![("rule", rule.rule_id)];
            self.metrics
                .set_gauge("tracked_entities", labels.clone(), rule.entities as i64);
            self.metrics
                .set_gauge("refused_entities", labels, rule.refused_entities as i64);
        }
    }

    /// An alert the agent raises about itself (a sink's full queue): to every sink. Nothing
    /// waits to commit on it, so its token's outcome goes nowhere.
    async fn send_own_alert(&self, alert: Alert) {
        self.metrics
            .alert_raised(&alert.rule_id, alert.severity.as_str());
        send_to_every_sink(&self.sinks, alert).await;
    }

    /// New rules in, window state kept for every rule whose logic did not change.
    fn swap_rules(&mut self, detection: Detection) {
        let snapshot = self.engine.snapshot();
        let mut engine = Engine::new(
            detection.rules,
            detection.entitlements,
            self.engine_settings.clone(),
        )
        .with_calendars(detection.calendars);
        let report = engine.restore(snapshot);
        self.engine = engine;
        tracing::info!(
            rules_with_state_kept = report.rules,
            entities = report.entities,
            changed_or_removed = ?report.skipped_rules,
            "Rules reloaded; unchanged rules keep their state."
        );
    }

    fn save_snapshot(&self) {
        if let Err(error) = super::snapshot::save(&self.engine, &self.snapshot_path) {
            tracing::error!(path = %self.snapshot_path.display(), %error, "Cannot save the detection state; retrying at the next interval.");
        }
    }
}
/// Hand one of the agent's own alerts to every sink. No source waits to commit on it, so its
/// token's outcome goes nowhere; a sink that has stopped simply misses it.
pub(super) async fn send_to_every_sink(sinks: &[mpsc::Sender<SinkBatch>], alert: Alert) {
    let (ack, _unobserved) = crate::pipeline::ack::batch_ack();
    let items = Arc::new(vec![Output::Alert(Arc::new(alert))]);
    for sink in sinks {
        let _ = sink
            .send(SinkBatch {
                items: Arc::clone(&items),
                ack: ack.clone(),
                read_at: std::time::Instant::now(),
            })
            .await;
    }
    ack.delivered();
}

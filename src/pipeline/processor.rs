//! The processor stage: decode each line, dead-letter what cannot be used, run detection, and
//! hand the resulting events and alerts to every sink.

use super::rules::Detection;
use crate::dead_letter::{DeadLetter, DeadLetterWriter};
use crate::decode::{self, DecodeError, Reason};
use crate::detect::{Engine, EngineSettings};
use crate::enrich::apply_scan;
use crate::enrich::scan::Scanner;
use crate::record::{Alert, Output};
use crate::sinks::SinkBatch;
use crate::sources::{LineData, SourceBatch};
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
}

impl Processor {
    pub async fn run(
        mut self,
        mut batches: mpsc::Receiver<SourceBatch>,
        mut reloads: mpsc::Receiver<Detection>,
        mut own_alerts: mpsc::Receiver<Alert>,
    ) {
        let mut last_snapshot = std::time::Instant::now();
        let mut gauges_at: Option<std::time::Instant> = None;
        let mut decoded = Vec::new();
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
            let SourceBatch {
                source,
                stream,
                format,
                lines,
                ack,
                read_at,
            } = batch;
            let mut items = Vec::with_capacity(lines.len());
            // Only the pipeline reads the wall clock; detection itself runs on event time.
            let horizon = chrono::Utc::now()
                .checked_add_signed(self.max_clock_skew)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
            let mut future = 0u64;
            let mut records = 0u64;
            let mut dead_letter_failed = false;
            for line in lines {
                let mut dead_letter = |error: &DecodeError, raw: &[u8]| {
                    self.metrics.dead_lettered(&source, error.reason.as_str());
                    let written = self.dead_letters.write(&DeadLetter {
                        source: &source,
                        stream: &stream,
                        offset: line.offset,
                        reason: error.reason.as_str(),
                        detail: &error.detail,
                        raw,
                    });
                    if let Err(io_error) = written {
                        tracing::error!(path = %self.dead_letters.path().display(), error = %io_error, "Cannot write the dead-letter file.");
                        dead_letter_failed = true;
                    }
                };
                match &line.data {
                    LineData::TooLong { length, prefix } => {
                        let error = DecodeError::new(
                            Reason::LineTooLong,
                            format!(
                                "line of {length} bytes is longer than the source's max_line_bytes"
                            ),
                        );
                        dead_letter(&error, prefix);
                    }
                    LineData::Complete(bytes) => {
                        decode::decode(format, bytes, &mut decoded);
                        for result in decoded.drain(..) {
                            match result {
                                Ok(mut record) => {
                                    records += 1;
                                    let has_text = record.prompt_raw.is_some()
                                        || record.response_raw.is_some();
                                    if let Some((scanner, markers)) =
                                        self.scanner.as_ref().filter(|_| has_text)
                                    {
                                        // Waits only if the background compile is still running.
                                        let scanner = scanner.get_or_init(Scanner::builtin);
                                        if apply_scan(scanner, markers, &mut record) {
                                            self.metrics.content_flagged(&source);
                                        }
                                    }
                                    if record.timestamp > horizon {
                                        // Forwarded as it is, but it must not move event time.
                                        future += 1;
                                    } else {
                                        self.engine.process(&record, &mut alerts);
                                    }
                                    items.push(Output::Event(Arc::new(record)));
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
                                Err(error) => dead_letter(&error, bytes),
                            }
                        }
                    }
                }
            }
            self.metrics.records_decoded(&source, records);
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
                for rule in self.engine.stats().rules {
                    let labels = vec![("rule", rule.rule_id)];
                    self.metrics.set_gauge(
                        "tracked_entities",
                        labels.clone(),
                        rule.entities as i64,
                    );
                    self.metrics.set_gauge(
                        "refused_entities",
                        labels,
                        rule.refused_entities as i64,
                    );
                }
            }
            if let Err(error) = self.dead_letters.flush() {
                tracing::error!(path = %self.dead_letters.path().display(), %error, "Cannot flush the dead-letter file.");
                dead_letter_failed = true;
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
        // Drained: everything read has been processed, so the state matches the checkpoints.
        self.save_snapshot();
    }

    /// An alert the agent raises about itself (a sink's full queue): to every sink. Nothing
    /// waits to commit on it, so its token's outcome goes nowhere.
    async fn send_own_alert(&self, alert: Alert) {
        self.metrics
            .alert_raised(&alert.rule_id, alert.severity.as_str());
        let (ack, _unobserved) = crate::pipeline::ack::batch_ack();
        let items = Arc::new(vec![Output::Alert(Arc::new(alert))]);
        for sink in &self.sinks {
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

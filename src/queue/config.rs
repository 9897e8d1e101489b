//! A sink's queue settings: `[sinks.<name>.queue]`.

use serde::{Deserialize, Serialize};

/// Where records wait between intake and delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// `disk` (default: survives a SIEM outage and a crash) or `memory`.
    #[serde(rename = "type", default)]
    pub kind: QueueKind,
    /// Most bytes on disk before `when_full` applies (default 256 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// `block` (default: the sources wait) or `drop_newest` (counted, and an alert is raised).
    #[serde(default)]
    pub when_full: WhenFull,
    /// `batch` (default: each intake batch is fsync'd before its source may commit) or `none`.
    #[serde(default)]
    pub fsync: Fsync,
    /// Size at which a segment file is closed and a new one begun (default 8 MiB).
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
}

/// The kind of queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// Segment files under `<state_dir>/queue/<sink>/`.
    #[default]
    Disk,
    /// The channel only: a record is acknowledged to its source when the SIEM accepts it.
    Memory,
}

/// What happens to new records when the queue is full.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for space: the sources stop reading (and the receivers answer 429) until the SIEM
    /// drains the queue. Nothing is lost.
    #[default]
    Block,
    /// Drop the new records (counted in `sink_queue_dropped_records_total`, logged, and one
    /// `aiwarden-queue-full` alert per episode to the other sinks).
    DropNewest,
}

/// When queued bytes are forced to the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// `fdatasync` after each intake batch, before the source is told its records are safe:
    /// nothing acknowledged is lost on a crash or a power cut.
    #[default]
    Batch,
    /// Leave it to the kernel: nothing acknowledged is lost if the agent crashes or is killed,
    /// but a power cut can lose the last seconds the kernel had not written back.
    None,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            kind: QueueKind::default(),
            max_bytes: default_max_bytes(),
            when_full: WhenFull::default(),
            fsync: Fsync::default(),
            segment_bytes: default_segment_bytes(),
        }
    }
}

impl QueueConfig {
    /// Check the limits; the error is the key (relative to the sink) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.max_bytes < 1024 * 1024 {
            return Err(("queue.max_bytes".into(), "must be at least 1 MiB".into()));
        }
        // The segment being written is kept until the next one begins, delivered or not: at a
        // quarter of the limit at most, it can never make the queue look full on its own.
        if self.segment_bytes < 64 * 1024 || self.segment_bytes > self.max_bytes / 4 {
            return Err((
                "queue.segment_bytes".into(),
                "must be at least 64 KiB and at most a quarter of queue.max_bytes".into(),
            ));
        }
        Ok(())
    }
}

fn default_max_bytes() -> u64 {
    256 * 1024 * 1024
}

fn default_segment_bytes() -> u64 {
    8 * 1024 * 1024
}

//! Configuration of the `file` source.

use crate::config::duration;
use crate::decode::{DecodeOptions, Format, Mapping};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tail JSON-lines files matched by glob patterns.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Glob patterns of the files to read, e.g. `["/var/log/llm-gateway/*.jsonl"]`.
    pub include: Vec<String>,
    /// Glob patterns of files to leave alone even when `include` matches them.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Where to start in a file seen for the first time at startup: `beginning` or `end`.
    /// Files that appear while running (e.g. after rotation) are always read from the beginning.
    #[serde(default)]
    pub start_at: StartAt,
    /// The format of the lines.
    #[serde(default)]
    pub format: Format,
    /// Field renames into the canonical record: `[sources.<name>.mapping]`.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub mapping: Mapping,
    /// Format-specific decoding settings: `[sources.<name>.decode]`.
    #[serde(default, skip_serializing_if = "DecodeOptions::is_default")]
    pub decode: DecodeOptions,
    /// Lines longer than this many bytes are dead-lettered and skipped.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// How often to look for new data when no file-system notification arrives.
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// How often to re-evaluate the glob patterns for new files.
    #[serde(default = "default_glob_interval", with = "duration")]
    pub glob_interval: Duration,
    /// Bytes at the start of a file that identify it together with device and inode.
    #[serde(default = "default_fingerprint_bytes")]
    pub fingerprint_bytes: usize,
    /// Most lines per batch sent down the pipeline.
    #[serde(default = "default_max_batch_lines")]
    pub max_batch_lines: usize,
    /// How long a rotated-away file is still drained after its path points elsewhere.
    #[serde(default = "default_rotate_wait", with = "duration")]
    pub rotate_wait: Duration,
}

/// Where reading starts in a file with no checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Read the whole file.
    #[default]
    Beginning,
    /// Only lines appended after startup.
    End,
}

/// 1 MiB.
pub fn default_max_line_bytes() -> usize {
    1024 * 1024
}

fn default_poll_interval() -> Duration {
    Duration::from_millis(250)
}

fn default_glob_interval() -> Duration {
    Duration::from_secs(1)
}

fn default_fingerprint_bytes() -> usize {
    256
}

fn default_max_batch_lines() -> usize {
    1000
}

fn default_rotate_wait() -> Duration {
    Duration::from_secs(5)
}

impl FileSourceConfig {
    /// Check what serde cannot: the key (relative to the source) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.include.is_empty() {
            return Err((
                "include".into(),
                "at least one glob pattern is required".into(),
            ));
        }
        for (key, patterns) in [("include", &self.include), ("exclude", &self.exclude)] {
            for pattern in patterns.iter() {
                if let Err(error) = glob::Pattern::new(pattern) {
                    return Err((key.into(), format!("invalid glob `{pattern}`: {error}")));
                }
            }
        }
        if self.max_line_bytes < 64 {
            return Err(("max_line_bytes".into(), "must be at least 64".into()));
        }
        if self.fingerprint_bytes == 0 {
            return Err(("fingerprint_bytes".into(), "must be at least 1".into()));
        }
        if self.max_batch_lines == 0 {
            return Err(("max_batch_lines".into(), "must be at least 1".into()));
        }
        if self.poll_interval.is_zero() {
            return Err(("poll_interval".into(), "must be greater than zero".into()));
        }
        crate::decode::validate_settings(&self.mapping, &self.decode)
    }
}

//! Batching settings of the network sinks: `[sinks.<name>.batch]`.

use crate::config::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// When a batch is sent: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Most records per request.
    #[serde(default = "default_max_events")]
    pub max_events: usize,
    /// Most bytes per request body before compression.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Longest a record waits for its batch to fill.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
}

impl BatchConfig {
    /// Defaults with another byte limit (each SIEM has its own request limit).
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        BatchConfig {
            max_bytes,
            ..Self::default()
        }
    }

    /// Check the limits; the error is the key (relative to the sink) and the reason.
    pub fn validate(&self, hard_max_bytes: Option<usize>) -> Result<(), (String, String)> {
        if self.max_events == 0 {
            return Err(("batch.max_events".into(), "must be at least 1".into()));
        }
        if self.max_bytes < 1024 {
            return Err(("batch.max_bytes".into(), "must be at least 1024".into()));
        }
        if let Some(hard) = hard_max_bytes.filter(|hard| self.max_bytes > *hard) {
            return Err((
                "batch.max_bytes".into(),
                format!("must be at most {hard} for this SIEM"),
            ));
        }
        if self.timeout.is_zero() {
            return Err(("batch.timeout".into(), "must be greater than zero".into()));
        }
        Ok(())
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_events: default_max_events(),
            max_bytes: default_max_bytes(),
            timeout: default_timeout(),
        }
    }
}

fn default_max_events() -> usize {
    1000
}

fn default_max_bytes() -> usize {
    1_000_000
}

fn default_timeout() -> Duration {
    Duration::from_secs(1)
}

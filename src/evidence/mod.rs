//! Tamper-evident forwarding (SPEC §6): a hash chain per agent and sink, signed checkpoints, and
//! the verification of records exported back from the SIEMs.
//!
//! - [`canonical`]: what a record's hash covers, robust to how each SIEM re-prints values.
//! - [`chain`]: stamping (`seq`, `prev_hash`, `hash`, agent id) and the persisted head; the
//!   rule a caller must follow for crash safety is in its documentation.
//! - [`checkpoint`]: Ed25519-signed chain heads every N records or T seconds.
//! - [`export`]: reading Splunk, Elastic and Sentinel exports (JSON, JSON lines, CSV).
//! - [`verify`]: duplicates, gaps, alterations, broken links, forged checkpoints.
//! - [`SinkEvidence`]: the bundle a sink holds (chain, checkpoint clock, key).

pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod encoded;
pub mod export;
pub mod verify;

pub use chain::{Chain, Stamp, StampLocation, GENESIS_HASH, JSON_LINES_STAMP};
pub use checkpoint::{CheckpointBody, CheckpointClock, CheckpointPolicy, CheckpointSigner};
pub use verify::{ChainReport, Report, VerifyOptions};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why the evidence chain cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// Reading or writing state failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The persisted chain head cannot be trusted.
    #[error("the chain state {path} cannot be used ({reason}); move it away only if you accept a new chain")]
    CorruptState {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key file is not what it should be (never shows the key).
    #[error("{path}: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key file is readable by others, or missing.
    #[error(transparent)]
    Key(#[from] crate::privacy::KeyError),
    /// An encoded record is not in the shape its sink declared (a bug, not bad input).
    #[error("cannot stamp an encoded record: {0}")]
    Encoded(String),
    /// Evidence is on without a signing key.
    #[error("[evidence] enabled = true needs signing_key_file")]
    NoSigningKey,
}

/// Evidence settings: `[evidence]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Stamp every record a sink writes with `seq`, `prev_hash`, `hash` and the agent id, and
    /// add signed checkpoints, so `aiwarden verify` can prove the SIEM's copy complete and
    /// unaltered. Needs `signing_key_file`.
    #[serde(default)]
    pub enabled: bool,
    /// The Ed25519 checkpoint signing key (64 hex digits, mode 0600), made by
    /// `aiwarden keygen checkpoint`, which also prints the public key for auditors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    /// The agent id stamped into records; by default a random id made once and kept in
    /// `<state_dir>/evidence/agent_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// A checkpoint after this many records...
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// ...or this long after the previous one, whichever comes first.
    #[serde(
        default = "default_checkpoint_interval",
        with = "crate::config::duration"
    )]
    pub checkpoint_interval: Duration,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            enabled: false,
            signing_key_file: None,
            agent_id: None,
            checkpoint_every: default_checkpoint_every(),
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

fn default_checkpoint_every() -> u64 {
    1000
}
fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(60)
}

impl EvidenceConfig {
    /// Check what serde cannot: the key (relative to `[evidence]`) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.enabled && self.signing_key_file.is_none() {
            return Err((
                "signing_key_file".into(),
                "enabled = true needs a signing key (create one with `aiwarden keygen checkpoint`)"
                    .into(),
            ));
        }
        if self.checkpoint_every == 0 {
            return Err(("checkpoint_every".into(), "must be at least 1".into()));
        }
        if let Some(id) = &self.agent_id {
            if !crate::privacy::pseudonym::valid_key_id(id) {
                return Err((
                    "agent_id".into(),
                    "1 to 32 letters, digits, `-`, `_` or `.`".into(),
                ));
            }
        }
        Ok(())
    }

    /// The policy for checkpoints.
    pub fn policy(&self) -> CheckpointPolicy {
        CheckpointPolicy {
            every_records: self.checkpoint_every,
            every: self.checkpoint_interval,
        }
    }
}

/// The agent id: configured, or made once and kept in `<state_dir>/evidence/agent_id`.
pub fn agent_id(config: &EvidenceConfig, state_dir: &Path) -> Result<String, EvidenceError> {
    if let Some(id) = &config.agent_id {
        return Ok(id.clone());
    }
    let path = state_dir.join("evidence").join("agent_id");
    let io = |context: &str, source| EvidenceError::Io {
        context: format!("{context} {}", path.display()),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(io("reading", error)),
    }
    let id = uuid::Uuid::new_v4().to_string();
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("creating the directory of", e))?;
    }
    std::fs::write(&path, format!("{id}\n")).map_err(|e| io("writing", e))?;
    Ok(id)
}

/// What one sink holds to stamp its records: its chain, the checkpoint clock and the key.
#[derive(Debug)]
pub struct SinkEvidence {
    chain: Chain,
    clock: CheckpointClock,
    signer: Arc<CheckpointSigner>,
    location: StampLocation,
}

impl SinkEvidence {
    /// Open the chain of `sink` under `state_dir` (key and agent id from `config`).
    pub fn open(
        config: &EvidenceConfig,
        state_dir: &Path,
        sink: &str,
        location: StampLocation,
    ) -> Result<SinkEvidence, EvidenceError> {
        let key_path = config
            .signing_key_file
            .as_deref()
            .ok_or(EvidenceError::NoSigningKey)?;
        let signer = Arc::new(CheckpointSigner::load(key_path)?);
        let agent = agent_id(config, state_dir)?;
        Ok(SinkEvidence {
            chain: Chain::open(state_dir, sink, &agent)?,
            clock: CheckpointClock::new(config.policy()),
            signer,
            location,
        })
    }

    /// The longest time between checkpoints while records keep coming.
    pub fn checkpoint_interval(&self) -> Duration {
        self.clock.interval()
    }

    /// How long until the next checkpoint is due by time (`None`: nothing to sign), so a quiet
    /// stream's last records are signed `checkpoint_interval` after the previous checkpoint.
    pub fn next_checkpoint_in(&self, now: Instant) -> Option<Duration> {
        self.clock.due_in(&self.chain, now)
    }

    /// The chain (to recover it or read its head).
    pub fn chain_mut(&mut self) -> &mut Chain {
        &mut self.chain
    }

    /// Stamp one document.
    pub fn stamp(&mut self, document: &mut Map<String, Value>) -> Stamp {
        self.chain.stamp(document, self.location)
    }

    /// A signed checkpoint document when one is due, stamped into the chain.
    pub fn checkpoint_if_due(&mut self) -> Option<Map<String, Value>> {
        let now = Instant::now();
        if !self.clock.due(&self.chain, now) {
            return None;
        }
        self.clock.reset(now);
        Some(
            self.chain
                .checkpoint(&self.signer, chrono::Utc::now(), self.location),
        )
    }

    /// A signature of the head when a checkpoint is due (`force`: whenever anything was stamped
    /// since the last one); stamp the record holding it with [`SinkEvidence::stamp_checkpoint`].
    pub fn sign_head_if_due(&mut self, force: bool) -> Option<CheckpointBody> {
        let now = Instant::now();
        let due = if force {
            self.chain.since_checkpoint > 0
        } else {
            self.clock.due(&self.chain, now)
        };
        if !due {
            return None;
        }
        self.clock.reset(now);
        Some(self.chain.sign_head(&self.signer, chrono::Utc::now()))
    }

    /// Stamp a record holding a checkpoint body.
    pub fn stamp_checkpoint(
        &mut self,
        document: &mut Map<String, Value>,
        location: StampLocation,
    ) -> Stamp {
        self.chain.stamp_checkpoint(document, location)
    }

    /// A signed checkpoint of whatever was stamped since the last one (at shutdown).
    pub fn final_checkpoint(&mut self) -> Option<Map<String, Value>> {
        if self.chain.since_checkpoint == 0 {
            return None;
        }
        Some(
            self.chain
                .checkpoint(&self.signer, chrono::Utc::now(), self.location),
        )
    }

    /// Persist the chain head (call once what was stamped is durably written).
    pub fn persist(&self) -> Result<(), EvidenceError> {
        self.chain.persist()
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_encoded;

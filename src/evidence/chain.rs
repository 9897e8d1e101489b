//! The per-sink hash chain: sequence numbers and hashes stamped into each record on intake, and
//! the chain head persisted so a restart continues the chain.
//!
//! `hash = SHA-256("aiwarden-chain-v1\n" agent_id "\n" sink "\n" seq "\n" prev_hash "\n"
//! canonical(document without its stamp))`, hex. The first record has `seq` 1 and a `prev_hash`
//! of 64 zeros. The stamp is an object `{"v":1,"agent_id","sink","seq","prev_hash","hash"}`
//! stored where the SIEM keeps it ([`StampLocation`]).
//!
//! # The caller's rule (crash safety)
//!
//! Stamp on intake, in order, before a record is encoded and queued; never stamp a record twice
//! (a resend sends the queued bytes as they are). After the queue has durably written (fsync)
//! every record stamped so far, call [`Chain::persist`]. At start, after opening the queue, call
//! [`Chain::recover`] with the stamp of the newest record durably in the queue (if any). Then:
//!
//! - a record stamped but not durably queued before a crash never left the host; its source
//!   position was not committed either, so it is read again and stamped again with the same
//!   `seq` — no gap, and no fork a SIEM could see;
//! - a record durably queued but not yet persisted in the chain state is found by `recover`, so
//!   the chain continues after it instead of reusing its `seq`.

use super::canonical::canonical_bytes;
use super::EvidenceError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Version of the stamp and hash layout.
pub const CHAIN_VERSION: u64 = 1;

/// Where a document carries its stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampLocation {
    /// A top-level key: `chain` in JSON lines, syslog JSON and Splunk events; `Chain` (a
    /// `dynamic` column) in Sentinel rows.
    TopLevel(&'static str),
    /// A key inside a top-level object: `aiwarden.chain` in Elastic ECS documents.
    Nested(&'static str, &'static str),
}

/// JSON lines (file, stdout, syslog JSON) and the Splunk event.
pub const JSON_LINES_STAMP: StampLocation = StampLocation::TopLevel("chain");
/// Elastic ECS documents: custom fields live under `aiwarden.*`.
pub const ELASTIC_STAMP: StampLocation = StampLocation::Nested("aiwarden", "chain");
/// Sentinel rows: a `Chain` column of type `dynamic`.
pub const SENTINEL_STAMP: StampLocation = StampLocation::TopLevel("Chain");
/// Every location `verify` looks in, in this order.
pub const STAMP_LOCATIONS: [StampLocation; 3] = [JSON_LINES_STAMP, ELASTIC_STAMP, SENTINEL_STAMP];

impl StampLocation {
    /// Remove and return the value at this location.
    pub fn take(&self, document: &mut Map<String, Value>) -> Option<Value> {
        match self {
            StampLocation::TopLevel(key) => document.remove(*key),
            StampLocation::Nested(outer, inner) => {
                let object = document.get_mut(*outer)?.as_object_mut()?;
                let taken = object.remove(*inner);
                // Leave no empty `aiwarden` behind that the sender did not have.
                if object.is_empty() {
                    document.remove(*outer);
                }
                taken
            }
        }
    }

    fn put(&self, document: &mut Map<String, Value>, value: Value) {
        match self {
            StampLocation::TopLevel(key) => {
                document.insert((*key).to_string(), value);
            }
            StampLocation::Nested(outer, inner) => {
                let entry = document
                    .entry((*outer).to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                if let Some(object) = entry.as_object_mut() {
                    object.insert((*inner).to_string(), value);
                }
            }
        }
    }
}

/// One record's place in its chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// Layout version.
    pub v: u64,
    /// The agent that stamped it.
    pub agent_id: String,
    /// The sink it was sent through.
    pub sink: String,
    /// Position in the chain, from 1, strictly increasing per agent and sink.
    pub seq: u64,
    /// The previous record's hash (64 zeros for the first).
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl Stamp {
    /// Read a stamp from its JSON (a Sentinel CSV export holds it as JSON text).
    pub fn from_value(value: &Value) -> Option<Stamp> {
        match value {
            Value::String(text) => serde_json::from_str(text).ok(),
            other => serde_json::from_value(other.clone()).ok(),
        }
    }
}

/// The hash of a record from its chain position and its canonical bytes.
pub fn record_hash(
    agent_id: &str,
    sink: &str,
    seq: u64,
    prev_hash: &str,
    canonical: &[u8],
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"aiwarden-chain-v1\n");
    for part in [
        agent_id.as_bytes(),
        sink.as_bytes(),
        seq.to_string().as_bytes(),
        prev_hash.as_bytes(),
    ] {
        hasher.update(part);
        hasher.update(b"\n");
    }
    hasher.update(canonical);
    hex::encode(hasher.finalize())
}

/// The chain state file: `<state_dir>/evidence/<sink>.chain.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ChainState {
    version: u64,
    agent_id: String,
    sink: String,
    last_seq: u64,
    head_hash: String,
    checksum: String,
}

fn state_checksum(agent_id: &str, sink: &str, last_seq: u64, head_hash: &str) -> String {
    let mut hasher = Sha256::new();
    hasher
        .update(format!("chain-state-v1\n{agent_id}\n{sink}\n{last_seq}\n{head_hash}").as_bytes());
    hex::encode(hasher.finalize())
}

/// One sink's chain: stamps records in order and remembers its head.
#[derive(Debug)]
pub struct Chain {
    path: PathBuf,
    agent_id: String,
    sink: String,
    last_seq: u64,
    head_hash: String,
    /// Records stamped since the last checkpoint (for [`super::CheckpointPolicy`]).
    pub(crate) since_checkpoint: u64,
}

impl Chain {
    /// Open the chain of `sink`, continuing from its persisted head (a new chain when none).
    pub fn open(state_dir: &Path, sink: &str, agent_id: &str) -> Result<Chain, EvidenceError> {
        let path = state_dir
            .join("evidence")
            .join(format!("{sink}.chain.json"));
        let mut chain = Chain {
            path,
            agent_id: agent_id.to_string(),
            sink: sink.to_string(),
            last_seq: 0,
            head_hash: GENESIS_HASH.to_string(),
            since_checkpoint: 0,
        };
        let text = match std::fs::read_to_string(&chain.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(chain),
            Err(source) => {
                return Err(EvidenceError::Io {
                    context: format!("reading {}", chain.path.display()),
                    source,
                })
            }
        };
        let corrupt = |reason: &str| EvidenceError::CorruptState {
            path: chain.path.clone(),
            reason: reason.to_string(),
        };
        let state: ChainState =
            serde_json::from_str(&text).map_err(|error| corrupt(&error.to_string()))?;
        if state.version != CHAIN_VERSION {
            return Err(corrupt(&format!("unknown version {}", state.version)));
        }
        if state.checksum
            != state_checksum(
                &state.agent_id,
                &state.sink,
                state.last_seq,
                &state.head_hash,
            )
        {
            return Err(corrupt("checksum mismatch"));
        }
        if state.agent_id != agent_id || state.sink != sink {
            return Err(corrupt(&format!(
                "it belongs to agent `{}` sink `{}`, not agent `{agent_id}` sink `{sink}`",
                state.agent_id, state.sink
            )));
        }
        chain.last_seq = state.last_seq;
        chain.head_hash = state.head_hash;
        Ok(chain)
    }

    /// The agent id stamped into records.
    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The sink name stamped into records.
    pub fn sink(&self) -> &str {
        &self.sink
    }

    /// The newest stamped record: its `seq` (0 before the first) and hash.
    pub fn head(&self) -> (u64, &str) {
        (self.last_seq, &self.head_hash)
    }

    /// Stamp `document`: compute its hash over the canonical form (any stamp it already carries
    /// at `location` is dropped first, so a record cannot bring its own) and insert the stamp.
    pub fn stamp(&mut self, document: &mut Map<String, Value>, location: StampLocation) -> Stamp {
        for known in STAMP_LOCATIONS {
            known.take(document);
        }
        let seq = self.last_seq + 1;
        let hash = record_hash(
            &self.agent_id,
            &self.sink,
            seq,
            &self.head_hash,
            &canonical_bytes(document),
        );
        let stamp = Stamp {
            v: CHAIN_VERSION,
            agent_id: self.agent_id.clone(),
            sink: self.sink.clone(),
            seq,
            prev_hash: std::mem::replace(&mut self.head_hash, hash.clone()),
            hash,
        };
        self.last_seq = seq;
        self.since_checkpoint += 1;
        location.put(
            document,
            serde_json::to_value(&stamp).unwrap_or(Value::Null),
        );
        stamp
    }

    /// Continue after `durable` (the newest record durably queued) when it is ahead of the
    /// persisted head: the state was not persisted after that record was queued.
    pub fn recover(&mut self, durable: &Stamp) {
        if durable.agent_id == self.agent_id
            && durable.sink == self.sink
            && durable.seq > self.last_seq
        {
            self.last_seq = durable.seq;
            self.head_hash = durable.hash.clone();
        }
    }

    /// Write the head durably: a temporary file, fsync, rename, fsync of the directory.
    pub fn persist(&self) -> Result<(), EvidenceError> {
        let io = |context: &str, source: std::io::Error| EvidenceError::Io {
            context: format!("{context} {}", self.path.display()),
            source,
        };
        let directory = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(directory).map_err(|e| io("creating the directory of", e))?;
        let state = ChainState {
            version: CHAIN_VERSION,
            agent_id: self.agent_id.clone(),
            sink: self.sink.clone(),
            last_seq: self.last_seq,
            head_hash: self.head_hash.clone(),
            checksum: state_checksum(&self.agent_id, &self.sink, self.last_seq, &self.head_hash),
        };
        let bytes = serde_json::to_vec_pretty(&state).unwrap_or_default();
        let mut temporary = tempfile::NamedTempFile::new_in(directory)
            .map_err(|e| io("creating a temporary file for", e))?;
        temporary.write_all(&bytes).map_err(|e| io("writing", e))?;
        temporary
            .as_file()
            .sync_all()
            .map_err(|e| io("syncing", e))?;
        temporary
            .persist(&self.path)
            .map_err(|e| io("renaming into", e.error))?;
        if let Ok(dir) = std::fs::File::open(directory) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

//! Signed checkpoints: every N records or T seconds a record holding the chain head, signed with
//! the agent's Ed25519 key, so whoever can edit the SIEM cannot rewrite the chain behind it
//! without that key.
//!
//! The checkpoint is itself a record of the chain (stamped like any other, so deleting one is a
//! gap). It signs `"aiwarden-checkpoint-v1\n" agent_id "\n" sink "\n" head_seq "\n" head_hash
//! "\n" created`, where the head is the record stamped just before it.

use super::chain::{Chain, StampLocation};
use super::EvidenceError;
use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

/// `record_type` of a checkpoint record.
pub const CHECKPOINT_RECORD_TYPE: &str = "aiwarden_checkpoint";

/// The agent's checkpoint signing key. Never printed.
pub struct CheckpointSigner {
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id())
            .finish()
    }
}

impl CheckpointSigner {
    /// A new random key.
    pub fn generate() -> CheckpointSigner {
        CheckpointSigner {
            key: SigningKey::from_bytes(&rand::random::<[u8; 32]>()),
        }
    }

    /// Read a key file (64 hex digits: the 32-byte secret seed), refusing one others may read.
    pub fn load(path: &Path) -> Result<CheckpointSigner, EvidenceError> {
        crate::privacy::pseudonym::check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| EvidenceError::Io {
            context: format!("reading {}", path.display()),
            source,
        })?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut seed).map_err(|_| EvidenceError::BadKey {
            path: path.to_path_buf(),
            reason: "expected 64 hex digits (an Ed25519 secret seed)".into(),
        })?;
        Ok(CheckpointSigner {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The secret seed as hex, for writing the key file.
    pub fn secret_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// The public key to give auditors.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The id of the public key, carried in every checkpoint.
    pub fn key_id(&self) -> String {
        key_id(&self.verifying_key())
    }

    fn sign(&self, message: &[u8]) -> Signature {
        self.key.sign(message)
    }
}

/// A public key's id: the first 16 hex digits of the SHA-256 of its 32 bytes.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Read a public key: 64 hex digits, as `aiwarden keygen checkpoint` writes it.
pub fn parse_public_key(text: &str) -> Option<VerifyingKey> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

/// What a checkpoint says, under `checkpoint` in its record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// The agent whose chain it signs.
    pub agent_id: String,
    /// The sink whose chain it signs.
    pub sink: String,
    /// `seq` of the chain head signed.
    pub head_seq: u64,
    /// Hash of the chain head signed.
    pub head_hash: String,
    /// When it was made (RFC 3339).
    pub created: String,
    /// Id of the signing key.
    pub key_id: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

impl CheckpointBody {
    fn message(
        agent_id: &str,
        sink: &str,
        head_seq: u64,
        head_hash: &str,
        created: &str,
    ) -> Vec<u8> {
        format!("aiwarden-checkpoint-v1\n{agent_id}\n{sink}\n{head_seq}\n{head_hash}\n{created}")
            .into_bytes()
    }

    /// Whether the signature is valid under `key`.
    pub fn verify(&self, key: &VerifyingKey) -> bool {
        let mut bytes = [0u8; 64];
        if hex::decode_to_slice(&self.signature, &mut bytes).is_err() {
            return false;
        }
        let message = Self::message(
            &self.agent_id,
            &self.sink,
            self.head_seq,
            &self.head_hash,
            &self.created,
        );
        key.verify(&message, &Signature::from_bytes(&bytes)).is_ok()
    }
}

/// When checkpoints are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// After this many records.
    pub every_records: u64,
    /// Or after this long with at least one record since the last.
    pub every: Duration,
}

/// Tracks time since the last checkpoint of one chain.
#[derive(Debug)]
pub struct CheckpointClock {
    policy: CheckpointPolicy,
    last: Instant,
}

impl CheckpointClock {
    /// A clock starting now.
    pub fn new(policy: CheckpointPolicy) -> CheckpointClock {
        CheckpointClock {
            policy,
            last: Instant::now(),
        }
    }

    /// Whether `chain` should get a checkpoint now.
    pub fn due(&self, chain: &Chain, now: Instant) -> bool {
        chain.since_checkpoint > 0
            && (chain.since_checkpoint >= self.policy.every_records
                || now.duration_since(self.last) >= self.policy.every)
    }

    /// How long until a checkpoint of `chain` is due by time alone; `None` while nothing was
    /// stamped since the last one (a quiet chain needs no new signature).
    pub fn due_in(&self, chain: &Chain, now: Instant) -> Option<Duration> {
        (chain.since_checkpoint > 0).then(|| {
            self.policy
                .every
                .saturating_sub(now.duration_since(self.last))
        })
    }

    /// The configured time between checkpoints.
    pub fn interval(&self) -> Duration {
        self.policy.every
    }

    /// Note that a checkpoint was just made.
    pub fn reset(&mut self, now: Instant) {
        self.last = now;
    }
}

impl Chain {
    /// Sign the current head. The caller puts the body in a record of its SIEM's shape and
    /// stamps that record with [`Chain::stamp_checkpoint`]; [`Chain::checkpoint`] does both for
    /// JSON lines.
    pub fn sign_head(&self, signer: &CheckpointSigner, now: DateTime<Utc>) -> CheckpointBody {
        let (head_seq, head_hash) = self.head();
        let created = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let message =
            CheckpointBody::message(self.agent_id(), self.sink(), head_seq, head_hash, &created);
        CheckpointBody {
            agent_id: self.agent_id().to_string(),
            sink: self.sink().to_string(),
            head_seq,
            head_hash: head_hash.to_string(),
            created,
            key_id: signer.key_id(),
            signature: hex::encode(signer.sign(&message).to_bytes()),
        }
    }

    /// Stamp a record holding a checkpoint body, and restart the count towards the next one.
    pub fn stamp_checkpoint(
        &mut self,
        document: &mut Map<String, Value>,
        location: StampLocation,
    ) -> super::Stamp {
        let stamp = self.stamp(document, location);
        self.since_checkpoint = 0;
        stamp
    }

    /// A signed checkpoint of the current head as a JSON-lines record (`record_type`,
    /// `timestamp`, `checkpoint`), itself stamped into the chain at `location`.
    pub fn checkpoint(
        &mut self,
        signer: &CheckpointSigner,
        now: DateTime<Utc>,
        location: StampLocation,
    ) -> Map<String, Value> {
        let body = self.sign_head(signer, now);
        let mut document = match json!({
            "record_type": CHECKPOINT_RECORD_TYPE,
            "timestamp": body.created,
            "checkpoint": body,
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        self.stamp_checkpoint(&mut document, location);
        document
    }
}

//! Verification of exported records: duplicates, gaps, altered records, broken links, and
//! checkpoints verified or forged, per agent and sink. Pure: records in, report out.

use super::canonical::canonical_bytes;
use super::chain::{
    record_hash, Stamp, ELASTIC_STAMP, GENESIS_HASH, SENTINEL_STAMP, STAMP_LOCATIONS,
};
use super::checkpoint::{key_id, CheckpointBody, CHECKPOINT_RECORD_TYPE};
use super::export::ExportedRecord;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Columns Log Analytics adds to every row of a custom table (and `_`-prefixed system columns):
/// not part of what aiwarden sent, so not part of the hash.
pub const SENTINEL_SYSTEM_COLUMNS: &[&str] = &[
    "TenantId",
    "Type",
    "SourceSystem",
    "MG",
    "ManagementGroupName",
    "Computer",
    "RawData",
    "TableName",
];

/// One stamped record, its hash recomputed.
#[derive(Debug, Clone)]
struct Checked {
    origin: String,
    stamp: Stamp,
    intact: bool,
    checkpoint: Option<CheckpointBody>,
}

/// The verdict on one chain (one agent and sink).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainReport {
    /// The agent.
    pub agent_id: String,
    /// The sink.
    pub sink: String,
    /// Distinct positions seen.
    pub records: u64,
    /// Positions whose record hashes to its stamp.
    pub verified: u64,
    /// Further identical copies (at-least-once delivery); not an error.
    pub duplicates: u64,
    /// Lowest and highest `seq` seen.
    pub first_seq: u64,
    /// Highest `seq` seen.
    pub last_seq: u64,
    /// Missing `seq` ranges (inclusive).
    pub gaps: Vec<(u64, u64)>,
    /// Records whose content no longer hashes to their stamp (`seq` and origin).
    pub altered: Vec<(u64, String)>,
    /// Positions held by two different intact records (a forked chain).
    pub conflicts: Vec<u64>,
    /// Positions whose `prev_hash` is not the hash of the record before.
    pub broken_links: Vec<u64>,
    /// Checkpoints whose signature verifies under a given key.
    pub checkpoints_verified: u64,
    /// Checkpoints whose signature does not verify, or names no given key (`seq`).
    pub checkpoints_forged: Vec<u64>,
    /// Verified checkpoints whose signed head is not the record at that position (`seq`).
    pub checkpoints_contradicted: Vec<u64>,
    /// Records on an intact path up to a verified checkpoint: proven by the agent's key.
    pub proven: u64,
    /// Records after the last verified checkpoint: intact links, but not yet signed.
    pub unsigned_tail: u64,
}

impl ChainReport {
    /// Nothing missing, altered, forked, broken or forged.
    pub fn is_clean(&self) -> bool {
        self.gaps.is_empty()
            && self.altered.is_empty()
            && self.conflicts.is_empty()
            && self.broken_links.is_empty()
            && self.checkpoints_forged.is_empty()
            && self.checkpoints_contradicted.is_empty()
    }
}

/// The whole verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// One entry per agent and sink.
    pub chains: Vec<ChainReport>,
    /// Documents without a chain stamp (other data in the export).
    pub unstamped: u64,
    /// Lines or items that could not be read at all.
    pub unreadable: Vec<String>,
}

impl Report {
    /// Every chain clean and at least one chain found.
    pub fn is_clean(&self) -> bool {
        !self.chains.is_empty() && self.chains.iter().all(ChainReport::is_clean)
    }
}

/// Options of a verification.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Demand every position from this one (e.g. 1: the whole chain must be in the export);
    /// without it, positions before the first one seen are not counted as a gap.
    pub from_seq: Option<u64>,
}

/// Verify exported records against the public keys of the agents.
pub fn verify(
    records: Vec<ExportedRecord>,
    keys: &[VerifyingKey],
    options: &VerifyOptions,
) -> Report {
    let mut report = Report::default();
    let mut chains: BTreeMap<(String, String), Vec<Checked>> = BTreeMap::new();
    for record in records {
        match check(record) {
            Some(checked) => chains
                .entry((checked.stamp.agent_id.clone(), checked.stamp.sink.clone()))
                .or_default()
                .push(checked),
            None => report.unstamped += 1,
        }
    }
    let keys: BTreeMap<String, &VerifyingKey> = keys.iter().map(|k| (key_id(k), k)).collect();
    for ((agent_id, sink), entries) in chains {
        report
            .chains
            .push(verify_chain(agent_id, sink, entries, &keys, options));
    }
    report
}

/// Find the stamp, drop what the SIEM added, recompute the hash.
fn check(record: ExportedRecord) -> Option<Checked> {
    let ExportedRecord {
        origin,
        mut document,
    } = record;
    let (location, value) = STAMP_LOCATIONS
        .iter()
        .find_map(|location| location.take(&mut document).map(|value| (*location, value)))?;
    let stamp = Stamp::from_value(&value)?;
    if location == SENTINEL_STAMP {
        document.retain(|key, _| {
            !key.starts_with('_') && !SENTINEL_SYSTEM_COLUMNS.contains(&key.as_str())
        });
    }
    if location == ELASTIC_STAMP {
        strip_elastic_additions(&mut document);
    }
    let hash = record_hash(
        &stamp.agent_id,
        &stamp.sink,
        stamp.seq,
        &stamp.prev_hash,
        &canonical_bytes(&document),
    );
    let checkpoint = checkpoint_body(&document);
    Some(Checked {
        origin,
        intact: hash == stamp.hash,
        stamp,
        checkpoint,
    })
}

/// `event.ingested` is set by Elastic ingest pipelines, not by aiwarden.
fn strip_elastic_additions(document: &mut Map<String, Value>) {
    if let Some(Value::Object(event)) = document.get_mut("event") {
        event.remove("ingested");
    }
}

/// The checkpoint body of a checkpoint record: `record_type`/`checkpoint` at the top (JSON lines,
/// Splunk), under `aiwarden` (Elastic), or `RecordType`/`Checkpoint` (Sentinel columns).
fn checkpoint_body(document: &Map<String, Value>) -> Option<CheckpointBody> {
    let scopes = [
        Some(document),
        document.get("aiwarden").and_then(Value::as_object),
    ];
    for scope in scopes.into_iter().flatten() {
        let field = |names: [&str; 2]| names.iter().find_map(|name| scope.get(*name));
        let is_checkpoint = field(["record_type", "RecordType"])
            .and_then(Value::as_str)
            .is_some_and(|kind| kind == CHECKPOINT_RECORD_TYPE);
        if !is_checkpoint {
            continue;
        }
        return match field(["checkpoint", "Checkpoint"])? {
            Value::String(text) => serde_json::from_str(text).ok(),
            other => serde_json::from_value(other.clone()).ok(),
        };
    }
    None
}

fn verify_chain(
    agent_id: String,
    sink: String,
    entries: Vec<Checked>,
    keys: &BTreeMap<String, &VerifyingKey>,
    options: &VerifyOptions,
) -> ChainReport {
    let mut report = ChainReport {
        agent_id,
        sink,
        ..Default::default()
    };
    let mut by_seq: BTreeMap<u64, Vec<Checked>> = BTreeMap::new();
    for entry in entries {
        by_seq.entry(entry.stamp.seq).or_default().push(entry);
    }
    // The one intact record per position (when there is exactly one distinct).
    let mut good: BTreeMap<u64, Checked> = BTreeMap::new();
    for (seq, copies) in &by_seq {
        let intact: Vec<&Checked> = copies.iter().filter(|c| c.intact).collect();
        for altered in copies.iter().filter(|c| !c.intact) {
            report.altered.push((*seq, altered.origin.clone()));
        }
        let distinct: BTreeSet<&str> = intact.iter().map(|c| c.stamp.hash.as_str()).collect();
        match distinct.len() {
            0 => {}
            1 => {
                report.verified += 1;
                report.duplicates += intact.len() as u64 - 1;
                good.insert(*seq, intact[0].clone());
            }
            _ => report.conflicts.push(*seq),
        }
    }
    report.records = by_seq.len() as u64;
    let (Some(&first), Some(&last)) = (by_seq.keys().next(), by_seq.keys().next_back()) else {
        return report;
    };
    report.first_seq = first;
    report.last_seq = last;
    let mut expected = options.from_seq.unwrap_or(first).min(first);
    for &seq in by_seq.keys() {
        if seq > expected {
            report.gaps.push((expected, seq - 1));
        }
        expected = seq + 1;
    }
    for (seq, entry) in &good {
        let linked = if *seq == 1 {
            entry.stamp.prev_hash == GENESIS_HASH
        } else {
            match good.get(&(seq - 1)) {
                Some(previous) => previous.stamp.hash == entry.stamp.prev_hash,
                // Missing or altered predecessor: already reported as a gap or an alteration.
                None => true,
            }
        };
        if !linked {
            report.broken_links.push(*seq);
        }
    }
    let mut signed_heads = Vec::new();
    for copies in by_seq.values() {
        for entry in copies.iter().filter(|c| c.intact) {
            let Some(body) = &entry.checkpoint else {
                continue;
            };
            let signed = body.agent_id == entry.stamp.agent_id
                && body.sink == entry.stamp.sink
                && keys.get(&body.key_id).is_some_and(|key| body.verify(key));
            if !signed {
                report.checkpoints_forged.push(entry.stamp.seq);
                continue;
            }
            report.checkpoints_verified += 1;
            match good.get(&body.head_seq) {
                Some(head) if head.stamp.hash != body.head_hash => {
                    report.checkpoints_contradicted.push(entry.stamp.seq)
                }
                _ => signed_heads.push(body.head_seq),
            }
        }
    }
    report.checkpoints_forged.dedup();
    // Walk back from each signed head while the links hold: those records are proven.
    let mut proven = BTreeSet::new();
    for head in &signed_heads {
        let mut seq = *head;
        while let Some(entry) = good.get(&seq) {
            if !proven.insert(seq) || seq == 1 {
                break;
            }
            match good.get(&(seq - 1)) {
                Some(previous) if previous.stamp.hash == entry.stamp.prev_hash => seq -= 1,
                _ => break,
            }
        }
    }
    report.proven = proven.len() as u64;
    let last_signed = signed_heads.iter().max().copied().unwrap_or(0);
    report.unsigned_tail = good.keys().filter(|seq| **seq > last_signed).count() as u64;
    report
}

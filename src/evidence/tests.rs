//! The chain, checkpoints and verification, end to end in memory.

use super::chain::{ELASTIC_STAMP, SENTINEL_STAMP};
use super::export::{read_csv, read_json, ExportedRecord};
use super::*;
use serde_json::{json, Value};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

fn event(n: u64) -> Map<String, Value> {
    object(json!({
        "event_id": format!("e{n}"),
        "timestamp": "2026-11-23T09:14:03.512Z",
        "user_id": "psn:k1:00ff",
        "prompt_tokens": 1000 + n,
        "security_flags": ["a"],
    }))
}

/// A chain of `n` events with a checkpoint after every `every`, as stamped documents.
fn stamped(dir: &Path, n: u64, every: u64, signer: &CheckpointSigner) -> Vec<Map<String, Value>> {
    let mut chain = Chain::open(dir, "siem", "agent-1").unwrap();
    let mut out = Vec::new();
    for i in 1..=n {
        let mut document = event(i);
        chain.stamp(&mut document, JSON_LINES_STAMP);
        out.push(document);
        if i % every == 0 {
            out.push(chain.checkpoint(signer, chrono::Utc::now(), JSON_LINES_STAMP));
        }
    }
    chain.persist().unwrap();
    out
}

fn records(documents: &[Map<String, Value>]) -> Vec<ExportedRecord> {
    documents
        .iter()
        .enumerate()
        .map(|(i, document)| ExportedRecord {
            origin: format!("mem:{}", i + 1),
            document: document.clone(),
        })
        .collect()
}

fn check(documents: &[Map<String, Value>], signer: &CheckpointSigner) -> ChainReport {
    let report = verify::verify(
        records(documents),
        &[signer.verifying_key()],
        &VerifyOptions::default(),
    );
    assert_eq!(report.chains.len(), 1, "{report:?}");
    report.chains[0].clone()
}

#[test]
fn an_untouched_chain_verifies_and_checkpoints_prove_it() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let documents = stamped(dir.path(), 10, 4, &signer);
    let report = check(&documents, &signer);
    assert!(report.is_clean(), "{report:?}");
    // 10 events + 2 checkpoints.
    assert_eq!(
        (report.records, report.verified, report.last_seq),
        (12, 12, 12)
    );
    assert_eq!(report.checkpoints_verified, 2);
    // The second checkpoint (seq 10) signs head 9: seqs 1..=9 proven, 10..=12 not yet.
    assert_eq!((report.proven, report.unsigned_tail), (9, 3));
}

#[test]
fn duplicates_and_any_order_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let mut documents = stamped(dir.path(), 6, 3, &signer);
    documents.push(documents[2].clone());
    documents.push(documents[0].clone());
    documents.reverse();
    let report = check(&documents, &signer);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.duplicates, 2);
}

#[test]
fn a_deleted_record_is_a_gap_and_an_edited_one_is_altered() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let documents = stamped(dir.path(), 8, 100, &signer);
    let mut deleted = documents.clone();
    deleted.remove(4);
    let report = check(&deleted, &signer);
    assert_eq!(report.gaps, vec![(5, 5)]);
    assert!(!report.is_clean());

    let mut edited = documents.clone();
    edited[2]["prompt_tokens"] = json!(1);
    let report = check(&edited, &signer);
    assert_eq!(report.altered.len(), 1);
    assert_eq!(report.altered[0].0, 3);
}

#[test]
fn a_reordered_pair_is_caught_even_with_recomputed_hashes_by_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let documents = stamped(dir.path(), 6, 6, &signer);
    // Swap the contents of seq 2 and 3, keeping their stamps: both altered.
    let mut swapped = documents.clone();
    let (a, b) = (swapped[1]["chain"].clone(), swapped[2]["chain"].clone());
    swapped[1]["chain"] = b;
    swapped[2]["chain"] = a;
    let report = check(&swapped, &signer);
    assert_eq!(report.altered.len(), 2, "{report:?}");

    // An attacker who re-chains everything after the swap (no key needed for hashes)...
    let mut chain = Chain::open(&dir.path().join("forger"), "siem", "agent-1").unwrap();
    let mut forged: Vec<Map<String, Value>> = Vec::new();
    let order = [0usize, 2, 1, 3, 4, 5];
    for index in order {
        let mut document = documents[index].clone();
        chain.stamp(&mut document, JSON_LINES_STAMP);
        forged.push(document);
    }
    // ...keeps the agent's signed checkpoint, which now contradicts the rewritten head.
    let mut checkpoint = documents[6].clone();
    checkpoint.remove("chain");
    chain.stamp(&mut checkpoint, JSON_LINES_STAMP);
    forged.push(checkpoint);
    let report = check(&forged, &signer);
    assert!(report.altered.is_empty() && report.broken_links.is_empty());
    assert_eq!(report.checkpoints_contradicted, vec![7], "{report:?}");
    assert!(!report.is_clean());
}

#[test]
fn a_forged_checkpoint_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let other = CheckpointSigner::generate();
    let mut chain = Chain::open(dir.path(), "siem", "agent-1").unwrap();
    let mut documents = Vec::new();
    for i in 1..=3 {
        let mut document = event(i);
        chain.stamp(&mut document, JSON_LINES_STAMP);
        documents.push(document);
    }
    documents.push(chain.checkpoint(&other, chrono::Utc::now(), JSON_LINES_STAMP));
    let report = check(&documents, &signer);
    assert_eq!(report.checkpoints_forged, vec![4]);
    assert_eq!(report.checkpoints_verified, 0);
    // A signature edited in place: the record is altered (the hash covers it).
    let mut tampered = documents.clone();
    tampered[3]["checkpoint"]["head_seq"] = json!(2);
    let report = check(&tampered, &other);
    assert_eq!(report.altered.len(), 1);
}

#[test]
fn the_chain_continues_across_a_restart_and_recovers_a_queued_record() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let mut documents = stamped(dir.path(), 3, 100, &signer);
    let mut chain = Chain::open(dir.path(), "siem", "agent-1").unwrap();
    assert_eq!(chain.head().0, 3);
    // Stamped and durably queued, but the process died before persisting the head.
    let mut queued = event(4);
    let stamp = chain.stamp(&mut queued, JSON_LINES_STAMP);
    documents.push(queued);
    let mut restarted = Chain::open(dir.path(), "siem", "agent-1").unwrap();
    assert_eq!(restarted.head().0, 3);
    restarted.recover(&stamp);
    let mut next = event(5);
    assert_eq!(restarted.stamp(&mut next, JSON_LINES_STAMP).seq, 5);
    documents.push(next);
    assert!(check(&documents, &signer).is_clean());
    // Another agent's or sink's state is refused, not silently continued.
    assert!(Chain::open(dir.path(), "siem", "agent-2").is_err());
}

#[test]
fn a_corrupt_chain_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let chain = Chain::open(dir.path(), "siem", "a").unwrap();
    chain.persist().unwrap();
    let path = dir.path().join("evidence/siem.chain.json");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"last_seq\": 0", "\"last_seq\": 7");
    std::fs::write(&path, text).unwrap();
    assert!(matches!(
        Chain::open(dir.path(), "siem", "a"),
        Err(EvidenceError::CorruptState { .. })
    ));
}

#[test]
fn a_record_cannot_bring_its_own_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::open(dir.path(), "s", "a").unwrap();
    let mut document = event(1);
    document.insert("chain".into(), json!({"seq": 99}));
    document.insert("Chain".into(), json!("x"));
    let stamp = chain.stamp(&mut document, JSON_LINES_STAMP);
    assert_eq!(stamp.seq, 1);
    assert!(!document.contains_key("Chain"));
}

/// The same chain as each SIEM hands it back: Splunk `_raw`, an Elastic `_search` answer with an
/// ingest timestamp added, Sentinel JSON with system columns and 7-digit datetimes, and CSV.
#[test]
fn exports_of_every_siem_verify() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let mut chain = Chain::open(dir.path(), "splunk", "agent-1").unwrap();
    let splunk: Vec<String> = (1..=3)
        .map(|i| {
            let mut document = event(i);
            chain.stamp(&mut document, JSON_LINES_STAMP);
            let raw = serde_json::to_string(&document).unwrap();
            json!({"preview": false, "result": {"_raw": raw, "_time": "2026-11-23T09:14:03.512+00:00", "host": "gw"}}).to_string()
        })
        .collect();
    let read = read_json(&splunk.join("\n"), "splunk.json");
    assert_eq!(read.records.len(), 3);
    let report = verify::verify(
        read.records,
        &[signer.verifying_key()],
        &VerifyOptions::default(),
    );
    assert!(report.is_clean(), "{report:?}");

    let mut chain = Chain::open(dir.path(), "elastic", "agent-1").unwrap();
    let hits: Vec<Value> = (1..=3)
        .map(|i| {
            let mut document = object(json!({
                "@timestamp": "2026-11-23T09:14:03.512Z",
                "event": {"id": format!("e{i}"), "kind": "event"},
                "aiwarden": {"event": {"prompt_tokens": i}},
            }));
            chain.stamp(&mut document, ELASTIC_STAMP);
            document["event"]["ingested"] = json!("2026-11-23T09:14:05Z");
            json!({"_index": ".ds-logs-aiwarden.events-default-2026.11.23-000001", "_id": format!("e{i}"), "_source": document})
        })
        .collect();
    let search = json!({"took": 3, "hits": {"total": {"value": 3}, "hits": hits}}).to_string();
    let read = read_json(&search, "elastic.json");
    let report = verify::verify(read.records, &[], &VerifyOptions::default());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.chains[0].verified, 3);

    let mut chain = Chain::open(dir.path(), "sentinel", "agent-1").unwrap();
    let mut rows = Vec::new();
    for i in 1..=3 {
        let mut row = object(json!({
            "TimeGenerated": "2026-11-23T09:14:03.512Z",
            "EventId": format!("e{i}"),
            "PromptTokens": 1000 + i,
            "Observed": 3.0,
            "SecurityFlags": ["a", "b"],
        }));
        chain.stamp(&mut row, SENTINEL_STAMP);
        rows.push(row);
    }
    // As `az monitor log-analytics query` prints them.
    let exported: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut row = Value::Object(row.clone());
            row["TimeGenerated"] = json!("2026-11-23T09:14:03.5120000Z");
            row["SecurityFlags"] = json!("[\"a\",\"b\"]");
            row["Chain"] = json!(row["Chain"].to_string());
            row["Observed"] = json!(3);
            row["TenantId"] = json!("72f988bf-0000");
            row["Type"] = json!("AIWardenEvents_CL");
            row["_ResourceId"] = json!("");
            row
        })
        .collect();
    let read = read_json(&Value::Array(exported).to_string(), "sentinel.json");
    let report = verify::verify(read.records, &[], &VerifyOptions::default());
    assert!(report.is_clean(), "{report:?}");
    // As the portal's CSV export writes them.
    let mut csv = String::from(
        "TenantId,TimeGenerated,EventId,PromptTokens,Observed,SecurityFlags,Chain,Type\n",
    );
    for row in &rows {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record([
                "72f988bf-0000",
                "11/23/2026, 9:14:03.512 AM",
                row["EventId"].as_str().unwrap(),
                &row["PromptTokens"].to_string(),
                "3",
                "[\"a\",\"b\"]",
                &row["Chain"].to_string(),
                "AIWardenEvents_CL",
            ])
            .unwrap();
        csv.push_str(&String::from_utf8(writer.into_inner().unwrap()).unwrap());
    }
    let read = read_csv(&csv, "sentinel.csv");
    let report = verify::verify(read.records.clone(), &[], &VerifyOptions::default());
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.chains[0].verified, 3);
    // An edited cell in the CSV is caught.
    let edited = csv.replacen(",1002,", ",1012,", 1);
    let report = verify::verify(
        read_csv(&edited, "s.csv").records,
        &[],
        &VerifyOptions::default(),
    );
    assert_eq!(report.chains[0].altered.len(), 1, "{report:?}");
}

#[test]
fn leading_positions_count_as_a_gap_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let signer = CheckpointSigner::generate();
    let documents = stamped(dir.path(), 6, 100, &signer);
    let window = &documents[3..];
    assert!(check(window, &signer).is_clean());
    let report = verify::verify(records(window), &[], &VerifyOptions { from_seq: Some(1) });
    assert_eq!(report.chains[0].gaps, vec![(1, 3)]);
}

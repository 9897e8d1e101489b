//! Privacy on the way out: the redaction corpus (precision and recall per type), and the
//! pseudonyms and masked addresses the `file` sink writes while detection sees real identities.

use aiwarden::privacy::redact::BUILT_IN_KINDS;
use aiwarden::privacy::Redactor;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn corpus(name: &str) -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/redaction")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[derive(Default)]
struct Score {
    true_positives: u32,
    false_positives: u32,
    false_negatives: u32,
}

/// Scores every built-in type over the corpus; the table printed here is the one in the README.
#[test]
fn redaction_corpus_precision_and_recall_per_type() {
    let redactor = Redactor::new(&[]).unwrap();
    let mut scores: BTreeMap<String, Score> = BUILT_IN_KINDS
        .iter()
        .map(|kind| (kind.to_string(), Score::default()))
        .collect();
    let mut misses = Vec::new();
    let positives = corpus("positives.jsonl");
    let negatives = corpus("negatives.jsonl");
    for sample in positives.iter().chain(negatives.iter()) {
        let text = sample["text"].as_str().unwrap();
        let expected: BTreeSet<String> = sample["kind"]
            .as_str()
            .map(str::to_string)
            .into_iter()
            .collect();
        let found: BTreeSet<String> = redactor.find(text).into_iter().map(|r| r.kind).collect();
        for kind in &found {
            let score = scores.entry(kind.clone()).or_default();
            if expected.contains(kind) {
                score.true_positives += 1;
            } else {
                score.false_positives += 1;
                misses.push(format!("false {kind}: {text:?}"));
            }
        }
        for kind in expected.difference(&found) {
            scores.entry(kind.clone()).or_default().false_negatives += 1;
            misses.push(format!("missed {kind}: {text:?}"));
        }
        // The placeholder replaces the secret: nothing of a found span survives.
        let redacted = redactor.redact(text);
        for redaction in redactor.find(text) {
            assert!(!redacted.contains(&text[redaction.start..redaction.end]));
            assert!(redacted.contains(&format!("[REDACTED:{}]", redaction.kind)));
        }
    }
    println!(
        "{} positives, {} look-alike negatives",
        positives.len(),
        negatives.len()
    );
    println!("| type | samples | precision | recall |\n|---|---|---|---|");
    let mut worst = (1.0f64, 1.0f64);
    for (kind, score) in &scores {
        let precision = f64::from(score.true_positives)
            / f64::from((score.true_positives + score.false_positives).max(1));
        let recall = f64::from(score.true_positives)
            / f64::from((score.true_positives + score.false_negatives).max(1));
        println!(
            "| `{kind}` | {} | {:.0} % | {:.0} % |",
            score.true_positives + score.false_negatives,
            precision * 100.0,
            recall * 100.0
        );
        worst = (worst.0.min(precision), worst.1.min(recall));
        assert!(
            score.true_positives + score.false_negatives > 0,
            "no positive sample of {kind}"
        );
    }
    for miss in &misses {
        println!("{miss}");
    }
    assert!(
        worst.0 >= 0.9,
        "a type's precision fell below 90 %: {misses:#?}"
    );
    assert!(
        worst.1 >= 0.9,
        "a type's recall fell below 90 %: {misses:#?}"
    );
}

#[test]
fn extra_patterns_redact_with_their_own_type() {
    let redactor = Redactor::new(&[aiwarden::privacy::ExtraPattern {
        name: "employee_id".into(),
        pattern: r"\bEMP-\d{6}\b".into(),
    }])
    .unwrap();
    assert_eq!(
        redactor.redact("EMP-123456 asked about jane@acme.example"),
        "[REDACTED:employee_id] asked about [REDACTED:email]"
    );
    assert!(Redactor::new(&[aiwarden::privacy::ExtraPattern {
        name: "bad".into(),
        pattern: "(".into(),
    }])
    .is_err());
}

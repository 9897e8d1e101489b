//! Precision and recall of the built-in pack on the corpora in `tests/data/scan/`: benign
//! prompts and responses (nothing may fire) and attacks labelled with the category they must
//! raise. Prints the figures (`cargo test --lib enrich::scan::corpus -- --nocapture`) and
//! asserts the thresholds.
//!
//! The corpora are compiled in (`include_str!`), so the test stays pure.

use super::{Category, Scanner};
use serde::Deserialize;
use std::collections::BTreeMap;

const BENIGN_PROMPTS: &str = include_str!("../../../tests/data/scan/benign-prompts.jsonl");
const BENIGN_RESPONSES: &str = include_str!("../../../tests/data/scan/benign-responses.jsonl");
const ATTACKS: &str = include_str!("../../../tests/data/scan/attacks.jsonl");

/// Overall recall: attacks whose expected category was raised.
const MIN_RECALL: f64 = 0.90;
/// Per-category recall floor, so no category is quietly abandoned.
const MIN_CATEGORY_RECALL: f64 = 0.75;
/// Benign texts (prompts and responses) on which anything fired.
const MAX_FALSE_POSITIVE_RATE: f64 = 0.01;

/// One line of `attacks.jsonl`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Attack {
    /// The category label the attack must raise.
    expect: String,
    /// `prompt` or `response`.
    side: String,
    text: String,
    /// System-prompt markers for response-side attacks.
    #[serde(default)]
    markers: Vec<String>,
    /// The text is repeated this many times (long-input attacks stay small on disk).
    #[serde(default)]
    repeat: Option<usize>,
    /// Written after the signatures were tuned, to measure how they generalise.
    #[serde(default)]
    held_out: bool,
    /// What the obfuscation is, for the reader.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// Non-empty lines that are not `//` comments, with their line numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(n, line)| (n + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with("//"))
}

fn strings(text: &str) -> Vec<(usize, String)> {
    lines(text)
        .map(|(n, line)| {
            (
                n,
                serde_json::from_str(line).unwrap_or_else(|e| panic!("line {n}: {e}")),
            )
        })
        .collect()
}

fn preview(text: &str) -> String {
    text.chars().take(70).collect::<String>().replace('\n', " ")
}

#[test]
fn corpus_precision_and_recall() {
    let scanner = Scanner::builtin();

    let prompts = strings(BENIGN_PROMPTS);
    let responses = strings(BENIGN_RESPONSES);
    assert!(
        prompts.len() >= 150,
        "benign prompt corpus too small: {}",
        prompts.len()
    );
    let mut false_positives = Vec::new();
    for (n, text) in &prompts {
        let findings = scanner.scan_prompt(text);
        if !findings.is_clean() {
            false_positives.push(format!(
                "benign-prompts.jsonl:{n} {:?} {}",
                ids(&findings),
                preview(text)
            ));
        }
    }
    let prompt_fps = false_positives.len();
    for (n, text) in &responses {
        let findings = scanner.scan_response(text, &["AIW-CANARY-93f1c2".to_string()]);
        if !findings.is_clean() {
            false_positives.push(format!(
                "benign-responses.jsonl:{n} {:?} {}",
                ids(&findings),
                preview(text)
            ));
        }
    }

    let mut per_category: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut attacks = 0;
    let mut held_out = (0, 0);
    for (n, line) in lines(ATTACKS) {
        let attack: Attack =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("attacks.jsonl:{n}: {e}"));
        let expect = Category::from_label(&attack.expect)
            .unwrap_or_else(|| panic!("attacks.jsonl:{n}: unknown category"));
        let text = attack.text.repeat(attack.repeat.unwrap_or(1));
        let findings = match attack.side.as_str() {
            "prompt" => scanner.scan_prompt(&text),
            "response" => scanner.scan_response(&text, &attack.markers),
            other => panic!("attacks.jsonl:{n}: side `{other}`"),
        };
        attacks += 1;
        let entry = per_category.entry(expect.as_str()).or_default();
        entry.1 += 1;
        held_out.1 += usize::from(attack.held_out);
        if findings.categories.contains(expect) {
            entry.0 += 1;
            held_out.0 += usize::from(attack.held_out);
        } else {
            misses.push(format!(
                "attacks.jsonl:{n} expected {expect}, got {:?}: {}",
                findings.categories.to_vec(),
                preview(&text)
            ));
        }
    }
    assert!(attacks >= 80, "attack corpus too small: {attacks}");
    for category in Category::ALL {
        assert!(
            per_category.contains_key(category.as_str()),
            "no attack for {category}"
        );
    }

    let detected: usize = per_category.values().map(|(hit, _)| hit).sum();
    let recall = detected as f64 / attacks as f64;
    let benign = prompts.len() + responses.len();
    let fp_rate = false_positives.len() as f64 / benign as f64;
    println!(
        "scan corpus: {attacks} attacks, {} benign prompts, {} benign responses",
        prompts.len(),
        responses.len()
    );
    println!("  {:<26} {:>6} {:>6}", "category", "recall", "n");
    for (category, (hit, total)) in &per_category {
        println!(
            "  {category:<26} {:>5.1}% {hit:>3}/{total}",
            100.0 * *hit as f64 / *total as f64
        );
    }
    println!(
        "  overall recall            {:>5.1}% ({detected}/{attacks})",
        100.0 * recall
    );
    println!("  held-out attacks recall   {}/{}", held_out.0, held_out.1);
    println!(
        "  false positives           {:>5.2}% ({}/{benign}; prompts {prompt_fps}/{}, responses {}/{})",
        100.0 * fp_rate,
        false_positives.len(),
        prompts.len(),
        false_positives.len() - prompt_fps,
        responses.len()
    );
    for line in misses.iter().chain(&false_positives) {
        println!("  {line}");
    }
    assert!(
        recall >= MIN_RECALL,
        "recall {recall:.3} below {MIN_RECALL}"
    );
    for (category, (hit, total)) in &per_category {
        let r = *hit as f64 / *total as f64;
        assert!(
            r >= MIN_CATEGORY_RECALL,
            "{category}: recall {r:.3} below {MIN_CATEGORY_RECALL}"
        );
    }
    assert!(
        fp_rate <= MAX_FALSE_POSITIVE_RATE,
        "false-positive rate {fp_rate:.4} above {MAX_FALSE_POSITIVE_RATE}"
    );
}

fn ids(findings: &super::Findings) -> Vec<&str> {
    findings.matches.iter().map(|m| &*m.signature_id).collect()
}

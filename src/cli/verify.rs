//! `aiwarden verify`: prove that records exported from a SIEM are complete and unaltered.
//!
//! Exit codes: 0 every chain complete, intact and signed by a checkpoint; 1 something is missing,
//! altered, forked or forged; 2 usage (a key or file cannot be read); 3 intact but no record is
//! proven by a verified checkpoint (e.g. the export ends before the first checkpoint).

use super::Failure;
use crate::evidence::checkpoint::parse_public_key;
use crate::evidence::export::read_export;
use crate::evidence::verify::{verify as verify_records, ChainReport, Report, VerifyOptions};
use anyhow::{anyhow, Context};
use std::path::PathBuf;

/// What `verify` was asked.
#[derive(Debug)]
pub struct VerifyArgs {
    /// Export files.
    pub files: Vec<PathBuf>,
    /// Public key files (64 hex digits each).
    pub public_keys: Vec<PathBuf>,
    /// Demand every position from this one.
    pub from_seq: Option<u64>,
    /// Print the report as JSON.
    pub json: bool,
}

/// Run the verification and print the report.
pub fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let mut keys = Vec::new();
    for path in &args.public_keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the public key {}", path.display()))
            .map_err(Failure::config)?;
        let key = parse_public_key(&text)
            .ok_or_else(|| {
                anyhow!(
                    "{}: not an Ed25519 public key (64 hex digits)",
                    path.display()
                )
            })
            .map_err(Failure::config)?;
        keys.push(key);
    }
    let mut records = Vec::new();
    let mut unreadable = Vec::new();
    for path in &args.files {
        let read = read_export(path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(Failure::config)?;
        records.extend(read.records);
        unreadable.extend(read.unreadable);
    }
    let mut report = verify_records(
        records,
        &keys,
        &VerifyOptions {
            from_seq: args.from_seq,
        },
    );
    report.unreadable = unreadable;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", render(&report));
    }
    if !report.is_clean() {
        return Err(Failure {
            code: 1,
            error: anyhow!("the records are not complete and unaltered (see the report)"),
        });
    }
    if report.chains.iter().any(|chain| chain.proven == 0) {
        return Err(Failure {
            code: 3,
            error: anyhow!("intact, but no record is proven by a verified checkpoint"),
        });
    }
    Ok(())
}

/// The report for people.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    if report.chains.is_empty() {
        out.push_str("no stamped records found\n");
    }
    for chain in &report.chains {
        render_chain(chain, &mut out);
    }
    if report.unstamped > 0 {
        out.push_str(&format!(
            "{} records without a chain stamp (not aiwarden's, or sent without [evidence])\n",
            report.unstamped
        ));
    }
    if !report.unreadable.is_empty() {
        out.push_str(&format!("{} unreadable lines:\n", report.unreadable.len()));
        for line in report.unreadable.iter().take(20) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

fn render_chain(chain: &ChainReport, out: &mut String) {
    let verdict = if !chain.is_clean() {
        "FAILED"
    } else if chain.proven == 0 {
        "UNPROVEN"
    } else {
        "OK"
    };
    out.push_str(&format!(
        "{verdict} agent {} sink {}: seq {}..={}\n",
        chain.agent_id, chain.sink, chain.first_seq, chain.last_seq
    ));
    let line = |out: &mut String, label: &str, value: String| {
        out.push_str(&format!("  {label:<26}{value}\n"));
    };
    line(
        out,
        "records verified",
        format!("{} of {}", chain.verified, chain.records),
    );
    line(out, "duplicates (accepted)", chain.duplicates.to_string());
    line(out, "gaps (missing seq)", ranges(&chain.gaps));
    line(
        out,
        "altered records",
        list(
            chain
                .altered
                .iter()
                .map(|(seq, origin)| format!("{seq} ({origin})")),
        ),
    );
    line(out, "forks (same seq)", list(chain.conflicts.iter()));
    line(out, "broken links", list(chain.broken_links.iter()));
    line(
        out,
        "checkpoints verified",
        chain.checkpoints_verified.to_string(),
    );
    line(
        out,
        "checkpoints forged",
        list(chain.checkpoints_forged.iter()),
    );
    line(
        out,
        "checkpoints contradicted",
        list(chain.checkpoints_contradicted.iter()),
    );
    line(out, "proven by a checkpoint", chain.proven.to_string());
    line(
        out,
        "after the last checkpoint",
        chain.unsigned_tail.to_string(),
    );
}

fn ranges(gaps: &[(u64, u64)]) -> String {
    list(gaps.iter().map(|(from, to)| {
        if from == to {
            from.to_string()
        } else {
            format!("{from}-{to}")
        }
    }))
}

fn list<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|item| item.to_string()).collect();
    match items.len() {
        0 => "none".into(),
        n if n > 20 => format!("{} … ({n} in all)", items[..20].join(", ")),
        _ => items.join(", "),
    }
}

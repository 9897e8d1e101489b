//! `aiwarden replay`: a back-test of the rules over audit files, sending nothing anywhere.
//!
//! Files are read in the order given (JSON lines, gzip when the name ends in `.gz`), decoded
//! and run through one engine; only event time counts, so the same input always yields the
//! same alerts. At the end a table shows, per rule, the alerts, the distinct entities and the
//! three entities with the most alerts.

use super::rules::{engine_settings, load_config, read_deployed_rule_files};
use super::Failure;
use crate::backtest::{apply_overrides, Override, Tally};
use crate::decode::{self, Format, Reason};
use crate::detect::{Engine, RuleSet};
use crate::enrich::{apply_scan, scan::Scanner};
use crate::pipeline::rules;
use crate::record::AuditRecord;
use crate::sources::file::default_max_line_bytes;
use anyhow::Context;
use chrono::{DateTime, Utc};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What `aiwarden replay` was asked to do.
#[derive(Debug, Clone)]
pub struct ReplayArgs {
    /// The audit files, in order.
    pub files: Vec<PathBuf>,
    /// A configuration for `[detect]` (rules, entitlements, calendars, scanning).
    pub config: Option<PathBuf>,
    /// Rules from this directory instead.
    pub rules_dir: Option<PathBuf>,
    /// Only events at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Only events before this time (RFC 3339).
    pub to: Option<String>,
    /// Rule parameter overrides.
    pub set: Vec<Override>,
    /// Write the alerts here as JSON lines.
    pub alerts_out: Option<PathBuf>,
    /// Where to save the detection state the replay built.
    pub seed_state: Option<PathBuf>,
}

/// Counts of one replay, for the summary.
#[derive(Debug, Default)]
struct Counts {
    events: u64,
    outside: u64,
    bad: BTreeMap<Reason, u64>,
}

/// Run the back-test.
pub fn replay(args: ReplayArgs) -> Result<(), Failure> {
    let config = load_config(args.config.as_deref())?;
    let dir = args.rules_dir.clone().or(config.detect.rules_dir.clone());
    let from = parse_time("--from", args.from.as_deref())?;
    let to = parse_time("--to", args.to.as_deref())?;
    let mut files =
        read_deployed_rule_files(dir.as_deref(), config.detect.overrides_dir.as_deref())?;
    apply_overrides(&mut files, &args.set).map_err(Failure::config)?;
    let rule_set = RuleSet::parse(&files)
        .context("compiling the rules (after --set)")
        .map_err(Failure::config)?;
    let mut tally = Tally::default();
    for id in rule_set.ids() {
        tally.include(id);
    }
    let entitlements = rules::load_entitlements(config.detect.entitlements_file.as_deref())
        .context("loading the entitlements")
        .map_err(Failure::config)?;
    let calendars = rules::load_calendars(config.detect.calendars_file.as_deref(), dir.as_deref())
        .context("loading the calendars")
        .map_err(Failure::config)?;
    let mut engine =
        Engine::new(rule_set, entitlements, engine_settings(&config)).with_calendars(calendars);
    let scanner = config.detect.scan_content.then(Scanner::builtin);
    let markers = config.detect.system_prompt_markers.clone();
    let mut out = match &args.alerts_out {
        Some(path) => Some(BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))
                .map_err(Failure::runtime)?,
        )),
        None => None,
    };

    let total_bytes: u64 = args
        .files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum();
    let mut progress = Progress::new(total_bytes);
    let mut counts = Counts::default();
    let mut decoded = Vec::new();
    let mut alerts = Vec::new();
    let max_line = default_max_line_bytes();
    for path in &args.files {
        progress.start_file();
        let read = Rc::new(Cell::new(0u64));
        let mut reader = open(path, Rc::clone(&read)).map_err(Failure::runtime)?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .with_context(|| format!("reading {}", path.display()))
                .map_err(Failure::runtime)?;
            if n == 0 {
                break;
            }
            progress.update(read.get());
            let bytes = trim_line(&line);
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if bytes.len() > max_line {
                *counts.bad.entry(Reason::LineTooLong).or_default() += 1;
                continue;
            }
            decode::decode(Format::Native, bytes, &mut decoded);
            for result in decoded.drain(..) {
                let mut record = match result {
                    Ok(record) => record,
                    Err(error) => {
                        *counts.bad.entry(error.reason).or_default() += 1;
                        continue;
                    }
                };
                if !in_range(&record, from, to) {
                    counts.outside += 1;
                    continue;
                }
                counts.events += 1;
                if let Some(scanner) = &scanner {
                    apply_scan(scanner, &markers, &mut record);
                }
                engine.process(&record, &mut alerts);
                for alert in alerts.drain(..) {
                    tally.add(&alert);
                    if let Some(out) = out.as_mut() {
                        let text = serde_json::to_string(&alert)
                            .context("encoding an alert")
                            .map_err(Failure::runtime)?;
                        writeln!(out, "{text}")
                            .context("writing --alerts-out")
                            .map_err(Failure::runtime)?;
                    }
                }
            }
        }
        progress.update(read.get());
    }
    progress.finish();
    if let Some(mut out) = out {
        out.flush()
            .context("writing --alerts-out")
            .map_err(Failure::runtime)?;
    }
    print_summary(&args, &counts, engine.take_late_events(), &tally);
    if let Some(dir) = &args.seed_state {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {}", dir.display()))
            .map_err(Failure::runtime)?;
        let path = crate::pipeline::snapshot::path(dir);
        crate::pipeline::snapshot::save(&engine, &path)
            .with_context(|| format!("saving the detection state to {}", path.display()))
            .map_err(Failure::runtime)?;
        eprintln!(
            "detection state saved to {} (restored when the agent starts on that state directory)",
            path.display()
        );
    }
    Ok(())
}

fn print_summary(args: &ReplayArgs, counts: &Counts, late: u64, tally: &Tally) {
    let bad_total: u64 = counts.bad.values().sum();
    let reasons: Vec<String> = counts
        .bad
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    println!(
        "replay: {} file(s), {} events replayed, {} outside --from/--to, {} bad line(s){}, {} late event(s), {} alert(s)",
        args.files.len(),
        counts.events,
        counts.outside,
        bad_total,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        late,
        tally.total(),
    );
    print!("{}", tally.render());
}

fn parse_time(flag: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, Failure> {
    text.map(|text| {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| {
                format!("{flag} `{text}`: expected an RFC 3339 time such as 2026-11-23T10:00:00Z")
            })
            .map_err(Failure::config)
    })
    .transpose()
}

/// `from` inclusive, `to` exclusive.
fn in_range(record: &AuditRecord, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> bool {
    from.is_none_or(|from| record.timestamp >= from) && to.is_none_or(|to| record.timestamp < to)
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Open a file for line reading, gunzipping it when it starts with the gzip magic bytes (a
/// `.gz` name or not); `read` follows the bytes read from disk.
fn open(path: &Path, read: Rc<Cell<u64>>) -> anyhow::Result<Box<dyn BufRead>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut raw = BufReader::new(Counted { inner: file, read });
    let head = raw
        .fill_buf()
        .with_context(|| format!("reading {}", path.display()))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            raw,
        ))))
    } else {
        Ok(Box::new(raw))
    }
}

/// A reader that counts the bytes it hands out.
struct Counted<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// A progress bar on standard error, drawn only on a terminal, at most ten times a second.
struct Progress {
    total: u64,
    done_before: u64,
    last_file: u64,
    last_draw: Option<Instant>,
    enabled: bool,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress {
            total,
            done_before: 0,
            last_file: 0,
            last_draw: None,
            enabled: std::io::stderr().is_terminal() && total > 0,
        }
    }

    /// A new file begins.
    fn start_file(&mut self) {
        self.done_before += self.last_file;
        self.last_file = 0;
    }

    /// `read` bytes of the current file are done.
    fn update(&mut self, read: u64) {
        self.last_file = read;
        if !self.enabled
            || self
                .last_draw
                .is_some_and(|at| at.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        let done = (self.done_before + read).min(self.total);
        let width = 40u64;
        let filled = (done * width / self.total.max(1)) as usize;
        eprint!(
            "\r[{}{}] {:>3}% {} / {} bytes",
            "#".repeat(filled),
            " ".repeat(width as usize - filled),
            done * 100 / self.total.max(1),
            done,
            self.total
        );
    }

    fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_their_line_ending_only() {
        assert_eq!(trim_line(b"{}\r\n"), b"{}");
        assert_eq!(trim_line(b"{}\n"), b"{}");
        assert_eq!(trim_line(b"{} "), b"{} ");
    }

    #[test]
    fn from_is_inclusive_and_to_exclusive() {
        let line = br#"{"event_id":"e","timestamp":"2026-11-23T10:00:00Z","event_type":"mcp_call","user_id":"u","session_id":"s","application_id":"a"}"#;
        let record = crate::decode::decode_native(line).unwrap();
        let at = |t: &str| parse_time("--from", Some(t)).ok().flatten();
        let ten = at("2026-11-23T10:00:00Z");
        assert!(in_range(&record, ten, None));
        assert!(!in_range(&record, None, ten));
        assert!(in_range(&record, None, at("2026-11-23T10:00:01+00:00")));
        assert!(parse_time("--to", Some("yesterday")).is_err());
    }

    #[test]
    fn gzip_is_recognised_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain-name.jsonl");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Default::default());
        encoder.write_all(b"line one\nline two\n").unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        let read = Rc::new(Cell::new(0));
        let lines: Vec<String> = open(&path, Rc::clone(&read))
            .unwrap()
            .lines()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines, ["line one", "line two"]);
        assert!(read.get() > 0);
    }
}

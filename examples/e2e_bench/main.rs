//! End-to-end benchmark of the real binary: tail → decode → the default rule pack → Splunk HEC,
//! into a counting HEC receiver on loopback, beside the bare parse of the same file.
//!
//! ```sh
//! cargo build --release --bin aiwarden --example e2e_bench
//! target/release/examples/e2e_bench --events 1000000
//! ```
//!
//! Runs, in order: the bare parse (read the file, decode every line into the canonical record on
//! one thread: the limit); the agent over the whole file with gzip off, then on; the agent fed
//! at `--rate` events/s by appending to its file, for ingest-to-alert latency under a steady
//! load. Each agent run is a fresh `aiwarden run` with a fresh state directory; CPU seconds and
//! peak RSS are the kernel's (`wait4`), latencies the agent's own HDR histogram
//! (`aiwarden_ingest_to_alert_latency_seconds`). No assertion is made on any figure.

mod agent;
mod dataset;
mod receiver;

use clap::Parser;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// End-to-end benchmark of the aiwarden binary.
#[derive(Parser, Debug)]
struct Args {
    /// Records in the data set.
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Distinct users in the data set.
    #[arg(long, default_value_t = 2_000)]
    users: u64,
    /// Feed rate of the latency run, events per second (0 skips that run).
    #[arg(long, default_value_t = 50_000)]
    rate: u64,
    /// Records fed in the latency run (default: the whole data set, capped at 10 s of feed).
    #[arg(long)]
    paced_events: Option<usize>,
    /// The agent's sink queue: `disk` (the default of a real deployment) or `memory`.
    #[arg(long, default_value = "disk")]
    queue: String,
    /// The agent's `agent.channel_capacity` in batches (default: the agent's own default).
    #[arg(long)]
    channel_capacity: Option<usize>,
    /// The file source's `max_batch_lines` (default: the source's own default).
    #[arg(long)]
    max_batch_lines: Option<usize>,
    /// The agent binary (default: `aiwarden` in the directory above this example's).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Where the data set and the runs go (default: a temporary directory, removed afterwards).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Longest a run may take before the bench gives up.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

/// One agent run's figures.
struct RunResult {
    name: String,
    events: usize,
    wall: Duration,
    usage: agent::Usage,
    idle_rss: u64,
    alerts: u64,
    entities: f64,
    latency: [Option<f64>; 3],
    latency_samples: f64,
    receiver_cpu: f64,
    requests: u64,
    wire_bytes: u64,
}

fn main() {
    let args = Args::parse();
    if let Err(error) = run(&args) {
        eprintln!("e2e_bench: {error}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let binary = match &args.agent {
        Some(path) => path.clone(),
        None => default_agent_binary()?,
    };
    if !binary.is_file() {
        return Err(format!(
            "no agent binary at {} (build it: cargo build --release --bin aiwarden)",
            binary.display()
        ));
    }
    let temporary = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    std::fs::create_dir_all(&work).map_err(|error| format!("{}: {error}", work.display()))?;
    let input = work.join("audit.jsonl");
    let generated = Instant::now();
    let bytes = dataset::write(&input, args.events, args.users)
        .map_err(|error| format!("writing the data set: {error}"))?;
    println!(
        "data set: {} records, {} users, {:.1} MB ({} bytes/record), generated in {:.1} s",
        args.events,
        args.users,
        bytes as f64 / 1e6,
        bytes / args.events.max(1) as u64,
        generated.elapsed().as_secs_f64()
    );
    let machine = machine_description();
    println!("machine: {machine}");

    let bare = bare_parse(&input)?;
    println!(
        "bare read + parse into the canonical record (1 thread, best of 3): {:.0} records/s, {:.0} MB/s",
        bare,
        bare * bytes as f64 / args.events.max(1) as f64 / 1e6
    );

    let token = "00000000-0000-4000-8000-00000000bench";
    let counts = Arc::new(receiver::Counts::default());
    let hec = receiver::start(token, Arc::clone(&counts))
        .map_err(|error| format!("starting the receiver: {error}"))?;
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut results = Vec::new();
    for gzip in [false, true] {
        let name = if gzip {
            "end to end, gzip"
        } else {
            "end to end"
        };
        let settings = agent::RunSettings {
            dir: &work.join(if gzip { "run-gzip" } else { "run-plain" }),
            input: &input,
            hec,
            gzip,
            queue: &args.queue,
            channel_capacity: args.channel_capacity,
            max_batch_lines: args.max_batch_lines,
        };
        let result = agent_run(
            name,
            &binary,
            &settings,
            token,
            &counts,
            args.events,
            None,
            timeout,
        )?;
        print_run(&result, Some(bare));
        results.push(result);
    }
    if args.rate > 0 {
        let paced_events = args
            .paced_events
            .unwrap_or(args.events)
            .min(args.events)
            .min(args.rate as usize * 10);
        let dir = work.join("run-paced");
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let fed = dir.join("fed.jsonl");
        std::fs::File::create(&fed).map_err(|error| format!("{}: {error}", fed.display()))?;
        let settings = agent::RunSettings {
            dir: &dir,
            input: &fed,
            hec,
            gzip: true,
            queue: &args.queue,
            channel_capacity: args.channel_capacity,
            max_batch_lines: args.max_batch_lines,
        };
        let feed = Feed {
            from: &input,
            to: &fed,
            events: paced_events,
            rate: args.rate,
        };
        let name = format!("fed at {} events/s, gzip", args.rate);
        let result = agent_run(
            &name,
            &binary,
            &settings,
            token,
            &counts,
            paced_events,
            Some(feed),
            timeout,
        )?;
        print_run(&result, None);
        results.push(result);
    }
    print_table(&results, bare, &machine, args);
    Ok(())
}

/// `aiwarden` beside the directory holding this executable (`target/release/examples/..`).
fn default_agent_binary() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|error| format!("current_exe: {error}"))?;
    me.parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("aiwarden"))
        .ok_or_else(|| "cannot locate the agent binary; pass --agent".to_string())
}

/// Records per second of reading the file and decoding every line, on one thread.
fn bare_parse(input: &Path) -> Result<f64, String> {
    let mut best = f64::MAX;
    let mut records = 0usize;
    for _ in 0..3 {
        let started = Instant::now();
        let bytes =
            std::fs::read(input).map_err(|error| format!("{}: {error}", input.display()))?;
        records = 0;
        for line in bytes
            .split(|byte| *byte == b'\n')
            .filter(|line| !line.is_empty())
        {
            if std::hint::black_box(aiwarden::decode::decode_native(line)).is_ok() {
                records += 1;
            }
        }
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(records as f64 / best)
}

/// Lines appended to the agent's file at a steady rate.
struct Feed<'a> {
    from: &'a Path,
    to: &'a Path,
    events: usize,
    rate: u64,
}

impl Feed<'_> {
    /// Append `events` lines of `from` to `to`, `rate` per second, in 5 ms steps.
    fn run(&self) -> Result<(), String> {
        let bytes = std::fs::read(self.from)
            .map_err(|error| format!("{}: {error}", self.from.display()))?;
        let mut ends = bytes
            .iter()
            .enumerate()
            .filter(|(_, byte)| **byte == b'\n')
            .map(|(at, _)| at + 1);
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(self.to)
            .map_err(|error| format!("{}: {error}", self.to.display()))?;
        let started = Instant::now();
        let (mut written_lines, mut written_bytes) = (0usize, 0usize);
        while written_lines < self.events {
            let due =
                ((started.elapsed().as_secs_f64() * self.rate as f64) as usize).min(self.events);
            let mut end = written_bytes;
            while written_lines < due {
                match ends.next() {
                    Some(line_end) => end = line_end,
                    None => return Ok(()),
                }
                written_lines += 1;
            }
            if end > written_bytes {
                out.write_all(&bytes[written_bytes..end])
                    .map_err(|error| format!("{}: {error}", self.to.display()))?;
                written_bytes = end;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
fn agent_run(
    name: &str,
    binary: &Path,
    settings: &agent::RunSettings,
    token: &str,
    counts: &receiver::Counts,
    events: usize,
    feed: Option<Feed>,
    timeout: Duration,
) -> Result<RunResult, String> {
    counts.reset();
    let own_cpu_before = own_cpu_seconds();
    let agent = agent::start(binary, settings, token)
        .map_err(|error| format!("{name}: starting the agent: {error}"))?;
    agent.wait_healthy(Duration::from_secs(30))?;
    let idle_rss = agent.rss_now().unwrap_or(0);
    let fed_from = Instant::now();
    if let Some(feed) = &feed {
        feed.run()?;
    }
    let started = if feed.is_some() {
        fed_from
    } else {
        agent.started
    };
    let deadline = started + timeout;
    let mut metrics;
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "{name}: not done within {timeout:?}; see {}",
                agent.log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
        let received = counts.envelopes.load(Ordering::SeqCst);
        if received < events as u64 {
            continue;
        }
        metrics = agent.metrics()?;
        let alerts = metrics.sum("aiwarden_alerts_total") as u64;
        if received >= events as u64 + alerts {
            break;
        }
    }
    let finished = counts.last_request().unwrap_or_else(Instant::now);
    let dead_lettered = metrics.sum("aiwarden_records_dead_lettered_total");
    if dead_lettered > 0.0 {
        eprintln!(
            "{name}: {dead_lettered} records dead-lettered (see the agent's state directory)"
        );
    }
    let latency_metric = "aiwarden_ingest_to_alert_latency_seconds";
    let latency = ["0.5", "0.99", "0.999"]
        .map(|quantile| metrics.with_label(latency_metric, &format!("quantile=\"{quantile}\"")));
    let result = RunResult {
        name: name.to_string(),
        events,
        wall: finished.saturating_duration_since(started),
        idle_rss,
        alerts: metrics.sum("aiwarden_alerts_total") as u64,
        entities: metrics.sum("aiwarden_tracked_entities"),
        latency,
        latency_samples: metrics.sum("aiwarden_ingest_to_alert_latency_samples_total"),
        requests: counts.requests.load(Ordering::SeqCst),
        wire_bytes: counts.wire_bytes.load(Ordering::SeqCst),
        usage: agent.stop()?,
        receiver_cpu: own_cpu_seconds() - own_cpu_before,
    };
    if !result.usage.clean_exit {
        return Err(format!(
            "{name}: the agent did not exit cleanly; see {}",
            settings.dir.join("agent.log").display()
        ));
    }
    Ok(result)
}

/// CPU seconds of this process so far (the receiver, and the feeder in the latency run).
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn per_second(result: &RunResult) -> f64 {
    result.events as f64 / result.wall.as_secs_f64().max(1e-9)
}

fn millis(value: Option<f64>) -> String {
    value.map_or_else(
        || "-".to_string(),
        |seconds| format!("{:.1}", seconds * 1000.0),
    )
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn print_run(result: &RunResult, bare: Option<f64>) {
    let rate = per_second(result);
    let ratio = bare.map_or_else(String::new, |bare| {
        format!(" ({:.0} % of the bare parse)", rate / bare * 100.0)
    });
    println!(
        "{}: {} records in {:.2} s = {:.0} records/s{ratio}; agent CPU {:.2} s ({:.2} s of it in the kernel); peak RSS {:.1} MiB; {} alerts; ingest-to-alert p50/p99/p99.9 {}/{}/{} ms over {} alerts; {} requests, {:.1} MB on the wire; receiver CPU {:.2} s",
        result.name,
        result.events,
        result.wall.as_secs_f64(),
        rate,
        result.usage.cpu_seconds,
        result.usage.system_seconds,
        mib(result.usage.peak_rss),
        result.alerts,
        millis(result.latency[0]),
        millis(result.latency[1]),
        millis(result.latency[2]),
        result.latency_samples,
        result.requests,
        result.wire_bytes as f64 / 1e6,
        result.receiver_cpu,
    );
}

fn print_table(results: &[RunResult], bare: f64, machine: &str, args: &Args) {
    println!();
    println!(
        "machine: {machine}; {} records, {} users, queue {}",
        args.events, args.users, args.queue
    );
    println!("| run | records/s | % of bare parse | agent CPU s | CPU µs/record | peak RSS MiB | ingest-to-alert p50 / p99 / p99.9 ms |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| bare read + parse (1 thread) | {bare:.0} | 100 | - | {:.2} | - | - |",
        1e6 / bare
    );
    for result in results {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} | {} / {} / {} |",
            result.name,
            per_second(result),
            per_second(result) / bare * 100.0,
            result.usage.cpu_seconds,
            result.usage.cpu_seconds * 1e6 / result.events.max(1) as f64,
            mib(result.usage.peak_rss),
            millis(result.latency[0]),
            millis(result.latency[1]),
            millis(result.latency[2]),
        );
    }
    if let Some(result) = results.iter().find(|result| result.entities > 0.0) {
        let grown = result.usage.peak_rss.saturating_sub(result.idle_rss);
        println!(
            "tracked entities at the end of `{}`: {:.0}; RSS at start {:.1} MiB, peak {:.1} MiB: at most {:.0} bytes of peak growth per tracked entity (growth includes buffers and queues)",
            result.name,
            result.entities,
            mib(result.idle_rss),
            mib(result.usage.peak_rss),
            grown as f64 / result.entities,
        );
    }
}

/// CPU model, core count and load, for the results table.
fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |cores| cores.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    format!("{model}, {cores} cores, load average {load} at start")
}

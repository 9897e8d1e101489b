//! Throughput of the detector tier per member, and how it scales from one member to several,
//! on librdkafka's mock cluster (in this process) with the real binary as members.
//!
//! ```sh
//! cargo build --release --bin aiwarden --example kafka_scaling
//! target/release/examples/kafka_scaling                # --events 350000 --partitions 48 --members 1,2,3
//! ```
//!
//! For each member count: a fresh consumer group of that many `aiwarden run` processes (a
//! partitioned `kafka` source, the default rule pack, alerts to a file), waited for until every
//! partition has exactly one owner; then the data set (`examples/e2e_bench/dataset.rs`, keyed
//! by user as the edge's `kafka` sink keys it) is produced, and the clock runs until the
//! group's committed offsets cover all of it — every record decoded, run through its
//! partition's engine, and its alerts written. CPU seconds are each member's own
//! (`/proc/<pid>/stat`, including its start), and this process's (the mock brokers and the
//! producer) during the run. No assertion is made on any figure.

// The end-to-end benchmark's generator, so the figures are over the same mix; only its
// in-memory half is used here.
#[path = "e2e_bench/dataset.rs"]
#[allow(dead_code)]
mod dataset;

use clap::Parser;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::ClientConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Detector-tier scaling on the mock cluster.
#[derive(Parser, Debug)]
struct Args {
    /// Records produced per run.
    #[arg(long, default_value_t = 350_000)]
    events: usize,
    /// Distinct users (keys).
    #[arg(long, default_value_t = 2_000)]
    users: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 48)]
    partitions: i32,
    /// Member counts to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    members: Vec<usize>,
    /// The agent binary (default: `aiwarden` in the directory above this example's).
    #[arg(long)]
    agent: Option<PathBuf>,
    /// Longest a run may take.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

/// What librdkafka's mock cluster keeps of one partition before it deletes the oldest messages.
const MOCK_PARTITION_BYTES: usize = 5 * 1024 * 1024;

struct Member {
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let agent = match args.agent.clone() {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|error| error.to_string())?
            .parent()
            .and_then(Path::parent)
            .map(|dir| dir.join("aiwarden"))
            .ok_or("cannot locate the agent binary; pass --agent")?,
    };
    if !agent.is_file() {
        return Err(format!("no agent binary at {}", agent.display()));
    }
    let lines: Vec<(String, String)> = dataset::lines(args.events, args.users)
        .map(|line| {
            let user = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|record| record["user_id"].as_str().map(str::to_string))
                .unwrap_or_default();
            (user, line)
        })
        .collect();
    // The mock keeps at most 5 MiB per partition and deletes older messages, which its
    // consumers then skip: the data set must fit, or the figures would count unread records.
    let bytes: usize = lines.iter().map(|(_, line)| line.len()).sum();
    let room = args.partitions as usize * MOCK_PARTITION_BYTES * 9 / 10;
    if bytes > room {
        return Err(format!(
            "{bytes} bytes do not fit the mock's {} partitions of 5 MiB: fewer --events or more --partitions",
            args.partitions
        ));
    }
    println!(
        "agent {}; {} records, {} users, {} partitions, mock cluster of 3 brokers; {} cores",
        agent.display(),
        lines.len(),
        args.users,
        args.partitions,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| members | records/s (tier) | records/s per member | CPU s per member | records per member CPU s | mock cluster + producer CPU s | alerts |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &count in &args.members {
        let cluster = MockCluster::new(3).map_err(|error| error.to_string())?;
        let brokers = cluster.bootstrap_servers();
        let group = format!("scale-{count}");
        cluster
            .create_topic("audit", args.partitions, 3)
            .map_err(|error| error.to_string())?;
        cluster
            .create_topic(&format!("{group}.aiwarden-state"), 1, 3)
            .map_err(|error| error.to_string())?;
        let members: Vec<Member> = (0..count)
            .map(|_| start_member(&agent, &brokers, &group))
            .collect::<Result<_, _>>()?;
        wait(Duration::from_secs(120), "the group to settle", || {
            settled(&members, args.partitions as usize)
        })?;
        let started = Instant::now();
        let harness_cpu_before = cpu_seconds(std::process::id());
        produce(&brokers, &lines)?;
        let deadline = Duration::from_secs(args.timeout_secs);
        wait(deadline, "every record committed", || {
            committed(&brokers, &group, args.partitions) >= lines.len() as i64
        })?;
        let wall = started.elapsed().as_secs_f64();
        let harness_cpu = cpu_seconds(std::process::id()) - harness_cpu_before;
        let cpu: Vec<f64> = members.iter().map(|m| cpu_seconds(m.child.id())).collect();
        let cpu_total: f64 = cpu.iter().sum();
        // The same records through the same rules: the same alerts whatever the member count.
        let alerts: usize = members
            .iter()
            .map(|member| {
                std::fs::read(member.dir.path().join("alerts.jsonl"))
                    .map(|bytes| bytes.iter().filter(|&&b| b == b'\n').count())
                    .unwrap_or(0)
            })
            .sum();
        let rate = lines.len() as f64 / wall;
        println!(
            "| {count} | {rate:.0} | {:.0} | {:.1} | {:.0} | {harness_cpu:.1} | {alerts} |",
            rate / count as f64,
            cpu_total / count as f64,
            lines.len() as f64 / cpu_total.max(f64::EPSILON),
        );
        drop(members);
    }
    Ok(())
}

fn start_member(agent: &Path, brokers: &str, group: &str) -> Result<Member, String> {
    let dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let config = format!(
        r#"
[agent]
state_dir = "{dir}/state"
[sources.bus]
type = "kafka"
brokers = ["{brokers}"]
topics = ["audit"]
group_id = "{group}"
state_replication = 1
[sinks.alerts]
type = "file"
path = "{dir}/alerts.jsonl"
records = "alerts"
[telemetry]
listen = "127.0.0.1:0"
"#,
        dir = dir.path().display()
    );
    let config_path = dir.path().join("aiwarden.toml");
    std::fs::write(&config_path, config).map_err(|error| error.to_string())?;
    let log = std::fs::File::create(dir.path().join("agent.log")).map_err(|e| e.to_string())?;
    let child = Command::new(agent)
        .args(["run", "--config"])
        .arg(&config_path)
        .env("RUST_LOG", "info,librdkafka=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|error| format!("{}: {error}", agent.display()))?;
    Ok(Member { child, dir })
}

/// Every partition held by exactly one member (by their logs), and every member holding some.
fn settled(members: &[Member], partitions: usize) -> bool {
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for member in members {
        let log = std::fs::read_to_string(member.dir.path().join("agent.log")).unwrap_or_default();
        let mut owned = std::collections::BTreeSet::new();
        for entry in log
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        {
            let Some(partition) = entry["partition"].as_str() else {
                continue;
            };
            match entry["message"].as_str() {
                Some("Partition assigned.") => owned.insert(partition.to_string()),
                Some("Partition released.") => owned.remove(partition),
                _ => false,
            };
        }
        if owned.is_empty() {
            return false;
        }
        for partition in owned {
            *holders.entry(partition).or_default() += 1;
        }
    }
    holders.len() == partitions && holders.values().all(|&count| count == 1)
}

fn produce(brokers: &str, lines: &[(String, String)]) -> Result<(), String> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .map_err(|error| error.to_string())?;
    for (user, line) in lines {
        let mut record = BaseRecord::to("audit")
            .key(user.as_str())
            .payload(line.as_str());
        // A full local queue: let the producer drain, then retry the same record.
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(60))
        .map_err(|error| error.to_string())
}

/// The sum of the group's committed offsets (0 when it cannot be read yet).
fn committed(brokers: &str, group: &str, partitions: i32) -> i64 {
    let Ok(consumer) = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create::<BaseConsumer>()
    else {
        return 0;
    };
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        let _ = list.add_partition_offset("audit", partition, Offset::Invalid);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(5))
        .map(|offsets| {
            offsets
                .elements()
                .iter()
                .filter_map(|element| match element.offset() {
                    Offset::Offset(offset) => Some(offset),
                    _ => None,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// User plus system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&index| fields.get(index).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    ticks / 100.0
}

fn wait(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) -> Result<(), String> {
    let started = Instant::now();
    while !condition() {
        if started.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

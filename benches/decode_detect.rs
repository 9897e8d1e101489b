//! Decode, scan and detect throughput on a realistic event mix (criterion), with every rule of
//! the default pack.
//!
//! The mix: 2,000 users in 8 departments, sessions of ~40 events; 70 % model calls, 15 % MCP
//! calls, 10 % session start/end, 5 % policy events; ~10 % carry 200–2,000 characters of prompt
//! text; ~2 % restricted data. Every default rule is loaded. Run: `cargo bench --bench decode_detect`.

use aiwarden::decode::decode_native;
use aiwarden::detect::{Engine, EngineSettings, Entitlements};
use aiwarden::pipeline::rules::load_rules;
use aiwarden::record::AgentInfo;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;

const EVENTS: usize = 20_000;

#[path = "common/corpus.rs"]
mod corpus;
use corpus::{Lcg, WORDS};

fn event_mix() -> Vec<String> {
    let mut rng = Lcg(42);
    let start = 1_795_392_000_000_i64; // 2026-11-23T00:00:00Z
    (0..EVENTS)
        .map(|n| {
            let user = rng.below(2000);
            let session = user * 10 + (n as u64 / 40) % 10;
            let millis = start + (n as i64) * 200;
            let time = chrono::DateTime::from_timestamp_millis(millis)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default();
            let roll = rng.below(100);
            let event_type = match roll {
                0..=69 => "api_request",
                70..=84 => "mcp_call",
                85..=89 => "session_start",
                90..=94 => "session_end",
                _ => "policy_event",
            };
            let classification = match rng.below(100) {
                0..=1 => "restricted",
                2..=20 => "confidential",
                21..=70 => "internal",
                _ => "public",
            };
            let prompt = if rng.below(10) == 0 {
                let words = 40 + rng.below(300);
                let text: Vec<&str> = (0..words)
                    .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
                    .collect();
                format!(",\"prompt_raw\":\"{}\"", text.join(" "))
            } else {
                String::new()
            };
            format!(
                concat!(
                    "{{\"event_id\":\"00000000-0000-4000-8000-{n:012}\",\"timestamp\":\"{time}\",",
                    "\"event_type\":\"{event_type}\",\"user_id\":\"user-{user}@acme.example\",",
                    "\"session_id\":\"s-{session}\",\"department\":\"dept-{dept}\",",
                    "\"application_id\":\"app-{app}\",\"model\":\"claude-sonnet-4-6\",",
                    "\"prompt_tokens\":{pt},\"completion_tokens\":{ct},\"latency_ms\":{lat},",
                    "\"data_classification\":\"{classification}\",\"mcp_integrations\":[\"jira\"],",
                    "\"mcp_calls\":{mcp},\"policy_flags\":[],\"ip_address\":\"10.1.{o3}.{o4}\",",
                    "\"status\":\"success\"{prompt}}}"
                ),
                n = n,
                time = time,
                event_type = event_type,
                user = user,
                session = session,
                dept = user % 8,
                app = user % 5,
                pt = 500 + rng.below(4000),
                ct = 100 + rng.below(1000),
                lat = 300 + rng.below(5000),
                classification = classification,
                mcp = if event_type == "mcp_call" {
                    1
                } else {
                    rng.below(3)
                },
                o3 = user % 250,
                o4 = rng.below(250),
                prompt = prompt,
            )
        })
        .collect()
}

fn engine() -> Engine {
    let rules = load_rules(None).unwrap_or_else(|error| panic!("default rules: {error}"));
    Engine::new(
        rules,
        Entitlements::default(),
        EngineSettings {
            agent: AgentInfo::local(Some("bench")),
            deployment: "bench".into(),
            allowed_lateness: Duration::from_secs(300),
            max_entities_per_rule: 100_000,
            evidence_sample: 10,
        },
    )
}

fn bench(c: &mut Criterion) {
    let lines = event_mix();
    let bytes: usize = lines.iter().map(String::len).sum();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(20);
    group.bench_function("decode", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = std::hint::black_box(decode_native(line.as_bytes()));
            }
        })
    });
    group.bench_function("decode_detect", |b| {
        b.iter_batched(
            engine,
            |mut engine| {
                let mut alerts = Vec::new();
                for line in &lines {
                    if let Ok(record) = decode_native(line.as_bytes()) {
                        engine.process(&record, &mut alerts);
                    }
                    alerts.clear();
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    let scanner = aiwarden::enrich::scan::Scanner::builtin();
    group.bench_function("decode_scan_detect", |b| {
        b.iter_batched(
            engine,
            |mut engine| {
                let mut alerts = Vec::new();
                for line in &lines {
                    if let Ok(mut record) = decode_native(line.as_bytes()) {
                        aiwarden::enrich::apply_scan(&scanner, &[], &mut record);
                        engine.process(&record, &mut alerts);
                    }
                    alerts.clear();
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    eprintln!(
        "event mix: {} events, {} bytes ({} bytes/event on average)",
        lines.len(),
        bytes,
        bytes / lines.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

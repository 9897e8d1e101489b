//! Decode, scan and detect throughput on a realistic event mix (criterion), with every rule of
//! the default pack.
//!
//! The mix is the end-to-end benchmark's data set (`examples/e2e_bench/dataset.rs`): 2,000
//! users, sessions of ~40 events, model and MCP calls, ~10 % with 200–2,000 characters of prompt
//! text. Every default rule is loaded. Run: `cargo bench --bench decode_detect`.

use aiwarden::decode::decode_native;
use aiwarden::detect::{Engine, EngineSettings, Entitlements};
use aiwarden::pipeline::rules::load_rules;
use aiwarden::record::AgentInfo;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;

const EVENTS: usize = 20_000;

// The end-to-end benchmark's generator, so these figures and the end-to-end ones are over the
// same mix; only its in-memory half is used here.
#[path = "../examples/e2e_bench/dataset.rs"]
#[allow(dead_code)]
mod dataset;

fn event_mix() -> Vec<String> {
    dataset::lines(EVENTS, 2_000).collect()
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

//! Detection cost per rule kind (criterion): one engine holding a single rule, over 20,000
//! decoded records of the end-to-end data set (2,000 users). `match`, `threshold` and
//! `baseline` are the default pack's `restricted-unauthorised`, `mcp-volume` and `token-spike`;
//! `distinct` and `first_seen` are written here against the data set's fields (the pack's own
//! use Anthropic activity fields this mix does not carry). Run: `cargo bench --bench rules`.

// The end-to-end benchmark's generator, so every figure is over the same mix; only its
// in-memory half is used here.
#[path = "../examples/e2e_bench/dataset.rs"]
#[allow(dead_code)]
mod dataset;

use aiwarden::decode::decode_native;
use aiwarden::detect::{Engine, EngineSettings, Entitlements, RuleFile, RuleSet};
use aiwarden::pipeline::rules::rule_files;
use aiwarden::record::{AgentInfo, AuditRecord};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;

const EVENTS: usize = 20_000;

const DISTINCT: &str = r#"id = "many-integrations"
title = "Many MCP integrations"
severity = "medium"
suppress = "1h"
kind = "distinct"
group_by = "user_id"
[distinct]
field = "mcp_integrations"
window = "1h"
above = 5
"#;

const FIRST_SEEN: &str = r#"id = "new-address"
title = "New address"
severity = "low"
suppress = "1h"
kind = "first_seen"
group_by = "user_id"
[first_seen]
field = "ip_address"
learning = "1d"
remember = "30d"
"#;

fn pack_rule(id: &str) -> RuleFile {
    rule_files(None)
        .unwrap_or_else(|error| panic!("default rules: {error}"))
        .into_iter()
        .find(|file| file.text.contains(&format!("id = \"{id}\"")))
        .unwrap_or_else(|| panic!("no rule {id} in the pack"))
}

fn engine(file: &RuleFile) -> Engine {
    let rules = RuleSet::parse(std::slice::from_ref(file))
        .unwrap_or_else(|error| panic!("rule {}: {error}", file.name));
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
    let records: Vec<AuditRecord> = dataset::lines(EVENTS, 2_000)
        .filter_map(|line| decode_native(line.as_bytes()).ok())
        .collect();
    let kinds = [
        ("match", pack_rule("restricted-unauthorised")),
        ("threshold", pack_rule("mcp-volume")),
        ("baseline", pack_rule("token-spike")),
        (
            "distinct",
            RuleFile {
                name: "distinct.toml".into(),
                text: DISTINCT.into(),
            },
        ),
        (
            "first_seen",
            RuleFile {
                name: "first_seen.toml".into(),
                text: FIRST_SEEN.into(),
            },
        ),
    ];
    let mut group = c.benchmark_group("rule_kind");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.sample_size(20);
    for (kind, file) in &kinds {
        group.bench_function(*kind, |b| {
            b.iter_batched(
                || engine(file),
                |mut engine| {
                    let mut alerts = Vec::new();
                    for record in &records {
                        engine.process(record, &mut alerts);
                        alerts.clear();
                    }
                    engine
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

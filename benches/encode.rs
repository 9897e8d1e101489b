//! Encoding throughput (criterion): the records of the end-to-end data set, decoded, turned into
//! Splunk HEC envelopes and Elastic `_bulk` (ECS) documents, each appended to one reused buffer
//! as the sinks' intake does. Content forwarding off (the default). Run:
//! `cargo bench --bench encode`.

// The end-to-end benchmark's generator, so every figure is over the same mix; only its
// in-memory half is used here.
#[path = "../examples/e2e_bench/dataset.rs"]
#[allow(dead_code)]
mod dataset;

use aiwarden::decode::decode_native;
use aiwarden::record::Output;
use aiwarden::sinks::elastic::DocumentSettings;
use aiwarden::sinks::splunk_hec::EnvelopeSettings;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;

const EVENTS: usize = 20_000;

fn outputs() -> Vec<Output> {
    dataset::lines(EVENTS, 2_000)
        .filter_map(|line| decode_native(line.as_bytes()).ok())
        .map(|record| Output::Event(Arc::new(record)))
        .collect()
}

fn bench(c: &mut Criterion) {
    let items = outputs();
    let hec = EnvelopeSettings {
        host: "bench-host".into(),
        source: "aiwarden".into(),
        index: Some("ai_audit".into()),
        deployment: "bench".into(),
    };
    let ecs = DocumentSettings {
        namespace: "default".into(),
        host: "bench-host".into(),
        deployment: "bench".into(),
    };
    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.sample_size(20);
    let mut buffer = Vec::with_capacity(1 << 20);
    group.bench_function("splunk_hec_envelope", |b| {
        b.iter(|| {
            for item in &items {
                buffer.clear();
                aiwarden::sinks::splunk_hec::encode(item, &hec, false, &mut buffer)
                    .unwrap_or_else(|error| panic!("encode: {error}"));
                std::hint::black_box(&buffer);
            }
        })
    });
    group.bench_function("elastic_ecs_document", |b| {
        b.iter(|| {
            for item in &items {
                buffer.clear();
                aiwarden::sinks::elastic::encode(item, &ecs, false, &mut buffer)
                    .unwrap_or_else(|error| panic!("encode: {error}"));
                std::hint::black_box(&buffer);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

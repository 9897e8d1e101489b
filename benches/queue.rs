//! Disk queue throughput (criterion): appending and reading back records the size of a typical
//! HEC envelope (~600 bytes), in intake groups of 500, with `fsync = "none"` and `"batch"`.
//! Appends are marked done at once (a healthy steady state), so the run keeps one segment on
//! disk. Reported as records/s. The overhead per record is fixed: a 28-byte frame header, 3 bytes of
//! kind and id length, and the id (36 bytes for a UUID).
//! Run: `cargo bench --bench queue`.

use aiwarden::queue::{Append, DiskQueue, Fsync, QueueConfig, ReadItem, RecordKind};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const GROUP: usize = 500;
const BODY: usize = 600;

fn records() -> Vec<(String, Vec<u8>)> {
    (0..GROUP)
        .map(|i| {
            let id = format!("0b7f3a52-1c9e-4e7a-9d61-{i:012}");
            let mut body = format!("{{\"time\":1795400000.123,\"event\":{{\"event_id\":\"{id}\"");
            while body.len() < BODY - 2 {
                body.push_str(",\"k\":1");
            }
            body.push_str("}}");
            (id, body.into_bytes())
        })
        .collect()
}

fn config(fsync: Fsync) -> QueueConfig {
    QueueConfig {
        fsync,
        max_bytes: 1 << 40,
        ..QueueConfig::default()
    }
}

fn append(c: &mut Criterion) {
    let data = records();
    let appends: Vec<Append<'_>> = data
        .iter()
        .map(|(id, body)| Append {
            kind: RecordKind::Event,
            id,
            body,
        })
        .collect();
    let mut group = c.benchmark_group("queue_append");
    group.throughput(Throughput::Elements(GROUP as u64));
    group.measurement_time(Duration::from_secs(5));
    for (name, fsync) in [("fsync_none", Fsync::None), ("fsync_batch", Fsync::Batch)] {
        let dir = tempfile::tempdir().unwrap();
        let mut opened = DiskQueue::open(dir.path(), config(fsync)).unwrap();
        let mut next = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                opened.writer.append(black_box(&appends)).unwrap();
                // Delivered at once, as in a healthy steady state: segments are deleted as
                // they fill, so the disk holds one segment, not the whole run.
                opened.queue.done(next, next + GROUP as u64);
                next += GROUP as u64;
            })
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let data = records();
    let appends: Vec<Append<'_>> = data
        .iter()
        .map(|(id, body)| Append {
            kind: RecordKind::Event,
            id,
            body,
        })
        .collect();
    let mut group = c.benchmark_group("queue_read");
    group.throughput(Throughput::Elements(GROUP as u64 * 20));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("read_and_mark_done", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().unwrap();
                let mut opened = DiskQueue::open(dir.path(), config(Fsync::None)).unwrap();
                for _ in 0..20 {
                    opened.writer.append(&appends).unwrap();
                }
                (dir, opened)
            },
            |(dir, mut opened)| {
                // Marked done per request of 500, as the driver does.
                let mut read = 0u64;
                let mut first = None;
                while let Some(item) = opened.reader.read_next().unwrap() {
                    if let ReadItem::Record(record) = item {
                        let start = *first.get_or_insert(record.index);
                        read += 1;
                        if record.index + 1 - start == GROUP as u64 {
                            opened.queue.done(start, record.index + 1);
                            first = None;
                        }
                    }
                }
                assert_eq!(read, GROUP as u64 * 20);
                drop(dir);
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, append, read);
criterion_main!(benches);

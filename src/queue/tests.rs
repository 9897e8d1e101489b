use super::*;
use std::path::Path;

fn config(segment_bytes: u64) -> QueueConfig {
    QueueConfig {
        segment_bytes,
        max_bytes: 1024 * 1024,
        ..QueueConfig::default()
    }
}

fn append(writer: &mut Writer, ids: std::ops::Range<u32>) {
    let bodies: Vec<(String, Vec<u8>)> = ids
        .map(|i| (format!("id-{i}"), format!("{{\"n\":{i}}}").into_bytes()))
        .collect();
    let records: Vec<Append<'_>> = bodies
        .iter()
        .map(|(id, body)| Append {
            kind: RecordKind::Event,
            id,
            body,
        })
        .collect();
    writer.append(&records).unwrap();
}

fn read_all(reader: &mut Reader) -> Vec<ReadItem> {
    let mut items = Vec::new();
    while let Some(item) = reader.read_next().unwrap() {
        items.push(item);
    }
    items
}

fn ids(items: &[ReadItem]) -> Vec<String> {
    items
        .iter()
        .filter_map(|item| match item {
            ReadItem::Record(record) => Some(record.id_text().into_owned()),
            ReadItem::Damaged(_) => None,
        })
        .collect()
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|ext| ext == "seg")
        })
        .count()
}

#[test]
fn records_come_back_in_order_and_survive_a_reopen_until_done() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let (queue, mut writer, mut reader) = (opened.queue, opened.writer, opened.reader);
    append(&mut writer, 0..5);
    append(&mut writer, 5..8);
    let items = read_all(&mut reader);
    assert_eq!(
        ids(&items),
        (0..8).map(|i| format!("id-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(queue.stats().records, 8);
    // Done out of order: 3..8 first, then 0..2. Index 2 is still pending.
    queue.done(3, 8);
    queue.done(0, 2);
    assert_eq!(queue.stats().records, 1);
    drop((queue, writer, reader));

    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    assert!(opened.torn.is_none());
    let mut reader = opened.reader;
    // The commit point is 2: records 2.. come again (3..8 were done, but only the contiguous
    // prefix is saved, so they are resent: at least once, never lost).
    let again = ids(&read_all(&mut reader));
    assert_eq!(again.first().map(String::as_str), Some("id-2"));
    assert_eq!(again.len(), 6);
}

#[test]
fn delivered_segments_are_deleted_and_space_is_given_back() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(64 * 1024)).unwrap();
    let (queue, mut writer, mut reader) = (opened.queue, opened.writer, opened.reader);
    for chunk in 0..40 {
        append(&mut writer, chunk * 100..(chunk + 1) * 100);
    }
    assert!(segments(dir.path()) > 1, "segments rotate");
    let before = queue.stats().bytes;
    let items = read_all(&mut reader);
    assert_eq!(items.len(), 4000);
    queue.done(0, 4000);
    assert_eq!(segments(dir.path()), 1, "only the active segment is kept");
    assert!(queue.stats().bytes < before);
    assert_eq!(queue.stats().records, 0);
    assert_eq!(queue.stats().oldest_ms, None);
    append(&mut writer, 4000..4001);
    assert_eq!(ids(&read_all(&mut reader)), vec!["id-4000".to_string()]);
}

#[test]
fn records_served_from_the_read_buffer_stay_intact_across_reads_and_long_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(64 * 1024 * 1024);
    config.max_bytes = 64 * 1024 * 1024;
    let opened = DiskQueue::open(dir.path(), config).unwrap();
    let (mut writer, mut reader) = (opened.writer, opened.reader);
    // Sizes that straddle the 256 KiB read chunk, and frames longer than one chunk or two
    // (read in doubling steps), between small ones.
    let sizes = (0..900usize).map(|n| (n * 7919) % 1500).chain([
        300 * 1024,
        5,
        700 * 1024,
        1,
        256 * 1024 - 40,
    ]);
    let bodies: Vec<Vec<u8>> = sizes
        .enumerate()
        .map(|(n, len)| (0..len).map(|i| (i * 31 + n) as u8).collect())
        .collect();
    let ids: Vec<String> = (0..bodies.len()).map(|n| format!("r{n}")).collect();
    for (ids, bodies) in ids.chunks(50).zip(bodies.chunks(50)) {
        let records: Vec<Append<'_>> = ids
            .iter()
            .zip(bodies)
            .map(|(id, body)| Append {
                kind: RecordKind::Alert,
                id,
                body,
            })
            .collect();
        writer.append(&records).unwrap();
    }
    let check = |item: &ReadItem| {
        let ReadItem::Record(record) = item else {
            panic!("damage: {item:?}")
        };
        let n = record.index as usize;
        assert_eq!(record.id_text(), ids[n]);
        assert_eq!(record.kind, RecordKind::Alert);
        assert!(record.body[..] == bodies[n][..], "record {n} differs");
    };
    // Every record is held until the end, so a later read reusing memory would show.
    let items = read_all(&mut reader);
    assert_eq!(items.len(), bodies.len());
    items.iter().for_each(check);
    drop((items, reader, writer));
    // Read again, dropping each record once checked, as delivery does: buffers are reused.
    let mut reader = DiskQueue::open(dir.path(), config).unwrap().reader;
    let mut read = 0;
    while let Some(item) = reader.read_next().unwrap() {
        check(&item);
        read += 1;
    }
    assert_eq!(read, bodies.len());
}

#[test]
fn a_full_queue_says_so_until_records_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(64 * 1024)).unwrap();
    let (queue, mut writer, mut reader) = (opened.queue, opened.writer, opened.reader);
    let mut next = 0;
    while !queue.is_full() {
        append(&mut writer, next..next + 500);
        next += 500;
    }
    let items = read_all(&mut reader);
    queue.done(0, items.len() as u64);
    assert!(!queue.is_full());
}

#[test]
fn a_torn_tail_is_cut_off_and_reported_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let mut writer = opened.writer;
    append(&mut writer, 0..3);
    drop((writer, opened.reader, opened.queue));
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .unwrap();
    // Half a frame, as a crash in the middle of a write leaves it.
    let mut half = Vec::new();
    frame::encode(&mut half, 3, 0, RecordKind::Event, "id-3", b"{\"n\":3}");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&half[..half.len() / 2]);
    std::fs::write(&segment, &bytes).unwrap();

    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let torn = opened.torn.expect("the torn tail is reported");
    assert_eq!(torn.bytes.len(), half.len() / 2);
    let mut writer = opened.writer;
    let mut reader = opened.reader;
    append(&mut writer, 3..4);
    let items = read_all(&mut reader);
    assert_eq!(ids(&items), vec!["id-0", "id-1", "id-2", "id-3"]);
    assert!(items.iter().all(|item| matches!(item, ReadItem::Record(_))));
}

#[test]
fn a_damaged_record_is_reported_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let mut writer = opened.writer;
    append(&mut writer, 0..5);
    drop((writer, opened.reader, opened.queue));
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let frame_len = bytes.len() / 5;
    bytes[frame_len * 2 + frame::HEADER_LEN + 4] ^= 0x55; // inside record 2's payload
    std::fs::write(&segment, &bytes).unwrap();

    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let (queue, mut reader) = (opened.queue, opened.reader);
    let items = read_all(&mut reader);
    assert_eq!(ids(&items), vec!["id-0", "id-1", "id-3", "id-4"]);
    let damaged: Vec<_> = items
        .iter()
        .filter_map(|item| match item {
            ReadItem::Damaged(damaged) => Some(damaged),
            ReadItem::Record(_) => None,
        })
        .collect();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].reason, "checksum mismatch");
    assert_eq!(damaged[0].offset, (frame_len * 2) as u64);
    // The lost record counts as done, so the queue can empty.
    queue.done(0, 2);
    queue.done(3, 5);
    assert_eq!(queue.stats().records, 0);
}

#[test]
fn the_age_of_the_oldest_record_follows_the_commit_point() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let (queue, mut writer) = (opened.queue, opened.writer);
    append(&mut writer, 0..2);
    let first = queue.stats().oldest_ms.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    append(&mut writer, 2..4);
    assert_eq!(queue.stats().oldest_ms, Some(first));
    queue.done(0, 2);
    assert!(queue.stats().oldest_ms.unwrap() >= first + 20);
}

#[test]
fn a_frame_group_built_in_place_reads_back_in_order_and_a_stale_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opened = DiskQueue::open(dir.path(), config(1024 * 1024)).unwrap();
    let (queue, mut writer, mut reader) = (opened.queue, opened.writer, opened.reader);
    append(&mut writer, 0..2);
    let mut group = FrameGroup::default();
    writer.begin_group(&mut group);
    assert!(group.push_with(RecordKind::Alert, "id-2", |out| {
        out.extend_from_slice(b"{\"n\":2}");
        true
    }));
    let before = group.len();
    // A record its encoder gives up on leaves no trace, half-written body included.
    assert!(!group.push_with(RecordKind::Event, "skipped", |out| {
        out.extend_from_slice(b"{\"half");
        false
    }));
    assert_eq!((group.len(), group.records()), (before, 1));
    group.push(RecordKind::Event, "id-3", b"{\"n\":3}");
    writer.append_group(&group).unwrap();
    let items = read_all(&mut reader);
    assert_eq!(ids(&items), ["id-0", "id-1", "id-2", "id-3"]);
    let ReadItem::Record(third) = &items[2] else {
        panic!("record 2 is intact");
    };
    assert_eq!((third.index, third.kind), (2, RecordKind::Alert));
    assert_eq!(&third.body[..], b"{\"n\":2}");

    // A group framed before another append carries indices that are taken: refused whole.
    writer.begin_group(&mut group);
    group.push(RecordKind::Event, "stale", b"{}");
    append(&mut writer, 4..5);
    let error = writer.append_group(&group).unwrap_err();
    assert!(error
        .to_string()
        .contains("group starts at 4, the queue at 5"));
    assert_eq!(ids(&read_all(&mut reader)), ["id-4"]);
    assert_eq!(queue.stats().records, 5);
}

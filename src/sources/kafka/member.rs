//! One consumer-group member, on its own thread: poll, batch per partition, send, and commit
//! each partition's offset only once every batch before it is delivered (or durably queued) —
//! the rule a file checkpoint follows.
//!
//! The thread owns a librdkafka `BaseConsumer`, whose rebalance callbacks run inside `poll` on
//! this same thread. That is what makes a clean hand-over possible: when a partition is revoked,
//! the callback sends what is pending, waits for every outstanding acknowledgement, commits
//! synchronously and lets the [`PartitionOwner`] flush and snapshot its state, all before
//! librdkafka gives the partition to another member. Nothing else polls meanwhile, so the
//! bookkeeping needs no further locking discipline than one uncontended mutex.

use super::config::KafkaSourceConfig;
use crate::decode::Format;
use crate::kafka::{AgentClientContext, KafkaError};
use crate::pipeline::ack::{batch_ack, AckReceiver, BatchStatus};
use crate::sources::{Line, LineData, SourceBatch, SourceError};
use crate::telemetry::Metrics;
use rdkafka::client::OAuthToken;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaResult;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use std::collections::{BTreeMap, VecDeque};
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Whoever runs detection for the partitions this member is given.
pub trait PartitionOwner: Send + Sync + 'static {
    /// The group gave this member the partition; called on the consumer thread before its
    /// committed offset is read. It may block until the previous owner has let go.
    fn acquire(&self, _partition: &TopicPartition) {}

    /// The partition is now this member's; consumption resumes at `committed` (none: the group
    /// has no offset for it yet). Returns where its batches go. Called on the consumer thread,
    /// before any of its records is read; it may block (to restore state).
    fn assigned(
        &self,
        partition: &TopicPartition,
        committed: Option<i64>,
    ) -> mpsc::Sender<SourceBatch>;

    /// The partition is leaving this member. Every batch read from it has been acknowledged and
    /// its offset committed at `committed` (none when that failed: the next owner then replays
    /// from the previous commit). `lost`: the group already gave it to another member (this
    /// one missed its session), so nothing may be said on its behalf. Called on the consumer
    /// thread; it may block (to snapshot).
    fn released(&self, partition: &TopicPartition, committed: Option<i64>, lost: bool);
}

/// A partition this member reads, with what is in flight from it.
struct Owned {
    stream: Arc<str>,
    out: mpsc::Sender<SourceBatch>,
    pending: Vec<Line>,
    pending_since: Option<Instant>,
    /// The offset after the last message read.
    read_up_to: Option<i64>,
    /// Batches sent, each with the offset after its last message, oldest first.
    in_flight: VecDeque<(i64, AckReceiver)>,
    /// Everything before this offset is delivered.
    delivered_up_to: Option<i64>,
    /// The offset the group coordinator confirmed for this partition (not merely one sent).
    committed: Option<i64>,
    /// A batch failed: nothing after it may be committed on this assignment.
    failed: bool,
}

/// The bookkeeping shared by the poll loop and the rebalance callbacks.
pub(super) struct Member {
    owned: Mutex<BTreeMap<TopicPartition, Owned>>,
    owner: Arc<dyn PartitionOwner>,
    source: Arc<str>,
    format: Format,
    max_batch_records: usize,
    metrics: Arc<Metrics>,
    /// Set once shutdown has released everything: partitions the group still hands out while
    /// the consumer closes are not taken (their next owner restores them).
    stopping: AtomicBool,
}

/// The consumer's context: OAUTHBEARER tokens, and the rebalance hand-over.
pub(super) struct MemberContext {
    client: AgentClientContext,
    member: Arc<Member>,
}

impl ClientContext for MemberContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, config: Option<&str>) -> Result<OAuthToken, Box<dyn Error>> {
        self.client.generate_oauth_token(config)
    }
}

impl ConsumerContext for MemberContext {
    /// The hand-over, replacing the `rdkafka` default so that the position each partition
    /// resumes at is the one its state was restored for: the assignment is made with explicit
    /// offsets.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: RDKafkaRespErr,
        list: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let outcome = match error {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.member.take(consumer, list);
                if cooperative {
                    consumer.incremental_assign(list)
                } else {
                    consumer.assign(list)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.member.release(consumer, &partitions_of(list));
                if cooperative {
                    consumer.incremental_unassign(list)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(source = %self.member.source, error = ?other, "Kafka rebalance error.");
                if cooperative {
                    self.member.release(consumer, &partitions_of(list));
                    consumer.incremental_unassign(list)
                } else {
                    // Eager: the whole assignment goes, as rdkafka's default does.
                    self.member.release_all(consumer);
                    consumer.unassign()
                }
            }
        };
        if let Err(error) = outcome {
            tracing::error!(source = %self.member.source, %error, "Cannot apply the group's assignment.");
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        self.member.confirm_commits(&result, offsets);
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|element| TopicPartition {
            topic: Arc::from(element.topic()),
            partition: element.partition(),
        })
        .collect()
}

impl Member {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<TopicPartition, Owned>> {
        match self.owned.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Partitions assigned: wait for their previous owners to let go, learn where each resumes,
    /// ask the owner to restore its state for exactly that position and where batches go, and
    /// pin that position in `list` so consumption starts there.
    fn take(&self, consumer: &BaseConsumer<MemberContext>, list: &mut TopicPartitionList) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        let partitions = partitions_of(list);
        for partition in &partitions {
            self.owner.acquire(partition);
        }
        let mut committed = None;
        for attempt in 1..=COMMITTED_ATTEMPTS {
            match consumer.committed_offsets(list.clone(), COMMITTED_TIMEOUT) {
                Ok(offsets) => {
                    committed = Some(offsets.to_topic_map());
                    break;
                }
                Err(error) => {
                    tracing::warn!(source = %self.source, %error, attempt, "Cannot read committed offsets.");
                }
            }
        }
        let committed = committed.unwrap_or_else(|| {
            // The partitions still start where the group left them (librdkafka reads the
            // offsets itself), but their state starts empty: windows miss that history.
            tracing::error!(source = %self.source, "No committed offsets; the partitions' detection state starts empty.");
            Default::default()
        });
        for partition in partitions {
            let resume = match committed.get(&(partition.topic.to_string(), partition.partition)) {
                Some(Offset::Offset(offset)) => Some(*offset),
                _ => None,
            };
            if let Some(offset) = resume {
                if let Err(error) = list.set_partition_offset(
                    &partition.topic,
                    partition.partition,
                    Offset::Offset(offset),
                ) {
                    tracing::warn!(source = %self.source, partition = %partition, %error, "Cannot pin the resume offset.");
                }
            }
            tracing::info!(source = %self.source, partition = %partition, committed = ?resume, "Partition assigned.");
            let out = self.owner.assigned(&partition, resume);
            self.lock().insert(
                partition.clone(),
                Owned {
                    stream: Arc::from(partition.to_string()),
                    out,
                    pending: Vec::new(),
                    pending_since: None,
                    read_up_to: resume,
                    in_flight: VecDeque::new(),
                    delivered_up_to: resume,
                    committed: resume,
                    failed: false,
                },
            );
        }
    }

    /// Partitions leaving: send what is pending, wait for every acknowledgement, commit, and
    /// let the owner flush its state. Blocks the consumer thread, which is the point.
    fn release(&self, consumer: &BaseConsumer<MemberContext>, partitions: &[TopicPartition]) {
        for partition in partitions {
            let Some(mut owned) = self.lock().remove(partition) else {
                continue;
            };
            self.send_pending(&mut owned);
            while let Some((offset, receiver)) = owned.in_flight.pop_front() {
                match receiver.blocking_status() {
                    BatchStatus::Delivered if !owned.failed => owned.delivered_up_to = Some(offset),
                    _ => owned.failed = true,
                }
            }
            if owned.in_flight.is_empty() && !owned.failed {
                // Messages without a payload (tombstones) move the position without a batch.
                owned.delivered_up_to = owned.read_up_to.max(owned.delivered_up_to);
            }
            // Always a synchronous commit, even when an earlier asynchronous one covered the
            // offset: the owner writes a snapshot for the offset returned here, and a snapshot
            // must never run ahead of what the group coordinator holds.
            let committed = match owned.delivered_up_to {
                Some(offset) => match commit(consumer, partition, offset, CommitMode::Sync) {
                    Ok(()) => Some(offset),
                    Err(error) => {
                        tracing::warn!(source = %self.source, partition = %partition, %error, "Cannot commit on release; the next owner replays from the previous commit.");
                        None
                    }
                },
                None => None,
            };
            drop(owned.out);
            self.owner
                .released(partition, committed, consumer.assignment_lost());
            tracing::info!(source = %self.source, partition = %partition, committed = ?committed, "Partition released.");
        }
    }

    /// Release everything (shutdown).
    fn release_all(&self, consumer: &BaseConsumer<MemberContext>) {
        let partitions: Vec<TopicPartition> = self.lock().keys().cloned().collect();
        self.release(consumer, &partitions);
    }

    /// One message read.
    fn read(&self, partition: TopicPartition, offset: i64, payload: Option<&[u8]>) {
        let mut owned_map = self.lock();
        let Some(owned) = owned_map.get_mut(&partition) else {
            // A message of a partition already released: the next owner reads it.
            return;
        };
        owned.read_up_to = Some(offset + 1);
        if let Some(payload) = payload {
            owned.pending.push(Line {
                offset: offset.max(0) as u64,
                data: LineData::Complete(payload.to_vec()),
            });
            owned.pending_since.get_or_insert_with(Instant::now);
        }
        if owned.pending.len() >= self.max_batch_records {
            self.send_pending(owned);
        }
    }

    /// Send batches that waited long enough; collect acknowledgements in order.
    fn tick(&self, batch_wait: Duration) {
        let mut owned_map = self.lock();
        for (partition, owned) in owned_map.iter_mut() {
            if owned
                .pending_since
                .is_some_and(|since| since.elapsed() >= batch_wait)
            {
                self.send_pending(owned);
            }
            while let Some((offset, receiver)) = owned.in_flight.front_mut() {
                let offset = *offset;
                match receiver.try_status() {
                    None => break,
                    Some(BatchStatus::Delivered) => {
                        if !owned.failed {
                            owned.delivered_up_to = Some(offset);
                        }
                    }
                    Some(BatchStatus::Failed) => {
                        if !owned.failed {
                            tracing::error!(source = %self.source, partition = %partition, offset, "A batch was not delivered; offsets of this partition stay uncommitted until it is read again.");
                        }
                        owned.failed = true;
                    }
                }
                owned.in_flight.pop_front();
            }
            if owned.in_flight.is_empty() && owned.pending.is_empty() && !owned.failed {
                owned.delivered_up_to = owned.read_up_to.max(owned.delivered_up_to);
            }
        }
    }

    /// Commit what is delivered and not yet committed.
    fn commit_delivered(&self, consumer: &BaseConsumer<MemberContext>) {
        let owned_map = self.lock();
        let mut list = TopicPartitionList::new();
        let mut due = 0usize;
        for (partition, owned) in owned_map.iter() {
            if let Some(offset) = owned
                .delivered_up_to
                .filter(|o| Some(*o) != owned.committed)
            {
                if list
                    .add_partition_offset(
                        &partition.topic,
                        partition.partition,
                        Offset::Offset(offset),
                    )
                    .is_ok()
                {
                    due += 1;
                }
            }
        }
        // The callback locks the map again; it runs inside a later poll, never inside commit.
        drop(owned_map);
        if due == 0 {
            return;
        }
        // The coordinator's answer arrives through `confirm_commits` (a later poll); until then
        // the offset is only sent, and is sent again at the next interval if it is still due.
        if let Err(error) = consumer.commit(&list, CommitMode::Async) {
            tracing::warn!(source = %self.source, %error, "Offset commit failed; retrying at the next interval.");
        }
    }

    /// The coordinator answered a commit: record the offsets it took. A refused one (a
    /// rebalance in progress) stays due and is sent again at the next interval.
    fn confirm_commits(&self, result: &KafkaResult<()>, offsets: &TopicPartitionList) {
        let partition_refused = offsets.elements().iter().any(|e| e.error().is_err());
        if result.is_err() && !partition_refused {
            // The request as a whole failed (no coordinator, a timeout): nothing was taken.
            tracing::debug!(source = %self.source, "Offset commit failed; retrying at the next interval.");
            return;
        }
        let mut owned_map = self.lock();
        for element in offsets.elements() {
            let partition = TopicPartition {
                topic: Arc::from(element.topic()),
                partition: element.partition(),
            };
            let Some(owned) = owned_map.get_mut(&partition) else {
                continue;
            };
            match (element.error(), element.offset()) {
                (Ok(()), Offset::Offset(offset)) => {
                    owned.committed = owned.committed.max(Some(offset));
                }
                (Ok(()), _) => {}
                (Err(error), _) => {
                    tracing::debug!(source = %self.source, partition = %partition, %error, "Offset commit refused; retrying at the next interval.");
                }
            }
        }
    }

    fn send_pending(&self, owned: &mut Owned) {
        owned.pending_since = None;
        if owned.pending.is_empty() {
            return;
        }
        let lines = std::mem::take(&mut owned.pending);
        let Some(up_to) = owned.read_up_to else {
            return;
        };
        self.metrics.lines_read(&self.source, lines.len() as u64);
        let (ack, receiver) = batch_ack();
        let batch = SourceBatch {
            source: Arc::clone(&self.source),
            stream: Arc::clone(&owned.stream),
            format: self.format,
            lines,
            ack,
            read_at: Instant::now(),
        };
        // Waits while the pipeline is busy: backpressure reaches the consumer, which simply
        // polls less (librdkafka keeps the group session alive from its own threads).
        if owned.out.blocking_send(batch).is_err() {
            // The receiving processor is gone (shutting down): the batch's token was dropped
            // with it, so this receiver reports a failure and nothing past it is committed.
        }
        owned.in_flight.push_back((up_to, receiver));
    }
}

fn commit(
    consumer: &BaseConsumer<MemberContext>,
    partition: &TopicPartition,
    offset: i64,
    mode: CommitMode,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(
        &partition.topic,
        partition.partition,
        Offset::Offset(offset),
    )?;
    consumer.commit(&list, mode)
}

/// How long reading the group's committed offsets may take on assignment, and how often it is
/// tried before the partitions start without their state.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(10);
const COMMITTED_ATTEMPTS: u32 = 3;

/// Everything the member thread needs.
pub(super) struct MemberSettings {
    pub config: KafkaSourceConfig,
    pub source: Arc<str>,
    pub format: Format,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub owner: Arc<dyn PartitionOwner>,
}

/// Run the member until shutdown; blocking (call it on a blocking thread).
pub(super) fn run_member(settings: MemberSettings) -> Result<(), SourceError> {
    let MemberSettings {
        config,
        source,
        format,
        metrics,
        shutdown,
        owner,
    } = settings;
    let member = Arc::new(Member {
        owned: Mutex::new(BTreeMap::new()),
        owner,
        source: Arc::clone(&source),
        format,
        max_batch_records: config.max_batch_records,
        metrics,
        stopping: AtomicBool::new(false),
    });
    let consumer = consumer(&config, Arc::clone(&member))
        .map_err(|error| SourceError::Other(error.to_string()))?;
    let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|error| SourceError::Other(format!("cannot subscribe to {topics:?}: {error}")))?;
    tracing::info!(source = %source, group = %config.group_id, topics = ?topics, "Joined the consumer group.");
    let mut last_commit = Instant::now();
    let mut last_error: Option<Instant> = None;
    while !shutdown.is_cancelled() {
        match consumer.poll(Duration::from_millis(50)) {
            None => {}
            Some(Ok(message)) => member.read(
                TopicPartition {
                    topic: Arc::from(message.topic()),
                    partition: message.partition(),
                },
                message.offset(),
                message.payload(),
            ),
            // Transient broker trouble repeats every poll; say it at most every 10 s.
            Some(Err(error))
                if last_error.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) =>
            {
                tracing::warn!(source = %source, %error, "Kafka consumer error; retrying.");
                last_error = Some(Instant::now());
            }
            Some(Err(_)) => {}
        }
        member.tick(config.batch_wait);
        if last_commit.elapsed() >= config.commit_interval {
            member.commit_delivered(&consumer);
            last_commit = Instant::now();
        }
    }
    member.release_all(&consumer);
    member.stopping.store(true, Ordering::Relaxed);
    consumer.unsubscribe();
    drop(consumer);
    tracing::info!(source = %source, "Left the consumer group.");
    Ok(())
}

fn consumer(
    config: &KafkaSourceConfig,
    member: Arc<Member>,
) -> Result<BaseConsumer<MemberContext>, KafkaError> {
    let connection = config.connection();
    let client = AgentClientContext::new(&connection)?;
    let mut settings = connection.client_config()?;
    settings
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.offset.reset",
            match config.start_at {
                super::config::StartAt::Beginning => "earliest",
                super::config::StartAt::End => "latest",
            },
        )
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        // A member hears of a rebalance at its next heartbeat; a third of the session (Kafka's
        // own advice) lets it hand partitions over promptly.
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout.as_millis() / 3)
                .max(100)
                .to_string(),
        )
        // A hand-over may replay a partition inside the rebalance callback.
        .set("max.poll.interval.ms", "600000")
        // Records of aborted transactions are never read.
        .set("isolation.level", "read_committed");
    if !config
        .librdkafka_options
        .contains_key("partition.assignment.strategy")
    {
        // Only moved partitions are revoked on a rebalance, so a member joining or leaving
        // hands over a few partitions' state instead of every member's.
        settings.set("partition.assignment.strategy", "cooperative-sticky");
    }
    settings
        .create_with_context(MemberContext { client, member })
        .map_err(|error| KafkaError::client("cannot create the Kafka consumer", error))
}

//! Per-partition detection state in Kafka: the compacted state topic and replays.
//!
//! The state topic holds one message per source partition, keyed `<topic>/<partition>`, whose
//! value is [`PartitionState`]: the engine snapshot taken when the partition was released and the
//! committed offset it corresponds to. Compaction keeps only the newest per key. A snapshot is
//! written only after its offset was committed, so it never runs ahead of the group: on
//! assignment the new owner restores it and, if the group's offset is further on (the previous
//! owner died after committing more), replays the gap with detection only and no output.

use crate::kafka::{AgentClientContext, KafkaConnection, KafkaError};
use crate::sources::kafka::TopicPartition;
use crate::sources::{Line, LineData, SourceBatch};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The state-topic value format version.
const STATE_VERSION: u32 = 1;

/// How long one admin or metadata request about the state topic may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One partition's saved detection state.
#[derive(Debug, Serialize, Deserialize)]
pub struct PartitionState {
    /// Format version.
    pub version: u32,
    /// The committed offset the snapshot corresponds to: every record before it is in it.
    pub offset: i64,
    /// The engine snapshot (`detect::Snapshot` as JSON).
    pub snapshot: serde_json::Value,
}

/// Reads and writes the state topic.
pub struct StateStore {
    connection: KafkaConnection,
    topic: String,
    producer: ThreadedProducer<DefaultProducerContext>,
    context: AgentClientContext,
}

/// What the state topic holds for one partition.
#[derive(Debug, Default)]
pub struct Saved {
    /// The newest snapshot, if any.
    pub state: Option<PartitionState>,
    /// The newest owner record, if any.
    pub owner: Option<Ownership>,
}

/// Who holds a partition, as its members write it to the state topic: a claim when a member
/// takes the partition, a release once it has committed and saved the state on letting go.
///
/// Kafka's group coordinator normally guarantees that a partition is released before it is
/// assigned elsewhere. Some Kafka-protocol brokers answer a JoinGroup without waiting for the
/// other members (tansu 0.6), so a new owner can be assigned a partition its previous owner still
/// reads. A new owner therefore waits, up to the session timeout, for the previous claim's
/// release before it reads the committed offset and restores the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ownership {
    /// The member instance (unique per process run).
    pub member: String,
    /// False for a claim, true for a release.
    pub released: bool,
}

fn state_key(partition: &TopicPartition) -> String {
    format!("{}/{}", partition.topic, partition.partition)
}

/// Topic names cannot contain `#`, so this never collides with a state key.
fn owner_key(partition: &TopicPartition) -> String {
    format!("{}/{}#owner", partition.topic, partition.partition)
}

impl StateStore {
    /// A store on `topic`.
    pub fn new(connection: &KafkaConnection, topic: &str) -> Result<Self, KafkaError> {
        let mut config = connection.client_config()?;
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "zstd")
            // A partition's state can be large; the topic's max.message.bytes must allow it.
            .set("message.max.bytes", "104857600");
        let producer = config
            .create()
            .map_err(|error| KafkaError::client("cannot create the state-topic producer", error))?;
        Ok(StateStore {
            connection: connection.clone(),
            topic: topic.to_string(),
            producer,
            context: AgentClientContext::new(connection)?,
        })
    }

    /// Create the state topic (compacted, one partition) unless it exists. Bounded to
    /// [`ADMIN_TIMEOUT`] per step: a broker that does not answer `CreateTopics` (some managed
    /// endpoints, librdkafka's mock cluster) must not hold the member out of its group.
    pub async fn ensure_topic(&self, replication: i32) -> Result<(), KafkaError> {
        if self.topic_exists().await? {
            return Ok(());
        }
        let config = self.connection.client_config()?;
        let admin: AdminClient<_> = config
            .create_with_context(self.context.clone())
            .map_err(|error| KafkaError::client("cannot create the admin client", error))?;
        let topic = NewTopic::new(&self.topic, 1, TopicReplication::Fixed(replication))
            .set("cleanup.policy", "compact");
        let options = AdminOptions::new()
            .request_timeout(Some(ADMIN_TIMEOUT))
            .operation_timeout(Some(ADMIN_TIMEOUT));
        let results = admin
            .create_topics([&topic], &options)
            .await
            .map_err(|error| KafkaError::client("cannot create the state topic", error))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(KafkaError::Config(format!(
                        "cannot create the state topic {name}: {code}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Whether the brokers know the state topic (a metadata request, which creates nothing).
    async fn topic_exists(&self) -> Result<bool, KafkaError> {
        let consumer = self.plain_consumer().map_err(KafkaError::Config)?;
        let topic = self.topic.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            consumer.fetch_metadata(Some(&topic), ADMIN_TIMEOUT)
        })
        .await
        .map_err(|error| KafkaError::Config(format!("metadata task failed: {error}")))?
        .map_err(|error| KafkaError::client("cannot read the state topic's metadata", error))?;
        Ok(metadata
            .topics()
            .iter()
            .any(|topic| topic.error().is_none() && !topic.partitions().is_empty()))
    }

    /// Save a partition's state; blocks until the brokers acknowledged it (`acks=all`).
    pub fn save(&self, partition: &TopicPartition, state: &PartitionState) -> Result<(), String> {
        let value = serde_json::to_vec(state).map_err(|error| error.to_string())?;
        self.produce(&state_key(partition), &value)
    }

    /// What the state topic holds for `partition`: its newest saved state and owner record.
    /// With `wait`, keeps following the topic while the newest owner record is a claim by
    /// another member, until that owner releases or the deadline passes (see [`Ownership`]).
    pub fn load(
        &self,
        partition: &TopicPartition,
        wait: Option<(&str, Instant)>,
    ) -> Result<Saved, String> {
        let state_key = state_key(partition);
        let owner_key = owner_key(partition);
        let consumer = self.plain_consumer()?;
        let metadata = consumer
            .fetch_metadata(Some(&self.topic), ADMIN_TIMEOUT)
            .map_err(|error| format!("state topic metadata: {error}"))?;
        let mut ends = HashMap::new();
        let mut list = TopicPartitionList::new();
        for topic in metadata.topics() {
            for state_partition in topic.partitions() {
                let id = state_partition.id();
                let (low, high) = consumer
                    .fetch_watermarks(&self.topic, id, ADMIN_TIMEOUT)
                    .map_err(|error| format!("state topic watermarks: {error}"))?;
                if high > low {
                    ends.insert(id, high);
                }
                // Read from the start even if empty now: a release may arrive while we wait.
                list.add_partition_offset(&self.topic, id, Offset::Offset(low))
                    .map_err(|error| error.to_string())?;
            }
        }
        if list.count() == 0 {
            return Ok(Saved::default());
        }
        consumer.assign(&list).map_err(|error| error.to_string())?;
        let mut newest_state = None;
        let mut owner: Option<Ownership> = None;
        let read_deadline = Instant::now() + Duration::from_secs(60);
        let claimed_by_other = |owner: &Option<Ownership>| match (owner, wait) {
            (Some(owner), Some((me, _))) => !owner.released && owner.member != me,
            _ => false,
        };
        loop {
            let caught_up = ends.is_empty();
            if caught_up && !claimed_by_other(&owner) {
                break;
            }
            if caught_up && wait.is_some_and(|(_, deadline)| Instant::now() >= deadline) {
                tracing::warn!(partition = %partition, owner = ?owner.as_ref().map(|o| &o.member), "The previous owner did not release the partition in time (gone, or its group coordinator moved it without waiting); taking it over.");
                break;
            }
            if !caught_up && Instant::now() >= read_deadline {
                return Err("timed out reading the state topic".into());
            }
            let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = result.map_err(|error| format!("reading the state topic: {error}"))?;
            if message.key() == Some(state_key.as_bytes()) {
                newest_state = message.payload().map(<[u8]>::to_vec);
            } else if message.key() == Some(owner_key.as_bytes()) {
                owner = message
                    .payload()
                    .and_then(|bytes| serde_json::from_slice(bytes).ok());
            }
            if ends
                .get(&message.partition())
                .is_some_and(|end| message.offset() + 1 >= *end)
            {
                ends.remove(&message.partition());
            }
        }
        let state = match newest_state {
            None => None,
            Some(bytes) => {
                let state: PartitionState = serde_json::from_slice(&bytes)
                    .map_err(|error| format!("unreadable state: {error}"))?;
                if state.version != STATE_VERSION {
                    return Err(format!(
                        "state version {} is not {STATE_VERSION}",
                        state.version
                    ));
                }
                Some(state)
            }
        };
        Ok(Saved { state, owner })
    }

    /// Record who holds `partition` now (a claim) or that it let go (a release); blocks until
    /// the brokers acknowledged it.
    pub fn save_owner(&self, partition: &TopicPartition, owner: &Ownership) -> Result<(), String> {
        let value = serde_json::to_vec(owner).map_err(|error| error.to_string())?;
        self.produce(&owner_key(partition), &value)
    }

    fn produce(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.producer
            .send(
                BaseRecord::<str, [u8]>::to(&self.topic)
                    .key(key)
                    .payload(value),
            )
            .map_err(|(error, _)| error.to_string())?;
        self.producer
            .flush(Duration::from_secs(30))
            .map_err(|error| format!("the state was not acknowledged: {error}"))
    }

    /// A consumer outside any group (assigns partitions, never commits).
    fn plain_consumer(&self) -> Result<BaseConsumer<AgentClientContext>, String> {
        let mut config = self
            .connection
            .client_config()
            .map_err(|error| error.to_string())?;
        config
            .set("group.id", "aiwarden-state-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        config
            .create_with_context(self.context.clone())
            .map_err(|error| format!("cannot create a state reader: {error}"))
    }

    /// Read `partition` from `from` (the beginning when none) up to, not including, `until`,
    /// sending the messages as batches to `out` (a processor without sinks). Returns how many
    /// records were replayed.
    pub fn replay(
        &self,
        partition: &TopicPartition,
        from: Option<i64>,
        until: i64,
        out: &mpsc::Sender<SourceBatch>,
        batch: impl Fn(Vec<Line>) -> SourceBatch,
    ) -> Result<u64, String> {
        let consumer = self.plain_consumer()?;
        let mut list = TopicPartitionList::new();
        let start = from.map_or(Offset::Beginning, Offset::Offset);
        list.add_partition_offset(&partition.topic, partition.partition, start)
            .map_err(|error| error.to_string())?;
        consumer.assign(&list).map_err(|error| error.to_string())?;
        let mut replayed = 0u64;
        let mut lines = Vec::new();
        let mut last_progress = Instant::now();
        let mut position = from;
        loop {
            if last_progress.elapsed() > Duration::from_secs(60) {
                return Err(format!("no progress replaying {partition} for 60 s"));
            }
            let Some(result) = consumer.poll(Duration::from_millis(200)) else {
                // Stop when nothing is left to read before `until`: the partition ends earlier
                // (records deleted by retention) or we are at its end.
                let (low, high) = consumer
                    .fetch_watermarks(
                        &partition.topic,
                        partition.partition,
                        Duration::from_secs(10),
                    )
                    .map_err(|error| error.to_string())?;
                if low >= until || position.is_some_and(|at| at >= high) {
                    break;
                }
                continue;
            };
            let message = result.map_err(|error| format!("replaying {partition}: {error}"))?;
            last_progress = Instant::now();
            position = Some(message.offset() + 1);
            if message.offset() >= until {
                break;
            }
            if let Some(payload) = message.payload() {
                lines.push(Line {
                    offset: message.offset().max(0) as u64,
                    data: LineData::Complete(payload.to_vec()),
                });
                replayed += 1;
            }
            if message.offset() + 1 >= until {
                break;
            }
            if lines.len() >= 500 {
                out.blocking_send(batch(std::mem::take(&mut lines)))
                    .map_err(|_| "the replay processor stopped".to_string())?;
            }
        }
        if !lines.is_empty() {
            out.blocking_send(batch(lines))
                .map_err(|_| "the replay processor stopped".to_string())?;
        }
        Ok(replayed)
    }
}

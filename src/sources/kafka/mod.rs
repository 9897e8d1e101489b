//! The `kafka` source: a well-behaved consumer-group member. Kafka's partitions and the group
//! coordinator decide which member reads what; this source commits a partition's offset only
//! once every record before it is delivered or durably queued by every sink, and hands a
//! partition over cleanly when the group moves it (see `member.rs`).
//!
//! With `state = "shared"` the records join the agent's one detection engine like any source's.
//! With `state = "partitioned"` (the detector tier) the pipeline gives each partition its own
//! engine through a [`PartitionOwner`] (`pipeline::partitioned`), so one partition's windows
//! never mix with another's and each partition's state can move with it.

mod config;
mod member;

pub use config::{check_detector_sources, KafkaSourceConfig, StartAt, StateMode};
pub use member::{PartitionOwner, TopicPartition};

use super::{SourceBatch, SourceContext, SourceError};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Every partition's batches go to the agent's one processor.
struct SharedOwner {
    out: mpsc::Sender<SourceBatch>,
}

impl PartitionOwner for SharedOwner {
    fn assigned(&self, _: &TopicPartition, _: Option<i64>) -> mpsc::Sender<SourceBatch> {
        self.out.clone()
    }

    fn released(&self, _: &TopicPartition, _: Option<i64>, _: bool) {}
}

/// Run the source as a member of its group until shutdown, sending batches to the agent's
/// processor (`state = "shared"`).
pub async fn run(config: KafkaSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    let owner = Arc::new(SharedOwner {
        out: context.out.clone(),
    });
    run_with_owner(config, context, owner).await
}

/// Run the source with `owner` deciding where each partition's batches go.
pub async fn run_with_owner(
    config: KafkaSourceConfig,
    context: SourceContext,
    owner: Arc<dyn PartitionOwner>,
) -> Result<(), SourceError> {
    let format = config.format.configure(&config.mapping, &config.decode);
    let settings = member::MemberSettings {
        config,
        source: Arc::clone(&context.name),
        format,
        metrics: Arc::clone(&context.metrics),
        shutdown: context.shutdown.clone(),
        owner,
    };
    // The pipeline's sender is not needed past this point: each partition holds its own clone.
    drop(context);
    tokio::task::spawn_blocking(move || member::run_member(settings))
        .await
        .map_err(|error| SourceError::Other(format!("kafka consumer thread failed: {error}")))?
}

//! The `kafka` sink: canonical records (and optionally alerts) to Kafka topics, keyed by the
//! detection key so that all of one user's records land in one partition.
//!
//! `config.rs` is the user-facing settings, `encoder.rs` frames records with their key (pure),
//! `service.rs` produces a batch and waits for every delivery report. Batching, the durable
//! queue, retries, the circuit breaker and dead letters are the shared driver's: a Kafka batch
//! is one "request" whose answer is the set of delivery reports.

mod config;
mod encoder;
mod service;

pub use config::{KafkaCompression, KafkaSinkConfig};
pub use encoder::{detection_key, encode, split_frames, Frame, FrameKind};
pub use service::{classify_error, DeliveryProblem, KafkaService};

use super::driver::{self, Classified, DriverSettings, Service};
use super::{SinkBatch, SinkContext, SinkError, SinkTask};
use crate::kafka::AgentClientContext;
use crate::net::retry::Compression;
use crate::record::Output;
use bytes::Bytes;
use rdkafka::producer::{FutureProducer, Producer};
use std::time::Duration;
use tokio::sync::mpsc;

impl Service for KafkaService {
    fn encode(
        &self,
        item: &Output,
        forward_content: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        encode(item, forward_content, out);
        Ok(())
    }

    fn evidence_shape(&self) -> Option<crate::evidence::encoded::EncodedShape> {
        Some(crate::evidence::encoded::EncodedShape::KafkaFrame)
    }

    async fn send(&self, body: Bytes, _gzip: bool, count: usize) -> Classified {
        KafkaService::send(self, &body, count).await
    }
}

/// The idempotent, `acks=all` producer for `config`.
pub fn producer(config: &KafkaSinkConfig) -> Result<FutureProducer<AgentClientContext>, SinkError> {
    let connection = config.connection();
    let context = AgentClientContext::new(&connection)
        .map_err(|error| SinkError::Config(error.to_string()))?;
    let mut client = connection
        .client_config()
        .map_err(|error| SinkError::Config(error.to_string()))?;
    client
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", config.compression.librdkafka_name())
        .set(
            "message.timeout.ms",
            config.message_timeout.as_millis().to_string(),
        )
        // Keyed records go where Kafka's own clients would put them (murmur2), so producers in
        // other languages writing the same topic agree on each user's partition.
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5");
    client
        .create_with_context(context)
        .map_err(|error| SinkError::Config(format!("cannot create the Kafka producer: {error}")))
}

/// `check-config --connect`: ask the brokers for the topics' metadata.
pub async fn check(config: &KafkaSinkConfig) -> Result<String, String> {
    let producer = producer(config).map_err(|error| error.to_string())?;
    let topics: Vec<String> = std::iter::once(config.topic.clone())
        .chain(config.alerts_topic.clone())
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut partitions = Vec::new();
        for topic in &topics {
            let metadata = producer
                .client()
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(|error| format!("cannot reach the brokers: {error}"))?;
            let Some(found) = metadata.topics().first() else {
                return Err(format!("topic {topic}: no metadata"));
            };
            if let Some(error) = found.error() {
                return Err(format!("topic {topic}: {error:?}"));
            }
            partitions.push(format!("{topic} ({} partitions)", found.partitions().len()));
        }
        Ok(format!("brokers reachable; {}", partitions.join(", ")))
    })
    .await
    .map_err(|error| format!("metadata task failed: {error}"))?
}

/// Build the sink: create the producer and run the driver.
pub fn build(
    config: KafkaSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let producer = producer(&config)?;
    let mut request = config.request;
    // Kafka compresses per message batch; the driver's HTTP gzip would only cost CPU.
    request.compression = Compression::None;
    let settings = DriverSettings::new(
        config.routing(),
        config.batch,
        request,
        config.queue,
        &context.name,
    );
    let service = KafkaService {
        producer,
        topic: config.topic.clone(),
        alerts_topic: config.alerts_topic.clone(),
    };
    Ok(Box::pin(async move {
        let outcome = driver::run(service, settings, context, batches).await;
        outcome
    }))
}

#[cfg(test)]
mod tests;

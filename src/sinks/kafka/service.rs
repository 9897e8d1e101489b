//! One "request" to Kafka: produce a batch's messages and wait for every delivery report.
//!
//! The producer is idempotent with `acks=all`, so a delivery report means every in-sync replica
//! has the message, and librdkafka's own retries cannot duplicate or reorder it within a
//! partition. The driver's rules apply on top: a record is acknowledged to its source (or marked
//! done in the disk queue) only once its report is a success.

use super::encoder::{split_frames, FrameKind};
use crate::kafka::AgentClientContext;
use crate::sinks::driver::{Classified, ItemVerdict};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Sends framed bodies as Kafka messages.
pub struct KafkaService {
    /// The producer (shared connection pool; cheap to clone).
    pub producer: FutureProducer<AgentClientContext>,
    /// Topic of canonical records.
    pub topic: String,
    /// Topic of alerts, when alerts are sent.
    pub alerts_topic: Option<String>,
}

/// What a failed delivery report means.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryProblem {
    /// The broker may accept it later (timeouts, leader changes, too few replicas, full queue).
    Transient(String),
    /// This message can never be written (too large, refused as invalid).
    Rejected(String),
    /// Credentials, ACLs or the topic are wrong: keep the records and say what to fix.
    Misconfigured(String),
}

/// Sort one librdkafka error.
pub fn classify_error(error: &KafkaError) -> DeliveryProblem {
    let text = error.to_string();
    match error.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::MessageBatchTooLarge,
        ) => DeliveryProblem::Rejected(text),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::InvalidTopic,
        ) => DeliveryProblem::Misconfigured(format!(
            "{text}; check brokers, the topic names and this principal's ACLs"
        )),
        _ => DeliveryProblem::Transient(text),
    }
}

impl KafkaService {
    /// Produce every frame of `body` and sort the delivery reports.
    pub async fn send(&self, body: &[u8], count: usize) -> Classified {
        let Some(frames) = split_frames(body) else {
            return Classified::Rejected {
                reason: "internal: the body is not a sequence of kafka frames".into(),
            };
        };
        if frames.len() != count {
            return Classified::Rejected {
                reason: format!("internal: {} frames for {count} records", frames.len()),
            };
        }
        let mut pending = Vec::with_capacity(frames.len());
        for frame in &frames {
            let topic = match (frame.kind, &self.alerts_topic) {
                (FrameKind::Event, _) => self.topic.as_str(),
                (FrameKind::Alert, Some(alerts)) => alerts.as_str(),
                (FrameKind::Alert, None) => {
                    pending.push(Err(DeliveryProblem::Rejected(
                        "an alert reached a sink without alerts_topic".into(),
                    )));
                    continue;
                }
            };
            let record = FutureRecord::to(topic).key(frame.key).payload(frame.value);
            pending.push(match self.producer.send_result(record) {
                Ok(delivery) => Ok(delivery),
                Err((error, _)) => Err(classify_error(&error)),
            });
        }
        let mut verdicts = Vec::with_capacity(pending.len());
        let mut misconfigured = None;
        for outcome in pending {
            let problem = match outcome {
                Err(problem) => Some(problem),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => None,
                    Ok(Err((error, _))) => Some(classify_error(&error)),
                    Err(_) => Some(DeliveryProblem::Transient(
                        "the producer dropped the delivery report".into(),
                    )),
                },
            };
            verdicts.push(match problem {
                None => ItemVerdict::Delivered,
                Some(DeliveryProblem::Transient(reason)) => ItemVerdict::Retry(reason),
                Some(DeliveryProblem::Rejected(reason)) => ItemVerdict::Rejected(reason),
                Some(DeliveryProblem::Misconfigured(reason)) => {
                    misconfigured.get_or_insert(reason.clone());
                    ItemVerdict::Retry(reason)
                }
            });
        }
        if let Some(reason) = misconfigured {
            // Nothing is dead-lettered for a setting the operator can fix; delivered records
            // are sent again with the rest (at-least-once), which idempotence cannot prevent
            // across separate sends but a consumer keyed by event_id absorbs.
            if verdicts
                .iter()
                .all(|v| !matches!(v, ItemVerdict::Delivered))
            {
                return Classified::Misconfigured { reason };
            }
        }
        if verdicts.iter().all(|v| matches!(v, ItemVerdict::Delivered)) {
            Classified::Delivered
        } else {
            Classified::PerItem(verdicts)
        }
    }
}

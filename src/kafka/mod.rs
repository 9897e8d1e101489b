//! What the `kafka` sink, the `kafka` source and the partitioned detector share: how to reach a
//! cluster (brokers, TLS, SASL PLAIN / SCRAM / OAUTHBEARER) as one `rdkafka` client
//! configuration, and the client context that routes librdkafka's logs into `tracing` and fetches
//! OAUTHBEARER tokens (Azure Event Hubs) with the client-credentials grant.
//!
//! Only this module turns settings into librdkafka properties, so the three users cannot drift
//! apart on security settings.

mod connection;
mod oauth;

pub use connection::{KafkaConnection, KafkaTls, Sasl, SaslMechanism};
pub use oauth::AgentClientContext;

/// Why a Kafka client could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The settings cannot work (a secret that cannot be read, a missing key).
    #[error("{0}")]
    Config(String),
    /// librdkafka refused the configuration or the request.
    #[error("{context}: {source}")]
    Client {
        /// What was being done.
        context: String,
        /// librdkafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl KafkaError {
    /// Wrap a librdkafka error with what was being done.
    pub fn client(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        KafkaError::Client {
            context: context.into(),
            source,
        }
    }
}

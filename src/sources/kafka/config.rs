//! Configuration of the `kafka` source.

use crate::decode::{DecodeOptions, Format, Mapping};
use crate::kafka::{KafkaConnection, KafkaTls, Sasl};
use crate::sources::SourceConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Be a member of a consumer group reading canonical records (or any supported format).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers, `host:port` each.
    pub brokers: Vec<String>,
    /// Topics to read (the edge agents' `kafka` sink `topic`).
    pub topics: Vec<String>,
    /// The consumer group: every detector member of one tier uses the same id.
    pub group_id: String,
    /// Where a group without committed offsets starts: `beginning` (default) or `end`.
    #[serde(default)]
    pub start_at: StartAt,
    /// The format of the messages (the `kafka` sink writes `native`).
    #[serde(default)]
    pub format: Format,
    /// Field renames into the canonical record.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub mapping: Mapping,
    /// Format-specific decoding settings.
    #[serde(default, skip_serializing_if = "DecodeOptions::is_default")]
    pub decode: DecodeOptions,
    /// Most messages in one batch of one partition.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: usize,
    /// Longest a partly filled batch waits before it is sent.
    #[serde(default = "default_batch_wait", with = "crate::config::duration")]
    pub batch_wait: Duration,
    /// How often delivered offsets are committed.
    #[serde(default = "default_commit_interval", with = "crate::config::duration")]
    pub commit_interval: Duration,
    /// How detection state is kept: `partitioned` (default: one engine per partition, handed
    /// over through `state_topic`) or `shared` (one engine for everything this member reads,
    /// like a file source; for single-event rules only).
    #[serde(default)]
    pub state: StateMode,
    /// The compacted topic of per-partition detection snapshots (default
    /// `<group_id>.aiwarden-state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    /// Replication factor of the state topic when aiwarden creates it (default 3).
    #[serde(default = "default_state_replication")]
    pub state_replication: i32,
    /// Consumer session timeout: how soon the group notices a dead member.
    #[serde(default = "default_session_timeout", with = "crate::config::duration")]
    pub session_timeout: Duration,
    /// TLS to the brokers; off unless present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// SASL authentication; none unless present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<Sasl>,
    /// Further librdkafka consumer properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub librdkafka_options: BTreeMap<String, String>,
}

/// Where a new group starts reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// The oldest retained message.
    #[default]
    Beginning,
    /// Only messages produced after the group first joined.
    End,
}

/// How detection state relates to partitions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateMode {
    /// One engine per assigned partition, snapshotted on revocation and restored on assignment.
    #[default]
    Partitioned,
    /// The agent's one engine.
    Shared,
}

fn default_max_batch_records() -> usize {
    500
}
fn default_batch_wait() -> Duration {
    Duration::from_millis(100)
}
fn default_commit_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_state_replication() -> i32 {
    3
}
fn default_session_timeout() -> Duration {
    Duration::from_secs(10)
}

impl KafkaSourceConfig {
    /// The cluster connection.
    pub fn connection(&self) -> KafkaConnection {
        KafkaConnection {
            brokers: self.brokers.clone(),
            tls: self.tls.clone(),
            sasl: self.sasl.clone(),
            librdkafka_options: self.librdkafka_options.clone(),
        }
    }

    /// The state topic's name.
    pub fn state_topic(&self) -> String {
        self.state_topic
            .clone()
            .unwrap_or_else(|| format!("{}.aiwarden-state", self.group_id))
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.connection().validate()?;
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err(("topics".into(), "must name at least one topic".into()));
        }
        if self.group_id.trim().is_empty() {
            return Err(("group_id".into(), "must not be empty".into()));
        }
        if self.max_batch_records == 0 {
            return Err(("max_batch_records".into(), "must be at least 1".into()));
        }
        if self.session_timeout < Duration::from_secs(1) {
            return Err(("session_timeout".into(), "must be at least 1s".into()));
        }
        if self.topics.contains(&self.state_topic()) {
            return Err((
                "state_topic".into(),
                "must not be one of the topics read".into(),
            ));
        }
        crate::decode::validate_settings(&self.mapping, &self.decode)
    }
}

/// The detector tier (a `kafka` source with `state = "partitioned"`) gives every partition its
/// own engine and has no engine for anything else, so beside such a source every source must be
/// one too. Returns the key and reason naming the first source that is not.
pub fn check_detector_sources(
    sources: &BTreeMap<String, SourceConfig>,
) -> Result<(), (String, String)> {
    let is_partitioned = |source: &SourceConfig| matches!(source, SourceConfig::Kafka(kafka) if kafka.state == StateMode::Partitioned);
    let Some((detector, _)) = sources.iter().find(|(_, source)| is_partitioned(source)) else {
        return Ok(());
    };
    match sources.iter().find(|(_, source)| !is_partitioned(source)) {
        None => Ok(()),
        Some((name, SourceConfig::Kafka(_))) => Err((
            format!("sources.{name}.state"),
            format!(
                "must be \"partitioned\" like source `{detector}`: an agent is either a detector \
                 (only partitioned kafka sources) or not"
            ),
        )),
        Some((name, _)) => Err((
            format!("sources.{name}.type"),
            format!(
                "the detector tier (source `{detector}`, a kafka source with state = \
                 \"partitioned\") reads only partitioned kafka sources: run `{name}` on an edge \
                 agent that sends to Kafka"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(toml_text: &str) -> BTreeMap<String, SourceConfig> {
        #[derive(Deserialize)]
        struct Sources {
            sources: BTreeMap<String, SourceConfig>,
        }
        toml::from_str::<Sources>(toml_text).unwrap().sources
    }

    const DETECTOR: &str = r#"
[sources.bus]
type = "kafka"
brokers = ["k:9092"]
topics = ["audit"]
group_id = "detectors"
"#;

    #[test]
    fn a_detector_with_only_partitioned_kafka_sources_is_accepted() {
        let text = format!("{DETECTOR}\n[sources.more]\ntype = \"kafka\"\nbrokers = [\"k:9092\"]\ntopics = [\"other\"]\ngroup_id = \"d2\"\n");
        assert_eq!(check_detector_sources(&sources(&text)), Ok(()));
    }

    #[test]
    fn a_file_source_beside_a_detector_is_named() {
        let text = format!(
            "{DETECTOR}\n[sources.gateway]\ntype = \"file\"\ninclude = [\"/var/log/*.jsonl\"]\n"
        );
        let (key, reason) = check_detector_sources(&sources(&text)).unwrap_err();
        assert_eq!(key, "sources.gateway.type");
        assert!(
            reason.contains("`bus`") && reason.contains("`gateway`"),
            "{reason}"
        );
    }

    #[test]
    fn a_shared_kafka_source_beside_a_detector_is_named() {
        let text = format!("{DETECTOR}\n[sources.edge]\ntype = \"kafka\"\nbrokers = [\"k:9092\"]\ntopics = [\"x\"]\ngroup_id = \"e\"\nstate = \"shared\"\n");
        let (key, _) = check_detector_sources(&sources(&text)).unwrap_err();
        assert_eq!(key, "sources.edge.state");
    }

    #[test]
    fn agents_without_a_detector_source_are_not_concerned() {
        let text = "[sources.gateway]\ntype = \"file\"\ninclude = [\"/x/*.jsonl\"]\n";
        assert_eq!(check_detector_sources(&sources(text)), Ok(()));
    }
}

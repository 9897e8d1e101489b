//! Rule reloads in the detector tier: SIGHUP and the rules-file watch feed the pipeline's one
//! reload channel (`ReloadHandle`), and here every live partition's engine gets the new rules,
//! each keeping the state of its unchanged rules as the agent's one engine does.

use crate::config::DetectConfig;
use crate::pipeline::rules::{self, Detection};
use crate::sources::kafka::TopicPartition;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// A partition of one source.
type SourcePartition = (Arc<str>, TopicPartition);

/// The reload channel of every live partition processor, by source and partition.
#[derive(Default)]
pub(super) struct PartitionReloads {
    senders: Mutex<BTreeMap<SourcePartition, mpsc::Sender<Detection>>>,
}

impl PartitionReloads {
    /// A channel for a partition's processor that is starting.
    pub(super) fn register(
        &self,
        source: &Arc<str>,
        partition: &TopicPartition,
    ) -> mpsc::Receiver<Detection> {
        let (sender, receiver) = mpsc::channel(1);
        super::lock(&self.senders).insert((Arc::clone(source), partition.clone()), sender);
        receiver
    }

    /// The partition's processor is ending.
    pub(super) fn remove(&self, source: &Arc<str>, partition: &TopicPartition) {
        super::lock(&self.senders).remove(&(Arc::clone(source), partition.clone()));
    }

    fn senders(&self) -> Vec<(String, mpsc::Sender<Detection>)> {
        super::lock(&self.senders)
            .iter()
            .map(|((source, partition), sender)| (format!("{source} {partition}"), sender.clone()))
            .collect()
    }
}

/// Until the reload channel closes: hand each reload to every live partition. The rules are
/// loaded once per partition (a compiled rule set is not shared between engines); a file that
/// breaks between two loads leaves that partition on its running rules, and says so.
pub(super) async fn fan_out(
    mut reloads: mpsc::Receiver<Detection>,
    partitions: Arc<PartitionReloads>,
    detect: DetectConfig,
) {
    while let Some(loaded) = reloads.recv().await {
        let mut loaded = Some(loaded);
        let mut reached = 0usize;
        for (partition, sender) in partitions.senders() {
            let detection = match loaded.take() {
                Some(detection) => detection,
                None => match rules::load_detection(&detect) {
                    Ok(detection) => detection,
                    Err(error) => {
                        tracing::error!(partition = %partition, %error, "The rules no longer load; this partition keeps its running rules.");
                        continue;
                    }
                },
            };
            // A partition released meanwhile has closed its channel: nothing to reload.
            if sender.send(detection).await.is_ok() {
                reached += 1;
            }
        }
        tracing::info!(
            partitions = reached,
            "Rules reloaded into every partition's engine."
        );
    }
}

//! Delivering one group of encoded records: send, sort the answer, retry, split, dead-letter.

use super::{log_label, Classified, Encoded, ItemVerdict, Service, Shared};
use crate::net::retry::{Backoff, Compression};
use crate::telemetry::SinkHealth;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::Write;

impl<S: Service> Shared<S> {
    /// Deliver one group of records, however many requests, splits and retries it takes.
    /// Returns early only when the agent aborts; the records left are then unsettled (a memory
    /// queue's source re-reads them, a disk queue resends them after the restart).
    pub(super) async fn deliver(&self, records: Vec<Encoded>) {
        let request = self.settings.request;
        let gzip = request.compression == Compression::Gzip;
        let name = &self.context.name;
        let mut groups = VecDeque::from([records]);
        while let Some(mut group) = groups.pop_front() {
            let mut backoff =
                Backoff::new(request.retry_initial_backoff, request.retry_max_backoff);
            let mut misconfigured = false;
            let mut attempt = 0u32;
            while !group.is_empty() {
                let body = match self.body(&group, gzip) {
                    Ok(body) => body,
                    Err(error) => {
                        tracing::error!(sink = %name, %error, "Cannot compress a request body.");
                        return;
                    }
                };
                if !self.breaker.admit(&self.context.abort).await {
                    return;
                }
                if attempt > 0 {
                    self.context.metrics.add_counter(
                        "sink_retries_total",
                        vec![("sink", name.to_string())],
                        1,
                    );
                }
                attempt += 1;
                let answer = self.service.send(body, gzip, group.len()).await;
                match &answer {
                    Classified::Retry { reason, .. } | Classified::Misconfigured { reason } => {
                        self.breaker.failure(log_label(reason));
                    }
                    Classified::PerItem(verdicts) if verdicts.len() != group.len() => {
                        self.breaker.failure("answer does not match the request");
                    }
                    _ => self.breaker.success(),
                }
                match answer {
                    Classified::Delivered => {
                        self.delivered(group);
                        break;
                    }
                    Classified::PerItem(verdicts) if verdicts.len() == group.len() => {
                        let mut again = Vec::new();
                        let mut accepted = Vec::new();
                        let mut first_reason = None;
                        for (record, verdict) in group.into_iter().zip(verdicts) {
                            match verdict {
                                ItemVerdict::Delivered => accepted.push(record),
                                ItemVerdict::Rejected(reason) => {
                                    self.dead_letter(vec![record], &reason)
                                }
                                ItemVerdict::Retry(reason) => {
                                    first_reason.get_or_insert(reason);
                                    again.push(record);
                                }
                            }
                        }
                        self.delivered(accepted);
                        group = again;
                        if let Some(reason) = first_reason {
                            self.context.metrics.sink_error(name);
                            tracing::warn!(sink = %name, records = group.len(), reason = log_label(&reason), "Some records were refused for now; retrying them.");
                            if !self.wait(backoff.next_delay(None)).await {
                                return;
                            }
                        }
                    }
                    Classified::PerItem(verdicts) => {
                        self.context.metrics.sink_error(name);
                        tracing::error!(sink = %name, expected = group.len(), got = verdicts.len(), "The answer does not match the request; resending.");
                        if !self.wait(backoff.next_delay(None)).await {
                            return;
                        }
                    }
                    Classified::Retry { after, reason } => {
                        self.context.metrics.sink_error(name);
                        self.context
                            .metrics
                            .set_sink_health(name, SinkHealth::Degraded(reason.clone()));
                        let delay = backoff.next_delay(after);
                        tracing::warn!(sink = %name, records = group.len(), reason = log_label(&reason), retry_in_ms = delay.as_millis() as u64, attempt = backoff.attempts(), "Delivery failed; retrying.");
                        if !self.wait(delay).await {
                            return;
                        }
                    }
                    Classified::Split { reason } if group.len() == 1 => {
                        self.dead_letter(group, &reason);
                        break;
                    }
                    Classified::Split { reason } => {
                        let second = group.split_off(group.len() / 2);
                        tracing::info!(sink = %name, first = group.len(), second = second.len(), reason = log_label(&reason), "Request refused as a whole; splitting it.");
                        groups.push_front(second);
                        groups.push_front(group);
                        break;
                    }
                    Classified::Rejected { reason } => {
                        self.dead_letter(group, &reason);
                        break;
                    }
                    Classified::Misconfigured { reason } => {
                        self.context.metrics.sink_error(name);
                        self.context
                            .metrics
                            .set_sink_health(name, SinkHealth::Failing(reason.clone()));
                        if !misconfigured {
                            tracing::error!(sink = %name, reason = log_label(&reason), "The SIEM refuses this sink's configuration; records are kept and sending is retried until it is fixed.");
                            misconfigured = true;
                        }
                        // Probe at the slow end of the backoff: nothing will change soon.
                        if !self
                            .wait(backoff.next_delay(Some(request.retry_max_backoff / 2)))
                            .await
                        {
                            return;
                        }
                    }
                }
            }
        }
    }

    fn body(&self, group: &[Encoded], gzip: bool) -> std::io::Result<Bytes> {
        let mut plain =
            Vec::with_capacity(group.iter().map(|r| r.bytes.len() + 1).sum::<usize>() + 2);
        self.service.frame(group, &mut plain);
        if !gzip {
            return Ok(Bytes::from(plain));
        }
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(plain.len() / 4),
            flate2::Compression::fast(),
        );
        encoder.write_all(&plain)?;
        Ok(Bytes::from(encoder.finish()?))
    }
}

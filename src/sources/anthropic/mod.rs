//! The `anthropic` source: Anthropic's Compliance API activity feed and the Admin API usage and
//! cost reports, polled into the pipeline as canonical records (FORMATS.md §5).
//!
//! # Design
//!
//! - **Feed paging** ([`feed`]): the feed is newest first. With a cursor (the newest delivered
//!   activity id), each request asks for the page just newer than it (`before_id`); the page
//!   is emitted oldest first, and once delivered its newest id becomes the cursor; `has_more`
//!   means newer pages wait, so the loop continues at once. Without a cursor (first start), the
//!   window `created_at.gte = start_from` is walked towards older pages (`after_id = last_id`)
//!   to its oldest page, which is emitted first, then paging goes forward as above. One page
//!   is in flight at a time, so a restart re-reads at most the page that was not acknowledged.
//! - **Reports** ([`reports`], [`usage`]): each report has its own cursor (the end of the last
//!   delivered bucket). A poll reads the buckets from there to now and emits the final ones
//!   (ended `settle` ago) in order; unfinished buckets are read again next time.
//! - **Cursor** ([`cursor`]): `<state_dir>/checkpoints/<source>.json`, written (fsynced) only
//!   when the batch's [`AckReceiver`](crate::pipeline::ack::AckReceiver) reports it delivered.
//! - **Failures** ([`client`]): 429/5xx/network errors are retried with backoff and
//!   `retry-after`; 401/403/404 are configuration errors: logged once, `/ready` reports the
//!   source failing, the key is read again (a rotated key file is picked up) and the request is
//!   retried every `interval`; nothing is committed meanwhile, so no data is lost.
//! - The key is only ever in the `x-api-key` header: never logged, never in `check-config`
//!   (it is a [`Secret`](crate::config::Secret)).

mod activity;
mod client;
mod config;
mod cursor;
mod feed;
mod reports;
#[cfg(test)]
mod tests;
mod usage;

pub use activity::{categorise, ip_network, Category};
pub use client::ApiError;
pub use config::{AnthropicSourceConfig, BucketWidth, StartAt, UsageConfig};

use super::{Line, LineData, SourceBatch, SourceContext, SourceError};
use crate::config::Secret;
use crate::decode::Format;
use crate::net::retry::Backoff;
use crate::pipeline::ack::{batch_ack, BatchStatus};
use crate::telemetry::SinkHealth;
use client::ApiClient;
use cursor::CursorStore;
use std::sync::Arc;
use tokio::time::Instant;

/// Most lines per batch sent down the pipeline (a report poll may yield many).
const MAX_BATCH_LINES: usize = 1000;

/// Run the source until shutdown.
pub async fn run(config: AnthropicSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    let mut store = CursorStore::load(&context.state_dir, &context.name)?;
    tracing::info!(
        source = %context.name,
        cursor = %store.path().display(),
        base_url = %config.base_url,
        "Polling the Anthropic API."
    );
    let feed_key = resolve(&context.name, "api_key", &config.api_key)?;
    let client = |key: String| {
        ApiClient::new(
            &context.name,
            &config.base_url,
            key,
            &config.anthropic_version,
            config.timeout,
            &config.tls,
        )
        .map_err(|error| SourceError::Other(format!("source `{}`: {error}", context.name)))
    };
    let usage_secret = config.usage.api_key.as_ref().unwrap_or(&config.api_key);
    let mut poller = Poller {
        feed: client(feed_key)?,
        reports: client(resolve(&context.name, "usage.api_key", usage_secret)?)?,
        backoff: Backoff::new(config.retry_initial_backoff, config.retry_max_backoff),
        refused: None,
        context: &context,
        config: &config,
    };
    if config.activities
        && store.cursor.activities.last_id.is_none()
        && store.cursor.activities.start_from.is_none()
    {
        // Fixed now, so a restart before the first delivery does not skip what happened.
        store.cursor.activities.start_from = Some(match config.start_at {
            StartAt::Now => chrono::Utc::now(),
            StartAt::Time(time) => time,
        });
        store.persist()?;
    }
    let mut next_feed = Instant::now();
    let mut next_reports = Instant::now();
    loop {
        if context.shutdown.is_cancelled() {
            return Ok(());
        }
        let now = Instant::now();
        if config.activities && now >= next_feed {
            let outcome = feed::poll(&mut poller, &mut store).await;
            if poller.settle(outcome, "activities")? == Flow::Stop {
                return Ok(());
            }
            next_feed = Instant::now() + config.interval;
        }
        if config.usage.any() && now >= next_reports {
            let outcome = reports::poll(&mut poller, &mut store).await;
            if poller.settle(outcome, "usage reports")? == Flow::Stop {
                return Ok(());
            }
            next_reports = Instant::now() + config.usage.interval;
        }
        let wake = match (config.activities, config.usage.any()) {
            (true, true) => next_feed.min(next_reports),
            (true, false) => next_feed,
            _ => next_reports,
        };
        tokio::select! {
            _ = context.shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

fn resolve(source: &str, key: &str, secret: &Secret) -> Result<String, SourceError> {
    secret
        .resolve()
        .map_err(|error| SourceError::Other(format!("sources.{source}.{key}: {error}")))
}

/// Whether the source goes on after a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Why a poll ended early.
#[derive(Debug)]
enum PollError {
    /// The API gave no usable page.
    Api(ApiError),
    /// A batch was not delivered (the pipeline is stopping, or a sink gave up): nothing was
    /// committed, the next poll starts again at the cursor.
    NotDelivered,
    /// The cursor could not be written.
    Cursor(SourceError),
}

impl From<ApiError> for PollError {
    fn from(error: ApiError) -> Self {
        PollError::Api(error)
    }
}

/// What the feed and report polls share.
struct Poller<'a> {
    feed: ApiClient,
    reports: ApiClient,
    backoff: Backoff,
    /// The configuration error being reported, so it is logged once rather than every poll.
    refused: Option<String>,
    context: &'a SourceContext,
    config: &'a AnthropicSourceConfig,
}

impl Poller<'_> {
    /// Turn a poll's outcome into logs, `/ready` health, and whether to go on.
    fn settle(&mut self, outcome: Result<(), PollError>, what: &str) -> Result<Flow, SourceError> {
        let name = &self.context.name;
        match outcome {
            Ok(()) => {
                if self.refused.take().is_some() {
                    tracing::info!(source = %name, "The Anthropic API accepts the key again.");
                    self.context
                        .metrics
                        .set_source_health(name, SinkHealth::Healthy);
                }
                Ok(Flow::Continue)
            }
            Err(PollError::Api(ApiError::Stopped)) => Ok(Flow::Stop),
            Err(PollError::NotDelivered) => Ok(if self.context.shutdown.is_cancelled() {
                Flow::Stop
            } else {
                tracing::warn!(source = %name, what, "A batch was not delivered; it is read again at the next poll.");
                Flow::Continue
            }),
            Err(PollError::Cursor(error)) => Err(error),
            Err(PollError::Api(error @ ApiError::Configuration { .. })) => {
                let message = format!("{what}: {error}");
                if self.refused.as_deref() != Some(message.as_str()) {
                    tracing::error!(
                        source = %name,
                        %error,
                        what,
                        "The Anthropic API refuses this source's configuration; nothing is read or committed until it is fixed (retried every interval)."
                    );
                    self.context
                        .metrics
                        .set_source_health(name, SinkHealth::Failing(message.clone()));
                    self.refused = Some(message);
                }
                self.reload_keys();
                Ok(Flow::Continue)
            }
            Err(PollError::Api(error)) => {
                tracing::warn!(source = %name, %error, what, "Anthropic API poll failed; retried at the next interval.");
                Ok(Flow::Continue)
            }
        }
    }

    /// Read the keys again: a refused key may have been replaced in its file or variable.
    fn reload_keys(&mut self) {
        if let Ok(key) = self.config.api_key.resolve() {
            self.feed.set_key(key);
        }
        let usage = self
            .config
            .usage
            .api_key
            .as_ref()
            .unwrap_or(&self.config.api_key);
        if let Ok(key) = usage.resolve() {
            self.reports.set_key(key);
        }
    }

    /// Send lines in batches and wait until every batch is delivered.
    async fn deliver(&self, stream: &Arc<str>, lines: Vec<Vec<u8>>) -> Result<(), PollError> {
        let mut lines = lines.into_iter().peekable();
        let mut offset = 0u64;
        while lines.peek().is_some() {
            let chunk: Vec<Line> = lines
                .by_ref()
                .take(MAX_BATCH_LINES)
                .map(|data| {
                    offset += 1;
                    Line {
                        offset: offset - 1,
                        data: LineData::Complete(data),
                    }
                })
                .collect();
            let count = chunk.len() as u64;
            let (ack, receiver) = batch_ack();
            let batch = SourceBatch {
                source: Arc::clone(&self.context.name),
                stream: Arc::clone(stream),
                format: Format::Native,
                lines: chunk,
                ack,
                read_at: std::time::Instant::now(),
            };
            tokio::select! {
                biased;
                _ = self.context.shutdown.cancelled() => return Err(PollError::NotDelivered),
                sent = self.context.out.send(batch) => {
                    if sent.is_err() {
                        return Err(PollError::NotDelivered);
                    }
                }
            }
            self.context.metrics.lines_read(&self.context.name, count);
            // Resolves once every sink has its share, or at shutdown once the pipeline drained.
            if receiver.status().await != BatchStatus::Delivered {
                return Err(PollError::NotDelivered);
            }
        }
        Ok(())
    }
}

//! One HEC request and what its answer means (PROTOCOLS.md §1 response codes), plus indexer
//! acknowledgement polling and the startup health check.

use crate::net::http::error_chain;
use crate::net::retry::retry_after;
use crate::sinks::driver::{Classified, ItemVerdict};
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// The body HEC answers with: `{"text": "...", "code": N}` plus `ackId` or `invalid-event-number`.
#[derive(Debug, Default, Deserialize)]
pub struct HecReply {
    /// Human-readable text.
    #[serde(default)]
    pub text: String,
    /// HEC status code.
    pub code: Option<i64>,
    /// With indexer acknowledgement: the id to poll.
    #[serde(rename = "ackId")]
    pub ack_id: Option<u64>,
    /// 0-based index of the first bad envelope (codes 6, 12, 13, 15).
    #[serde(rename = "invalid-event-number")]
    pub invalid_event_number: Option<usize>,
}

/// A sorted answer: final, or accepted pending indexer acknowledgement.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Final.
    Done(Classified),
    /// Accepted; delivered once this ack id is confirmed.
    AwaitAck(u64),
}

/// Sort one HEC answer. `sink` names the setting to fix in configuration errors.
pub fn classify(
    sink: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    reply: &HecReply,
    count: usize,
    acknowledgements: bool,
) -> Answer {
    let text = if reply.text.is_empty() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        reply.text.clone()
    };
    let describe = |what: &str| match reply.code {
        Some(code) => format!("HTTP {} (HEC code {code}: {text}){what}", status.as_u16()),
        None => format!("HTTP {} ({text}){what}", status.as_u16()),
    };
    let misconfigured = |what: &str| {
        Answer::Done(Classified::Misconfigured {
            reason: describe(what),
        })
    };
    let retry = || {
        Answer::Done(Classified::Retry {
            after: retry_after,
            reason: describe(""),
        })
    };

    if status.is_success() {
        return match (acknowledgements, reply.ack_id) {
            (true, Some(id)) => Answer::AwaitAck(id),
            // Codes 24/25: accepted, but the queues are filling; the driver paces itself anyway.
            _ => Answer::Done(Classified::Delivered),
        };
    }
    match (status.as_u16(), reply.code) {
        (_, Some(1 | 2 | 3 | 4 | 21 | 22)) | (401 | 403, _) => misconfigured(&format!(
            ": the token is missing, invalid or disabled: check sinks.{sink}.token"
        )),
        (_, Some(7)) => misconfigured(&format!(
            ": the token may not write to this index: check sinks.{sink}.index and the token's allowed indexes"
        )),
        (_, Some(10)) => misconfigured(&format!(
            ": the token requires indexer acknowledgement: set sinks.{sink}.acknowledgements = true"
        )),
        (_, Some(14)) => misconfigured(&format!(
            ": indexer acknowledgement is off for this token: set sinks.{sink}.acknowledgements = false or enable it on the token"
        )),
        (_, Some(16)) => misconfigured(": query-string authorisation was refused"),
        (404, _) => misconfigured(&format!(": wrong URL, or HEC is disabled: check sinks.{sink}.endpoint")),
        (415, _) => misconfigured(": unsupported content encoding"),
        (413, _) => Answer::Done(Classified::Split { reason: describe(": request too large") }),
        // Invalid channel: the next attempt starts afresh.
        (_, Some(11)) => retry(),
        (400, Some(6 | 12 | 13 | 15)) => match reply.invalid_event_number {
            Some(bad) if bad < count => {
                let verdicts = (0..count)
                    .map(|index| {
                        if index < bad && !acknowledgements {
                            // Indexed already; with acknowledgement on no ackId covers them: resend.
                            ItemVerdict::Delivered
                        } else if index == bad {
                            ItemVerdict::Rejected(describe(""))
                        } else {
                            ItemVerdict::Retry(describe(": after a rejected envelope"))
                        }
                    })
                    .collect();
                Answer::Done(Classified::PerItem(verdicts))
            }
            // Which envelope is bad is unknown: halve the batch until it is alone.
            _ => Answer::Done(Classified::Split { reason: describe("") }),
        },
        (408 | 429, _) | (500..=599, _) => retry(),
        _ => Answer::Done(Classified::Rejected { reason: describe("") }),
    }
}

/// Everything one request needs.
#[derive(Debug)]
pub struct HecService {
    /// Sink name (for messages).
    pub sink: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `<endpoint>/services/collector/event`.
    pub event_url: reqwest::Url,
    /// `<endpoint>/services/collector/ack`.
    pub ack_url: reqwest::Url,
    /// `Splunk <token>`, marked sensitive.
    pub authorization: HeaderValue,
    /// Indexer acknowledgement, when on.
    pub acknowledgement: Option<AckSettings>,
}

/// Indexer-acknowledgement settings.
#[derive(Debug, Clone)]
pub struct AckSettings {
    /// The persisted channel id.
    pub channel: String,
    /// Resend after this long without confirmation.
    pub timeout: Duration,
    /// How often to poll.
    pub poll_interval: Duration,
}

impl HecService {
    /// Send one body and sort the answer, waiting for indexer acknowledgement when on.
    pub async fn send(&self, body: Bytes, gzip: bool, count: usize) -> Classified {
        let mut request = self
            .client
            .post(self.event_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if gzip {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(ack) = &self.acknowledgement {
            request = request.header("X-Splunk-Request-Channel", ack.channel.as_str());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return transport_error(&error),
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let reply: HecReply = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(error) => return transport_error(&error),
        };
        match classify(
            &self.sink,
            status,
            retry_after,
            &reply,
            count,
            self.acknowledgement.is_some(),
        ) {
            Answer::Done(classified) => classified,
            Answer::AwaitAck(id) => self.await_ack(id).await,
        }
    }

    /// Poll until Splunk says `id` is indexed, or give up after the timeout (then resend).
    async fn await_ack(&self, id: u64) -> Classified {
        let Some(settings) = &self.acknowledgement else {
            return Classified::Delivered;
        };
        let started = Instant::now();
        loop {
            tokio::time::sleep(settings.poll_interval).await;
            let polled = self
                .client
                .post(self.ack_url.clone())
                .query(&[("channel", settings.channel.as_str())])
                .header(AUTHORIZATION, self.authorization.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(format!("{{\"acks\":[{id}]}}"))
                .send()
                .await;
            if let Ok(response) = polled {
                if response.status().is_success() {
                    #[derive(Deserialize)]
                    struct Acks {
                        acks: HashMap<String, bool>,
                    }
                    let body = response.bytes().await.unwrap_or_default();
                    if let Ok(acks) = serde_json::from_slice::<Acks>(&body) {
                        // Splunk forgets an id once it said true: the first true is final.
                        if acks.acks.get(&id.to_string()).copied().unwrap_or(false) {
                            return Classified::Delivered;
                        }
                    }
                }
            }
            if started.elapsed() >= settings.timeout {
                return Classified::Retry {
                    after: None,
                    reason: format!(
                        "ackId {id} not confirmed within {}; resending (same ids)",
                        crate::config::duration::format(settings.timeout)
                    ),
                };
            }
        }
    }

    /// Ask `/services/collector/health` (with the token) and say plainly what is wrong.
    pub async fn health(&self, health_url: reqwest::Url) -> Result<String, String> {
        let response = self
            .client
            .get(health_url)
            .header(AUTHORIZATION, self.authorization.clone())
            .send()
            .await
            .map_err(|error| format!("cannot reach the collector: {}", error_chain(&error)))?;
        let status = response.status();
        let body = response.bytes().await.unwrap_or_default();
        let reply: HecReply = serde_json::from_slice(&body).unwrap_or_default();
        match (status.as_u16(), reply.code) {
            (200, _) => Ok(format!("HEC is healthy ({})", reply.text)),
            (_, Some(21)) | (401 | 403, _) => Err(format!(
                "the token is invalid: check sinks.{}.token",
                self.sink
            )),
            (_, Some(22)) => Err(format!(
                "the token is disabled in Splunk (sinks.{}.token)",
                self.sink
            )),
            (404, _) => Err(format!(
                "no collector at this URL, or HEC is disabled: check sinks.{}.endpoint",
                self.sink
            )),
            (_, code) => Err(format!(
                "HEC answered HTTP {}{}: {}",
                status.as_u16(),
                code.map(|c| format!(" code {c}")).unwrap_or_default(),
                reply.text
            )),
        }
    }
}

fn transport_error(error: &reqwest::Error) -> Classified {
    Classified::Retry {
        after: None,
        reason: error_chain(error),
    }
}

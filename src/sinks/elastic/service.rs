//! One `_bulk` request and what its answer means (PROTOCOLS.md §2): HTTP 200 even when items
//! failed, so the items are read one by one, by position.

use crate::net::http::error_chain;
use crate::net::retry::retry_after;
use crate::sinks::driver::{Classified, ItemVerdict};
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// The parts of a `_bulk` answer that matter.
#[derive(Debug, Deserialize)]
pub struct BulkReply {
    /// Whether any item failed.
    pub errors: bool,
    /// One entry per action, in request order: `{"create": {...}}`.
    pub items: Vec<Map<String, Value>>,
}

/// Sort a `_bulk` answer for `count` documents.
pub fn classify(
    sink: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    count: usize,
) -> Classified {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    let describe = |what: &str| format!("HTTP {}{what}: {text}", status.as_u16());
    match status.as_u16() {
        200..=299 => {}
        401 => {
            return Classified::Misconfigured {
                reason: describe(&format!(": authentication failed: check sinks.{sink}.auth")),
            }
        }
        403 => {
            return Classified::Misconfigured {
                reason: describe(&format!(
                    ": the credentials lack create_doc/auto_configure on logs-aiwarden.*: check sinks.{sink}.auth"
                )),
            }
        }
        404 => {
            return Classified::Misconfigured {
                reason: describe(&format!(": wrong URL: check sinks.{sink}.endpoint")),
            }
        }
        413 => return Classified::Split { reason: describe(": request too large") },
        408 | 429 | 500..=599 => {
            return Classified::Retry {
                after: retry_after,
                reason: describe(""),
            }
        }
        // A whole request refused as malformed: narrow it down to the record that causes it.
        _ => return Classified::Split { reason: describe("") },
    }
    let reply: BulkReply = match serde_json::from_slice(body) {
        Ok(reply) => reply,
        Err(error) => {
            return Classified::Retry {
                after: None,
                reason: format!("unreadable _bulk answer: {error}"),
            }
        }
    };
    if !reply.errors {
        return Classified::Delivered;
    }
    if reply.items.len() != count {
        return Classified::Retry {
            after: None,
            reason: format!(
                "_bulk answered {} items for {count} documents",
                reply.items.len()
            ),
        };
    }
    let mut verdicts = Vec::with_capacity(count);
    for item in &reply.items {
        let result = item.get("create").or_else(|| item.values().next());
        let status = result.and_then(|r| r["status"].as_u64()).unwrap_or(0);
        let error_type = result
            .and_then(|r| r["error"]["type"].as_str())
            .unwrap_or("");
        let reason = result
            .and_then(|r| r["error"]["reason"].as_str())
            .unwrap_or("");
        let described = format!("{error_type}: {reason}");
        verdicts.push(match status {
            200..=299 => ItemVerdict::Delivered,
            // Already indexed by an earlier send of the same `_id`.
            409 if error_type == "version_conflict_engine_exception" => ItemVerdict::Delivered,
            401 | 403 | 404 => {
                return Classified::Misconfigured {
                    reason: format!(
                        "document refused with {status} ({described}): check sinks.{sink}.auth privileges and the index templates"
                    ),
                }
            }
            429 | 500..=599 | 0 => ItemVerdict::Retry(described),
            _ => ItemVerdict::Rejected(described),
        });
    }
    Classified::PerItem(verdicts)
}

/// Everything one request needs.
#[derive(Debug)]
pub struct BulkService {
    /// Sink name (for messages).
    pub sink: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `<endpoint>/_bulk`.
    pub bulk_url: reqwest::Url,
    /// `ApiKey …` or `Basic …`, marked sensitive.
    pub authorization: HeaderValue,
}

impl BulkService {
    /// Send one NDJSON body and sort the answer.
    pub async fn send(&self, body: Bytes, gzip: bool, count: usize) -> Classified {
        let mut request = self
            .client
            .post(self.bulk_url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if gzip {
            request = request.header(CONTENT_ENCODING, "gzip");
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                return Classified::Retry {
                    after: None,
                    reason: error_chain(&error),
                }
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        match response.bytes().await {
            Ok(bytes) => classify(&self.sink, status, retry_after, &bytes, count),
            Err(error) => Classified::Retry {
                after: None,
                reason: error_chain(&error),
            },
        }
    }

    /// Warn when the index templates are missing (the built-in `logs-*-*` one would map them).
    pub async fn check_templates(&self, base: &str) -> Result<(), String> {
        for name in ["logs-aiwarden.alerts", "logs-aiwarden.events"] {
            let url = format!("{}/_index_template/{name}", base.trim_end_matches('/'));
            let response = self
                .client
                .get(url)
                .header(AUTHORIZATION, self.authorization.clone())
                .send()
                .await
                .map_err(|error| format!("cannot reach Elasticsearch: {}", error_chain(&error)))?;
            match response.status().as_u16() {
                200 => {}
                404 => {
                    return Err(format!(
                        "index template {name} is not installed: install connectors/elastic/ (see README) or documents get the generic logs-*-* mappings"
                    ))
                }
                401 | 403 => return Err(format!("cannot read index templates (HTTP {}): check sinks.{}.auth", response.status().as_u16(), self.sink)),
                other => return Err(format!("checking index template {name}: HTTP {other}")),
            }
        }
        Ok(())
    }
}

//! One GET against the Anthropic API, its answer sorted, and the retry loop around it.
//!
//! Answers are sorted the way PROTOCOLS.md sorts a SIEM's: 429, 408 and 5xx (and network
//! errors) are transient and retried with full-jitter backoff, honouring `retry-after`; 401 and
//! 403 mean the key is wrong, expired or lacks the scope, and 404 a wrong `base_url`: those are
//! configuration errors, retried only at the poll interval and never a reason to move a cursor.
//! The key is sent in `x-api-key` and never logged; errors carry the status and the API's
//! `error.type`, never the request's headers.

use crate::net::http::{build_client, error_chain, ClientError, TlsConfig};
use crate::net::retry::{retry_after, Backoff, RequestConfig};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a request gave no usable page.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The key is refused (401), lacks the scope (403) or the URL is wrong (404).
    #[error("the API refused the request with {status} ({kind}): {hint}")]
    Configuration {
        /// The HTTP status.
        status: u16,
        /// The API's `error.type`, when it gave one.
        kind: String,
        /// What the operator should fix.
        hint: &'static str,
    },
    /// Rate limited, a server error, or a network error: worth another try.
    #[error("transient failure: {reason}")]
    Transient {
        /// What went wrong.
        reason: String,
        /// The server's `retry-after`.
        retry_after: Option<Duration>,
    },
    /// Any other answer (400: a filter the API does not accept, a body that is not JSON).
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The agent is stopping.
    #[error("stopped")]
    Stopped,
}

/// An HTTP client bound to one base URL and key.
pub(crate) struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    key: String,
    version: String,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client for `base_url` sending `key`.
    pub(crate) fn new(
        source: &str,
        base_url: &str,
        key: String,
        version: &str,
        timeout: Duration,
        tls: &TlsConfig,
    ) -> Result<ApiClient, ClientError> {
        let request = RequestConfig {
            timeout,
            concurrency: 1,
            ..RequestConfig::default()
        };
        Ok(ApiClient {
            http: build_client(source, tls, &request)?,
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            version: version.to_string(),
        })
    }

    /// Use another key from now on (the key file was rotated).
    pub(crate) fn set_key(&mut self, key: String) {
        self.key = key;
    }

    /// One GET of `path` with `query`; the JSON body of a 2xx answer.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let answer = self
            .http
            .get(&url)
            .header("x-api-key", &self.key)
            .header("anthropic-version", &self.version)
            .query(query)
            .send()
            .await
            .map_err(|error| ApiError::Transient {
                reason: error_chain(&error),
                retry_after: None,
            })?;
        let status = answer.status();
        let wait = retry_after(answer.headers());
        let body = answer.bytes().await.map_err(|error| ApiError::Transient {
            reason: error_chain(&error),
            retry_after: None,
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|error| {
                ApiError::Unexpected(format!("{status}: body is not JSON: {error}"))
            });
        }
        let kind = error_kind(&body);
        match status.as_u16() {
            401 => Err(ApiError::Configuration {
                status: 401,
                kind,
                hint: "the key is wrong, revoked or expired: check `api_key`",
            }),
            403 => Err(ApiError::Configuration {
                status: 403,
                kind,
                hint: "the key lacks the scope (read:compliance_activities for the feed, an Admin API key for usage and cost), or the Compliance API is not enabled for the organisation",
            }),
            404 => Err(ApiError::Configuration {
                status: 404,
                kind,
                hint: "no such endpoint: check `base_url`",
            }),
            408 | 429 | 500..=599 => Err(ApiError::Transient {
                reason: format!("{status} ({kind})"),
                retry_after: wait,
            }),
            _ => Err(ApiError::Unexpected(format!("{status} ({kind})"))),
        }
    }

    /// [`ApiClient::get`] retried with backoff while the failure is transient, until `shutdown`.
    pub(crate) async fn get_with_retry(
        &self,
        source: &str,
        path: &str,
        query: &[(String, String)],
        backoff: &Backoff,
        shutdown: &CancellationToken,
    ) -> Result<Value, ApiError> {
        let mut backoff = backoff.clone();
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return Err(ApiError::Stopped),
                attempt = self.get(path, query) => attempt,
            };
            match attempt {
                Err(ApiError::Transient {
                    reason,
                    retry_after,
                }) => {
                    let delay = backoff.next_delay(retry_after);
                    tracing::warn!(
                        source,
                        path,
                        %reason,
                        attempt = backoff.attempts(),
                        delay_ms = delay.as_millis() as u64,
                        "Anthropic API request failed; retrying."
                    );
                    tokio::select! {
                        _ = shutdown.cancelled() => return Err(ApiError::Stopped),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                other => return other,
            }
        }
    }
}

/// The API's `error.type` (`authentication_error`, `permission_error`, …) without its message.
fn error_kind(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/error/type")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "no error type".into())
}

//! What the push receivers (`http`, `otlp`) share: bearer-token auth, TLS, connection and body
//! limits, the accept loop, and [`Intake`] — handing a request's lines to the pipeline and
//! waiting until every sink has them safe before the request is answered (PROTOCOLS.md §5).
//!
//! Slow or stalled clients cannot hold the server: a semaphore caps open connections (accept
//! waits for a free slot), headers must arrive within `read_timeout`, a body must be read within
//! it too, and a TLS handshake as well. On shutdown no new connection is accepted, open ones are
//! closed gracefully once their request is answered, and requests arriving meanwhile get 503.

mod auth;
mod intake;
mod server;
mod tls;

pub use auth::{AuthConfig, BearerAuth};
pub use intake::{Intake, IntakeError};
pub use server::{serve, Listener};
pub use tls::ServerTlsConfig;

use crate::config::duration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Limits of a receiver: `[sources.<name>.limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverLimits {
    /// Largest request body accepted, compressed or not (bigger: 413).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most connections open at once; further clients wait in the kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Time allowed for a TLS handshake, a request's headers, and its whole body.
    #[serde(default = "default_read_timeout", with = "duration")]
    pub read_timeout: Duration,
    /// Most requests waiting for their records to be delivered; beyond it: 429.
    #[serde(default = "default_max_pending_requests")]
    pub max_pending_requests: usize,
    /// How long a request may wait for a place in the pipeline's queue before 429.
    #[serde(default = "default_queue_wait", with = "duration")]
    pub queue_wait: Duration,
    /// How long a request waits for its records to be delivered before 503 (the client resends).
    #[serde(default = "default_ack_timeout", with = "duration")]
    pub ack_timeout: Duration,
    /// The delay suggested to clients with 429 and 503 answers.
    #[serde(default = "default_retry_after", with = "duration")]
    pub retry_after: Duration,
}

impl Default for ReceiverLimits {
    fn default() -> Self {
        ReceiverLimits {
            max_body_bytes: default_max_body_bytes(),
            max_connections: default_max_connections(),
            read_timeout: default_read_timeout(),
            max_pending_requests: default_max_pending_requests(),
            queue_wait: default_queue_wait(),
            ack_timeout: default_ack_timeout(),
            retry_after: default_retry_after(),
        }
    }
}

impl ReceiverLimits {
    /// Check what serde cannot: the key (relative to the source) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        for (key, value) in [
            ("limits.max_body_bytes", self.max_body_bytes),
            ("limits.max_connections", self.max_connections),
            ("limits.max_pending_requests", self.max_pending_requests),
        ] {
            if value == 0 {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        for (key, value) in [
            ("limits.read_timeout", self.read_timeout),
            ("limits.ack_timeout", self.ack_timeout),
            ("limits.retry_after", self.retry_after),
        ] {
            if value.is_zero() {
                return Err((key.into(), "must be greater than zero".into()));
            }
        }
        Ok(())
    }

    /// `Retry-After` in whole seconds (at least 1).
    pub fn retry_after_seconds(&self) -> u64 {
        self.retry_after.as_secs().max(1)
    }
}

fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_max_connections() -> usize {
    256
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_pending_requests() -> usize {
    64
}
fn default_queue_wait() -> Duration {
    Duration::from_secs(1)
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_after() -> Duration {
    Duration::from_secs(1)
}

/// Why a receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// A token secret could not be read.
    #[error("auth token: {0}")]
    Token(#[from] crate::config::SecretError),
    /// The certificate or key cannot be used.
    #[error("tls: {0}")]
    Tls(String),
    /// The address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<ReceiverError> for super::SourceError {
    fn from(error: ReceiverError) -> Self {
        super::SourceError::Other(error.to_string())
    }
}

/// Read a request body up to `limit` bytes within the read timeout, gunzipping it (also up to
/// `limit`, so a small gzip bomb cannot expand without bound).
pub async fn read_body(
    body: axum::body::Body,
    gzip: bool,
    limits: &ReceiverLimits,
) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(body, limits.max_body_bytes);
    let collected = tokio::time::timeout(limits.read_timeout, limited.collect())
        .await
        .map_err(|_| BodyError::Timeout)?
        .map_err(|error| {
            if error.is::<http_body_util::LengthLimitError>() {
                BodyError::TooLarge
            } else {
                BodyError::Read
            }
        })?
        .to_bytes();
    if !gzip {
        return Ok(collected.to_vec());
    }
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(&collected[..]);
    let read = std::io::Read::read_to_end(
        &mut std::io::Read::take(decoder, limits.max_body_bytes as u64 + 1),
        &mut out,
    );
    match read {
        Ok(_) if out.len() > limits.max_body_bytes => Err(BodyError::TooLarge),
        Ok(_) => Ok(out),
        Err(_) => Err(BodyError::BadGzip),
    }
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Larger than `max_body_bytes` (before or after decompression).
    #[error("request body larger than the limit")]
    TooLarge,
    /// Not complete within `read_timeout`.
    #[error("request body not received in time")]
    Timeout,
    /// The connection failed while reading.
    #[error("request body could not be read")]
    Read,
    /// `Content-Encoding: gzip` but not gzip data.
    #[error("request body is not valid gzip")]
    BadGzip,
}

impl BodyError {
    /// The HTTP status that answers it.
    pub fn status(self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout => StatusCode::REQUEST_TIMEOUT,
            BodyError::Read | BodyError::BadGzip => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whether the request's body is gzip (`Some(true)`), plain (`Some(false)`) or in an encoding
/// the receivers do not take (`None`: 415).
pub fn content_encoding_is_gzip(headers: &axum::http::HeaderMap) -> Option<bool> {
    match headers.get(axum::http::header::CONTENT_ENCODING) {
        None => Some(false),
        Some(value) => match value.to_str().ok()?.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(true),
            "identity" | "" => Some(false),
            _ => None,
        },
    }
}

/// The media type of a request without parameters, lowercased (`application/json`).
pub fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

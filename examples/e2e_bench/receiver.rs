//! A counting Splunk HEC receiver on loopback: checks the token, gunzips when asked, counts the
//! envelopes (the sink ends each with a newline) and answers success. It does as little as it
//! can, since it shares the machine's cores with the agent under test.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the receiver has seen so far.
#[derive(Default)]
pub struct Counts {
    /// Envelopes received.
    pub envelopes: AtomicU64,
    /// Requests received.
    pub requests: AtomicU64,
    /// Requests with a gzip body.
    pub gzip_requests: AtomicU64,
    /// Body bytes as sent (compressed when gzip).
    pub wire_bytes: AtomicU64,
    /// When the latest request arrived.
    pub last_request: Mutex<Option<Instant>>,
}

impl Counts {
    /// Forget everything (between runs).
    pub fn reset(&self) {
        self.envelopes.store(0, Ordering::SeqCst);
        self.requests.store(0, Ordering::SeqCst);
        self.gzip_requests.store(0, Ordering::SeqCst);
        self.wire_bytes.store(0, Ordering::SeqCst);
        if let Ok(mut last) = self.last_request.lock() {
            *last = None;
        }
    }

    /// When the latest request arrived.
    pub fn last_request(&self) -> Option<Instant> {
        self.last_request.lock().ok().and_then(|last| *last)
    }
}

struct Shared {
    authorization: String,
    counts: Arc<Counts>,
}

/// Serve on an ephemeral loopback port from a background runtime; returns the address.
pub fn start(token: &str, counts: Arc<Counts>) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let address = listener.local_addr()?;
    let shared = Arc::new(Shared {
        authorization: format!("Splunk {token}"),
        counts,
    });
    let app = Router::new()
        .route("/services/collector/event", post(event))
        .route("/services/collector/health", get(health))
        .with_state(shared);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    if let Err(error) = axum::serve(listener, app).await {
                        eprintln!("receiver stopped: {error}");
                    }
                }
                Err(error) => eprintln!("receiver cannot listen: {error}"),
            }
        })
    });
    Ok(address)
}

async fn health() -> (StatusCode, &'static str) {
    (StatusCode::OK, r#"{"text":"HEC is healthy","code":17}"#)
}

async fn event(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let authorised = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == shared.authorization);
    if !authorised {
        return (
            StatusCode::UNAUTHORIZED,
            r#"{"text":"Invalid token","code":4}"#,
        );
    }
    let gzip = headers
        .get("content-encoding")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("gzip"));
    let counts = &shared.counts;
    counts
        .wire_bytes
        .fetch_add(body.len() as u64, Ordering::SeqCst);
    let envelopes = if gzip {
        counts.gzip_requests.fetch_add(1, Ordering::SeqCst);
        let mut plain = Vec::with_capacity(body.len() * 6);
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .is_err()
        {
            return (
                StatusCode::BAD_REQUEST,
                r#"{"text":"Invalid data format","code":6}"#,
            );
        }
        count_newlines(&plain)
    } else {
        count_newlines(&body)
    };
    counts.envelopes.fetch_add(envelopes, Ordering::SeqCst);
    if let Ok(mut last) = counts.last_request.lock() {
        *last = Some(Instant::now());
    }
    counts.requests.fetch_add(1, Ordering::SeqCst);
    (StatusCode::OK, r#"{"text":"Success","code":0}"#)
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|byte| **byte == b'\n').count() as u64
}

//! One Logs Ingestion API call and what its answer means (PROTOCOLS.md §3), with the OAuth2
//! client-credentials token it needs: cached, refreshed at 80 % of its lifetime, and once more
//! when the API answers 401.

use crate::net::http::error_chain;
use crate::net::retry::retry_after;
use crate::sinks::driver::Classified;
use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Where and how to get tokens.
#[derive(Debug)]
pub struct TokenSource {
    /// `<authority>/<tenant>/oauth2/v2.0/token`.
    pub token_url: reqwest::Url,
    /// Application (client) id.
    pub client_id: String,
    /// Client secret (never logged).
    pub client_secret: String,
    /// Scope, e.g. `https://monitor.azure.com//.default`.
    pub scope: String,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default = "default_lifetime")]
    expires_in: u64,
}

fn default_lifetime() -> u64 {
    3599
}

struct CachedToken {
    header: HeaderValue,
    refresh_at: Instant,
}

/// Why no token could be had.
enum TokenError {
    /// The identity provider refused the app's credentials: a configuration error.
    Refused(String),
    /// A transient failure.
    Unavailable(String),
}

/// Everything one ingestion call needs.
pub struct IngestionService {
    /// Sink name (for messages).
    pub sink: String,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `<endpoint>/dataCollectionRules/<dcr>/streams/<stream>?api-version=2023-01-01`.
    pub url: reqwest::Url,
    /// DCR immutable id (for messages).
    pub dcr: String,
    /// Stream name (for messages).
    pub stream: String,
    /// Token source, shared by the alerts and events streams of one sink.
    pub tokens: std::sync::Arc<TokenCache>,
}

/// A token cache shared by the services of one sink.
pub struct TokenCache {
    source: TokenSource,
    client: reqwest::Client,
    cached: Mutex<Option<CachedToken>>,
}

impl TokenCache {
    /// A cache that fetches its first token on first use.
    pub fn new(source: TokenSource, client: reqwest::Client) -> Self {
        TokenCache {
            source,
            client,
            cached: Mutex::new(None),
        }
    }

    /// Fetch a token now: `Ok` when the identity provider accepts the app's credentials.
    pub async fn check(&self) -> Result<(), String> {
        match self.get(true).await {
            Ok(_) => Ok(()),
            Err(TokenError::Refused(reason)) | Err(TokenError::Unavailable(reason)) => Err(reason),
        }
    }

    /// A valid `Bearer` header, fetching a token when there is none or it is due for refresh.
    async fn get(&self, force_refresh: bool) -> Result<HeaderValue, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref() {
            if !force_refresh && Instant::now() < token.refresh_at {
                return Ok(token.header.clone());
            }
        }
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.source.client_id.as_str()),
            ("client_secret", self.source.client_secret.as_str()),
            ("scope", self.source.scope.as_str()),
        ];
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .client
            .post(self.source.token_url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|error| {
                TokenError::Unavailable(format!("token endpoint: {}", error_chain(&error)))
            })?;
        let status = response.status();
        let bytes = response.bytes().await.unwrap_or_default();
        if status.is_success() {
            let reply: TokenReply = serde_json::from_slice(&bytes).map_err(|error| {
                TokenError::Unavailable(format!("unreadable token answer: {error}"))
            })?;
            let mut header = HeaderValue::from_str(&format!("Bearer {}", reply.access_token))
                .map_err(|_| TokenError::Unavailable("token not usable in a header".into()))?;
            header.set_sensitive(true);
            // Refresh at 80 % of the lifetime so a token never expires mid-request.
            let lifetime = Duration::from_secs(reply.expires_in.max(1));
            *cached = Some(CachedToken {
                header: header.clone(),
                refresh_at: Instant::now() + lifetime.mul_f64(0.8),
            });
            return Ok(header);
        }
        #[derive(Deserialize, Default)]
        struct AadError {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        let aad: AadError = serde_json::from_slice(&bytes).unwrap_or_default();
        let first_line = aad
            .error_description
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        let message = format!(
            "token endpoint HTTP {}: {} {}",
            status.as_u16(),
            aad.error,
            first_line
        );
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(TokenError::Unavailable(message))
        } else {
            Err(TokenError::Refused(message))
        }
    }
}

/// Form-encode a value (`application/x-www-form-urlencoded`).
fn urlencode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Sort an ingestion answer (after the one token refresh a 401 earns).
pub fn classify(
    sink: &str,
    dcr: &str,
    stream: &str,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Classified {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
    let describe = |what: &str| format!("HTTP {}{what}: {text}", status.as_u16());
    match status.as_u16() {
        200..=299 => Classified::Delivered,
        401 => Classified::Misconfigured {
            reason: describe(&format!(
                ": the token was refused: check sinks.{sink}.tenant_id, client_id and client_secret"
            )),
        },
        403 => Classified::Misconfigured {
            reason: describe(&format!(
                ": the app lacks the Monitoring Metrics Publisher role on DCR {dcr} (a new assignment takes up to 30 minutes)"
            )),
        },
        404 => Classified::Misconfigured {
            reason: describe(&format!(
                ": no DCR {dcr} with stream {stream} here: check sinks.{sink}.ingestion_endpoint, dcr_immutable_id and the streams"
            )),
        },
        413 => Classified::Split { reason: describe(": request too large") },
        // The body does not fit the stream: find the record that does not.
        400 => Classified::Split { reason: describe(&format!(" (stream {stream})")) },
        _ => Classified::Retry {
            after: retry_after,
            reason: describe(""),
        },
    }
}

impl IngestionService {
    /// Send one JSON array and sort the answer.
    pub async fn send(&self, body: Bytes, gzip: bool) -> Classified {
        let mut refreshed = false;
        loop {
            let bearer = match self.tokens.get(refreshed).await {
                Ok(bearer) => bearer,
                Err(TokenError::Refused(reason)) => {
                    return Classified::Misconfigured {
                        reason: format!(
                            "{reason}: check sinks.{}.tenant_id, client_id and client_secret",
                            self.sink
                        ),
                    }
                }
                Err(TokenError::Unavailable(reason)) => {
                    return Classified::Retry {
                        after: None,
                        reason,
                    }
                }
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let mut request = self
                .client
                .post(self.url.clone())
                .header(AUTHORIZATION, bearer)
                .header(CONTENT_TYPE, "application/json")
                .header("x-ms-client-request-id", request_id.as_str())
                .body(body.clone());
            if gzip {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    return Classified::Retry {
                        after: None,
                        reason: format!(
                            "{} (x-ms-client-request-id {request_id})",
                            error_chain(&error)
                        ),
                    }
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                continue;
            }
            let retry_after = retry_after(response.headers());
            let bytes = response.bytes().await.unwrap_or_default();
            let classified = classify(
                &self.sink,
                &self.dcr,
                &self.stream,
                status,
                retry_after,
                &bytes,
            );
            if !matches!(classified, Classified::Delivered) {
                tracing::debug!(sink = %self.sink, stream = %self.stream, request_id = %request_id, status = status.as_u16(), "Logs Ingestion API answer.");
            }
            return classified;
        }
    }
}

//! The client context of every aiwarden Kafka client: librdkafka's logs go to `tracing` (the
//! default of the `rdkafka` crate's `tracing` feature), and OAUTHBEARER tokens come from an
//! OAuth 2.0 client-credentials grant, which is what Azure Event Hubs' Kafka endpoint takes with
//! Entra ID. Doing the grant here rather than in librdkafka's OIDC code spares a libcurl build.

use super::{KafkaConnection, KafkaError, SaslMechanism};
use rdkafka::client::OAuthToken;
use rdkafka::consumer::ConsumerContext;
use rdkafka::ClientContext;
use serde::Deserialize;
use std::error::Error;
use std::time::Duration;

/// Client-credentials settings, with the secret resolved.
#[derive(Clone)]
struct ClientCredentials {
    token_endpoint: String,
    client_id: String,
    client_secret: String,
    scope: String,
}

/// The context of aiwarden's Kafka clients.
#[derive(Clone, Default)]
pub struct AgentClientContext {
    credentials: Option<ClientCredentials>,
}

impl std::fmt::Debug for AgentClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClientContext")
            .field("oauthbearer", &self.credentials.is_some())
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl AgentClientContext {
    /// The context for a connection (reads the OAuth client secret now, if there is one).
    pub fn new(connection: &KafkaConnection) -> Result<Self, KafkaError> {
        let Some(sasl) = connection
            .sasl
            .as_ref()
            .filter(|sasl| sasl.mechanism == SaslMechanism::OAuthBearer)
        else {
            return Ok(AgentClientContext::default());
        };
        let missing = |key: &str| KafkaError::Config(format!("sasl.{key} is required"));
        let client_secret = sasl
            .client_secret
            .as_ref()
            .ok_or_else(|| missing("client_secret"))?
            .resolve()
            .map_err(|error| KafkaError::Config(format!("sasl.client_secret: {error}")))?;
        Ok(AgentClientContext {
            credentials: Some(ClientCredentials {
                token_endpoint: sasl
                    .token_endpoint
                    .clone()
                    .ok_or_else(|| missing("token_endpoint"))?,
                client_id: sasl.client_id.clone().ok_or_else(|| missing("client_id"))?,
                client_secret,
                scope: sasl.scope.clone().ok_or_else(|| missing("scope"))?,
            }),
        })
    }

    /// Fetch a token (called by librdkafka's thread when the current one nears expiry).
    pub fn fetch_token(&self) -> Result<OAuthToken, String> {
        let credentials = self
            .credentials
            .clone()
            .ok_or_else(|| "no OAUTHBEARER settings".to_string())?;
        // librdkafka calls this from its own thread, outside any runtime: run the request on a
        // short-lived one so the rest of the agent's runtime is never blocked.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| {
                    format!("cannot start a runtime for the token request: {error}")
                })?;
            runtime.block_on(request_token(&credentials))
        })
        .join()
        .map_err(|_| "the token request thread panicked".to_string())?
    }
}

async fn request_token(credentials: &ClientCredentials) -> Result<OAuthToken, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|error| format!("cannot build the token client: {error}"))?;
    let response = client
        .post(&credentials.token_endpoint)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", credentials.client_id.as_str()),
            ("client_secret", credentials.client_secret.as_str()),
            ("scope", credentials.scope.as_str()),
        ])
        .send()
        .await
        .map_err(|error| format!("token request failed: {error}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "the token endpoint answered {status}; check sasl.client_id, sasl.client_secret and sasl.scope"
        ));
    }
    let body = response
        .bytes()
        .await
        .map_err(|error| format!("cannot read the token answer: {error}"))?;
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|error| format!("unreadable token answer: {error}"))?;
    let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
    let expires_at = chrono::Utc::now()
        + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(1));
    Ok(OAuthToken {
        token: answer.access_token,
        principal_name: credentials.client_id.clone(),
        lifetime_ms: expires_at.timestamp_millis(),
    })
}

impl ClientContext for AgentClientContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn Error>> {
        match self.fetch_token() {
            Ok(token) => Ok(token),
            Err(reason) => {
                tracing::error!(reason = %reason, "Cannot get a Kafka OAUTHBEARER token.");
                Err(reason.into())
            }
        }
    }
}

/// Plain consumers (state-topic reads, replays) need nothing beyond the client context.
impl ConsumerContext for AgentClientContext {}

//! The `http` source: a push receiver for gateways (PROTOCOLS.md §5).
//!
//! `POST /v1/events` takes NDJSON (`application/x-ndjson`) or a JSON array (`application/json`),
//! gzip or plain, with `Authorization: Bearer <token>` when tokens are configured. Each record
//! becomes one line of the configured format. The answer comes only once every record is as
//! safe as a line read from a file: 202 `{"accepted":N}`; 400 with per-line errors when some
//! lines were rejected (the others are accepted and counted, the rejected ones dead-lettered);
//! 401, 413, 415; 429 with `Retry-After` when the pipeline is saturated; 503 while stopping.

mod handler;

use super::receiver::{
    serve, AuthConfig, BearerAuth, Intake, Listener, ReceiverLimits, ServerTlsConfig,
};
use super::{SourceContext, SourceError};
use crate::decode::{DecodeOptions, Format, Mapping};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// Receive audit records pushed over HTTP.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Address to listen on; loopback unless set otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The format of each pushed record.
    #[serde(default)]
    pub format: Format,
    /// Field renames into the canonical record: `[sources.<name>.mapping]`.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub mapping: Mapping,
    /// Format-specific decoding settings: `[sources.<name>.decode]`.
    #[serde(default, skip_serializing_if = "DecodeOptions::is_default")]
    pub decode: DecodeOptions,
    /// Bearer tokens; without them the receiver is open (keep it on loopback then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Serve HTTPS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
    /// Body, connection and waiting limits.
    #[serde(default)]
    pub limits: ReceiverLimits,
    /// Records longer than this many bytes are rejected.
    #[serde(default = "super::file::default_max_line_bytes")]
    pub max_line_bytes: usize,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8088))
}

impl HttpSourceConfig {
    /// Check what serde cannot: the key (relative to the source) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.max_line_bytes < 64 {
            return Err(("max_line_bytes".into(), "must be at least 64".into()));
        }
        if self
            .auth
            .as_ref()
            .is_some_and(|auth| auth.tokens.is_empty())
        {
            return Err(("auth.tokens".into(), "list at least one token".into()));
        }
        self.limits.validate()?;
        crate::decode::validate_settings(&self.mapping, &self.decode)
    }
}

/// Run the receiver until shutdown; requests in flight are answered before it returns.
pub async fn run(config: HttpSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    let listener = Listener::bind(config.listen, config.tls.as_ref()).await?;
    run_on(config, listener, context).await
}

/// Run on an already bound listener (tests bind port 0 and read the address first).
pub async fn run_on(
    config: HttpSourceConfig,
    listener: Listener,
    context: SourceContext,
) -> Result<(), SourceError> {
    let auth =
        BearerAuth::resolve(config.auth.as_ref()).map_err(super::receiver::ReceiverError::from)?;
    if config.auth.is_none() && !config.listen.ip().is_loopback() {
        tracing::warn!(source = %context.name, listen = %config.listen, "HTTP receiver without auth tokens listens beyond loopback.");
    }
    tracing::info!(source = %context.name, address = ?listener.local_addr(), tls = config.tls.is_some(), "HTTP receiver listening.");
    let shutdown = context.shutdown.clone();
    let format = config.format.configure(&config.mapping, &config.decode);
    let state = Arc::new(handler::State {
        intake: Intake::new(context, format, config.limits.clone()),
        auth,
        validator: handler::Validator {
            format: config.format,
            mapping: config.mapping.clone(),
            options: config.decode.clone(),
        },
        max_line_bytes: config.max_line_bytes,
    });
    let router = axum::Router::new()
        .route("/v1/events", axum::routing::post(handler::events))
        .with_state(state);
    serve(listener, router, &config.limits, shutdown).await;
    Ok(())
}

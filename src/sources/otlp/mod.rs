//! The `otlp` source: OpenTelemetry logs (what Claude Code exports) over OTLP/HTTP at
//! `POST /v1/logs` (`application/x-protobuf` or `application/json`, gzip) on :4318 and over
//! OTLP/gRPC (`LogsService/Export`, gzip) on :4317 — both optional, loopback by default, with the
//! same bearer tokens, TLS and limits as the `http` source (PROTOCOLS.md §5).
//!
//! Every log record is transcoded into one line holding a one-record OTLP/JSON export (the shape
//! a collector's file exporter writes), so the `claude_code_otel` decoder reads received records
//! and exported files alike. Answers follow the OTLP specification: success (with
//! `partialSuccess` naming how many records were rejected) only once every record is delivered;
//! 429/`RESOURCE_EXHAUSTED` or 503/`UNAVAILABLE` with a retry delay when saturated or stopping,
//! so exporters retry; 400/`INVALID_ARGUMENT` for malformed bodies.

mod grpc;
mod http;
mod transcode;

use super::receiver::{
    serve, AuthConfig, BearerAuth, Intake, IntakeError, Listener, ReceiverLimits, ServerTlsConfig,
};
use super::{Line, LineData, SourceContext, SourceError};
use crate::decode::{DecodeOptions, Decoder, Format, Mapping};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// Receive OpenTelemetry logs over OTLP/HTTP and OTLP/gRPC.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtlpSourceConfig {
    /// Serve OTLP/HTTP (`POST /v1/logs`).
    #[serde(default = "default_true")]
    pub http: bool,
    /// Where OTLP/HTTP listens.
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    /// Serve OTLP/gRPC (`LogsService/Export`).
    #[serde(default = "default_true")]
    pub grpc: bool,
    /// Where OTLP/gRPC listens.
    #[serde(default = "default_grpc_listen")]
    pub grpc_listen: SocketAddr,
    /// Decoding settings for Claude Code records: `[sources.<name>.decode]`.
    #[serde(default, skip_serializing_if = "DecodeOptions::is_default")]
    pub decode: DecodeOptions,
    /// Bearer tokens (`Authorization: Bearer …`, the `authorization` metadata in gRPC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthConfig>,
    /// Serve both protocols over TLS with this certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTlsConfig>,
    /// Body, connection and waiting limits.
    #[serde(default)]
    pub limits: ReceiverLimits,
}

fn default_true() -> bool {
    true
}
fn default_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4318))
}
fn default_grpc_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4317))
}

impl OtlpSourceConfig {
    /// Check what serde cannot: the key (relative to the source) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.http && !self.grpc {
            return Err(("http".into(), "enable `http`, `grpc` or both".into()));
        }
        if self.http && self.grpc && self.http_listen == self.grpc_listen {
            return Err(("grpc_listen".into(), "must differ from http_listen".into()));
        }
        if self
            .auth
            .as_ref()
            .is_some_and(|auth| auth.tokens.is_empty())
        {
            return Err(("auth.tokens".into(), "list at least one token".into()));
        }
        self.limits.validate()?;
        self.decode.validate()
    }
}

/// What both protocol front ends share.
pub(crate) struct Receiver {
    intake: Intake,
    auth: BearerAuth,
    options: DecodeOptions,
}

/// How a request's records fared.
pub(crate) enum Outcome {
    /// Delivered; this many records were rejected (dead-lettered) with this first reason.
    Accepted { rejected: usize, message: String },
    /// Not accepted.
    Refused(IntakeError),
}

impl Receiver {
    /// Validate the lines, send them, and wait for their delivery.
    async fn submit(&self, stream: &str, lines: Vec<Vec<u8>>) -> Outcome {
        if lines.is_empty() {
            return Outcome::Accepted {
                rejected: 0,
                message: String::new(),
            };
        }
        let mut decoder = Decoder::new(
            Format::ClaudeCodeOtel,
            Mapping::default(),
            self.options.clone(),
        );
        let mut results = Vec::new();
        let mut rejected = 0;
        let mut first_error = None;
        for line in &lines {
            decoder.decode(line, &mut results);
            for result in results.drain(..) {
                if let Err(error) = result {
                    rejected += 1;
                    first_error.get_or_insert(error);
                }
            }
        }
        let framed = lines
            .into_iter()
            .enumerate()
            .map(|(index, bytes)| Line {
                offset: index as u64,
                data: LineData::Complete(bytes),
            })
            .collect();
        match self.intake.submit(stream, framed).await {
            Ok(()) => Outcome::Accepted {
                rejected,
                message: first_error
                    .map(|error| format!("{rejected} log records rejected; first: {error}"))
                    .unwrap_or_default(),
            },
            Err(error) => Outcome::Refused(error),
        }
    }
}

/// Run the enabled front ends until shutdown.
pub async fn run(config: OtlpSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    let http = match config.http {
        true => Some(Listener::bind(config.http_listen, config.tls.as_ref()).await?),
        false => None,
    };
    let grpc = match config.grpc {
        true => Some(Listener::bind(config.grpc_listen, config.tls.as_ref()).await?),
        false => None,
    };
    run_on(config, http, grpc, context).await
}

/// Run on already bound listeners (tests bind port 0 and read the addresses first).
pub async fn run_on(
    config: OtlpSourceConfig,
    http: Option<Listener>,
    grpc: Option<Listener>,
    context: SourceContext,
) -> Result<(), SourceError> {
    let auth =
        BearerAuth::resolve(config.auth.as_ref()).map_err(super::receiver::ReceiverError::from)?;
    let shutdown = context.shutdown.clone();
    let format = Format::ClaudeCodeOtel.configure(&Mapping::default(), &config.decode);
    let receiver = Arc::new(Receiver {
        intake: Intake::new(context.clone(), format, config.limits.clone()),
        auth,
        options: config.decode.clone(),
    });
    let mut tasks = Vec::new();
    if let Some(listener) = http {
        tracing::info!(source = %context.name, address = ?listener.local_addr(), "OTLP/HTTP receiver listening.");
        let router = http::router(Arc::clone(&receiver));
        let limits = config.limits.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            serve(listener, router, &limits, shutdown).await
        }));
    }
    if let Some(listener) = grpc {
        tracing::info!(source = %context.name, address = ?listener.local_addr(), "OTLP/gRPC receiver listening.");
        let router = grpc::router(Arc::clone(&receiver), &config.limits);
        let limits = config.limits.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            serve(listener, router, &limits, shutdown).await
        }));
    }
    drop(receiver);
    for task in tasks {
        if let Err(error) = task.await {
            return Err(SourceError::Other(format!(
                "OTLP receiver task failed: {error}"
            )));
        }
    }
    Ok(())
}

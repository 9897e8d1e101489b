//! The `syslog` sink: RFC 5424 messages over TCP (RFC 6587 octet counting, or newline framing
//! for legacy receivers), TLS (RFC 5425) or UDP (RFC 5426), with JSON or CEF payloads
//! (PROTOCOLS.md §4).
//!
//! `config.rs` is the user-facing settings, `encoder.rs` turns records into messages and frames
//! (pure), `cef.rs` writes CEF payloads (pure), `tls.rs` builds the rustls client, `service.rs`
//! holds the connection or socket. Batching, retries with backoff and dead letters are the shared
//! driver's: a batch is one body of frames written to the kept connection.
//!
//! Delivery: over TCP and TLS a message counts as delivered once written to an established
//! connection and flushed; any I/O error drops the connection and the batch is sent again on a
//! new one. **UDP is fire-and-forget and cannot be at-least-once**: a datagram that a receiver or
//! the network dropped is gone without a trace. Over UDP a message longer than
//! `max_message_bytes` is cut at a UTF-8 boundary and counted in
//! `sink_records_truncated_total`.
//!
//! Evidence: with `[evidence]` on, the JSON MSG of each message carries the chain stamp and
//! signed checkpoints are sent as messages of MSGID `checkpoint` (TCP and TLS, `format =
//! "json"`). A CEF payload has no place for a stamp and UDP cannot prove delivery (and would cut
//! stamped messages), so those sinks carry no chain; the agent says so at start.

mod cef;
mod config;
mod encoder;
mod service;
mod tls;

pub use cef::line as cef_line;
pub use config::{split_address, Facility, Framing, PayloadFormat, SyslogSinkConfig, Transport};
pub use encoder::{
    alert_severity, encode, frame_newline, frame_octet_counted, header_field, pri, sd_name,
    timestamp, truncate_utf8, MessageSettings, BOM,
};

use super::driver::{self, Classified, DriverSettings, Encoded, Service};
use super::{SinkBatch, SinkContext, SinkError, SinkTask};
use crate::record::Output;
use crate::telemetry::Metrics;
use bytes::Bytes;
use service::{DatagramTransport, StreamTransport, TlsSettings};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

enum Link {
    Stream(Arc<StreamTransport>, Framing),
    Datagram {
        transport: DatagramTransport,
        max_bytes: usize,
    },
}

struct Syslog {
    sink: Arc<str>,
    metrics: Arc<Metrics>,
    message: MessageSettings,
    link: Link,
    warned_truncation: AtomicBool,
}

/// Inside a UDP request body each message is length-prefixed (4 bytes, big endian), so that
/// `send` can put each in its own datagram.
const DATAGRAM_PREFIX: usize = 4;

impl Service for Syslog {
    fn encode(
        &self,
        item: &Output,
        forward_content: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let start = out.len();
        encode(item, &self.message, forward_content, out)?;
        if let Link::Datagram { max_bytes, .. } = &self.link {
            if truncate_utf8(out, start, *max_bytes) {
                self.metrics.sink_truncated(&self.sink);
                if !self.warned_truncation.swap(true, Ordering::Relaxed) {
                    tracing::warn!(sink = %self.sink, max_message_bytes = max_bytes, "Messages longer than max_message_bytes are truncated (counted in sink_records_truncated_total).");
                }
                tracing::debug!(sink = %self.sink, max_message_bytes = max_bytes, "Message truncated.");
            }
        }
        Ok(())
    }

    fn frame(&self, items: &[Encoded], out: &mut Vec<u8>) {
        for item in items {
            match &self.link {
                Link::Stream(_, Framing::OctetCounting) => frame_octet_counted(&item.bytes, out),
                Link::Stream(_, Framing::Newline) => frame_newline(&item.bytes, out),
                Link::Datagram { .. } => {
                    let length = u32::try_from(item.bytes.len()).unwrap_or(u32::MAX);
                    out.extend_from_slice(&length.to_be_bytes());
                    out.extend_from_slice(&item.bytes);
                }
            }
        }
    }

    fn separator_bytes(&self) -> usize {
        match &self.link {
            // Up to seven digits and a space.
            Link::Stream(_, Framing::OctetCounting) => 8,
            Link::Stream(_, Framing::Newline) => 1,
            Link::Datagram { .. } => DATAGRAM_PREFIX,
        }
    }

    fn evidence_shape(&self) -> Option<crate::evidence::encoded::EncodedShape> {
        match self.link {
            Link::Stream(..) => self.message.evidence_shape(),
            Link::Datagram { .. } => None,
        }
    }

    async fn send(&self, body: Bytes, _gzip: bool, _count: usize) -> Classified {
        match &self.link {
            Link::Stream(transport, _) => transport.send(&body).await,
            Link::Datagram { transport, .. } => transport.send(datagrams(&body)).await,
        }
    }
}

/// The messages of a UDP request body (see [`DATAGRAM_PREFIX`]).
fn datagrams(mut body: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (prefix, rest) = body.split_first_chunk::<DATAGRAM_PREFIX>()?;
        let length = usize::try_from(u32::from_be_bytes(*prefix)).ok()?;
        let message = rest.get(..length)?;
        body = &rest[length..];
        Some(message)
    })
}

/// Build the sink: address, TLS client, message settings, and the driver.
pub fn build(
    config: SyslogSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let (host, port) = config
        .host_port()
        .map_err(|reason| SinkError::Config(format!("address: {reason}")))?;
    let hostname = config
        .hostname
        .clone()
        .unwrap_or_else(|| context.agent.host.clone());
    let message = MessageSettings::new(
        config.facility,
        &hostname,
        &config.app_name,
        &std::process::id().to_string(),
        config.enterprise_number,
        config.bom,
        config.format,
    );
    let stream = |tls| {
        Arc::new(StreamTransport::new(
            &context.name,
            host.clone(),
            port,
            tls,
            config.request.timeout,
        ))
    };
    let link = match config.transport {
        Transport::Tcp => Link::Stream(stream(None), config.framing),
        Transport::Tls => {
            let connector = tls::connector(&context.name, &config.tls)
                .map_err(|error| SinkError::Config(format!("tls: {error}")))?;
            let server_name = tls::server_name(&host)
                .map_err(|error| SinkError::Config(format!("address: {error}")))?;
            Link::Stream(
                stream(Some(TlsSettings {
                    connector,
                    server_name,
                })),
                config.framing,
            )
        }
        Transport::Udp => {
            tracing::info!(sink = %context.name, "UDP syslog is fire-and-forget: records lost on the way cannot be detected or resent.");
            Link::Datagram {
                transport: DatagramTransport::new(host.clone(), port),
                max_bytes: config.max_message_bytes,
            }
        }
    };
    let evidence_on = context
        .outbound
        .as_ref()
        .is_some_and(|outbound| outbound.evidence.enabled);
    if evidence_on {
        if let Some(reason) = no_chain_reason(&config) {
            tracing::warn!(sink = %context.name, reason, "[evidence] is on, but this syslog sink carries no evidence chain: its records are sent unstamped and `aiwarden verify` cannot prove them. Use transport = \"tcp\" or \"tls\" with format = \"json\" for evidence.");
        }
    }
    let stream_transport = match &link {
        Link::Stream(transport, _) => Some(Arc::clone(transport)),
        Link::Datagram { .. } => None,
    };
    let settings = DriverSettings::new(
        config.routing(),
        config.batch,
        config.request,
        config.queue,
        &context.name,
    )
    .with_real_identity(config.real_identity);
    let sink = Syslog {
        sink: Arc::clone(&context.name),
        metrics: Arc::clone(&context.metrics),
        message,
        link,
        warned_truncation: AtomicBool::new(false),
    };
    Ok(Box::pin(async move {
        let result = driver::run(sink, settings, context, batches).await;
        if let Some(transport) = stream_transport {
            transport.close().await;
        }
        result
    }))
}

/// Why a syslog sink with this configuration cannot carry the evidence chain, if it cannot.
pub fn no_chain_reason(config: &SyslogSinkConfig) -> Option<&'static str> {
    if config.format == PayloadFormat::Cef {
        Some("a CEF payload has no place for the chain stamp")
    } else if config.transport == Transport::Udp {
        Some("UDP cannot prove delivery and truncates long (stamped) messages")
    } else {
        None
    }
}

#[cfg(test)]
mod tests;

/// `check-config --connect`: open a connection (TCP, or TCP and the TLS handshake) and close it.
pub async fn check(config: &SyslogSinkConfig, sink: &str) -> Result<String, String> {
    let (host, port) = config
        .host_port()
        .map_err(|reason| format!("address: {reason}"))?;
    let tls = match config.transport {
        Transport::Udp => return Ok("UDP: nothing to connect to (fire-and-forget)".into()),
        Transport::Tcp => None,
        Transport::Tls => Some(TlsSettings {
            connector: tls::connector(sink, &config.tls)
                .map_err(|error| format!("tls: {error}"))?,
            server_name: tls::server_name(&host).map_err(|error| format!("address: {error}"))?,
        }),
    };
    let secure = tls.is_some();
    StreamTransport::new(sink, host.clone(), port, tls, config.request.timeout)
        .probe()
        .await?;
    Ok(format!(
        "connected to {host}:{port}{}",
        if secure { " (TLS handshake OK)" } else { "" }
    ))
}

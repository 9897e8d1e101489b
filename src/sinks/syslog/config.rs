//! Configuration of the `syslog` sink.

use crate::net::http::TlsConfig;
use crate::net::retry::{Compression, RequestConfig};
use crate::record::Severity;
use crate::sinks::util::batch::BatchConfig;
use crate::sinks::{default_min_severity, RecordKinds, Routing};
use serde::{Deserialize, Deserializer, Serialize};

/// Send RFC 5424 syslog messages over TCP (RFC 6587), TLS (RFC 5425) or UDP (RFC 5426).
///
/// Over TCP and TLS a message counts as delivered once it was written to an established
/// connection and flushed; a broken connection is dropped and the batch resent on a new one with
/// backoff. **UDP is fire-and-forget**: nothing tells aiwarden whether a datagram arrived, so UDP
/// cannot give at-least-once delivery; use it only where losing records is acceptable.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSinkConfig {
    /// The receiver, `host:port` (`[v6addr]:port` for IPv6). Without a port: 514 for `udp` and
    /// `tcp`, 6514 for `tls` (RFC 5425).
    pub address: String,
    /// `tcp` (default), `tls` or `udp`.
    #[serde(default)]
    pub transport: Transport,
    /// TCP/TLS framing: `octet_counting` (default, RFC 6587 `MSG-LEN SP SYSLOG-MSG`) or
    /// `newline` for legacy receivers (then a newline inside a message is written as `\n`).
    /// Ignored for UDP (one message per datagram).
    #[serde(default)]
    pub framing: Framing,
    /// The MSG payload: `json` (default; the alert or event as JSON) or `cef` (ArcSight CEF).
    #[serde(default)]
    pub format: PayloadFormat,
    /// The syslog facility by name: `kern`, `user`, ..., `local0` (default) ... `local7`.
    #[serde(default)]
    pub facility: Facility,
    /// APP-NAME of every message (at most 48 printable ASCII characters).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME of every message; the agent's host name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The private enterprise number in the SD-ID `aiwarden@<number>`. The default, 32473, is
    /// the number RFC 5612 reserves for documentation: fine to start with, but use your
    /// organisation's own IANA number where receivers key on it.
    #[serde(default = "default_enterprise_number")]
    pub enterprise_number: u32,
    /// Start MSG with the UTF-8 byte order mark as RFC 5424 asks (default true). Some CEF
    /// parsers expect `CEF:0` as the very first bytes: turn it off for them.
    #[serde(default = "default_bom")]
    pub bom: bool,
    /// UDP only: the largest datagram (default 2048, which RFC 5426 says receivers should
    /// take; at least 480). Longer messages are cut at a UTF-8 boundary and counted in
    /// `sink_records_truncated_total`.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// `alerts`, `events` or `both`.
    #[serde(default)]
    pub records: RecordKinds,
    /// Alerts below this severity are not sent.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Send raw prompt/response text when records carry it (off: it never leaves the host).
    #[serde(default)]
    pub forward_content: bool,
    /// How many messages are written at once (default 1,000 messages, 1 MB, 1 s).
    #[serde(default)]
    pub batch: BatchConfig,
    /// Timeout of a connect plus write, and the retry backoff. Syslog has no compression
    /// (`compression` must be `none`, the default here) and keeps one connection
    /// (`concurrency` must be 1, the default here) so that messages stay in order.
    #[serde(default = "default_request", deserialize_with = "request_config")]
    pub request: RequestConfig,
    /// Where records wait for delivery: a disk queue by default (see `[sinks.<name>.queue]`).
    #[serde(default)]
    pub queue: crate::queue::QueueConfig,
    /// Send the real user next to the pseudonym (`real_user_id`) when `[privacy] pseudonymise`
    /// is on: only for a SIEM whose readers may see identities.
    #[serde(default)]
    pub real_identity: bool,
    /// TLS options (`transport = "tls"`): extra CA file, client certificate, verification.
    #[serde(default)]
    pub tls: TlsConfig,
}

/// How messages travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// RFC 6587 over plain TCP.
    #[default]
    Tcp,
    /// RFC 5425: TCP with TLS.
    Tls,
    /// RFC 5426: one message per datagram, fire-and-forget.
    Udp,
}

/// How messages are delimited on a TCP or TLS stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// `MSG-LEN SP SYSLOG-MSG` (RFC 6587 §3.4.1).
    #[default]
    OctetCounting,
    /// Each message followed by `\n` (RFC 6587 §3.4.2, non-transparent framing).
    Newline,
}

/// What MSG carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// The record as JSON.
    #[default]
    Json,
    /// ArcSight Common Event Format.
    Cef,
}

/// Syslog facilities (RFC 5424 §6.2.1), by the names syslog daemons use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Facility {
    Kern,
    User,
    Mail,
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Ntp,
    Audit,
    Alert,
    Clock,
    #[default]
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl Facility {
    /// The facility code (0–23).
    pub fn code(self) -> u8 {
        self as u8
    }
}

fn default_app_name() -> String {
    "aiwarden".to_string()
}

fn default_enterprise_number() -> u32 {
    32473
}

fn default_bom() -> bool {
    true
}

fn default_max_message_bytes() -> usize {
    2048
}

/// RequestConfig with the syslog defaults: no compression, one connection.
fn default_request() -> RequestConfig {
    RequestConfig {
        compression: Compression::None,
        concurrency: 1,
        ..RequestConfig::default()
    }
}

/// `[request]` with the syslog defaults for the keys it leaves out (the HTTP sinks default to
/// gzip and two requests in flight, which syslog cannot use).
fn request_config<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RequestConfig, D::Error> {
    let mut table = serde_json::Value::deserialize(deserializer)?;
    if let Some(map) = table.as_object_mut() {
        map.entry("compression")
            .or_insert_with(|| serde_json::Value::from("none"));
        map.entry("concurrency")
            .or_insert_with(|| serde_json::Value::from(1));
    }
    RequestConfig::deserialize(table).map_err(serde::de::Error::custom)
}

/// Largest UDP payload over IPv4.
const MAX_DATAGRAM: usize = 65_507;
/// What every RFC 5426 receiver must take over IPv4.
const MIN_DATAGRAM: usize = 480;

impl SyslogSinkConfig {
    /// What the sink takes.
    pub fn routing(&self) -> Routing {
        Routing {
            records: self.records,
            min_severity: self.min_severity,
            forward_content: self.forward_content,
        }
    }

    /// The default port of the transport.
    pub fn default_port(&self) -> u16 {
        match self.transport {
            Transport::Tls => 6514,
            Transport::Tcp | Transport::Udp => 514,
        }
    }

    /// Host and port of `address`.
    pub fn host_port(&self) -> Result<(String, u16), String> {
        split_address(&self.address, self.default_port())
    }

    /// Check what serde cannot.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.host_port()
            .map_err(|reason| ("address".into(), reason))?;
        if self.app_name.is_empty() {
            return Err(("app_name".into(), "must not be empty".into()));
        }
        if matches!(&self.hostname, Some(host) if host.is_empty()) {
            return Err(("hostname".into(), "must not be empty when set".into()));
        }
        if self.enterprise_number == 0 {
            return Err((
                "enterprise_number".into(),
                "must be a positive IANA private enterprise number".into(),
            ));
        }
        if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&self.max_message_bytes) {
            return Err((
                "max_message_bytes".into(),
                format!("must be between {MIN_DATAGRAM} and {MAX_DATAGRAM}"),
            ));
        }
        if self.request.compression != Compression::None {
            return Err((
                "request.compression".into(),
                "syslog has no compression: set it to \"none\" or leave it out".into(),
            ));
        }
        if self.request.concurrency != 1 {
            return Err((
                "request.concurrency".into(),
                "syslog keeps one connection so that messages stay in order: set it to 1 or leave it out".into(),
            ));
        }
        // TLS settings without TLS would send in the clear what the user meant to protect.
        if self.transport != Transport::Tls && self.tls != TlsConfig::default() {
            return Err(("tls".into(), "TLS settings need transport = \"tls\"".into()));
        }
        self.batch.validate(None)?;
        self.request.validate()?;
        self.queue.validate()?;
        self.tls.validate()
    }
}

/// Split `host:port`, `[v6]:port`, `host` or a bare IPv6 address; brackets are removed.
pub fn split_address(address: &str, default_port: u16) -> Result<(String, u16), String> {
    let address = address.trim();
    if address.is_empty() {
        return Err("must not be empty".into());
    }
    let port = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|port| *port != 0)
            .ok_or_else(|| format!("`{text}` is not a port number (1-65535)"))
    };
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address opened with `[` needs a closing `]`")?;
        return match after {
            "" => Ok((host.to_string(), default_port)),
            _ => match after.strip_prefix(':') {
                Some(text) => Ok((host.to_string(), port(text)?)),
                None => Err("expected `:port` after `]`".into()),
            },
        };
    }
    match address.matches(':').count() {
        0 => Ok((address.to_string(), default_port)),
        1 => {
            let (host, text) = address.split_once(':').unwrap_or((address, ""));
            if host.is_empty() {
                return Err("the host is missing".into());
            }
            Ok((host.to_string(), port(text)?))
        }
        // Several colons and no brackets: a bare IPv6 address.
        _ if address.parse::<std::net::Ipv6Addr>().is_ok() => {
            Ok((address.to_string(), default_port))
        }
        _ => Err("write an IPv6 address with a port as `[addr]:port`".into()),
    }
}

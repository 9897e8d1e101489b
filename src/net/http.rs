//! The HTTP client of the network sinks, the Anthropic source and `connectors install`: rustls with the OS trust store, optional CA file and
//! client certificate, `User-Agent: aiwarden/<version>`.

use super::retry::RequestConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `User-Agent` every request carries (PROTOCOLS.md, common rules).
pub const USER_AGENT: &str = concat!("aiwarden/", env!("CARGO_PKG_VERSION"));

/// TLS settings: `[sinks.<name>.tls]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Extra CA certificates (PEM) to trust besides the operating system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS; needs `client_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Check the server's certificate (turning this off is for tests only and is logged).
    #[serde(default = "default_verify")]
    pub verify_certificate: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            verify_certificate: true,
        }
    }
}

fn default_verify() -> bool {
    true
}

/// The client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A certificate or key file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate or key is not valid PEM.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The client builder refused the settings.
    #[error("http client: {0}")]
    Build(String),
}

impl TlsConfig {
    /// Check what serde cannot; the error is the key (relative to the sink) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err((
                "tls".into(),
                "client_cert_file and client_key_file go together".into(),
            ));
        }
        Ok(())
    }
}

fn read(path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path).map_err(|source| ClientError::Read {
        path: path.clone(),
        source,
    })
}

/// Check that `url` is an http(s) URL; the error names `key` (relative to the sink).
pub fn validate_url(key: &str, url: &str) -> Result<(), (String, String)> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => Ok(()),
        Ok(_) => Err((key.into(), "must be an http:// or https:// URL".into())),
        Err(error) => Err((key.into(), format!("`{url}` is not a URL: {error}"))),
    }
}

/// Build the client for one sink.
pub fn build_client(
    sink: &str,
    tls: &TlsConfig,
    request: &RequestConfig,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .user_agent(USER_AGENT)
        .timeout(request.timeout)
        .connect_timeout(request.timeout.min(std::time::Duration::from_secs(10)))
        .pool_max_idle_per_host(request.concurrency);
    if let Some(path) = &tls.ca_file {
        let pem = read(path)?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| ClientError::Pem {
                path: path.clone(),
                reason: error.to_string(),
            })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert_file, &tls.client_key_file) {
        let mut pem = read(cert)?;
        pem.push(b'\n');
        pem.extend(read(key)?);
        let identity = reqwest::Identity::from_pem(&pem).map_err(|error| ClientError::Pem {
            path: cert.clone(),
            reason: error.to_string(),
        })?;
        builder = builder.identity(identity);
    }
    if !tls.verify_certificate {
        tracing::warn!(sink, "TLS certificate verification is OFF: anyone on the path can read and alter what this sink sends.");
        builder = builder.danger_accept_invalid_certs(true);
    }
    builder
        .build()
        .map_err(|error| ClientError::Build(error.to_string()))
}

/// An error with its causes ("connection refused" hides two levels down).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

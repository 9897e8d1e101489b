//! TLS for the receivers: a certificate chain and key in PEM files, through rustls.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_rustls::rustls;

/// `[sources.<name>.tls]`: serve HTTPS (and gRPC over TLS) with this certificate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

impl ServerTlsConfig {
    /// A rustls acceptor offering HTTP/2 and HTTP/1.1.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, super::ReceiverError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let tls_error = |what: &str, path: &PathBuf, error: &dyn std::fmt::Display| {
            super::ReceiverError::Tls(format!("{what} {}: {error}", path.display()))
        };
        let certs = CertificateDer::pem_file_iter(&self.cert_file)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_error("certificate file", &self.cert_file, &e))?;
        if certs.is_empty() {
            return Err(tls_error(
                "certificate file",
                &self.cert_file,
                &"no certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| tls_error("key file", &self.key_file, &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| super::ReceiverError::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_error("certificate and key", &self.cert_file, &e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

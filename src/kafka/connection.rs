//! Cluster connection settings shared by every Kafka client: brokers, TLS, SASL, and an escape
//! hatch of raw librdkafka properties.

use super::KafkaError;
use crate::config::Secret;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How to reach a Kafka cluster (self-hosted, Confluent, Amazon MSK, Azure Event Hubs).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConnection {
    /// Bootstrap brokers, `host:port` each (Event Hubs: `<namespace>.servicebus.windows.net:9093`).
    pub brokers: Vec<String>,
    /// TLS to the brokers; off unless this table is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<KafkaTls>,
    /// SASL authentication; none unless this table is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sasl: Option<Sasl>,
    /// Further librdkafka properties, e.g. `{ "socket.keepalive.enable" = "true" }`; they cannot
    /// override the ones aiwarden's guarantees rest on (see the README).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub librdkafka_options: BTreeMap<String, String>,
}

/// TLS to the brokers (librdkafka with OpenSSL).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaTls {
    /// CA certificates (PEM) to trust; the system's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs `client_key_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_file: Option<PathBuf>,
    /// Check the brokers' certificates and host names (off is for tests only and is logged).
    #[serde(default = "default_true")]
    pub verify_certificate: bool,
}

fn default_true() -> bool {
    true
}

/// A SASL mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SaslMechanism {
    /// `PLAIN` (Confluent Cloud API keys; Event Hubs with `$ConnectionString`).
    #[serde(rename = "plain")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// `SCRAM-SHA-512` (Amazon MSK).
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// `OAUTHBEARER` with tokens from an OAuth 2.0 client-credentials grant (Azure Event Hubs
    /// with Entra ID).
    #[serde(rename = "oauthbearer")]
    OAuthBearer,
}

impl SaslMechanism {
    fn librdkafka_name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// SASL settings: `username` and `password` for PLAIN and SCRAM; `token_endpoint`,
/// `client_id`, `client_secret` and `scope` for OAUTHBEARER.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sasl {
    /// `plain`, `scram-sha-256`, `scram-sha-512` or `oauthbearer`.
    pub mechanism: SaslMechanism,
    /// User name (PLAIN, SCRAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (PLAIN, SCRAM): `{ env = "…" }` or `{ file = "…" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// OAuth 2.0 token endpoint, e.g.
    /// `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// OAuth 2.0 client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// OAuth 2.0 client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// OAuth 2.0 scope, e.g. `https://<namespace>.servicebus.windows.net/.default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Properties aiwarden sets for its guarantees; `librdkafka_options` may not change them.
const RESERVED: &[&str] = &[
    "bootstrap.servers",
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "enable.idempotence",
    "acks",
    "request.required.acks",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "group.id",
    "isolation.level",
];

impl KafkaConnection {
    /// Check what serde cannot; the error is the key (relative to the component) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.brokers.is_empty() || self.brokers.iter().any(|b| b.trim().is_empty()) {
            return Err(("brokers".into(), "must list at least one host:port".into()));
        }
        if let Some(key) = self
            .librdkafka_options
            .keys()
            .find(|key| RESERVED.contains(&key.as_str()))
        {
            return Err((
                format!("librdkafka_options.{key}"),
                "is set by aiwarden and cannot be overridden".into(),
            ));
        }
        if let Some(tls) = &self.tls {
            if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
                return Err((
                    "tls.client_key_file".into(),
                    "client_cert_file and client_key_file go together".into(),
                ));
            }
        }
        if let Some(sasl) = &self.sasl {
            match sasl.mechanism {
                SaslMechanism::OAuthBearer => {
                    for (key, present) in [
                        ("token_endpoint", sasl.token_endpoint.is_some()),
                        ("client_id", sasl.client_id.is_some()),
                        ("client_secret", sasl.client_secret.is_some()),
                        ("scope", sasl.scope.is_some()),
                    ] {
                        if !present {
                            return Err((
                                format!("sasl.{key}"),
                                "is required for mechanism = \"oauthbearer\"".into(),
                            ));
                        }
                    }
                }
                _ => {
                    if sasl.username.is_none() || sasl.password.is_none() {
                        return Err((
                            "sasl.username".into(),
                            "username and password are required for plain and scram".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The librdkafka configuration for these settings (secrets resolved now).
    pub fn client_config(&self) -> Result<ClientConfig, KafkaError> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.brokers.join(","));
        let protocol = match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        config.set("security.protocol", protocol);
        if let Some(tls) = &self.tls {
            if let Some(ca) = &tls.ca_file {
                config.set("ssl.ca.location", ca.display().to_string());
            }
            if let (Some(cert), Some(key)) = (&tls.client_cert_file, &tls.client_key_file) {
                config.set("ssl.certificate.location", cert.display().to_string());
                config.set("ssl.key.location", key.display().to_string());
            }
            if !tls.verify_certificate {
                tracing::warn!("Kafka TLS certificate verification is off: for tests only.");
                config.set("enable.ssl.certificate.verification", "false");
                config.set("ssl.endpoint.identification.algorithm", "none");
            }
        }
        if let Some(sasl) = &self.sasl {
            config.set("sasl.mechanism", sasl.mechanism.librdkafka_name());
            if sasl.mechanism != SaslMechanism::OAuthBearer {
                let password = sasl
                    .password
                    .as_ref()
                    .ok_or_else(|| KafkaError::Config("sasl.password is required".into()))?
                    .resolve()
                    .map_err(|error| KafkaError::Config(format!("sasl.password: {error}")))?;
                config.set("sasl.username", sasl.username.clone().unwrap_or_default());
                config.set("sasl.password", password);
            }
        }
        for (key, value) in &self.librdkafka_options {
            config.set(key, value);
        }
        Ok(config)
    }
}

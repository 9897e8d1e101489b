//! The `elastic` sink: ECS documents to Elasticsearch data streams through `_bulk` with `create`
//! actions (PROTOCOLS.md §2). `_id` is the record's id, so a resend after a crash is answered
//! 409 and counted as delivered rather than indexed twice.

mod config;
mod encoder;
mod service;

pub use config::{ElasticAuth, ElasticSinkConfig};
pub use encoder::{
    alert_document, data_stream, ecs_severity, encode, event_document, DocumentSettings,
    ALERTS_DATASET, EVENTS_DATASET,
};
pub use service::{classify, BulkService};

use super::driver::{self, Classified, DriverSettings, Service};
use super::{SinkBatch, SinkContext, SinkError, SinkTask};
use crate::net::http::{build_client, error_chain};
use crate::record::Output;
use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use tokio::sync::mpsc;

struct Elastic {
    service: BulkService,
    documents: DocumentSettings,
}

impl Service for Elastic {
    fn encode(
        &self,
        item: &Output,
        forward_content: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        encode(item, &self.documents, forward_content, out)
    }

    fn evidence_shape(&self) -> Option<crate::evidence::encoded::EncodedShape> {
        Some(crate::evidence::encoded::EncodedShape::BulkPair {
            index: data_stream(EVENTS_DATASET, &self.documents.namespace),
        })
    }

    async fn send(&self, body: Bytes, gzip: bool, count: usize) -> Classified {
        self.service.send(body, gzip, count).await
    }
}

pub(crate) fn authorization(auth: &ElasticAuth) -> Result<HeaderValue, SinkError> {
    let value = match auth {
        ElasticAuth::ApiKey { api_key } => {
            let key = api_key
                .resolve()
                .map_err(|error| SinkError::Config(format!("auth.api_key: {error}")))?;
            format!("ApiKey {key}")
        }
        ElasticAuth::Basic { user, password } => {
            let password = password
                .resolve()
                .map_err(|error| SinkError::Config(format!("auth.password: {error}")))?;
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {encoded}")
        }
    };
    let mut header = HeaderValue::from_str(&value).map_err(|_| {
        SinkError::Config("auth: contains characters not allowed in a header".into())
    })?;
    header.set_sensitive(true);
    Ok(header)
}

/// The `_bulk` service for `config`, and the cluster's base URL.
fn service(config: &ElasticSinkConfig, sink: &str) -> Result<(BulkService, String), SinkError> {
    let client = build_client(sink, &config.tls, &config.request)
        .map_err(|error| SinkError::Config(error.to_string()))?;
    let base = config.endpoint.trim_end_matches('/').to_string();
    let bulk_url = reqwest::Url::parse(&format!("{base}/_bulk"))
        .map_err(|error| SinkError::Config(format!("endpoint: {error}")))?;
    let service = BulkService {
        sink: sink.to_string(),
        client,
        bulk_url,
        authorization: authorization(&config.auth)?,
    };
    Ok((service, base))
}

/// `check-config --connect`: the credentials against the cluster, then the index templates.
pub async fn check(config: &ElasticSinkConfig, sink: &str) -> Result<String, String> {
    let (service, base) = service(config, sink).map_err(|error| error.to_string())?;
    let response = service
        .client
        .get(&base)
        .header(
            reqwest::header::AUTHORIZATION,
            service.authorization.clone(),
        )
        .send()
        .await
        .map_err(|error| format!("cannot reach Elasticsearch: {}", error_chain(&error)))?;
    match response.status().as_u16() {
        // 403: the key may lack cluster monitor rights and still write documents.
        200 | 403 => {}
        401 => return Err(format!("authentication failed: check sinks.{sink}.auth")),
        other => return Err(format!("Elasticsearch answered HTTP {other}")),
    }
    match service.check_templates(&base).await {
        Ok(()) => Ok("reachable; credentials accepted; index templates installed".into()),
        Err(warning) => Ok(format!(
            "reachable; credentials accepted; warning: {warning}"
        )),
    }
}

/// Build the sink: credentials, client, a template check, and the driver.
pub fn build(
    config: ElasticSinkConfig,
    context: SinkContext,
    batches: mpsc::Receiver<SinkBatch>,
) -> Result<SinkTask, SinkError> {
    let (service, base) = service(&config, &context.name)?;
    let documents = DocumentSettings {
        namespace: config.namespace.clone(),
        host: context.agent.host.clone(),
        deployment: context.deployment.to_string(),
    };
    let settings = DriverSettings::new(
        config.routing(),
        config.batch,
        config.request,
        config.queue,
        &context.name,
    )
    .with_real_identity(config.real_identity);
    let sink = Elastic { service, documents };
    Ok(Box::pin(async move {
        match sink.service.check_templates(&base).await {
            Ok(()) => {
                tracing::info!(sink = %context.name, "Elasticsearch reachable; aiwarden index templates installed.")
            }
            Err(problem) => tracing::warn!(sink = %context.name, %problem, "Elasticsearch check."),
        }
        driver::run(sink, settings, context, batches).await
    }))
}

#[cfg(test)]
mod tests;

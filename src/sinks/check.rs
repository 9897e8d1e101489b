//! `check-config --connect`: can each sink reach its destination with its credentials?
//!
//! Each check sends nothing that would be indexed: a health endpoint, a token request, a
//! connection that is closed at once.

use super::util::http::{build_client, error_chain};
use super::{elastic, sentinel, splunk_hec, syslog, SinkConfig};
use reqwest::header::{HeaderValue, AUTHORIZATION};

/// Check one sink; `Ok` says what was confirmed, `Err` what is wrong.
pub async fn check(name: &str, config: &SinkConfig) -> Result<String, String> {
    match config {
        SinkConfig::Stdout(_) => Ok("standard output".into()),
        SinkConfig::File(file) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file.path)
            .map(|_| format!("{} is writable", file.path.display()))
            .map_err(|error| format!("{}: {error}", file.path.display())),
        SinkConfig::SplunkHec(hec) => check_hec(name, hec).await,
        SinkConfig::Elastic(es) => check_elastic(name, es).await,
        SinkConfig::Sentinel(sentinel) => check_sentinel(name, sentinel).await,
        SinkConfig::Syslog(syslog) => syslog::check(syslog, name).await,
    }
}

fn header(value: String) -> Result<HeaderValue, String> {
    let mut header = HeaderValue::from_str(&value)
        .map_err(|_| "credential not usable in a header".to_string())?;
    header.set_sensitive(true);
    Ok(header)
}

async fn check_hec(name: &str, config: &splunk_hec::SplunkHecSinkConfig) -> Result<String, String> {
    let token = config
        .token
        .resolve()
        .map_err(|error| format!("token: {error}"))?;
    let client =
        build_client(name, &config.tls, &config.request).map_err(|error| error.to_string())?;
    let base = config.endpoint.trim_end_matches('/');
    let url = |path: &str| {
        reqwest::Url::parse(&format!("{base}{path}")).map_err(|error| format!("endpoint: {error}"))
    };
    let service = splunk_hec::HecService {
        sink: name.to_string(),
        client,
        event_url: url("/services/collector/event")?,
        ack_url: url("/services/collector/ack")?,
        authorization: header(format!("Splunk {token}"))?,
        acknowledgement: None,
    };
    service.health(url("/services/collector/health")?).await
}

async fn check_elastic(name: &str, config: &elastic::ElasticSinkConfig) -> Result<String, String> {
    let client =
        build_client(name, &config.tls, &config.request).map_err(|error| error.to_string())?;
    let authorization = match &config.auth {
        elastic::ElasticAuth::ApiKey { api_key } => {
            format!(
                "ApiKey {}",
                api_key
                    .resolve()
                    .map_err(|error| format!("auth.api_key: {error}"))?
            )
        }
        elastic::ElasticAuth::Basic { user, password } => {
            use base64::Engine as _;
            let password = password
                .resolve()
                .map_err(|error| format!("auth.password: {error}"))?;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        }
    };
    let base = config.endpoint.trim_end_matches('/');
    let response = client
        .get(base)
        .header(AUTHORIZATION, header(authorization.clone())?)
        .send()
        .await
        .map_err(|error| format!("cannot reach Elasticsearch: {}", error_chain(&error)))?;
    match response.status().as_u16() {
        200 => {}
        401 => return Err(format!("authentication failed: check sinks.{name}.auth")),
        403 => {} // The key may lack cluster monitor rights and still write documents.
        other => return Err(format!("Elasticsearch answered HTTP {other}")),
    }
    let service = elastic::BulkService {
        sink: name.to_string(),
        client,
        bulk_url: reqwest::Url::parse(&format!("{base}/_bulk"))
            .map_err(|error| error.to_string())?,
        authorization: header(authorization)?,
    };
    match service.check_templates(base).await {
        Ok(()) => Ok("reachable; credentials accepted; index templates installed".into()),
        Err(warning) => Ok(format!(
            "reachable; credentials accepted; warning: {warning}"
        )),
    }
}

async fn check_sentinel(
    name: &str,
    config: &sentinel::SentinelSinkConfig,
) -> Result<String, String> {
    let client =
        build_client(name, &config.tls, &config.request).map_err(|error| error.to_string())?;
    let token_url = reqwest::Url::parse(&format!(
        "{}/{}/oauth2/v2.0/token",
        config.authority_host.trim_end_matches('/'),
        config.tenant_id
    ))
    .map_err(|error| format!("authority_host: {error}"))?;
    let secret = config
        .client_secret
        .resolve()
        .map_err(|error| format!("client_secret: {error}"))?;
    let tokens = sentinel::TokenCache::new(
        sentinel::TokenSource {
            token_url,
            client_id: config.client_id.clone(),
            client_secret: secret,
            scope: config.scope.clone(),
        },
        client,
    );
    tokens.check().await?;
    Ok(format!(
        "token issued for client {}; DCR {} is checked on the first batch (403 names a missing role)",
        config.client_id, config.dcr_immutable_id
    ))
}

//! `aiwarden connectors install elastic`: put the Elastic content pack in place with the
//! credentials and TLS settings of the configured `elastic` sink.

use super::Failure;
use crate::config::Config;
use crate::connectors::elastic::{self, ElasticTarget, InstallOptions};
use crate::net::http::build_client;
use crate::sinks::SinkConfig;
use anyhow::{anyhow, Context};
use std::path::Path;

/// Install the Elastic templates (and, when asked, the Kibana saved objects and rules).
pub fn install_elastic(
    config_path: &Path,
    sink: Option<&str>,
    kibana: Option<String>,
    options: InstallOptions,
) -> Result<(), Failure> {
    let config = Config::load(config_path).map_err(Failure::config)?;
    let elastic_sinks: Vec<(&String, &crate::sinks::elastic::ElasticSinkConfig)> = config
        .sinks
        .iter()
        .filter_map(|(name, sink)| match sink {
            SinkConfig::Elastic(elastic) => Some((name, elastic.as_ref())),
            _ => None,
        })
        .collect();
    let (name, sink_config) = match (sink, elastic_sinks.as_slice()) {
        (Some(wanted), all) => all
            .iter()
            .find(|(name, _)| name.as_str() == wanted)
            .copied()
            .ok_or_else(|| anyhow!("no sink `{wanted}` of type elastic in the configuration")),
        (None, [only]) => Ok(*only),
        (None, []) => Err(anyhow!("the configuration has no sink of type elastic")),
        (None, _) => Err(anyhow!(
            "the configuration has several elastic sinks: name one with --sink"
        )),
    }
    .map_err(Failure::config)?;
    let client = build_client(name, &sink_config.tls, &sink_config.request)
        .with_context(|| format!("sinks.{name}: building the HTTP client"))
        .map_err(Failure::config)?;
    let authorization = elastic::authorization(&sink_config.auth)
        .with_context(|| format!("sinks.{name}.auth"))
        .map_err(Failure::config)?;
    let target = ElasticTarget {
        client,
        elasticsearch: sink_config.endpoint.clone(),
        kibana,
        authorization,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::runtime)?;
    let done = runtime
        .block_on(elastic::install(&target, options))
        .map_err(|error| match error {
            elastic::InstallError::NoKibana => Failure::config(error),
            other => {
                Failure::runtime(anyhow!(other).context(format!("installing into sinks.{name}")))
            }
        })?;
    for step in done {
        println!("installed {step}");
    }
    Ok(())
}

//! `aiwarden run` and `aiwarden check-config`.

use super::Failure;
use crate::config::Config;
use crate::pipeline::{rules, Pipeline, Shutdown};
use crate::telemetry::init_logging;
use anyhow::Context;
use std::path::Path;

/// Load the configuration and everything it points to, exactly as `run` does.
fn load(path: &Path) -> Result<(Config, usize), Failure> {
    let config = Config::load(path).map_err(Failure::config)?;
    let rule_set = rules::load_rules(config.detect.rules_dir.as_deref())
        .with_context(|| format!("{}: key `detect.rules_dir`", path.display()))
        .map_err(Failure::config)?;
    rules::load_entitlements(config.detect.entitlements_file.as_deref())
        .with_context(|| format!("{}: key `detect.entitlements_file`", path.display()))
        .map_err(Failure::config)?;
    rules::load_calendars(
        config.detect.calendars_file.as_deref(),
        config.detect.rules_dir.as_deref(),
    )
    .with_context(|| format!("{}: key `detect.calendars_file`", path.display()))
    .map_err(Failure::config)?;
    Ok((config, rule_set.len()))
}

/// Validate and print the effective configuration.
pub fn check_config(path: &Path) -> Result<(), Failure> {
    let (config, rule_count) = load(path)?;
    print!("{}", config.to_masked_toml());
    println!(
        "# configuration OK: {} ({rule_count} rules enabled)",
        path.display()
    );
    Ok(())
}

/// Run the agent until stopped.
pub fn run(path: &Path) -> Result<(), Failure> {
    let (config, _) = load(path)?;
    init_logging(&config.agent.log_level, config.agent.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::runtime)?;
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        spawn_signal_handler(shutdown.clone(), config.agent.shutdown_grace);
        let sources = config.sources.len();
        let pipeline = Pipeline::new(config);
        let metrics = pipeline.metrics();
        tracing::info!(
            sources,
            version = env!("CARGO_PKG_VERSION"),
            "aiwarden started."
        );
        pipeline
            .run(shutdown)
            .await
            .context("running the pipeline")
            .map_err(Failure::runtime)?;
        tracing::info!(
            records = metrics.total("records_decoded_total"),
            alerts = metrics.total("alerts_total"),
            dead_lettered = metrics.total("records_dead_lettered_total"),
            "aiwarden stopped."
        );
        Ok(())
    })
}

/// First SIGTERM/SIGINT: stop intake and drain within the grace period. Second: abort now.
fn spawn_signal_handler(shutdown: Shutdown, grace: std::time::Duration) {
    tokio::spawn(async move {
        let mut signals = 0;
        loop {
            if wait_for_signal().await.is_err() {
                tracing::warn!("Cannot listen for signals; stop the agent with SIGKILL.");
                return;
            }
            signals += 1;
            if signals == 1 {
                tracing::info!(
                    grace_ms = grace.as_millis() as u64,
                    "Stopping: draining in-flight batches."
                );
                shutdown.begin(grace);
            } else {
                tracing::warn!("Second stop signal: aborting without waiting.");
                shutdown.abort.cancel();
                return;
            }
        }
    });
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => Ok(()),
        _ = interrupt.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

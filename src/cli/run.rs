//! `aiwarden run` and `aiwarden check-config`.

use super::Failure;
use crate::config::Config;
use crate::pipeline::{rules, Pipeline, Shutdown};
use crate::sinks::SinkConfig;
use crate::telemetry::{init_logging, server, systemd, Metrics};
use anyhow::Context;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Load the configuration and everything it points to, exactly as `run` does.
fn load(path: &Path) -> Result<(Config, usize), Failure> {
    let config = Config::load(path).map_err(Failure::config)?;
    let rule_set = rules::load_rules_with_overrides(
        config.detect.rules_dir.as_deref(),
        config.detect.overrides_dir.as_deref(),
    )
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
pub fn check_config(path: &Path, quiet: bool, connect: bool) -> Result<(), Failure> {
    let (config, rule_count) = load(path)?;
    if connect {
        check_connections(&config)?;
    }
    if quiet {
        return Ok(());
    }
    // On stderr, so that stdout stays the effective configuration as TOML.
    for warning in start_warnings(&config) {
        eprintln!("warning: {warning}");
    }
    print!("{}", config.to_masked_toml());
    println!(
        "# configuration OK: {} ({rule_count} rules enabled)",
        path.display()
    );
    Ok(())
}

/// What `run` warns about at start for a configuration it accepts, so that `check-config` can
/// say it before the agent is deployed.
fn start_warnings(config: &Config) -> Vec<String> {
    let mut warnings = Vec::new();
    if config.evidence.enabled {
        for (name, sink) in config.effective_sinks() {
            let SinkConfig::Syslog(syslog) = &sink else {
                continue;
            };
            if let Some(reason) = crate::sinks::syslog::no_chain_reason(syslog) {
                warnings.push(format!(
                    "sink {name}: [evidence] is on, but this syslog sink carries no evidence \
                     chain ({reason}): its records are sent unstamped and `aiwarden verify` \
                     cannot prove them; use transport = \"tcp\" or \"tls\" with format = \"json\""
                ));
            }
        }
    }
    warnings
}

/// Try every sink's destination; print one line per sink; fail when one cannot be reached.
fn check_connections(config: &Config) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(Failure::runtime)?;
    let mut failed = Vec::new();
    for (name, sink) in config.effective_sinks() {
        match runtime.block_on(crate::sinks::check::check(&name, &sink)) {
            Ok(what) => eprintln!("sink {name}: OK: {what}"),
            Err(problem) => {
                eprintln!("sink {name}: FAILED: {problem}");
                failed.push(name);
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::runtime(anyhow::anyhow!(
            "cannot reach sink(s): {}",
            failed.join(", ")
        )))
    }
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
        let telemetry = config.telemetry.clone();
        let detect_config = config.detect.clone();
        let pipeline = Pipeline::new(config);
        let metrics = pipeline.metrics();
        spawn_reload_handler(path.to_path_buf(), pipeline.reload_handle());
        let stop_telemetry = CancellationToken::new();
        if telemetry.enabled {
            let bound = server::serve(telemetry.listen, Arc::clone(&metrics), stop_telemetry.clone())
                .await
                .with_context(|| format!("listening on telemetry.listen = {}", telemetry.listen))
                .map_err(Failure::runtime)?;
            tracing::info!(address = %bound, "Metrics on http://{bound}/metrics, health on /health.");
        }
        spawn_summary(Arc::clone(&metrics), telemetry.summary_interval, stop_telemetry.clone());
        crate::pipeline::reload::spawn(detect_config, pipeline.reload_handle(), stop_telemetry.clone());
        tracing::info!(sources, version = env!("CARGO_PKG_VERSION"), "aiwarden started.");
        systemd::notify("READY=1\nSTATUS=running");
        spawn_watchdog(stop_telemetry.clone());
        let stopping = shutdown.intake.clone();
        tokio::spawn(async move {
            stopping.cancelled().await;
            systemd::notify("STOPPING=1\nSTATUS=draining in-flight batches");
        });
        let outcome = pipeline.run_for_role(shutdown).await;
        stop_telemetry.cancel();
        outcome.context("running the pipeline").map_err(Failure::runtime)?;
        tracing::info!(
            records = metrics.total("records_decoded_total"),
            alerts = metrics.total("alerts_total"),
            dead_lettered = metrics.total("records_dead_lettered_total"),
            "aiwarden stopped."
        );
        Ok(())
    })
}

/// Ping systemd's watchdog at half its interval while the runtime is responsive.
fn spawn_watchdog(stop: CancellationToken) {
    let Some(interval) = systemd::watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval / 2);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => { systemd::notify("WATCHDOG=1"); }
            }
        }
    });
}

/// Log a one-line summary of the counters every `interval` (what changed since the last one).
fn spawn_summary(metrics: Arc<Metrics>, interval: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        let names = [
            "lines_read_total",
            "records_decoded_total",
            "records_dead_lettered_total",
            "alerts_total",
            "sink_records_sent_total",
            "sink_records_dead_lettered_total",
            "sink_errors_total",
        ];
        let mut previous = [0u64; 7];
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let now = names.map(|name| metrics.total(name));
            let delta: Vec<u64> = now
                .iter()
                .zip(previous)
                .map(|(n, p)| n.saturating_sub(p))
                .collect();
            tracing::info!(
                interval_s = interval.as_secs(),
                lines_read = delta[0],
                records = delta[1],
                dead_lettered = delta[2],
                alerts = delta[3],
                sent = delta[4],
                rejected_by_siem = delta[5],
                delivery_errors = delta[6],
                "Summary."
            );
            previous = now;
        }
    });
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

/// SIGHUP (`systemctl reload`): reload rules, entitlements and calendars from the configuration
/// on disk; unchanged rules keep their window state, a broken file keeps the running rules.
/// Sources and sinks change only on restart.
fn spawn_reload_handler(path: std::path::PathBuf, handle: crate::pipeline::ReloadHandle) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangup.recv().await.is_some() {
            let config = match Config::load(&path) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(config = %path.display(), %error, "SIGHUP: the configuration on disk is invalid; the running rules stay in force.");
                    continue;
                }
            };
            match handle.reload(&config.detect).await {
                Ok(rules) => {
                    tracing::info!(config = %path.display(), rules, "SIGHUP: rules reloaded (sources and sinks change on restart).")
                }
                Err(error) => {
                    tracing::error!(config = %path.display(), %error, "SIGHUP: the rules do not load; the running rules stay in force.")
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (path, handle);
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

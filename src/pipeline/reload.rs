//! Reload rules when their files change: a watch on the rules, overrides, entitlements and
//! calendars locations, debounced, feeding the same [`ReloadHandle`] as SIGHUP. The handle
//! reaches the agent's one engine, or in the detector tier every partition's engine
//! (`partitioned/reloads.rs`).

use super::ReloadHandle;
use crate::config::DetectConfig;
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Quiet time after the last change before reloading: editors write a file in several steps.
const DEBOUNCE: Duration = Duration::from_millis(500);

/// The directories worth watching for this configuration (the built-in pack has none).
fn watched(config: &DetectConfig) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [config.rules_dir.clone(), config.overrides_dir.clone()]
        .into_iter()
        .flatten()
        .collect();
    for file in [&config.entitlements_file, &config.calendars_file]
        .into_iter()
        .flatten()
    {
        if let Some(parent) = file.parent() {
            paths.push(parent.to_path_buf());
        }
    }
    paths.retain(|path| path.is_dir());
    paths.sort();
    paths.dedup();
    paths
}

/// Watch until `stop`; a change reloads, a broken file keeps the running rules (and says so).
pub fn spawn(config: DetectConfig, handle: ReloadHandle, stop: CancellationToken) {
    let paths = watched(&config);
    if paths.is_empty() {
        return;
    }
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !event.kind.is_access()) {
            let _ = sender.send(());
        }
    });
    let mut watcher = match watcher {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "Cannot watch the rule files; reload with SIGHUP instead.");
            return;
        }
    };
    for path in &paths {
        if let Err(error) = watcher.watch(path, RecursiveMode::NonRecursive) {
            tracing::warn!(path = %path.display(), %error, "Cannot watch a rules directory; reload with SIGHUP instead.");
        }
    }
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                change = changes.recv() => if change.is_none() { return },
            }
            // Let a burst of writes settle.
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(DEBOUNCE) => break,
                    more = changes.recv() => if more.is_none() { return },
                }
            }
            match handle.reload(&config).await {
                Ok(rules) => tracing::info!(rules, "Rule files changed; rules reloaded."),
                Err(error) => {
                    tracing::error!(%error, "Rule files changed but do not load; the running rules stay in force.")
                }
            }
        }
    });
}

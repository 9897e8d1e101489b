//! Finding the files to tail (glob patterns) and learning promptly that they changed (`notify`).
//!
//! Notifications only wake the tail loop; what happened is always re-derived from a glob scan
//! and `fstat`, so a lost or coalesced event costs at most one poll interval, never data.

use super::super::SourceError;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

/// Why the tail loop is woken before its poll interval is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something changed in a watched directory.
    FileSystem,
    /// The agent is stopping.
    Shutdown,
}

/// The include and exclude patterns of a source.
#[derive(Debug)]
pub(crate) struct Globs {
    include: Vec<String>,
    exclude: Vec<glob::Pattern>,
}

impl Globs {
    /// Compile the patterns (already validated with the configuration, checked again here).
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Self, SourceError> {
        let compile = |pattern: &String| {
            glob::Pattern::new(pattern)
                .map_err(|error| SourceError::Other(format!("invalid glob `{pattern}`: {error}")))
        };
        for pattern in include {
            compile(pattern)?;
        }
        let compiled = exclude.iter().map(compile).collect::<Result<Vec<_>, _>>()?;
        Ok(Globs {
            include: include.to_vec(),
            exclude: compiled,
        })
    }

    /// The paths matching an include pattern and no exclude pattern, sorted and deduplicated.
    pub(crate) fn scan(&self) -> BTreeSet<PathBuf> {
        let mut paths = BTreeSet::new();
        for pattern in &self.include {
            let Ok(entries) = glob::glob(pattern) else {
                continue;
            };
            for entry in entries {
                match entry {
                    Ok(path) => {
                        if !self.exclude.iter().any(|p| p.matches_path(&path)) {
                            paths.insert(path);
                        }
                    }
                    Err(error) => {
                        tracing::debug!(path = %error.path().display(), error = %error.error(), "Glob skipped an unreadable path.");
                    }
                }
            }
        }
        paths
    }

    /// The directories to watch: each pattern's longest directory prefix without wildcards.
    pub(crate) fn watch_dirs(&self) -> BTreeSet<PathBuf> {
        self.include.iter().map(|p| literal_dir(p)).collect()
    }
}

/// The directory part of a pattern before its first wildcard component.
fn literal_dir(pattern: &str) -> PathBuf {
    let path = Path::new(pattern);
    let mut literal = PathBuf::new();
    let components: Vec<Component<'_>> = path.components().collect();
    for (index, component) in components.iter().enumerate() {
        let text = component.as_os_str().to_string_lossy();
        let is_last = index + 1 == components.len();
        if is_last || text.contains(['*', '?', '[']) {
            break;
        }
        literal.push(component.as_os_str());
    }
    if literal.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        literal
    }
}

/// Non-recursive `notify` watches on the pattern directories, retried until they succeed.
pub(crate) struct DirWatcher {
    watcher: Option<RecommendedWatcher>,
    watched: HashSet<PathBuf>,
    /// Directories whose watch failed and was logged, so it is logged once.
    failed: HashSet<PathBuf>,
}

impl DirWatcher {
    /// A watcher that sends [`Wake::FileSystem`]; without one, the source polls only.
    pub(crate) fn new(wake: mpsc::Sender<Wake>) -> Self {
        let handler = move |result: notify::Result<Event>| {
            let relevant = match result {
                Ok(event) => is_relevant(&event.kind),
                // A watcher error (e.g. queue overflow) means events were lost: look now.
                Err(_) => true,
            };
            if relevant {
                let _ = wake.send(Wake::FileSystem);
            }
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => Some(watcher),
            Err(error) => {
                tracing::warn!(%error, "File-system notifications unavailable; polling only.");
                None
            }
        };
        DirWatcher {
            watcher,
            watched: HashSet::new(),
            failed: HashSet::new(),
        }
    }

    /// Watch the directories not watched yet; forget those that disappeared, to re-watch later.
    pub(crate) fn ensure(&mut self, dirs: &BTreeSet<PathBuf>) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        let gone: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|dir| !dir.is_dir())
            .cloned()
            .collect();
        for dir in gone {
            let _ = watcher.unwatch(&dir);
            self.watched.remove(&dir);
        }
        for dir in dirs {
            if self.watched.contains(dir) {
                continue;
            }
            match watcher.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "Watching directory.");
                    self.failed.remove(dir);
                    self.watched.insert(dir.clone());
                }
                Err(error) => {
                    if self.failed.insert(dir.clone()) {
                        tracing::warn!(dir = %dir.display(), %error, "Cannot watch directory; polling it until it can be watched.");
                    }
                }
            }
        }
    }
}

/// Our own opens and reads produce access events: ignoring them avoids waking ourselves.
fn is_relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_dir_stops_at_the_first_wildcard() {
        assert_eq!(literal_dir("/var/log/*.log"), PathBuf::from("/var/log"));
        assert_eq!(literal_dir("/var/log/app.log"), PathBuf::from("/var/log"));
        assert_eq!(literal_dir("/var/*/x/*.log"), PathBuf::from("/var"));
        assert_eq!(literal_dir("*.log"), PathBuf::from("."));
    }
}

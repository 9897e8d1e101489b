//! Persisted read positions: `<state_dir>/checkpoints/<source>.json`.
//!
//! The file maps a file identity (see [`super::identity`]) to the offset just past the last line
//! whose batch was acknowledged:
//!
//! ```json
//! {"version":1,"files":{"2049:1234:9f86d081884c7d65":{"path":"/var/log/a.log","offset":4096,"updated_at":"2024-05-01T12:00:00Z"}}}
//! ```
//!
//! Writes go to a temporary file that is renamed over the checkpoint, so a reader (or a restart
//! after `kill -9`) sees either the old or the new content, never a torn one. The temporary file
//! and the directory are fsynced only on [`CheckpointStore::persist`] with `sync` (periodically
//! and at shutdown): a process crash loses nothing that was renamed, a power loss may roll back
//! to the last synced state, which only re-reads lines, never skips them.

use super::super::state_file::{self, FORMAT_VERSION};
use super::super::SourceError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Entries for identities not seen for this long are dropped.
const PRUNE_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// A live identity's `updated_at` is refreshed when older than this, so it is never pruned.
const REFRESH_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The on-disk document.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointFile {
    version: u32,
    files: BTreeMap<String, Entry>,
}

/// The committed position of one file identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// The path the file had when last committed (informational: identity is the key).
    pub(crate) path: PathBuf,
    /// Offset just past the last acknowledged line.
    pub(crate) offset: u64,
    /// When the entry was last committed or its file last seen.
    pub(crate) updated_at: DateTime<Utc>,
}

/// The checkpoints of one source, in memory, with the file they are persisted to.
#[derive(Debug)]
pub(crate) struct CheckpointStore {
    path: PathBuf,
    files: BTreeMap<String, Entry>,
    /// Changed since the last write.
    dirty: bool,
    /// Written since the last fsync.
    unsynced: bool,
}

impl CheckpointStore {
    /// Load the checkpoints of `source`; a missing file is empty, an unusable one is an error.
    pub(crate) fn load(state_dir: &Path, source: &str) -> Result<Self, SourceError> {
        let path = state_file::path_for(state_dir, source)?;
        let files = state_file::read_json(
            &path,
            "checkpoint",
            "removing it re-reads files per `start_at`",
            |document: &CheckpointFile| document.version,
        )?
        .map(|document| document.files)
        .unwrap_or_default();
        tracing::debug!(path = %path.display(), entries = files.len(), "Loaded file checkpoints.");
        Ok(CheckpointStore {
            path,
            files,
            dirty: false,
            unsynced: false,
        })
    }

    /// Where the checkpoints are persisted.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The committed position of an identity.
    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.files.get(key)
    }

    /// Commit a position for an identity.
    pub(crate) fn set(&mut self, key: &str, path: &Path, offset: u64) {
        let entry = Entry {
            path: path.to_path_buf(),
            offset,
            updated_at: Utc::now(),
        };
        self.files.insert(key.to_string(), entry);
        self.dirty = true;
    }

    /// Note that an identity is still being tailed, so pruning leaves it alone.
    pub(crate) fn refresh(&mut self, key: &str, now: DateTime<Utc>) {
        if let Some(entry) = self.files.get_mut(key) {
            if now - entry.updated_at > REFRESH_AFTER {
                entry.updated_at = now;
                self.dirty = true;
            }
        }
    }

    /// Drop entries not updated for a long while, except those of `live` identities.
    pub(crate) fn prune(&mut self, now: DateTime<Utc>, live: &HashSet<String>) {
        let before = self.files.len();
        self.files
            .retain(|key, entry| live.contains(key) || now - entry.updated_at <= PRUNE_AFTER);
        let pruned = before - self.files.len();
        if pruned > 0 {
            tracing::info!(path = %self.path.display(), pruned, "Pruned stale file checkpoints.");
            self.dirty = true;
        }
    }

    /// Whether there is anything to write (or to fsync, with `sync`).
    pub(crate) fn needs_persist(&self, sync: bool) -> bool {
        self.dirty || (sync && self.unsynced)
    }

    /// Write the checkpoints atomically; with `sync`, also make them durable.
    pub(crate) fn persist(&mut self, sync: bool) -> Result<(), SourceError> {
        if !self.needs_persist(sync) {
            return Ok(());
        }
        let document = CheckpointFile {
            version: FORMAT_VERSION,
            files: self.files.clone(),
        };
        state_file::write_json(&self.path, &document, "checkpoint", sync)?;
        self.dirty = false;
        self.unsynced = !sync;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_prunes() -> Result<(), SourceError> {
        let dir = tempfile::tempdir().map_err(|source| SourceError::Io {
            context: "tempdir".into(),
            source,
        })?;
        let mut store = CheckpointStore::load(dir.path(), "audit/logs")?;
        assert!(store.path().ends_with("checkpoints/audit_logs.json"));
        store.set("1:2:ab", Path::new("/a.log"), 42);
        store.set("1:3:cd", Path::new("/b.log"), 7);
        if let Some(entry) = store.files.get_mut("1:3:cd") {
            entry.updated_at = Utc::now() - chrono::TimeDelta::days(8);
        }
        store.persist(true)?;
        let mut reloaded = CheckpointStore::load(dir.path(), "audit/logs")?;
        assert_eq!(reloaded.get("1:2:ab").map(|e| e.offset), Some(42));
        reloaded.prune(Utc::now(), &HashSet::new());
        assert!(reloaded.get("1:3:cd").is_none(), "stale entry pruned");
        assert!(reloaded.get("1:2:ab").is_some());
        Ok(())
    }

    #[test]
    fn rejects_an_unknown_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_file::path_for(dir.path(), "a").unwrap();
        std::fs::write(&path, br#"{"version":2,"files":{}}"#).unwrap();
        let result = CheckpointStore::load(dir.path(), "a");
        assert!(matches!(result, Err(SourceError::Checkpoint { .. })));
    }
}

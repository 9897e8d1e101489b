//! The persisted position of the `anthropic` source: `<state_dir>/checkpoints/<source>.json`.
//!
//! ```json
//! {"version":1,"activities":{"start_from":"2026-11-23T09:00:00Z","last_id":"activity_01…",
//!  "last_created_at":"2026-11-23T09:14:03Z"},"reports":{"messages":"2026-11-23T08:00:00Z"}}
//! ```
//!
//! `last_id` is the newest activity whose page was delivered: the next poll asks for what came
//! after it (`before_id`). `start_from` is the first-start window, fixed when the source first
//! runs so a restart before the first delivery does not move "now" forward and skip what
//! happened in between. `reports` maps a report to the end of the last bucket delivered.
//! Every commit is written to a temporary file, fsynced and renamed (commits are one per page
//! or report poll, so the fsync is cheap), so a crash leaves the old or the new cursor, never a
//! torn one.

use super::super::state_file::{self, FORMAT_VERSION};
use super::super::SourceError;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The on-disk document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Cursor {
    version: u32,
    /// Position in the activity feed.
    #[serde(default)]
    pub(crate) activities: ActivityCursor,
    /// Report name to the end of the last delivered bucket.
    #[serde(default)]
    pub(crate) reports: BTreeMap<String, DateTime<Utc>>,
}

/// Position in the activity feed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActivityCursor {
    /// The first-start window: activities from this time on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_from: Option<DateTime<Utc>>,
    /// The newest delivered activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_id: Option<String>,
    /// Its `created_at` (informational, for operators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_created_at: Option<DateTime<Utc>>,
}

/// The cursor of one source and the file it lives in.
#[derive(Debug)]
pub(crate) struct CursorStore {
    path: PathBuf,
    /// The committed cursor.
    pub(crate) cursor: Cursor,
}

impl CursorStore {
    /// Load the cursor of `source`; a missing file is a first start, an unusable one an error.
    pub(crate) fn load(state_dir: &Path, source: &str) -> Result<CursorStore, SourceError> {
        let path = state_file::path_for(state_dir, source)?;
        let cursor = state_file::read_json(
            &path,
            "cursor",
            "removing it starts again from `start_at`",
            |cursor: &Cursor| cursor.version,
        )?
        .unwrap_or(Cursor {
            version: FORMAT_VERSION,
            ..Cursor::default()
        });
        Ok(CursorStore { path, cursor })
    }

    /// Where the cursor is persisted.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Write the cursor durably (temporary file, fsync, rename, fsync of the directory).
    pub(crate) fn persist(&mut self) -> Result<(), SourceError> {
        self.cursor.version = FORMAT_VERSION;
        state_file::write_json(&self.path, &self.cursor, "cursor", true)?;
        Ok(())
    }
}

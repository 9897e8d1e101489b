//! A source's persisted position (file checkpoints, the Anthropic cursor) as a JSON document,
//! replaced atomically: a crash leaves the old document or the new one, never half of either.

use super::SourceError;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Write `document` to `path` through a temporary file and a rename; with `sync`, fsync the
/// file and then the directory, so the new position also survives a power cut. `what` names
/// the document in errors ("checkpoint", "cursor").
pub(crate) fn write_json(
    path: &Path,
    document: &impl serde::Serialize,
    what: &str,
    sync: bool,
) -> Result<(), SourceError> {
    let io_error = |context: &str, source: io::Error| SourceError::Io {
        context: format!("{context} {what} {}", path.display()),
        source,
    };
    let mut bytes = serde_json::to_vec_pretty(document)
        .map_err(|error| SourceError::Other(format!("serialising the {what}: {error}")))?;
    bytes.push(b'\n');
    let temporary = path.with_extension("json.tmp");
    let mut file = File::create(&temporary).map_err(|e| io_error("creating temporary", e))?;
    file.write_all(&bytes)
        .map_err(|e| io_error("writing temporary", e))?;
    if sync {
        file.sync_all()
            .map_err(|e| io_error("syncing temporary", e))?;
    }
    drop(file);
    fs::rename(&temporary, path).map_err(|e| io_error("replacing", e))?;
    if sync {
        if let Some(directory) = path.parent() {
            // The rename is only durable once the directory entry is.
            File::open(directory)
                .and_then(|directory| directory.sync_all())
                .map_err(|e| io_error("syncing the directory of", e))?;
        }
    }
    Ok(())
}

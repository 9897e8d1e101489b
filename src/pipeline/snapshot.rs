//! Detection state on disk: `<state_dir>/detection-state.json`, written atomically (temp file,
//! fsync, rename, directory fsync) after the final drain and every `detect.snapshot_interval`,
//! read back at start. A file that cannot be read is set aside, never fatal: detection then
//! starts without history, which is what a first start does.

use crate::detect::{Engine, Snapshot};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The snapshot file under a state directory.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("detection-state.json")
}

/// Restore `engine` from the snapshot at `path`, if there is one.
pub fn restore(engine: &mut Engine, path: &Path) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return,
        Err(error) => {
            tracing::error!(path = %path.display(), %error, "Cannot read the detection state; starting without it.");
            return;
        }
    };
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(snapshot) => {
            let report = engine.restore(snapshot);
            tracing::info!(
                path = %path.display(),
                rules = report.rules,
                entities = report.entities,
                changed_rules = ?report.skipped_rules,
                "Detection state restored; changed rules start afresh."
            );
        }
        Err(error) => {
            let aside = path.with_extension("json.unreadable");
            let _ = std::fs::rename(path, &aside);
            tracing::error!(path = %path.display(), moved_to = %aside.display(), %error, "The detection state file is unreadable; set aside, starting without history.");
        }
    }
}

/// Write the engine's state atomically.
pub fn save(engine: &Engine, path: &Path) -> std::io::Result<()> {
    let snapshot = engine.snapshot();
    let temporary = path.with_extension("json.tmp");
    {
        let file = std::fs::File::create(&temporary)?;
        let mut writer = std::io::BufWriter::new(file);
        serde_json::to_writer(&mut writer, &snapshot).map_err(std::io::Error::other)?;
        writer.flush()?;
        writer.get_ref().sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    if let Some(directory) = path.parent() {
        if let Ok(directory) = std::fs::File::open(directory) {
            let _ = directory.sync_all();
        }
    }
    Ok(())
}

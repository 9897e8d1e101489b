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

/// The version every state document is written with and must carry to be read back.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// `<state_dir>/checkpoints/<source>.json`, creating the directory: where a source keeps its
/// position. Anything but `[A-Za-z0-9._-]` in the source name becomes `_`.
pub(crate) fn path_for(state_dir: &Path, source: &str) -> Result<std::path::PathBuf, SourceError> {
    let directory = state_dir.join("checkpoints");
    fs::create_dir_all(&directory).map_err(|source| SourceError::Io {
        context: format!("creating checkpoint directory {}", directory.display()),
        source,
    })?;
    Ok(directory.join(format!("{}.json", file_name_for(source))))
}

/// Read the state document at `path`: `None` when there is none yet (a first start), an error
/// naming the file when it cannot be used. A document that does not parse or carries another
/// version is never replaced silently: the operator is told to fix or remove it (`remedy` says
/// what removing means for this source).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    remedy: &str,
    version_of: impl Fn(&T) -> u32,
) -> Result<Option<T>, SourceError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SourceError::Io {
                context: format!("reading {what} file {}", path.display()),
                source,
            })
        }
    };
    let corrupt = |reason: String| {
        tracing::error!(path = %path.display(), %reason, remedy, "The {what} file is corrupt; fix or remove it.");
        SourceError::Checkpoint {
            path: path.to_path_buf(),
            reason,
        }
    };
    let document: T = serde_json::from_slice(&bytes)
        .map_err(|error| corrupt(format!("not a valid {what} document: {error}")))?;
    let version = version_of(&document);
    if version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "unsupported version {version} (expected {FORMAT_VERSION})"
        )));
    }
    Ok(Some(document))
}

fn file_name_for(source: &str) -> String {
    let name: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        format!("_{name}")
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Document {
        version: u32,
    }

    #[test]
    fn names_are_safe_and_a_missing_file_is_a_first_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "../audit logs").unwrap();
        // Never a path outside the directory, never a hidden file.
        assert_eq!(path, dir.path().join("checkpoints/_.._audit_logs.json"));
        let read: Option<Document> =
            read_json(&path, "cursor", "", |d: &Document| d.version).unwrap();
        assert!(read.is_none());
    }

    #[test]
    fn another_version_or_garbage_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "a").unwrap();
        write_json(&path, &Document { version: 2 }, "cursor", false).unwrap();
        let result = read_json(&path, "cursor", "", |d: &Document| d.version);
        assert!(
            matches!(result, Err(SourceError::Checkpoint { ref reason, .. }) if reason.contains("version 2"))
        );
        fs::write(&path, b"{").unwrap();
        let result = read_json(&path, "cursor", "", |d: &Document| d.version);
        assert!(matches!(result, Err(SourceError::Checkpoint { .. })));
        write_json(
            &path,
            &Document {
                version: FORMAT_VERSION,
            },
            "cursor",
            false,
        )
        .unwrap();
        let read = read_json(&path, "cursor", "", |d: &Document| d.version).unwrap();
        assert_eq!(read.map(|d| d.version), Some(FORMAT_VERSION));
    }
}

//! The saved commit point: two checksummed slots in `committed`, overwritten in place.
//!
//! The commit point moves after every delivered request. Saving it through a temporary file
//! and a rename cost a file creation, an inode eviction and (ext4's `auto_da_alloc`) a forced
//! writeback each time: about 1 % of the agent's CPU in the end-to-end benchmark. Overwriting a
//! few bytes in place costs one `pwrite`. The two slots are written in turn, so a write torn by
//! a power cut damages only the slot being written and the other still holds the previous
//! point. A saved point is only ever a lower bound (records after it are resent, never lost),
//! so the larger of the intact slots is a safe place to resume.
//!
//! ```text
//! 00000000000000001234 5f0e2a91
//! 00000000000000001000 0c1d2e3f
//! ```
//!
//! Each slot is the point as 20 digits, a space, the CRC-32 of the digits in hex, a newline.
//! A file of bare digits (what earlier versions wrote) is read as that point.

use super::disk::QueueError;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of one slot: 20 digits, a space, 8 hex digits, a newline.
const SLOT_LEN: usize = 30;
const DIGITS: usize = 20;

/// The open `committed` file of a queue.
#[derive(Debug)]
pub(super) struct CommitFile {
    file: File,
    path: PathBuf,
    /// The slot the next save overwrites.
    next_slot: usize,
}

impl CommitFile {
    /// Open (or create) `path` and read the saved point (0 when there is none).
    pub(super) fn open(path: &Path) -> Result<(CommitFile, u64), QueueError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => {
                return Err(QueueError::new(
                    "cannot read the queue's commit point",
                    path,
                    error,
                ))
            }
        };
        let committed = match read_point(&bytes) {
            Some(committed) => committed,
            None if bytes.is_empty() => 0,
            None => {
                tracing::warn!(path = %path.display(), "The queue's saved commit point is unreadable; every record still on disk is sent again.");
                0
            }
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|error| {
                QueueError::new("cannot open the queue's commit point", path, error)
            })?;
        // Both slots hold the point read, so the file is in the current layout from here on.
        let mut both = slot(committed).to_vec();
        both.extend_from_slice(&slot(committed));
        file.write_all_at(&both, 0)
            .and_then(|()| file.set_len(both.len() as u64))
            .map_err(|error| {
                QueueError::new("cannot write the queue's commit point", path, error)
            })?;
        // Earlier versions wrote `committed.tmp` and renamed it over; a crash in between left
        // one behind for good. What it held is never read: the point above is the saved one.
        let leftover = path.with_extension("tmp");
        match std::fs::remove_file(&leftover) {
            Ok(()) => {
                tracing::debug!(path = %leftover.display(), "Removed an earlier version's unfinished commit-point file.");
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %leftover.display(), %error, "Cannot remove an earlier version's unfinished commit-point file; it is not used.");
            }
        }
        let commit = CommitFile {
            file,
            path: path.to_path_buf(),
            next_slot: 0,
        };
        Ok((commit, committed))
    }

    /// Overwrite the older slot with `committed`.
    pub(super) fn save(&mut self, committed: u64) -> Result<(), QueueError> {
        let offset = (self.next_slot * SLOT_LEN) as u64;
        self.file
            .write_all_at(&slot(committed), offset)
            .map_err(|error| {
                QueueError::new("cannot save the queue's commit point", &self.path, error)
            })?;
        self.next_slot = 1 - self.next_slot;
        Ok(())
    }
}

fn slot(committed: u64) -> [u8; SLOT_LEN] {
    let mut slot = [b' '; SLOT_LEN];
    let digits = format!("{committed:020}");
    slot[..DIGITS].copy_from_slice(digits.as_bytes());
    let crc = format!("{:08x}", crc32fast::hash(digits.as_bytes()));
    slot[DIGITS + 1..DIGITS + 9].copy_from_slice(crc.as_bytes());
    slot[SLOT_LEN - 1] = b'\n';
    slot
}

/// The point a slot holds, if it is intact.
fn read_slot(slot: &[u8]) -> Option<u64> {
    let slot = slot.get(..SLOT_LEN)?;
    let digits = &slot[..DIGITS];
    let crc = std::str::from_utf8(&slot[DIGITS + 1..DIGITS + 9]).ok()?;
    if slot[DIGITS] != b' ' || u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(digits) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The saved point: the larger intact slot, or the bare number an earlier version wrote.
fn read_point(bytes: &[u8]) -> Option<u64> {
    let slots = [bytes.get(..SLOT_LEN), bytes.get(SLOT_LEN..2 * SLOT_LEN)];
    let intact = slots.into_iter().flatten().filter_map(read_slot).max();
    intact.or_else(|| std::str::from_utf8(bytes).ok()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reopen(path: &Path) -> u64 {
        CommitFile::open(path).map(|(_, point)| point).unwrap()
    }

    #[test]
    fn saves_alternate_and_the_larger_intact_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committed");
        let (mut commit, point) = CommitFile::open(&path).unwrap();
        assert_eq!(point, 0);
        for point in [5, 17, 1_000_000] {
            commit.save(point).unwrap();
        }
        drop(commit);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 2 * SLOT_LEN);
        assert_eq!(read_slot(&bytes[..SLOT_LEN]), Some(1_000_000));
        assert_eq!(read_slot(&bytes[SLOT_LEN..]), Some(17));
        assert_eq!(reopen(&path), 1_000_000);
    }

    #[test]
    fn a_torn_slot_falls_back_to_the_other_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committed");
        let (mut commit, _) = CommitFile::open(&path).unwrap();
        commit.save(100).unwrap();
        commit.save(250).unwrap();
        drop(commit);
        // A power cut in the middle of the next save, which overwrites the slot holding 100:
        // new leading digits meet old trailing ones. Without the checksum this would read as
        // a point past anything delivered.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[..12].copy_from_slice(b"000000009999");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(reopen(&path), 250);
        // Both slots damaged: nothing is trusted and everything is sent again.
        std::fs::write(&path, b"0000000000000000025x 00000000\ngarbage").unwrap();
        assert_eq!(reopen(&path), 0);
    }

    #[test]
    fn the_bare_number_of_an_earlier_version_is_read_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("committed");
        std::fs::write(&path, "4242").unwrap();
        // And the temporary file an interrupted save of that version left beside it.
        let leftover = dir.path().join("committed.tmp");
        std::fs::write(&leftover, "9999").unwrap();
        let (commit, point) = CommitFile::open(&path).unwrap();
        assert_eq!(point, 4242);
        assert!(!leftover.exists(), "the leftover is removed");
        drop(commit);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(read_slot(&bytes[..SLOT_LEN]), Some(4242));
        assert_eq!(reopen(&path), 4242);
    }
}

//! File identity: device, inode and a fingerprint of the file's first bytes.
//!
//! Device and inode alone are not enough: once a file is deleted its inode is free, and the next
//! file created may get it. The fingerprint (a hash of the first line, or of the first
//! `fingerprint_bytes` bytes when the first line is longer) tells such a newcomer apart, so its
//! start is never skipped because of the old file's checkpoint.

use sha2::{Digest, Sha256};
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// Bytes of the SHA-256 digest kept in the fingerprint: 128 bits is plenty to tell files apart.
const FINGERPRINT_DIGEST_BYTES: usize = 16;

/// Where a file lives on disk, stable across renames: (device, inode).
pub(crate) type DevIno = (u64, u64);

/// The device and inode of a file.
pub(crate) fn dev_ino(metadata: &Metadata) -> DevIno {
    (metadata.dev(), metadata.ino())
}

/// Who a file is: where it lives on disk and what it starts with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FileIdentity {
    /// Device and inode.
    pub(crate) dev_ino: DevIno,
    /// Hex of the truncated SHA-256 of the file's first line (or first bytes).
    pub(crate) fingerprint: String,
}

impl FileIdentity {
    /// The key under which the checkpoint file stores this identity.
    pub(crate) fn key(&self) -> String {
        format!("{}:{}:{}", self.dev_ino.0, self.dev_ino.1, self.fingerprint)
    }
}

/// Fingerprint an open file, or `None` while its first line is too short to be complete.
///
/// The fingerprint covers the first line including its newline, capped at `limit` bytes. Waiting
/// for the newline matters: hashing a half-written first line would give the file a different
/// identity once the line is finished.
pub(crate) fn fingerprint(file: &File, limit: usize) -> io::Result<Option<String>> {
    let limit = limit.max(1);
    let mut buffer = vec![0u8; limit];
    let mut filled = 0;
    while filled < limit {
        match file.read_at(&mut buffer[filled..], filled as u64) {
            Ok(0) => break,
            Ok(read) => {
                let newline = buffer[filled..filled + read].contains(&b'\n');
                filled += read;
                if newline {
                    break;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    let end = match buffer[..filled].iter().position(|&byte| byte == b'\n') {
        Some(index) => index + 1,
        None if filled == limit => limit,
        None => return Ok(None),
    };
    let digest = Sha256::digest(&buffer[..end]);
    Ok(Some(hex::encode(&digest[..FINGERPRINT_DIGEST_BYTES])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fingerprint_of(content: &[u8], limit: usize) -> Option<String> {
        let mut file = tempfile::tempfile().ok()?;
        file.write_all(content).ok()?;
        fingerprint(&file, limit).ok()?
    }

    #[test]
    fn waits_for_a_complete_first_line() {
        assert_eq!(fingerprint_of(b"", 64), None);
        assert_eq!(fingerprint_of(b"{\"partial\":", 64), None);
        assert!(fingerprint_of(b"{\"a\":1}\n", 64).is_some());
    }

    #[test]
    fn depends_only_on_the_first_line_or_the_first_bytes() {
        let first = fingerprint_of(b"one\ntwo\n", 64);
        assert_eq!(first, fingerprint_of(b"one\nthree\n", 64));
        assert_ne!(first, fingerprint_of(b"uno\ntwo\n", 64));
        let long = fingerprint_of(b"abcdefgh-rest-of-a-long-line", 8);
        assert!(long.is_some());
        assert_eq!(long, fingerprint_of(b"abcdefgh-something-else", 8));
    }
}

//! Keyed pseudonyms: HMAC-SHA-256 of an identity under a secret key, with the key's id in the
//! pseudonym so keys can rotate.
//!
//! A pseudonym reads `psn:<key id>:<32 hex>` (the first 128 bits of the MAC): stable for one key,
//! so baselines and SIEM searches still join; unlinkable without the key. The key file holds one
//! key per line, `<key id> <64 hex digits>` (`#` comments allowed); the **last** line is the
//! active key, so rotating means appending a line. Older keys stay in the file so an
//! investigator can still look up pseudonyms written before the rotation.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::path::{Path, PathBuf};

/// The prefix of every pseudonym, so a reader (and a test) can tell one from a real identity.
pub const PSEUDONYM_PREFIX: &str = "psn:";

/// Bytes of a pseudonym key.
pub const KEY_BYTES: usize = 32;

/// Why pseudonym keys cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Group or others may read the file: keys must be readable only by the service.
    #[error(
        "the key file {path} is readable by group or others (mode {mode:o}); run `chmod 600` on it"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A line is not `<key id> <64 hex digits>`.
    #[error("{path} line {line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong (never the key material).
        reason: String,
    },
    /// The file holds no key.
    #[error("the key file {path} holds no key")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// One pseudonym key. Its bytes never appear in `Debug` output or logs.
#[derive(Clone)]
pub struct PseudonymKey {
    id: String,
    bytes: [u8; KEY_BYTES],
}

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PseudonymKey")
            .field("id", &self.id)
            .field("bytes", &"<redacted>")
            .finish()
    }
}

impl PseudonymKey {
    /// A key from its id and bytes.
    pub fn new(id: impl Into<String>, bytes: [u8; KEY_BYTES]) -> PseudonymKey {
        PseudonymKey {
            id: id.into(),
            bytes,
        }
    }

    /// The key id carried in every pseudonym made with it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The pseudonym of `value` under this key.
    ///
    /// # Panics
    ///
    /// Never in practice: HMAC accepts keys of any length, so building it cannot fail.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.bytes) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC takes a key of any length"),
        };
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        format!(
            "{PSEUDONYM_PREFIX}{}:{}",
            self.id,
            hex::encode(&digest[..16])
        )
    }
}

/// The keys of a key file: the active one (last) and the older ones.
#[derive(Debug, Clone)]
pub struct PseudonymKeys {
    keys: Vec<PseudonymKey>,
}

impl PseudonymKeys {
    /// Keys given directly, the last one active; `None` when the list is empty.
    pub fn from_keys(keys: Vec<PseudonymKey>) -> Option<PseudonymKeys> {
        if keys.is_empty() {
            None
        } else {
            Some(PseudonymKeys { keys })
        }
    }

    /// Read a key file, refusing one that group or others may read.
    pub fn load(path: &Path) -> Result<PseudonymKeys, KeyError> {
        check_private(path)?;
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse the text of a key file (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<PseudonymKeys, KeyError> {
        let mut keys: Vec<PseudonymKey> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let malformed = |reason: &str| KeyError::Malformed {
                path: path.to_path_buf(),
                line: index + 1,
                reason: reason.to_string(),
            };
            let mut parts = line.split_whitespace();
            let (Some(id), Some(material), None) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed("expected `<key id> <64 hex digits>`"));
            };
            if !valid_key_id(id) {
                return Err(malformed(
                    "a key id is 1 to 32 letters, digits, `-`, `_` or `.`",
                ));
            }
            let mut bytes = [0u8; KEY_BYTES];
            if hex::decode_to_slice(material, &mut bytes).is_err() {
                return Err(malformed("the key must be 64 hex digits (32 bytes)"));
            }
            if keys.iter().any(|key| key.id == id) {
                return Err(malformed("this key id is used twice"));
            }
            keys.push(PseudonymKey::new(id, bytes));
        }
        Self::from_keys(keys).ok_or_else(|| KeyError::Empty {
            path: path.to_path_buf(),
        })
    }

    /// The key new pseudonyms are made with.
    ///
    /// # Panics
    ///
    /// Never: every constructor refuses an empty key list.
    pub fn active(&self) -> &PseudonymKey {
        match self.keys.last() {
            Some(key) => key,
            None => unreachable!("PseudonymKeys is never empty"),
        }
    }

    /// Every key, oldest first.
    pub fn all(&self) -> &[PseudonymKey] {
        &self.keys
    }

    /// The pseudonym of `value` under the active key.
    pub fn pseudonym(&self, value: &str) -> String {
        self.active().pseudonym(value)
    }
}

/// Whether `id` may be a key id (it travels inside pseudonyms, so no `:` or spaces).
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Refuse a secret file that group or others may read (Unix only; elsewhere it is not checked).
pub fn check_private(path: &Path) -> Result<(), KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

//! Secrets in configuration: read from the environment or a file, never printed.

use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;

/// Where a secret comes from. Written in TOML as `{ env = "HEC_TOKEN" }`,
/// `{ file = "/etc/aiwarden/hec.token" }`, or (discouraged) a literal string.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Secret {
    /// Read from an environment variable at startup.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Read from a file at startup (trailing newline removed).
    File {
        /// The file's path.
        file: PathBuf,
    },
    /// Written in the configuration itself.
    Literal(String),
}

/// A secret that cannot be resolved; names the variable or file, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The variable is unset or not UTF-8.
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    /// The file cannot be read.
    #[error("cannot read secret file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The secret resolved to nothing.
    #[error("the secret is empty")]
    Empty,
}

impl Secret {
    /// The secret's value.
    pub fn resolve(&self) -> Result<String, SecretError> {
        let value = match self {
            Secret::Env { env } => {
                std::env::var(env).map_err(|_| SecretError::MissingEnv(env.clone()))?
            }
            Secret::File { file } => std::fs::read_to_string(file)
                .map_err(|source| SecretError::File {
                    path: file.clone(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            Secret::Literal(value) => value.clone(),
        };
        if value.is_empty() {
            Err(SecretError::Empty)
        } else {
            Ok(value)
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Env { env } => write!(f, "Secret(env {env})"),
            Secret::File { file } => write!(f, "Secret(file {})", file.display()),
            Secret::Literal(_) => f.write_str("Secret(***)"),
        }
    }
}

/// Where it comes from is shown; a literal value never is.
impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Secret::Env { env } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("env", env)?;
                map.end()
            }
            Secret::File { file } => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("file", file)?;
                map.end()
            }
            Secret::Literal(_) => serializer.serialize_str("***"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_is_masked_in_debug_and_serialisation() {
        let secret = Secret::Literal("hunter2-token".into());
        assert!(!format!("{secret:?}").contains("hunter2"));
        let json = serde_json::to_string(&secret).unwrap();
        assert_eq!(json, "\"***\"");
        assert_eq!(secret.resolve().unwrap(), "hunter2-token");
    }

    #[test]
    fn file_secret_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        let secret: Secret = serde_json::from_value(serde_json::json!({ "file": path })).unwrap();
        assert_eq!(secret.resolve().unwrap(), "abc123");
        assert!(serde_json::to_string(&secret).unwrap().contains("token"));
    }

    #[test]
    fn missing_env_names_the_variable() {
        let secret = Secret::Env {
            env: "AIWARDEN_TEST_SURELY_UNSET_VAR".into(),
        };
        let error = secret.resolve().unwrap_err().to_string();
        assert!(error.contains("AIWARDEN_TEST_SURELY_UNSET_VAR"));
    }
}

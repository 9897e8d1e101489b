//! Finding the rule files: the pack built into the binary, or a directory on disk.

use crate::detect::{Entitlements, RuleError, RuleFile, RuleSet};
use std::path::Path;

/// The default rule pack (`rules/` in the repository), built in so the agent works with no files.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    (
        "mcp-volume.toml",
        include_str!("../../rules/mcp-volume.toml"),
    ),
    (
        "restricted-unauthorised.toml",
        include_str!("../../rules/restricted-unauthorised.toml"),
    ),
    (
        "token-spike.toml",
        include_str!("../../rules/token-spike.toml"),
    ),
];

/// Why rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RulesLoadError {
    /// A directory or file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file did not parse or validate.
    #[error(transparent)]
    Invalid(#[from] RuleError),
}

/// Read the rule files of `dir` (every `*.toml`, sorted by name), or the built-in pack.
pub fn rule_files(dir: Option<&Path>) -> Result<Vec<RuleFile>, RulesLoadError> {
    let Some(dir) = dir else {
        return Ok(BUILTIN_RULES
            .iter()
            .map(|(name, text)| RuleFile {
                name: format!("(built-in) rules/{name}"),
                text: (*text).to_string(),
            })
            .collect());
    };
    let read_error = |source| RulesLoadError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml") && path.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| RulesLoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok(RuleFile {
                name: path.display().to_string(),
                text,
            })
        })
        .collect()
}

/// Load and compile the rules.
pub fn load_rules(dir: Option<&Path>) -> Result<RuleSet, RulesLoadError> {
    Ok(RuleSet::parse(&rule_files(dir)?)?)
}

/// Load the entitlements file, or none (nobody is entitled to restricted data).
pub fn load_entitlements(path: Option<&Path>) -> Result<Entitlements, RulesLoadError> {
    match path {
        None => Ok(Entitlements::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| RulesLoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok(Entitlements::parse(&path.display().to_string(), &text)?)
        }
    }
}

//! Finding the rule files: the pack built into the binary, or a directory on disk.

use crate::detect::{Calendars, Entitlements, RuleError, RuleFile, RuleSet};
use std::path::Path;

/// The default rule pack (`rules/` in the repository), built in so the agent works with no files.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    (
        "cross-user-access.toml",
        include_str!("../../rules/cross-user-access.toml"),
    ),
    (
        "mcp-auth-failures.toml",
        include_str!("../../rules/mcp-auth-failures.toml"),
    ),
    (
        "mcp-volume.toml",
        include_str!("../../rules/mcp-volume.toml"),
    ),
    (
        "off-hours-sensitive.toml",
        include_str!("../../rules/off-hours-sensitive.toml"),
    ),
    (
        "prompt-injection.toml",
        include_str!("../../rules/prompt-injection.toml"),
    ),
    (
        "request-volume.toml",
        include_str!("../../rules/request-volume.toml"),
    ),
    (
        "restricted-unauthorised.toml",
        include_str!("../../rules/restricted-unauthorised.toml"),
    ),
    (
        "system-prompt-leak.toml",
        include_str!("../../rules/system-prompt-leak.toml"),
    ),
    (
        "token-spike.toml",
        include_str!("../../rules/token-spike.toml"),
    ),
];

/// The default business-hours calendars (`rules/calendars.toml`), built in like the rules.
pub const BUILTIN_CALENDARS: &str = include_str!("../../rules/calendars.toml");

/// The calendars file's name: it lives beside the rules but is not a rule, so the rules
/// loader skips it.
pub const CALENDARS_FILE: &str = "calendars.toml";

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
        .filter(|path| path.file_name().is_none_or(|name| name != CALENDARS_FILE))
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

/// Load the business-hours calendars: `path` when given, else `calendars.toml` in the rules
/// directory when there is one, else the built-in default (Monday to Friday, 08:00 to 18:00
/// UTC).
pub fn load_calendars(
    path: Option<&Path>,
    rules_dir: Option<&Path>,
) -> Result<Calendars, RulesLoadError> {
    let beside_rules = rules_dir
        .map(|dir| dir.join(CALENDARS_FILE))
        .filter(|path| path.is_file());
    match path.map(Path::to_path_buf).or(beside_rules) {
        None => Ok(Calendars::parse(
            &format!("(built-in) rules/{CALENDARS_FILE}"),
            BUILTIN_CALENDARS,
        )?),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| RulesLoadError::Read {
                path: path.display().to_string(),
                source,
            })?;
            Ok(Calendars::parse(&path.display().to_string(), &text)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn every_rule_file_in_the_repository_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let on_disk = rule_files(Some(&dir)).unwrap();
        let mut names: Vec<String> = on_disk
            .iter()
            .filter_map(|f| Path::new(&f.name).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        let built_in: Vec<&str> = BUILTIN_RULES.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names, built_in,
            "add new rules/*.toml files to BUILTIN_RULES"
        );
        // The calendars file lives beside the rules but is not one.
        assert!(!names.iter().any(|n| n == CALENDARS_FILE));
        assert_eq!(load_rules(None).unwrap().len(), BUILTIN_RULES.len());
        assert_eq!(load_rules(Some(&dir)).unwrap().len(), BUILTIN_RULES.len());
    }

    #[test]
    fn calendars_come_from_the_file_the_rules_directory_or_the_built_in_default() {
        let saturday_noon = utc("2025-06-07T12:00:00Z");
        let built_in = load_calendars(None, None).unwrap();
        assert!(!built_in.is_business_hours(None, saturday_noon));

        let dir = tempfile::tempdir().unwrap();
        let weekend =
            "[default]\ntimezone = \"UTC\"\nworkdays = [\"sat\"]\nhours = \"09:00-17:00\"\n";
        std::fs::write(dir.path().join(CALENDARS_FILE), weekend).unwrap();
        let beside = load_calendars(None, Some(dir.path())).unwrap();
        assert!(beside.is_business_hours(None, saturday_noon));

        let explicit = dir.path().join("other.toml");
        std::fs::write(
            &explicit,
            "[default]\ntimezone = \"Nowhere/City\"\nhours = \"09:00-17:00\"\n",
        )
        .unwrap();
        let error = load_calendars(Some(&explicit), Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("other.toml") && error.contains("Nowhere/City"),
            "{error}"
        );
        let missing = load_calendars(Some(&dir.path().join("missing.toml")), None);
        assert!(matches!(missing, Err(RulesLoadError::Read { .. })));
    }
}

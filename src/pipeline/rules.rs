//! Finding the rule files: the pack built into the binary, or a directory on disk.

use crate::detect::{Calendars, Entitlements, RuleError, RuleFile, RuleSet};
use std::path::Path;

/// The default rule pack (`rules/` in the repository), built in so the agent works with no files.
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    (
        "anthropic-api-key-usage-spike.toml",
        include_str!("../../rules/anthropic-api-key-usage-spike.toml"),
    ),
    (
        "anthropic-claude-code-usage-spike.toml",
        include_str!("../../rules/anthropic-claude-code-usage-spike.toml"),
    ),
    (
        "anthropic-file-burst.toml",
        include_str!("../../rules/anthropic-file-burst.toml"),
    ),
    (
        "anthropic-key-new-creator.toml",
        include_str!("../../rules/anthropic-key-new-creator.toml"),
    ),
    (
        "anthropic-key-off-hours.toml",
        include_str!("../../rules/anthropic-key-off-hours.toml"),
    ),
    (
        "anthropic-new-network.toml",
        include_str!("../../rules/anthropic-new-network.toml"),
    ),
    (
        "anthropic-role-escalation.toml",
        include_str!("../../rules/anthropic-role-escalation.toml"),
    ),
    (
        "anthropic-workspace-cost-spike.toml",
        include_str!("../../rules/anthropic-workspace-cost-spike.toml"),
    ),
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

/// Load the rules of `dir` (or the built-in pack), changed by the files of `overrides`.
pub fn load_rules_with_overrides(
    dir: Option<&Path>,
    overrides: Option<&Path>,
) -> Result<RuleSet, RulesLoadError> {
    let files = rule_files(dir)?;
    // No directory is no overrides: the package creates it, a hand install may not.
    let files = match overrides.filter(|dir| dir.exists()) {
        Some(overrides) => apply_overrides(files, &rule_files(Some(overrides))?)?,
        None => files,
    };
    Ok(RuleSet::parse(&files)?)
}

/// Apply override files to rule files.
///
/// An override names a rule by `id` and gives only the keys to change (`enabled = false`, a new
/// `[threshold]` tier list, another `suppress`): tables are merged key by key, anything else
/// (numbers, strings, arrays) replaces the shipped value. An override whose `id` is not in the
/// pack is a rule of its own and is added. So an analyst never copies a shipped rule to tune it,
/// and an upgrade of the pack keeps the tuning.
pub fn apply_overrides(
    mut files: Vec<RuleFile>,
    overrides: &[RuleFile],
) -> Result<Vec<RuleFile>, RulesLoadError> {
    let invalid = |file: &str, message: String| {
        RulesLoadError::Invalid(RuleError {
            file: file.to_string(),
            message,
        })
    };
    for override_file in overrides {
        let changes: toml::Table = toml::from_str(&override_file.text)
            .map_err(|error| invalid(&override_file.name, format!("not valid TOML: {error}")))?;
        let Some(id) = changes.get("id").and_then(toml::Value::as_str) else {
            return Err(invalid(
                &override_file.name,
                "an override needs the `id` of the rule it changes".into(),
            ));
        };
        let base = files.iter_mut().find(|file| {
            toml::from_str::<toml::Table>(&file.text)
                .ok()
                .and_then(|table| table.get("id").and_then(|v| v.as_str().map(str::to_string)))
                .as_deref()
                == Some(id)
        });
        match base {
            None => files.push(override_file.clone()),
            Some(base) => {
                let mut table: toml::Table = toml::from_str(&base.text)
                    .map_err(|error| invalid(&base.name, format!("not valid TOML: {error}")))?;
                merge(&mut table, changes);
                base.text = toml::to_string(&table).map_err(|error| {
                    invalid(&override_file.name, format!("cannot apply: {error}"))
                })?;
                base.name = format!("{} (overridden by {})", base.name, override_file.name);
            }
        }
    }
    Ok(files)
}

/// Merge `changes` into `base`: tables recursively, everything else replaced.
fn merge(base: &mut toml::Table, changes: toml::Table) {
    for (key, value) in changes {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(inner)) => {
                merge(existing, inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Everything detection reads from files: rules (with overrides), entitlements, calendars.
#[derive(Debug)]
pub struct Detection {
    /// The compiled rules.
    pub rules: RuleSet,
    /// Who is cleared for which classification.
    pub entitlements: Entitlements,
    /// Business hours per department.
    pub calendars: Calendars,
}

/// Load everything detection reads, as configured; the same call serves start and reload.
pub fn load_detection(config: &crate::config::DetectConfig) -> Result<Detection, RulesLoadError> {
    Ok(Detection {
        rules: load_rules_with_overrides(
            config.rules_dir.as_deref(),
            config.overrides_dir.as_deref(),
        )?,
        entitlements: load_entitlements(config.entitlements_file.as_deref())?,
        calendars: load_calendars(
            config.calendars_file.as_deref(),
            config.rules_dir.as_deref(),
        )?,
    })
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

    #[test]
    fn overrides_need_an_id_and_typos_name_both_files() {
        let pack = rule_files(None).unwrap();
        let no_id = RuleFile {
            name: "rules.d/x.toml".into(),
            text: "enabled = false\n".into(),
        };
        let error = apply_overrides(pack.clone(), &[no_id])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("rules.d/x.toml") && error.contains("`id`"),
            "{error}"
        );
        let typo = RuleFile {
            name: "rules.d/typo.toml".into(),
            text: "id = \"mcp-volume\"\nenabld = false\n".into(),
        };
        let merged = apply_overrides(pack, &[typo]).unwrap();
        let error = RuleSet::parse(&merged).unwrap_err().to_string();
        assert!(
            error.contains("rules.d/typo.toml") && error.contains("enabld"),
            "{error}"
        );
    }
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

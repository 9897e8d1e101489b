//! `--set RULE.PATH=VALUE`: change one parameter of a rule before it is compiled.
//!
//! The rule's file is parsed as a TOML value, the value at the dotted path is replaced (array
//! items by index: `threshold.tiers.0.above`), and the file is written back as text, so the
//! result is validated exactly like a file on disk.

use crate::detect::RuleFile;

/// One parsed `--set` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The whole argument, for messages.
    pub text: String,
    /// `RULE.PATH` before the `=`.
    pub target: String,
    /// The new value: TOML (`60`, `4.5`, `false`, `"x"`), else the text as a string (`1h`).
    pub value: toml::Value,
}

/// Why an override cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// Not `RULE.PATH=VALUE`.
    #[error("`{0}`: expected RULE.PATH=VALUE, e.g. mcp-volume.threshold.tiers.0.above=60")]
    Syntax(String),
    /// No rule file has this id.
    #[error("`{text}`: no rule with the id at the start of `{target}` (rules: {known})")]
    UnknownRule {
        /// The argument.
        text: String,
        /// `RULE.PATH`.
        target: String,
        /// The ids there are.
        known: String,
    },
    /// The path does not lead to a value of the rule.
    #[error("`{text}`: rule `{rule}` has no `{path}` ({reason})")]
    UnknownPath {
        /// The argument.
        text: String,
        /// The rule id.
        rule: String,
        /// The dotted path.
        path: String,
        /// Where it stopped.
        reason: String,
    },
    /// The rule file is not TOML (lint it first).
    #[error("{file}: cannot apply `{text}`: {reason}")]
    Unparsable {
        /// The file.
        file: String,
        /// The argument.
        text: String,
        /// Why.
        reason: String,
    },
}

impl std::str::FromStr for Override {
    type Err = OverrideError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (target, raw) = text
            .split_once('=')
            .ok_or_else(|| OverrideError::Syntax(text.to_string()))?;
        let target = target.trim();
        if target.is_empty() || !target.contains('.') {
            return Err(OverrideError::Syntax(text.to_string()));
        }
        let raw = raw.trim();
        let value = format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut table| table.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_string()));
        Ok(Override {
            text: text.to_string(),
            target: target.to_string(),
            value,
        })
    }
}

/// Apply `overrides` to the rule files (in order); files are matched by their `id`. A rule id
/// may contain dots, so the longest id that prefixes the target wins.
pub fn apply_overrides(
    files: &mut [RuleFile],
    overrides: &[Override],
) -> Result<(), OverrideError> {
    for item in overrides {
        let ids: Vec<Option<String>> = files.iter().map(|f| peek_id(&f.text)).collect();
        let found = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| id.as_deref().map(|id| (i, id)))
            .filter(|(_, id)| {
                item.target
                    .strip_prefix(id)
                    .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1)
            })
            .max_by_key(|(_, id)| id.len());
        let Some((index, id)) = found else {
            let mut known: Vec<&str> = ids.iter().flatten().map(String::as_str).collect();
            known.sort_unstable();
            return Err(OverrideError::UnknownRule {
                text: item.text.clone(),
                target: item.target.clone(),
                known: known.join(", "),
            });
        };
        let rule = id.to_string();
        let path = &item.target[rule.len() + 1..];
        let file = &mut files[index];
        let unparsable = |reason: String| OverrideError::Unparsable {
            file: file.name.clone(),
            text: item.text.clone(),
            reason,
        };
        let mut table: toml::Table = file
            .text
            .parse()
            .map_err(|e: toml::de::Error| unparsable(e.message().to_string()))?;
        set_path(&mut table, path, item.value.clone()).map_err(|reason| {
            OverrideError::UnknownPath {
                text: item.text.clone(),
                rule: rule.clone(),
                path: path.to_string(),
                reason,
            }
        })?;
        let text = toml::to_string(&table).map_err(|e| unparsable(e.to_string()))?;
        files[index].text = text;
    }
    Ok(())
}

/// Set the value at a dotted path; the last key may be new in an existing table (the rule
/// parser then rejects it if it is not a rule key), everything before it must exist.
fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err("empty path".into());
    };
    let mut root = toml::Value::Table(std::mem::take(table));
    let result = set_in(&mut root, parents, last, value);
    if let toml::Value::Table(inner) = root {
        *table = inner;
    }
    result
}

fn set_in(
    root: &mut toml::Value,
    parents: &[&str],
    last: &str,
    value: toml::Value,
) -> Result<(), String> {
    let mut current = root;
    for segment in parents {
        current = step(current, segment)?;
    }
    match current {
        toml::Value::Table(inner) => {
            inner.insert(last.to_string(), value);
            Ok(())
        }
        other => {
            *step(other, last)? = value;
            Ok(())
        }
    }
}

fn step<'a>(value: &'a mut toml::Value, segment: &str) -> Result<&'a mut toml::Value, String> {
    match value {
        toml::Value::Table(table) => table
            .get_mut(segment)
            .ok_or_else(|| format!("no key `{segment}`")),
        toml::Value::Array(items) => {
            let len = items.len();
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{segment}` is not an index of a list"))?;
            items
                .get_mut(index)
                .ok_or_else(|| format!("index {index} is past the {len} items"))
        }
        _ => Err(format!(
            "`{segment}` goes inside a value that is not a table or list"
        )),
    }
}

/// The `id` of a rule file's text, when it parses.
pub(crate) fn peek_id(text: &str) -> Option<String> {
    let table: toml::Table = text.parse().ok()?;
    table.get("id")?.as_str().map(|id| id.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = r#"
id = "r.one"
enabled = true
suppress = "10m"
[threshold]
aggregate = "count"
[[threshold.tiers]]
window = "10m"
above = 50
"#;

    fn files() -> Vec<RuleFile> {
        vec![RuleFile {
            name: "r.toml".into(),
            text: RULE.into(),
        }]
    }

    fn set(arg: &str) -> Result<toml::Table, OverrideError> {
        let mut files = files();
        apply_overrides(&mut files, &[arg.parse()?])?;
        Ok(files[0].text.parse().unwrap())
    }

    #[test]
    fn values_are_toml_or_else_text() {
        let parsed: Override = "r.one.threshold.tiers.0.above=60".parse().unwrap();
        assert_eq!(parsed.target, "r.one.threshold.tiers.0.above");
        assert_eq!(parsed.value, toml::Value::Integer(60));
        let text: Override = "r.one.suppress=1h".parse().unwrap();
        assert_eq!(text.value, toml::Value::String("1h".into()));
        assert!(matches!(
            "r-one".parse::<Override>(),
            Err(OverrideError::Syntax(_))
        ));
        assert!(matches!(
            "=1".parse::<Override>(),
            Err(OverrideError::Syntax(_))
        ));
    }

    #[test]
    fn paths_reach_tables_and_list_items_of_ids_with_dots() {
        let table = set("r.one.threshold.tiers.0.above=60").unwrap();
        assert_eq!(
            table["threshold"]["tiers"][0]["above"].as_integer(),
            Some(60)
        );
        assert_eq!(
            set("r.one.enabled=false").unwrap()["enabled"].as_bool(),
            Some(false)
        );
        assert_eq!(
            set("r.one.suppress=1h").unwrap()["suppress"].as_str(),
            Some("1h")
        );
    }

    #[test]
    fn unknown_rules_and_paths_are_errors() {
        assert!(matches!(
            set("other.enabled=false"),
            Err(OverrideError::UnknownRule { .. })
        ));
        let error = set("r.one.threshold.tiers.3.above=1").unwrap_err();
        assert!(error.to_string().contains("index 3"), "{error}");
        let error = set("r.one.baseline.ratio=4").unwrap_err();
        assert!(error.to_string().contains("no key `baseline`"), "{error}");
        let error = set("r.one.suppress.x=4").unwrap_err();
        assert!(
            matches!(error, OverrideError::UnknownPath { .. }),
            "{error}"
        );
    }
}

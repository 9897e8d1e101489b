//! The per-source `[mapping]` table: field renames that turn a home-grown middleware log into the
//! canonical record without code (`user_id = "actor.id"`, `prompt_tokens = "usage.input_tokens"`).
//!
//! Each entry names a canonical field and the dotted path of the value in the input object. The
//! value is moved (not copied) so it does not also travel on as an unknown field; a path that is
//! absent in a line leaves the line as it was, and the canonical decoder then reports the field as
//! missing if it was required.

use crate::record::fields;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Canonical field name → dotted path in the input, applied before the native decoder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Mapping {
    renames: BTreeMap<String, String>,
}

/// A mapping entry that cannot work; names the entry, never input data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The target is not a field of the canonical record.
    #[error("`{0}` is not a canonical field (expected one of {list})", list = fields::ALL.join(", "))]
    UnknownTarget(String),
    /// The path is empty or has an empty segment (`a..b`).
    #[error("`{target}`: the path `{path}` has an empty segment")]
    EmptySegment {
        /// The canonical field.
        target: String,
        /// The path as written.
        path: String,
    },
}

impl Mapping {
    /// A mapping from `(canonical field, dotted path)` pairs (tests and callers without TOML).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Mapping {
        Mapping {
            renames: pairs
                .into_iter()
                .map(|(target, path)| (target.to_string(), path.to_string()))
                .collect(),
        }
    }

    /// No renames.
    pub fn is_empty(&self) -> bool {
        self.renames.is_empty()
    }

    /// Check every entry; the error names the first bad one.
    pub fn validate(&self) -> Result<(), MappingError> {
        for (target, path) in &self.renames {
            if !fields::ALL.contains(&target.as_str()) {
                return Err(MappingError::UnknownTarget(target.clone()));
            }
            if path.split('.').any(str::is_empty) {
                return Err(MappingError::EmptySegment {
                    target: target.clone(),
                    path: path.clone(),
                });
            }
        }
        Ok(())
    }

    /// Move each mapped value to its canonical name. A value already under the canonical name is
    /// replaced only when the mapped path is present.
    pub fn apply(&self, object: &mut Map<String, Value>) {
        for (target, path) in &self.renames {
            if target == path {
                continue;
            }
            if let Some(value) = take_path(object, path) {
                object.insert(target.clone(), value);
            }
        }
    }
}

/// Remove and return the value at a dotted path; empty parent objects are left in place.
fn take_path(object: &mut Map<String, Value>, path: &str) -> Option<Value> {
    // A literal key containing dots wins over nesting: `"usage.input_tokens": 3` is common too.
    if let Some(value) = object.remove(path) {
        return Some(value);
    }
    let (parent, last) = path.rsplit_once('.')?;
    let mut current = object;
    for segment in parent.split('.') {
        current = current.get_mut(segment)?.as_object_mut()?;
    }
    current.remove(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapped(mapping: &Mapping, input: Value) -> Value {
        let Value::Object(mut object) = input else {
            panic!("not an object")
        };
        mapping.apply(&mut object);
        Value::Object(object)
    }

    #[test]
    fn nested_paths_move_to_canonical_names() {
        let mapping = Mapping::from_pairs([
            ("user_id", "actor.id"),
            ("prompt_tokens", "usage.input_tokens"),
            ("timestamp", "ts"),
        ]);
        let out = mapped(
            &mapping,
            json!({"actor": {"id": "jdoe", "ip": "10.0.0.1"}, "usage": {"input_tokens": 12}, "ts": 1795425243512u64}),
        );
        assert_eq!(out["user_id"], "jdoe");
        assert_eq!(out["prompt_tokens"], 12);
        assert_eq!(out["timestamp"], 1795425243512u64);
        assert_eq!(out["actor"], json!({"ip": "10.0.0.1"}), "moved, not copied");
        assert!(out.get("ts").is_none());
    }

    #[test]
    fn an_absent_path_leaves_the_line_alone() {
        let mapping = Mapping::from_pairs([("user_id", "actor.id")]);
        let out = mapped(
            &mapping,
            json!({"user_id": "kept", "actor": "not an object"}),
        );
        assert_eq!(out["user_id"], "kept");
        assert_eq!(out["actor"], "not an object");
    }

    #[test]
    fn a_dotted_literal_key_is_taken_first() {
        let mapping = Mapping::from_pairs([("prompt_tokens", "usage.input_tokens")]);
        let out = mapped(&mapping, json!({"usage.input_tokens": 5}));
        assert_eq!(out["prompt_tokens"], 5);
    }

    #[test]
    fn validation_names_the_bad_entry() {
        let unknown = Mapping::from_pairs([("usr_id", "actor.id")]);
        assert_eq!(
            unknown.validate(),
            Err(MappingError::UnknownTarget("usr_id".into()))
        );
        let empty = Mapping::from_pairs([("user_id", "actor..id")]);
        assert!(matches!(
            empty.validate(),
            Err(MappingError::EmptySegment { .. })
        ));
        assert!(Mapping::from_pairs([("user_id", "actor.id")])
            .validate()
            .is_ok());
    }
}

//! A small YAML writer for Sigma documents: block mappings and sequences, every string
//! double-quoted (JSON escapes are valid YAML escapes), so no value can change meaning
//! (`no`, `1e3`, `*`) whatever the rule author wrote.

use serde_json::Value;

/// One YAML document (without the `---` separator) of a JSON object.
pub(super) fn document(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(_) => block(value, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                out.push_str(&pad);
                out.push_str(&key_text(key));
                out.push(':');
                match child {
                    Value::Object(inner) if !inner.is_empty() => {
                        out.push('\n');
                        block(child, indent + 2, out);
                    }
                    Value::Array(items) if !items.is_empty() => {
                        out.push('\n');
                        block(child, indent + 2, out);
                    }
                    other => {
                        out.push(' ');
                        out.push_str(&scalar(other));
                        out.push('\n');
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(inner) if !inner.is_empty() => {
                        // The first key shares the dash's line; the rest align under it.
                        let mut nested = String::new();
                        block(item, indent + 2, &mut nested);
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(nested.trim_start());
                    }
                    other => {
                        out.push_str(&pad);
                        out.push_str("- ");
                        out.push_str(&scalar(other));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&pad);
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

/// Keys are written plain when they are simple names (`group-by`, `field|contains`).
fn key_text(key: &str) -> String {
    let simple = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '|' | '{' | '}'));
    if simple {
        key.to_string()
    } else {
        quoted(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_block_yaml_with_quoted_strings() {
        let value = json!({
            "title": "A \"quoted\" title: with colon",
            "tags": ["atlas.aml.t0051"],
            "empty": [],
            "detection": {"sel": {"field|re": "^a\\d+$", "n|gt": 3, "flag": true}, "condition": "sel"},
            "list": [{"a": 1, "b": "x"}],
            "odd key": null,
        });
        assert_eq!(
            document(&value),
            "title: \"A \\\"quoted\\\" title: with colon\"\n\
             tags:\n  - \"atlas.aml.t0051\"\n\
             empty: []\n\
             detection:\n  sel:\n    field|re: \"^a\\\\d+$\"\n    n|gt: 3\n    flag: true\n  condition: \"sel\"\n\
             list:\n  - a: 1\n    b: \"x\"\n\
             \"odd key\": null\n"
        );
    }
}

//! A small scanner of the packs' query languages (SPL, ES|QL, Lucene, KQL): which words of a
//! query are field names. String literals and comments are skipped, function names and
//! keywords are known words, names a query defines itself (`... as x`, `x = ...`) are its
//! own; every other word is a field.

use aiwarden::record::catalogue::FieldKind;
use std::collections::{BTreeMap, BTreeSet};

/// The query languages of the packs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Language {
    Spl,
    Esql,
    Lucene,
    Kql,
}

const SPL_WORDS: &[&str] = &[
    "search",
    "where",
    "rex",
    "field",
    "stats",
    "timechart",
    "eval",
    "rename",
    "table",
    "sort",
    "head",
    "bin",
    "span",
    "by",
    "as",
    "and",
    "or",
    "not",
    "in",
    "fillnull",
    "value",
    "mvexpand",
    "limit",
    "true",
    "false",
    "null",
    "count",
    "dc",
    "sum",
    "values",
    "max",
    "min",
    "avg",
];
const ESQL_WORDS: &[&str] = &[
    "from",
    "metadata",
    "where",
    "eval",
    "stats",
    "by",
    "sort",
    "desc",
    "asc",
    "limit",
    "mv_expand",
    "is",
    "not",
    "null",
    "and",
    "or",
    "in",
    "day",
    "days",
    "hour",
    "hours",
    "minute",
    "minutes",
    "true",
    "false",
    "_id",
    "_index",
    "_version",
    "rlike",
    "like",
];
const KQL_WORDS: &[&str] = &[
    "where",
    "summarize",
    "by",
    "extend",
    "project",
    "order",
    "desc",
    "asc",
    "top",
    "mv",
    "expand",
    "to",
    "typeof",
    "string",
    "and",
    "or",
    "not",
    "in",
    "has",
    "contains",
    "true",
    "false",
    "dynamic",
    "let",
    "matches",
    "regex",
];
const LUCENE_WORDS: &[&str] = &["and", "or", "not"];

/// Fields a SIEM adds itself, which a query may name.
fn builtins(language: Language) -> &'static [&'static str] {
    match language {
        Language::Spl => &["sourcetype", "index", "_time", "host", "source"],
        Language::Esql => &["@timestamp"],
        Language::Lucene => &[],
        Language::Kql => &["AIWardenEvents_CL", "AIWardenAlerts_CL", "TimeGenerated"],
    }
}

/// One word of a query, with what follows it.
#[derive(Debug)]
struct Word {
    text: String,
    /// The next non-space character.
    next: Option<char>,
    /// The word before it (lowercased), if any.
    previous: Option<String>,
    /// Whether the next non-space characters are a single `=` (a definition, not `==`).
    defines: bool,
    /// Whether it stands right after `=` in a Splunk `search` segment: a value, not a field.
    search_value: bool,
}

fn is_word_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '@'
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '@' | '{' | '}')
}

/// Split a query into words, skipping literals, comments and macros.
fn words(query: &str, language: Language) -> Vec<Word> {
    // An ES|QL query opens with `FROM <index patterns> [METADATA ...]`: no fields there.
    let query = match (language, query.find('|')) {
        (Language::Esql, Some(pipe))
            if query.trim_start().to_ascii_lowercase().starts_with("from") =>
        {
            &query[pipe..]
        }
        _ => query,
    };
    let chars: Vec<char> = query.chars().collect();
    // The command of the current Splunk segment (`search` before the first pipe).
    let mut command = String::from("search");
    let mut expect_command = false;
    let mut out: Vec<Word> = Vec::new();
    let mut i = 0;
    let next_non_space = |from: usize| chars[from..].iter().copied().find(|c| !c.is_whitespace());
    while i < chars.len() {
        let c = chars[i];
        if c == '/' && chars.get(i + 1) == Some(&'/') && language != Language::Spl {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '`' && language == Language::Spl {
            // A macro: its arguments are names the query defined before.
            i += 1;
            while i < chars.len() && chars[i] != '`' {
                i += 1;
            }
            i += 1;
        } else if c == '"' || (c == '\'' && language != Language::Spl) {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            let literal: String = chars[start..i.min(chars.len())].iter().collect();
            i += 1;
            // Splunk `rex` defines a field per named group: `"(?<name>...)"`.
            if language == Language::Spl {
                for group in literal.split("(?<").skip(1) {
                    if let Some((name, _)) = group.split_once('>') {
                        out.push(Word {
                            text: name.to_string(),
                            next: None,
                            previous: None,
                            defines: true,
                            search_value: false,
                        });
                    }
                }
            }
            // Splunk quotes field names with braces: `"policy_flags{}"="x"`, `"a{}" IN (...)`.
            let rest: String = chars[i.min(chars.len())..].iter().collect();
            let rest = rest.trim_start();
            if language == Language::Spl
                && (rest.starts_with('=')
                    || rest.starts_with("!=")
                    || rest.to_ascii_uppercase().starts_with("IN "))
            {
                out.push(Word {
                    text: literal,
                    next: Some('='),
                    previous: None,
                    defines: false,
                    search_value: false,
                });
            }
        } else if c == '\'' {
            // SPL `where`/`eval`: single quotes name a field.
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            out.push(Word {
                text: chars[start..i.min(chars.len())].iter().collect(),
                next: None,
                previous: None,
                defines: false,
                search_value: false,
            });
            i += 1;
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if is_word_start(c) {
            let start = i;
            while i < chars.len() && is_word_char(chars[i]) {
                i += 1;
            }
            // A trailing dot is Splunk's string concatenation, not part of the name.
            let text: String = chars[start..i]
                .iter()
                .collect::<String>()
                .trim_end_matches('.')
                .to_string();
            let next = next_non_space(i);
            let after: String = chars[i..].iter().collect::<String>();
            let after = after.trim_start();
            // In Splunk only `eval` defines with `=`; `search` and `where` compare.
            let defines = after.starts_with('=')
                && !after.starts_with("==")
                && (language != Language::Spl || command == "eval");
            let previous = out.last().map(|w| w.text.to_ascii_lowercase());
            let before = chars[..start].iter().rev().find(|c| !c.is_whitespace());
            let search_value = language == Language::Spl
                && command == "search"
                && matches!(before, Some('=' | '<' | '>'));
            if expect_command {
                command = text.to_ascii_lowercase();
                expect_command = false;
            }
            out.push(Word {
                text,
                next,
                previous,
                defines,
                search_value,
            });
        } else {
            if c == '|' {
                expect_command = true;
            }
            i += 1;
        }
    }
    out
}

/// The fields a query names that `known` does not have, and numeric misuse.
pub(super) fn problems(
    query: &str,
    language: Language,
    known: &BTreeMap<String, FieldKind>,
) -> Vec<String> {
    let words = words(query, language);
    let keywords = match language {
        Language::Spl => SPL_WORDS,
        Language::Esql => ESQL_WORDS,
        Language::Kql => KQL_WORDS,
        Language::Lucene => LUCENE_WORDS,
    };
    // Names the query defines: `x = ...` (eval, stats, extend, summarize) and `... as x`.
    let defined: BTreeSet<String> = words
        .iter()
        .filter(|w| w.defines || w.previous.as_deref() == Some("as"))
        .filter(|_| language != Language::Lucene)
        .map(|w| w.text.clone())
        .collect();
    let mut found = Vec::new();
    for (index, word) in words.iter().enumerate() {
        let lower = word.text.to_ascii_lowercase();
        let is_function = word.next == Some('(');
        if is_function {
            if matches!(lower.as_str(), "sum" | "avg") {
                if let Some(argument) = words.get(index + 1) {
                    if let Some(kind) = known.get(&argument.text) {
                        if !kind.is_numeric() {
                            found.push(format!(
                                "{}({}) of a {kind:?} field",
                                word.text, argument.text
                            ));
                        }
                    }
                }
            }
            continue;
        }
        if (language == Language::Lucene && word.next != Some(':')) || word.search_value {
            continue;
        }
        if keywords.contains(&lower.as_str())
            || defined.contains(&word.text)
            || builtins(language).contains(&word.text.as_str())
            || known.contains_key(&word.text)
        {
            continue;
        }
        found.push(format!("`{}` is not a field this SIEM receives", word.text));
    }
    found
}

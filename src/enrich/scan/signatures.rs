//! Signature files: parsing and validation (errors name the file, the signature and the field),
//! then compilation of every phrase into one Aho-Corasick automaton and every pattern into one
//! `RegexSet` per side, so matching cost does not grow with the number of signatures.
//!
//! The file format is documented in `rules/signatures/prompt-injection.toml`.

use super::category::{Category, CategorySet};
use super::normalise;
use super::{Match, Origin, ScanError};
use aho_corasick::{AhoCorasick, MatchKind};
use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

/// Compiled size limit of one pattern (and of the whole set, times the pattern count): a
/// guard against a signature that would blow up, far above what a sane one needs.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Lazy-DFA cache of the pattern set (per thread using it).
const SET_DFA_CACHE: usize = 32 << 20;
/// A phrase shorter than this (after normalisation) would match all over ordinary text.
const MIN_PHRASE_CHARS: usize = 3;

/// Which side of the conversation a signature is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// User prompts (and text smuggled inside them).
    Prompt,
    /// Model responses.
    Response,
    /// Both.
    Both,
}

impl Scope {
    fn covers(self, side: Scope) -> bool {
        self == Scope::Both || self == side
    }
}

/// One validated signature.
#[derive(Debug)]
pub(super) struct Signature {
    id: Arc<str>,
    category: Category,
    scope: Scope,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// Normalised phrases.
    Phrases(Vec<String>),
    /// The pattern as compiled (ASCII word boundaries substituted).
    Pattern(String),
}

/// Parse and validate every file; ids must be unique across files.
pub(super) fn parse_files(files: &[(String, String)]) -> Result<Vec<Signature>, ScanError> {
    let mut signatures = Vec::new();
    let mut seen: HashMap<Arc<str>, &str> = HashMap::new();
    for (file, text) in files {
        for signature in parse_file(file, text)? {
            if let Some(first) = seen.get(&signature.id) {
                return Err(invalid(
                    file,
                    &signature.id,
                    "id",
                    format!("duplicate signature id (already defined in {first})"),
                ));
            }
            seen.insert(signature.id.clone(), file);
            signatures.push(signature);
        }
    }
    Ok(signatures)
}

fn invalid(file: &str, id: &str, field: &str, message: String) -> ScanError {
    ScanError::Invalid {
        file: file.to_string(),
        signature: id.to_string(),
        field: field.to_string(),
        message,
    }
}

fn parse_file(file: &str, text: &str) -> Result<Vec<Signature>, ScanError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ScanError::Syntax {
            file: file.to_string(),
            message: e.message().to_string(),
            line: e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1),
        })?;
    let mut out = Vec::new();
    for (key, value) in table {
        if key != "signature" {
            return Err(invalid(
                file,
                "-",
                &key,
                "unknown key (expected `[[signature]]` tables)".into(),
            ));
        }
        let toml::Value::Array(entries) = value else {
            return Err(invalid(
                file,
                "-",
                "signature",
                "must be an array of tables (`[[signature]]`)".into(),
            ));
        };
        for (index, entry) in entries.into_iter().enumerate() {
            let toml::Value::Table(entry) = entry else {
                return Err(invalid(
                    file,
                    &format!("#{}", index + 1),
                    "signature",
                    "must be a table".into(),
                ));
            };
            if let Some(signature) = parse_entry(file, index, entry)? {
                out.push(signature);
            }
        }
    }
    Ok(out)
}

/// One `[[signature]]` table; `None` when it is disabled (still validated).
fn parse_entry(
    file: &str,
    index: usize,
    mut entry: toml::Table,
) -> Result<Option<Signature>, ScanError> {
    // Until the id is known, name the entry by its position.
    let position = format!("#{}", index + 1);
    let id = match entry.remove("id") {
        Some(toml::Value::String(id)) => id.trim().to_string(),
        Some(_) => return Err(invalid(file, &position, "id", "must be a string".into())),
        None => return Err(invalid(file, &position, "id", "missing".into())),
    };
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            file,
            &position,
            "id",
            format!("`{id}` is not a valid id (letters, digits, `-`, `_`, `.`)"),
        ));
    }
    let fail = |field: &str, message: String| invalid(file, &id, field, message);
    let string = |entry: &mut toml::Table, field: &str| match entry.remove(field) {
        Some(toml::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(fail(field, "must be a string".into())),
        None => Ok(None),
    };
    let category_label =
        string(&mut entry, "category")?.ok_or_else(|| fail("category", "missing".into()))?;
    let category = Category::from_label(category_label.trim()).ok_or_else(|| {
        let known: Vec<_> = Category::ALL.iter().map(|c| c.as_str()).collect();
        fail(
            "category",
            format!(
                "unknown category `{category_label}` (known: {})",
                known.join(", ")
            ),
        )
    })?;
    let description = string(&mut entry, "description")?.unwrap_or_default();
    if description.trim().is_empty() {
        return Err(fail(
            "description",
            "missing or empty: say what the signature catches".into(),
        ));
    }
    // The leak category only makes sense on responses; everything else defaults to prompts.
    let default_scope = if category == Category::SystemPromptLeak {
        Scope::Response
    } else {
        Scope::Prompt
    };
    let scope = match string(&mut entry, "scope")?.as_deref() {
        None => default_scope,
        Some("prompt") => Scope::Prompt,
        Some("response") => Scope::Response,
        Some("both") => Scope::Both,
        Some(other) => {
            return Err(fail(
                "scope",
                format!("`{other}` is not one of prompt, response, both"),
            ))
        }
    };
    let enabled = match entry.remove("enabled") {
        None => true,
        Some(toml::Value::Boolean(b)) => b,
        Some(_) => return Err(fail("enabled", "must be true or false".into())),
    };
    let pattern = string(&mut entry, "pattern")?;
    let phrases = match entry.remove("phrases") {
        None => None,
        Some(toml::Value::Array(items)) => {
            Some(phrase_list(items).map_err(|message| fail("phrases", message))?)
        }
        Some(_) => return Err(fail("phrases", "must be an array of strings".into())),
    };
    if let Some((key, _)) = entry.iter().next() {
        return Err(fail(
            key,
            "unknown field (known: id, category, description, pattern, phrases, scope, enabled)"
                .into(),
        ));
    }
    let body = match (pattern, phrases) {
        (Some(pattern), None) => {
            Body::Pattern(check_pattern(&pattern).map_err(|message| fail("pattern", message))?)
        }
        (None, Some(phrases)) => Body::Phrases(phrases),
        _ => {
            return Err(fail(
                "pattern",
                "give exactly one of `pattern` or `phrases`".into(),
            ))
        }
    };
    Ok(enabled.then(|| Signature {
        id: Arc::from(id.as_str()),
        category,
        scope,
        body,
    }))
}

/// Normalise phrases exactly like scanned text; reject ones too short to be specific.
fn phrase_list(items: Vec<toml::Value>) -> Result<Vec<String>, String> {
    if items.is_empty() {
        return Err("empty list".into());
    }
    let mut scratch = String::new();
    items
        .into_iter()
        .enumerate()
        .map(|(n, item)| {
            let toml::Value::String(phrase) = item else {
                return Err(format!("item {} is not a string", n + 1));
            };
            let mut normalised = String::new();
            normalise::normalise(&phrase, &mut scratch, &mut normalised);
            if normalised.chars().count() < MIN_PHRASE_CHARS {
                return Err(format!("`{phrase}` is too short to be specific (at least {MIN_PHRASE_CHARS} characters)"));
            }
            Ok(normalised)
        })
        .collect()
}

/// Compile a pattern on its own to report its error here, and refuse one that matches the
/// empty string (it would fire on every text).
fn check_pattern(pattern: &str) -> Result<String, String> {
    let pattern = ascii_word_boundaries(pattern);
    let regex = pattern_builder(&pattern)
        .build()
        .map_err(|e| e.to_string())?;
    if regex.is_match("") || regex.is_match(" ") {
        return Err("matches empty text; it would fire on everything".into());
    }
    Ok(pattern)
}

fn pattern_builder(pattern: &str) -> RegexBuilder {
    let mut builder = RegexBuilder::new(pattern);
    // Text is lower-cased already; this forgives a capital letter in a signature.
    builder
        .case_insensitive(true)
        .size_limit(PATTERN_SIZE_LIMIT);
    builder
}

/// Rewrite `\b` as `(?-u:\b)`. A Unicode word boundary stops the regex engine's fast DFA on
/// any non-ASCII text; after normalisation the words signatures look for are ASCII anyway.
fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') if chars.peek() != Some(&'{') => out.push_str("(?-u:\\b)"),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A phrase occurrence counts only at word boundaries: "dan mode" must not fire in "sedan
/// model". Each phrase remembers whether its ends are word characters.
#[derive(Debug, Clone, Copy)]
struct PhraseOwner {
    signature: usize,
    left_boundary: bool,
    right_boundary: bool,
}

/// The compiled signatures of one side (prompt or response).
#[derive(Debug, Default)]
pub(super) struct Engine {
    signatures: Vec<(Arc<str>, Category)>,
    phrases: Option<AhoCorasick>,
    owners: Vec<PhraseOwner>,
    set: Option<RegexSet>,
    /// Per set index: the signature and its regex, run only to find the span on a hit.
    regexes: Vec<(usize, LazyRegex)>,
}

/// A signature's own regex, compiled at its first hit rather than at start: the set finds the
/// hits, and most patterns never match, while each compiled regex holds ~70 KB of automata
/// (2.3 MB of the agent's peak heap for the default pack, README "Benchmarks").
#[derive(Debug)]
struct LazyRegex {
    pattern: Box<str>,
    compiled: OnceLock<Option<Regex>>,
}

impl LazyRegex {
    /// Check that `pattern` compiles (so a bad signature is refused at load), keeping only
    /// its text.
    fn checked(pattern: &str) -> Result<LazyRegex, regex::Error> {
        pattern_builder(pattern).build()?;
        Ok(LazyRegex {
            pattern: pattern.into(),
            compiled: OnceLock::new(),
        })
    }

    /// The compiled regex; `None` only if it no longer compiles, which cannot happen for a
    /// pattern [`LazyRegex::checked`] accepted (compilation is deterministic).
    fn get(&self) -> Option<&Regex> {
        self.compiled
            .get_or_init(|| pattern_builder(&self.pattern).build().ok())
            .as_ref()
    }
}

impl Engine {
    /// Compile the signatures covering `side`.
    pub(super) fn build(all: &[Signature], side: Scope) -> Result<Engine, ScanError> {
        let mut signatures = Vec::new();
        let mut phrases = Vec::new();
        let mut owners = Vec::new();
        let mut patterns = Vec::new();
        let mut regexes = Vec::new();
        let mut distinct = HashSet::new();
        for signature in all.iter().filter(|s| s.scope.covers(side)) {
            let index = signatures.len();
            signatures.push((signature.id.clone(), signature.category));
            match &signature.body {
                Body::Phrases(list) => {
                    for phrase in list {
                        if !distinct.insert((index, phrase.as_str())) {
                            continue;
                        }
                        owners.push(PhraseOwner {
                            signature: index,
                            left_boundary: phrase.chars().next().is_some_and(is_word),
                            right_boundary: phrase.chars().next_back().is_some_and(is_word),
                        });
                        phrases.push(phrase.as_str());
                    }
                }
                Body::Pattern(pattern) => {
                    let compile = |e: regex::Error| ScanError::Compile {
                        message: format!("signature `{}`: {e}", signature.id),
                    };
                    regexes.push((index, LazyRegex::checked(pattern).map_err(compile)?));
                    patterns.push(pattern.as_str());
                }
            }
        }
        let phrases = if phrases.is_empty() {
            None
        } else {
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(&phrases)
                .map_err(|e| ScanError::Compile {
                    message: format!("phrase automaton: {e}"),
                })?;
            Some(automaton)
        };
        let set = if patterns.is_empty() {
            None
        } else {
            let set = RegexSetBuilder::new(&patterns)
                .case_insensitive(true)
                .size_limit(PATTERN_SIZE_LIMIT.saturating_mul(patterns.len()))
                // The set's lazy DFA builds states for all patterns at once; with the default
                // cache it thrashes on word gaps and falls back to a far slower engine.
                .dfa_size_limit(SET_DFA_CACHE)
                .build()
                .map_err(|e| ScanError::Compile {
                    message: format!("pattern set: {e}"),
                })?;
            Some(set)
        };
        Ok(Engine {
            signatures,
            phrases,
            owners,
            set,
            regexes,
        })
    }

    /// Number of signatures on this side.
    pub(super) fn len(&self) -> usize {
        self.signatures.len()
    }

    /// Match `text` (normalised), appending at most `room` new matches (one per signature per
    /// origin); returns the categories that matched, whether or not there was room to record.
    pub(super) fn scan(
        &self,
        text: &str,
        origin: Origin,
        room: usize,
        matches: &mut Vec<Match>,
    ) -> CategorySet {
        let mut found = CategorySet::new();
        let first = matches.len();
        let mut record = |signature: usize, start: usize, end: usize, matches: &mut Vec<Match>| {
            let (id, category) = &self.signatures[signature];
            found.insert(*category);
            let recorded = matches[first..]
                .iter()
                .any(|m| Arc::ptr_eq(&m.signature_id, id));
            if !recorded && matches.len() - first < room {
                matches.push(Match {
                    signature_id: id.clone(),
                    category: *category,
                    origin,
                    span: start..end,
                });
            }
        };
        if let Some(automaton) = &self.phrases {
            for hit in automaton.find_overlapping_iter(text) {
                let owner = self.owners[hit.pattern().as_usize()];
                let left_ok = !owner.left_boundary
                    || !text[..hit.start()].chars().next_back().is_some_and(is_word);
                let right_ok =
                    !owner.right_boundary || !text[hit.end()..].chars().next().is_some_and(is_word);
                if left_ok && right_ok {
                    record(owner.signature, hit.start(), hit.end(), matches);
                }
            }
        }
        if let Some(set) = &self.set {
            for index in set.matches(text).iter() {
                let (signature, regex) = &self.regexes[index];
                match regex.get() {
                    Some(regex) => {
                        if let Some(hit) = regex.find(text) {
                            record(*signature, hit.start(), hit.end(), matches);
                        }
                    }
                    // The set matched; a hit without its span still counts.
                    None => record(*signature, 0, 0, matches),
                }
            }
        }
        found
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

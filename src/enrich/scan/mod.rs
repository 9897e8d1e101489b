//! A pure text scanner for prompt injection and system-prompt leaks.
//!
//! [`Scanner`] is compiled once from signature files (TOML text, see
//! `rules/signatures/`) and is `Send + Sync`; [`Scanner::scan_prompt`] and
//! [`Scanner::scan_response`] return [`Findings`]: the [`Category`]s found, the signatures
//! that matched with their byte spans in the normalised text (never the text itself, so
//! findings can be logged and forwarded under SPEC §6), and counters.
//!
//! One scan:
//!
//! 1. strip invisible characters, counting the suspicious ones and decoding Unicode TAG
//!    characters ("ASCII smuggling") into a hidden text ([`normalise`]);
//! 2. normalise: NFKC, lower-case, homoglyph folding, whitespace collapsed;
//! 3. match every signature of the side at once (one Aho-Corasick automaton for phrases, one
//!    `RegexSet` for patterns) and look for exfiltration links;
//! 4. on the response side, look for the operator's system-prompt markers;
//! 5. do 3–4 again on the hidden TAG text and on base64/hex segments that decode to text
//!    (once: decoded text is not decoded again), within [`ScanSettings`] bounds;
//! 6. add [`Category::InvisibleUnicode`] and [`Category::AbnormallyLong`] from the counters.
//!
//! Pure: no I/O, no clock. Nothing here panics on any input.

mod category;
mod decode;
mod exfil;
mod normalise;
mod signatures;

#[cfg(test)]
mod corpus;
#[cfg(test)]
mod tests;

pub use category::{Category, CategorySet};

use signatures::{Engine, Scope};
use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

/// The default signature pack (`rules/signatures/` in the repository), built in.
pub const BUILTIN_SIGNATURES: &[(&str, &str)] = &[
    (
        "prompt-injection.toml",
        include_str!("../../../rules/signatures/prompt-injection.toml"),
    ),
    (
        "jailbreak.toml",
        include_str!("../../../rules/signatures/jailbreak.toml"),
    ),
    (
        "system-prompt-leak.toml",
        include_str!("../../../rules/signatures/system-prompt-leak.toml"),
    ),
];

/// Signature id reported for an exfiltration link (a built-in check, not a signature file).
pub const EXFIL_LINK_ID: &str = "builtin.exfiltration-link";
/// Signature id reported for a system-prompt marker found in a response.
pub const MARKER_ID: &str = "builtin.system-prompt-marker";

/// Signature files that cannot be used. Messages name the file, the signature and the field,
/// never scanned text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScanError {
    /// The file is not valid TOML.
    #[error("{file}: invalid TOML{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
        /// Line of the error, when known.
        line: Option<usize>,
    },
    /// A signature is invalid.
    #[error("{file}: signature `{signature}`, field `{field}`: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// The signature id (or `#n`, its position, when the id itself is the problem).
        signature: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The signatures are valid one by one but could not be compiled together.
    #[error("cannot compile signatures: {message}")]
    Compile {
        /// Why.
        message: String,
    },
}

/// Bounds and thresholds of a scan. The defaults suit chat prompts and responses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSettings {
    /// Input longer than this many characters is [`Category::AbnormallyLong`].
    pub long_input_chars: usize,
    /// This many suspicious invisible characters (or more) is [`Category::InvisibleUnicode`].
    pub invisible_threshold: usize,
    /// Only the first this-many bytes are scanned (the rest is counted in `input_chars` and
    /// flagged by `truncated`); bounds the cost of a hostile 10 MB prompt.
    pub max_scan_bytes: usize,
    /// Encoded segments decoded and re-scanned, at most.
    pub max_decoded_segments: usize,
    /// Bytes decoded per text, at most.
    pub max_decoded_bytes: usize,
    /// Matches recorded per text, at most (categories are still complete).
    pub max_matches: usize,
    /// Markers shorter than this (normalised) are ignored: they would match ordinary words.
    pub min_marker_chars: usize,
}

impl Default for ScanSettings {
    fn default() -> ScanSettings {
        ScanSettings {
            long_input_chars: 20_000,
            invisible_threshold: 3,
            max_scan_bytes: 1 << 20,
            max_decoded_segments: 8,
            max_decoded_bytes: 16 * 1024,
            max_matches: 64,
            min_marker_chars: 6,
        }
    }
}

/// Which text a match was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The (normalised) text itself.
    Text,
    /// Text hidden in Unicode TAG characters, decoded to ASCII and normalised.
    Hidden,
    /// The n-th (from 0) base64 or hex segment that decoded to text, normalised.
    Decoded(usize),
}

/// One signature (or built-in check) that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The signature id (or [`EXFIL_LINK_ID`], [`MARKER_ID`]).
    pub signature_id: Arc<str>,
    /// What it means.
    pub category: Category,
    /// Which text the span refers to.
    pub origin: Origin,
    /// Byte span in the normalised form of that text (never the text itself).
    pub span: Range<usize>,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Every category found (including ones whose matches did not fit `max_matches`).
    pub categories: CategorySet,
    /// The matches, at most one per signature and origin, at most `max_matches`.
    pub matches: Vec<Match>,
    /// Suspicious invisible or format characters in the input.
    pub invisible_chars: usize,
    /// Characters of text hidden in Unicode TAG characters.
    pub hidden_chars: usize,
    /// Encoded segments that decoded to text and were scanned.
    pub decoded_segments: usize,
    /// Characters (Unicode scalar values) in the input.
    pub input_chars: usize,
    /// Whether only the first `max_scan_bytes` were scanned.
    pub truncated: bool,
}

impl Findings {
    /// Whether nothing was found.
    pub fn is_clean(&self) -> bool {
        self.categories.is_empty()
    }

    /// The ATLAS technique ids of the categories found, sorted, without repeats.
    pub fn techniques(&self) -> Vec<&'static str> {
        let mut ids: Vec<_> = self
            .categories
            .iter()
            .map(Category::atlas_technique)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Scratch space reused across scans so a scan allocates nothing once warmed up (apart from
/// the matches it returns). One per thread; [`Scanner::scan_prompt`] keeps one thread-local.
#[derive(Debug, Default)]
pub struct ScanBuffer {
    stage: String,
    text: String,
    hidden: String,
    inner_stage: String,
    inner: String,
    markers: Vec<String>,
    bytes: Vec<u8>,
}

impl ScanBuffer {
    /// An empty buffer.
    pub fn new() -> ScanBuffer {
        ScanBuffer::default()
    }

    /// Give back memory after an unusually large text, so a thread does not keep it.
    fn shrink(&mut self, keep: usize) {
        for s in [
            &mut self.stage,
            &mut self.text,
            &mut self.hidden,
            &mut self.inner_stage,
            &mut self.inner,
        ] {
            if s.capacity() > keep {
                *s = String::new();
            }
        }
    }
}

/// Scratch memory kept per thread beyond which buffers are released after a scan.
const KEEP_BUFFER_BYTES: usize = 64 * 1024;

thread_local! {
    static BUFFER: RefCell<ScanBuffer> = RefCell::new(ScanBuffer::new());
}

/// The compiled scanner. Build once, share freely (`Send + Sync`).
#[derive(Debug)]
pub struct Scanner {
    prompt: Engine,
    response: Engine,
    links: exfil::LinkFinder,
    settings: ScanSettings,
    exfil_id: Arc<str>,
    marker_id: Arc<str>,
}

impl Scanner {
    /// Compile signature files given as `(name, TOML text)`. Errors name the file, the
    /// signature id and the field.
    pub fn from_signature_files(files: &[(String, String)]) -> Result<Scanner, ScanError> {
        let all = signatures::parse_files(files)?;
        // Both sides compile at once: decoding waits for the scanner at start, and the second
        // core is otherwise idle then.
        let (prompt, response) = std::thread::scope(|scope| {
            let response = std::thread::Builder::new()
                .name("aiwarden-scan-compile".into())
                .spawn_scoped(scope, || Engine::build(&all, Scope::Response));
            let prompt = Engine::build(&all, Scope::Prompt);
            let response = match response {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(ScanError::Compile {
                        message: "the response-side compile panicked".into(),
                    })
                }),
                // No thread to spare: compile it here, after the prompt side.
                Err(_) => Engine::build(&all, Scope::Response),
            };
            (prompt, response)
        });
        Ok(Scanner {
            prompt: prompt?,
            response: response?,
            ..Scanner::without_signatures()
        })
    }

    /// The built-in signature pack. A test guarantees it compiles; were it ever not to, this
    /// falls back to a scanner with only the built-in checks rather than panicking.
    pub fn builtin() -> Scanner {
        let files: Vec<(String, String)> = BUILTIN_SIGNATURES
            .iter()
            .map(|(name, text)| {
                (
                    format!("(built-in) rules/signatures/{name}"),
                    (*text).to_string(),
                )
            })
            .collect();
        Scanner::from_signature_files(&files).unwrap_or_else(|_| Scanner::without_signatures())
    }

    /// A scanner with the built-in checks only (links, markers, invisible characters,
    /// encoded segments, length); cannot fail.
    pub fn without_signatures() -> Scanner {
        Scanner {
            prompt: Engine::default(),
            response: Engine::default(),
            links: exfil::LinkFinder::new(),
            settings: ScanSettings::default(),
            exfil_id: Arc::from(EXFIL_LINK_ID),
            marker_id: Arc::from(MARKER_ID),
        }
    }

    /// The same scanner with other settings.
    pub fn with_settings(mut self, settings: ScanSettings) -> Scanner {
        self.settings = settings;
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &ScanSettings {
        &self.settings
    }

    /// Number of signatures matched against prompts and against responses.
    pub fn signature_counts(&self) -> (usize, usize) {
        (self.prompt.len(), self.response.len())
    }

    /// Scan a user prompt.
    pub fn scan_prompt(&self, text: &str) -> Findings {
        with_buffer(|buffer| self.scan_prompt_with(text, buffer))
    }

    /// Scan a model response; `system_prompt_markers` are canary strings planted in the
    /// system prompt, any of which appearing in the response is a leak.
    pub fn scan_response(&self, text: &str, system_prompt_markers: &[String]) -> Findings {
        with_buffer(|buffer| self.scan_response_with(text, system_prompt_markers, buffer))
    }

    /// [`Scanner::scan_prompt`] with caller-owned scratch space.
    pub fn scan_prompt_with(&self, text: &str, buffer: &mut ScanBuffer) -> Findings {
        self.scan(text, Side::Prompt, &[], buffer)
    }

    /// [`Scanner::scan_response`] with caller-owned scratch space.
    pub fn scan_response_with(
        &self,
        text: &str,
        system_prompt_markers: &[String],
        buffer: &mut ScanBuffer,
    ) -> Findings {
        self.scan(text, Side::Response, system_prompt_markers, buffer)
    }

    fn scan(&self, text: &str, side: Side, markers: &[String], buf: &mut ScanBuffer) -> Findings {
        let settings = &self.settings;
        let mut findings = Findings {
            input_chars: char_count(text),
            ..Findings::default()
        };
        let scanned = prefix(text, settings.max_scan_bytes);
        findings.truncated = scanned.len() < text.len();
        findings.invisible_chars =
            normalise::strip_invisible(scanned, &mut buf.stage, Some(&mut buf.hidden));
        findings.hidden_chars = buf.hidden.chars().count();
        normalise::fold(&buf.stage, &mut buf.text);
        let markers = normalise_markers(markers, settings.min_marker_chars, buf);

        let mut pass = Pass {
            scanner: self,
            side,
            markers: &buf.markers[..markers],
            findings: &mut findings,
        };
        pass.run(&buf.text, Origin::Text);
        if !buf.hidden.is_empty() {
            normalise::fold(&buf.hidden, &mut buf.inner);
            pass.run(&buf.inner, Origin::Hidden);
        }
        let budget = decode::Budget {
            segments: settings.max_decoded_segments,
            bytes: settings.max_decoded_bytes,
        };
        let (inner_stage, inner) = (&mut buf.inner_stage, &mut buf.inner);
        let mut index = 0;
        let decoded = decode::each_segment(&buf.stage, budget, &mut buf.bytes, |segment| {
            normalise::normalise(segment, inner_stage, inner);
            let found = pass.run(inner, Origin::Decoded(index));
            if !found.is_empty() {
                pass.findings.categories.insert(Category::EncodedPayload);
            }
            index += 1;
        });
        findings.decoded_segments = decoded;
        if findings.invisible_chars >= settings.invisible_threshold.max(1) {
            findings.categories.insert(Category::InvisibleUnicode);
        }
        if findings.input_chars > settings.long_input_chars {
            findings.categories.insert(Category::AbnormallyLong);
        }
        buf.shrink(KEEP_BUFFER_BYTES);
        findings
    }
}

/// Which side a scan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Prompt,
    Response,
}

/// The matching steps applied to each text of one scan (the text, hidden text, decoded
/// segments), accumulating into one [`Findings`].
struct Pass<'a> {
    scanner: &'a Scanner,
    side: Side,
    markers: &'a [String],
    findings: &'a mut Findings,
}

impl Pass<'_> {
    /// Signatures, links and markers over one normalised text; returns what it found.
    fn run(&mut self, text: &str, origin: Origin) -> CategorySet {
        let scanner = self.scanner;
        let room = scanner
            .settings
            .max_matches
            .saturating_sub(self.findings.matches.len());
        let engine = match self.side {
            Side::Prompt => &scanner.prompt,
            Side::Response => &scanner.response,
        };
        let mut found = engine.scan(text, origin, room, &mut self.findings.matches);
        let matches = &mut self.findings.matches;
        let max = scanner.settings.max_matches;
        let mut push = |id: &Arc<str>, category: Category, span: Range<usize>| {
            found.insert(category);
            if matches.len() < max {
                matches.push(Match {
                    signature_id: id.clone(),
                    category,
                    origin,
                    span,
                });
            }
        };
        let mut link = None;
        scanner
            .links
            .find(text, self.side == Side::Response, |span| {
                link.get_or_insert(span);
            });
        if let Some(span) = link {
            push(&scanner.exfil_id, Category::ExfiltrationLink, span);
        }
        for marker in self.markers {
            if let Some(start) = text.find(marker.as_str()) {
                push(
                    &scanner.marker_id,
                    Category::SystemPromptLeak,
                    start..start + marker.len(),
                );
                break;
            }
        }
        self.findings.categories.extend(found);
        found
    }
}

/// Normalise the markers into the buffer's marker slots (reusing their allocations), keeping
/// those long enough to be specific; returns how many slots are filled.
fn normalise_markers(markers: &[String], min_chars: usize, buf: &mut ScanBuffer) -> usize {
    let mut filled = 0;
    for raw in markers {
        if buf.markers.len() <= filled {
            buf.markers.push(String::new());
        }
        let slot = &mut buf.markers[filled];
        normalise::normalise(raw, &mut buf.inner_stage, slot);
        if slot.chars().count() >= min_chars.max(1) {
            filled += 1;
        }
    }
    filled
}

/// Run `scan` with this thread's buffer, or a fresh one when it is unavailable (thread
/// teardown, or a nested scan).
fn with_buffer<T>(scan: impl Fn(&mut ScanBuffer) -> T) -> T {
    BUFFER
        .try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut buffer| scan(&mut buffer))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| scan(&mut ScanBuffer::new()))
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Characters in `text` (counting UTF-8 lead bytes is faster than decoding).
fn char_count(text: &str) -> usize {
    text.bytes().filter(|b| (*b as i8) >= -0x40).count()
}

//! Encoded payloads: find base64 and hex segments, decode them within fixed bounds and hand
//! back the ones that decode to text, so the scanner can look inside them once.
//!
//! Only text is of interest: an instruction hidden from a keyword filter must still read as
//! words once decoded. Hashes, UUIDs, images and keys decode to binary and are dropped, which
//! is what keeps benign base64 and hex quiet.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// Shortest run of base64 characters worth decoding (18 bytes of payload).
pub(super) const MIN_BASE64_CHARS: usize = 24;
/// Shortest run of hex digits worth decoding (16 bytes of payload).
pub(super) const MIN_HEX_CHARS: usize = 32;
/// Decoded text shorter than this cannot carry an instruction.
const MIN_TEXT_CHARS: usize = 8;

/// How much decoding one scan may do.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// Textual segments handed back at most.
    pub segments: usize,
    /// Decoded bytes at most, over all attempts.
    pub bytes: usize,
}

/// Decode the encoded segments of `text`, calling `each` with every one that is UTF-8 text.
/// Returns how many were handed back. `buf` is scratch space.
pub(super) fn each_segment(
    text: &str,
    budget: Budget,
    buf: &mut Vec<u8>,
    mut each: impl FnMut(&str),
) -> usize {
    let mut state = State {
        handed: 0,
        bytes_left: budget.bytes,
        // Binary segments cost work too; stop trying after a few times the segment budget.
        attempts_left: budget.segments.saturating_mul(4),
    };
    for run in runs(text.as_bytes()) {
        if state.handed >= budget.segments
            || state.attempts_left == 0
            || state.bytes_left < MIN_TEXT_CHARS
        {
            break;
        }
        if state.attempt(run, buf, &mut each) {
            continue;
        }
        // A URL path ("evil.example/aGlkZGVu...") glues the payload to the path before it:
        // try the pieces between slashes too.
        if run.contains(&b'/') {
            for piece in run
                .split(|b| *b == b'/')
                .filter(|p| p.len() >= MIN_BASE64_CHARS)
            {
                if state.handed >= budget.segments || state.attempts_left == 0 {
                    break;
                }
                state.attempt(piece, buf, &mut each);
            }
        }
    }
    state.handed
}

struct State {
    handed: usize,
    bytes_left: usize,
    attempts_left: usize,
}

impl State {
    /// Decode one candidate; true when it was text and was handed to `each`.
    fn attempt(&mut self, run: &[u8], buf: &mut Vec<u8>, each: &mut impl FnMut(&str)) -> bool {
        let decoded = if let Some(hex) = hex_digits(run) {
            self.attempts_left -= 1;
            decode_hex(hex, self.bytes_left, buf)
        } else if looks_base64(run) {
            self.attempts_left -= 1;
            decode_base64(run, self.bytes_left, buf)
        } else {
            false
        };
        if !decoded {
            return false;
        }
        self.bytes_left = self.bytes_left.saturating_sub(buf.len());
        match as_text(buf) {
            Some(text) => {
                self.handed += 1;
                each(text);
                true
            }
            None => false,
        }
    }
}

/// Maximal runs of the base64 alphabet (standard or URL-safe) long enough to be candidates.
/// `=` separates: padding needs no decoding (the engine is lenient about it) and a query
/// string's `data=` must not be glued to its value.
fn runs(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| !BASE64_ALPHABET[usize::from(b)])
        .filter(|run| run.len() >= MIN_BASE64_CHARS)
}

/// Bytes of the base64 alphabets, standard and URL-safe, as a table: every byte of every
/// prompt is looked up (four range tests per byte were ~2 % of the agent's instructions).
static BASE64_ALPHABET: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_');
        byte += 1;
    }
    table
};

/// The hex digits of a run that is hex (optionally `0x`-prefixed), when long enough.
fn hex_digits(run: &[u8]) -> Option<&[u8]> {
    let digits = run.strip_prefix(b"0x").unwrap_or(run);
    (digits.len() >= MIN_HEX_CHARS && digits.iter().all(u8::is_ascii_hexdigit)).then_some(digits)
}

/// Base64 of text mixes upper and lower case; a long lower-case word or path does not.
fn looks_base64(run: &[u8]) -> bool {
    run.iter().any(u8::is_ascii_uppercase) && run.iter().any(u8::is_ascii_lowercase)
}

fn decode_hex(digits: &[u8], max_bytes: usize, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let pairs = digits.chunks_exact(2).take(max_bytes);
    for pair in pairs {
        let (Some(high), Some(low)) = (nibble(pair[0]), nibble(pair[1])) else {
            return false;
        };
        buf.push(high << 4 | low);
    }
    true
}

fn nibble(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn decode_base64(run: &[u8], max_bytes: usize, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    let body = run;
    let url_safe = body.iter().any(|b| matches!(b, b'-' | b'_'));
    if url_safe && body.iter().any(|b| matches!(b, b'+' | b'/')) {
        return false;
    }
    // Decode whole quanta only, at most `max_bytes` of output; a lone trailing character
    // cannot be decoded, so it is dropped rather than failing the segment.
    let mut take = body.len().min(max_bytes / 3 * 4);
    if take % 4 == 1 {
        take -= 1;
    }
    let engine = if url_safe { &URL_SAFE } else { &STANDARD };
    engine.decode_vec(&body[..take], buf).is_ok()
}

/// The decoded bytes as text: valid UTF-8, long enough, no control characters other than
/// line breaks and tabs, and mostly letters and spaces.
fn as_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut chars = 0usize;
    let mut wordy = 0usize;
    for c in text.chars() {
        if c.is_control() && !matches!(c, '\n' | '\r' | '\t') {
            return None;
        }
        chars += 1;
        wordy += usize::from(c.is_alphabetic() || c == ' ');
    }
    (chars >= MIN_TEXT_CHARS && wordy * 2 >= chars).then_some(text)
}

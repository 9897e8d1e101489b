//! Normalisation: the text every signature is matched against.
//!
//! Two passes, both writing into caller-owned buffers so a scan allocates nothing once the
//! buffers have grown:
//!
//! 1. [`strip_invisible`]: drop invisible and format characters (zero-width space, joiners,
//!    word joiner, BOM, bidi controls, soft hyphen, variation selectors, the Unicode TAG block).
//!    The ones that are suspicious are counted, and TAG characters (U+E0020–U+E007E, "ASCII
//!    smuggling") are decoded back to the ASCII they hide, so that text can be scanned too.
//!    Legitimate uses are not counted: a joiner after a non-ASCII character (emoji ZWJ
//!    sequences, Persian and Indic ZWNJ), tag characters in a subdivision flag (🏴 + tags),
//!    a BOM at the very start.
//! 2. [`fold`]: Unicode NFKC (fullwidth, mathematical alphanumerics, ligatures to plain
//!    letters), lower-casing, folding of common Cyrillic/Greek homoglyphs and typographic
//!    quotes/dashes to ASCII, and collapsing every run of whitespace to one space (leading
//!    whitespace dropped).
//!
//! Signature phrases go through the same two passes when they are compiled, so a phrase and
//! the text it should match always agree.

use unicode_normalization::UnicodeNormalization;

/// U+1F3F4 WAVING BLACK FLAG: the base of subdivision flags (🏴 + TAG letters + CANCEL TAG).
const BLACK_FLAG: char = '\u{1F3F4}';
/// A subdivision flag carries a handful of TAG letters (`gbsct`); more is not a flag.
const MAX_FLAG_TAGS: usize = 7;

/// Copy `input` into `out` without invisible and format characters; decode TAG characters
/// into `hidden` (when given). Returns how many suspicious invisible characters there were.
pub(super) fn strip_invisible(
    input: &str,
    out: &mut String,
    mut hidden: Option<&mut String>,
) -> usize {
    out.clear();
    if let Some(hidden) = hidden.as_deref_mut() {
        hidden.clear();
    }
    // Nearly every prompt is plain ASCII: nothing to strip.
    if input.is_ascii() {
        out.push_str(input);
        return 0;
    }
    let mut invisible = 0;
    // The last character kept, to tell an emoji ZWJ sequence from a split ASCII word.
    let mut previous: Option<char> = None;
    // Tag characters seen since a black flag, while they may still form a subdivision flag.
    let mut flag_tags: Option<usize> = None;
    for (index, c) in input.char_indices() {
        let code = c as u32;
        if (0xE0000..=0xE007F).contains(&code) {
            if let Some(count) = flag_tags {
                if count < MAX_FLAG_TAGS {
                    flag_tags = if code == 0xE007F {
                        None
                    } else {
                        Some(count + 1)
                    };
                    continue;
                }
                flag_tags = None;
            }
            invisible += 1;
            if let (Some(hidden), true) =
                (hidden.as_deref_mut(), (0xE0020..=0xE007E).contains(&code))
            {
                // The TAG block mirrors ASCII: U+E0041 is a hidden 'A'.
                hidden.push(char::from((code - 0xE0000) as u8));
            }
            continue;
        }
        flag_tags = None;
        let after_ascii = previous.is_none_or(|p| p.is_ascii());
        match c {
            // Zero-width space, invisible operators, word joiner, Mongolian vowel separator,
            // combining grapheme joiner, Hangul fillers: no legitimate reason inside prose.
            '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{180E}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{00AD}' => invisible += 1,
            // Joiners are legitimate after emoji and in Indic/Arabic-script words; splitting
            // an ASCII word with them is how filters are dodged.
            '\u{200C}' | '\u{200D}' => invisible += usize::from(after_ascii),
            // Directional marks appear in right-to-left text; next to ASCII they are a trick.
            '\u{200E}' | '\u{200F}' | '\u{061C}' => invisible += usize::from(after_ascii),
            // Bidi embeddings, overrides and isolates ("Trojan Source").
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => invisible += 1,
            // A BOM at the start is an encoding artefact; anywhere else it hides something.
            '\u{FEFF}' => invisible += usize::from(index != 0),
            // Emoji presentation selectors are everywhere in ordinary text.
            '\u{FE00}'..='\u{FE0F}' => {}
            // Supplementary variation selectors can encode arbitrary bytes ("emoji smuggling").
            '\u{E0100}'..='\u{E01EF}' => invisible += 1,
            _ => {
                if c == BLACK_FLAG {
                    flag_tags = Some(0);
                }
                previous = Some(c);
                out.push(c);
            }
        }
    }
    invisible
}

/// NFKC, lower-case, fold homoglyphs and collapse whitespace from `input` into `out`.
pub(super) fn fold(input: &str, out: &mut String) {
    out.clear();
    if input.is_ascii() {
        fold_ascii(input, out);
        return;
    }
    let mut sink = Collapse {
        out,
        pending_space: false,
    };
    for c in input.chars().nfkc() {
        for lower in c.to_lowercase() {
            sink.push(fold_confusable(lower));
        }
    }
}

/// [`fold`] of ASCII text, a byte at a time into the reused buffer: ASCII is already NFKC and
/// has no homoglyphs, and nearly every prompt is ASCII (folding a `char` at a time through
/// [`Collapse`] was ~4 % of the agent's cycles).
fn fold_ascii(input: &str, out: &mut String) {
    let input_bytes = input.as_bytes();
    // Prose is usually collapsed already (single spaces, no tabs or line breaks, none at the
    // ends): then folding is a copy and an in-place lower-casing, both vectorised. The checks
    // run without early exits so they vectorise too.
    let other_whitespace = input_bytes.iter().fold(false, |seen, &byte| {
        seen | (byte.wrapping_sub(b'\t') <= b'\r' - b'\t')
    });
    if !other_whitespace
        && !input.starts_with(' ')
        && !input.ends_with(' ')
        && memchr::memmem::find(input_bytes, b"  ").is_none()
    {
        out.push_str(input);
        out.make_ascii_lowercase();
        return;
    }
    let input = input_bytes;
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.reserve(input.len());
    let mut pending_space = false;
    for &byte in input {
        // `char::is_whitespace` on ASCII: tab, line feed, vertical tab, form feed, CR, space.
        if matches!(byte, b'\t'..=b'\r' | b' ') {
            pending_space = !bytes.is_empty();
            continue;
        }
        if pending_space {
            bytes.push(b' ');
            pending_space = false;
        }
        bytes.push(byte.to_ascii_lowercase());
    }
    // ASCII in, ASCII out: the conversion cannot fail, and loses nothing if it did.
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned());
}

/// Both passes into `out`, using `scratch` for the intermediate text (for phrases, markers,
/// decoded segments). Returns the suspicious invisible count; hidden TAG text is dropped.
pub(super) fn normalise(input: &str, scratch: &mut String, out: &mut String) -> usize {
    let invisible = strip_invisible(input, scratch, None);
    fold(scratch, out);
    invisible
}

/// Writes characters, turning each run of whitespace into one space and dropping leading
/// whitespace; a trailing run is never written.
struct Collapse<'a> {
    out: &'a mut String,
    pending_space: bool,
}

impl Collapse<'_> {
    fn push(&mut self, c: char) {
        if c.is_whitespace() {
            self.pending_space = !self.out.is_empty();
            return;
        }
        if self.pending_space {
            self.out.push(' ');
            self.pending_space = false;
        }
        self.out.push(c);
    }
}

/// Lower-case letters from other scripts that render like Latin ones, and typographic
/// punctuation, mapped to ASCII. Deliberately small: the letters attackers actually use to
/// dodge keyword filters. Applied to every text, so real Cyrillic or Greek words come out
/// mixed; that is harmless because signatures are normalised the same way.
fn fold_confusable(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'е' | 'ё' => 'e',
        'і' | 'ї' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'ѕ' => 's',
        'у' | 'ү' => 'y',
        'х' => 'x',
        'һ' => 'h',
        'ԁ' => 'd',
        'ӏ' => 'l',
        'ԛ' => 'q',
        'ԝ' => 'w',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'γ' => 'y',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        'ϲ' => 'c',
        // Latin look-alikes NFKC keeps
        'ı' | 'ɩ' => 'i',
        'ɡ' => 'g',
        'ɑ' => 'a',
        'ȷ' => 'j',
        // Typographic quotes and dashes, so "don’t" matches "don't"
        '\u{2018}' | '\u{2019}' | '\u{201B}' | '\u{2032}' | '\u{02BC}' => '\'',
        '\u{201C}' | '\u{201D}' | '\u{201F}' | '\u{2033}' => '"',
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        _ => c,
    }
}

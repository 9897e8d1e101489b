//! What a finding means: the categories a signature or a built-in check can report, their
//! stable labels and the MITRE ATLAS technique each one is evidence of.

use std::fmt;

/// The kind of threat a finding points at.
///
/// Labels (`as_str`) are stable: they appear in signature files and will appear in alerts, so
/// renaming one is a breaking change for analysts' searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// "Ignore all previous instructions" and friends: the text tries to replace the
    /// operator's instructions with its own.
    InstructionOverride,
    /// The text asks the model to reveal its system prompt or hidden instructions.
    SystemPromptExtraction,
    /// A known jailbreak persona (DAN, "developer mode", "no restrictions" AIs).
    JailbreakPersona,
    /// Role play or fiction used as a wrapper to get around the model's rules.
    RolePlayBypass,
    /// Fake conversation structure: chat-template tokens (`<|im_start|>`, `[INST]`), fake
    /// system tags or "end of system prompt" markers.
    DelimiterInjection,
    /// An instruction hidden in base64 or hex, or a request to decode and obey one.
    EncodedPayload,
    /// Invisible or format characters (zero-width, bidi controls, Unicode TAG "ASCII
    /// smuggling") above the configured count.
    InvisibleUnicode,
    /// A markdown image or link, or an HTML `<img>`, whose URL carries data or a template
    /// placeholder: the classic way to exfiltrate a conversation through a rendered image.
    ExfiltrationLink,
    /// The text tries to make an agent call its tools for the attacker (send the
    /// conversation somewhere, visit a URL, call a tool with secrets).
    ToolHijacking,
    /// The input is longer than the configured number of characters (context stuffing,
    /// many-shot jailbreaks).
    AbnormallyLong,
    /// Response side: the response appears to contain the system prompt or one of the
    /// operator's canary markers.
    SystemPromptLeak,
}

impl Category {
    /// Every category, in label order of declaration (also the bit order of [`CategorySet`]).
    pub const ALL: [Category; 11] = [
        Category::InstructionOverride,
        Category::SystemPromptExtraction,
        Category::JailbreakPersona,
        Category::RolePlayBypass,
        Category::DelimiterInjection,
        Category::EncodedPayload,
        Category::InvisibleUnicode,
        Category::ExfiltrationLink,
        Category::ToolHijacking,
        Category::AbnormallyLong,
        Category::SystemPromptLeak,
    ];

    /// The stable snake_case label (as written in signature files).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InstructionOverride => "instruction_override",
            Category::SystemPromptExtraction => "system_prompt_extraction",
            Category::JailbreakPersona => "jailbreak_persona",
            Category::RolePlayBypass => "role_play_bypass",
            Category::DelimiterInjection => "delimiter_injection",
            Category::EncodedPayload => "encoded_payload",
            Category::InvisibleUnicode => "invisible_unicode",
            Category::ExfiltrationLink => "exfiltration_link",
            Category::ToolHijacking => "tool_hijacking",
            Category::AbnormallyLong => "abnormally_long",
            Category::SystemPromptLeak => "system_prompt_leak",
        }
    }

    /// The category with this label.
    pub fn from_label(label: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == label)
    }

    /// The MITRE ATLAS technique this category is evidence of (see `record::atlas`).
    ///
    /// Jailbreak personas and role play are AML.T0054; extraction attempts and a leaked
    /// system prompt are AML.T0056 (the leak is that technique succeeding); exfiltration links
    /// are AML.T0057; tool hijacking abuses the tools an LLM can invoke, AML.T0053; every other
    /// way of smuggling instructions in is prompt injection, AML.T0051.
    pub fn atlas_technique(self) -> &'static str {
        match self {
            Category::JailbreakPersona | Category::RolePlayBypass => "AML.T0054",
            Category::SystemPromptExtraction | Category::SystemPromptLeak => "AML.T0056",
            Category::ExfiltrationLink => "AML.T0057",
            Category::ToolHijacking => "AML.T0053",
            Category::InstructionOverride
            | Category::DelimiterInjection
            | Category::EncodedPayload
            | Category::InvisibleUnicode
            | Category::AbnormallyLong => "AML.T0051",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of categories: a bit set, so findings carry it without allocating. Iterates in
/// declaration order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CategorySet(u16);

impl CategorySet {
    /// The empty set.
    pub const fn new() -> CategorySet {
        CategorySet(0)
    }

    /// Add a category.
    pub fn insert(&mut self, category: Category) {
        self.0 |= category.bit();
    }

    /// Whether the set holds `category`.
    pub fn contains(self, category: Category) -> bool {
        self.0 & category.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Number of categories in the set.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The categories, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Category> {
        Category::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    /// The categories as a vector (for callers that want one).
    pub fn to_vec(self) -> Vec<Category> {
        self.iter().collect()
    }

    /// Union with another set.
    pub fn extend(&mut self, other: CategorySet) {
        self.0 |= other.0;
    }
}

impl FromIterator<Category> for CategorySet {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> CategorySet {
        let mut set = CategorySet::new();
        for category in iter {
            set.insert(category);
        }
        set
    }
}

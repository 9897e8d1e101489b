//! Enrichment: pure analyses of a record's content that later stages (rules, alerts) can use.
//!
//! Pure like `decode` and `detect`: no I/O, no clock, no async runtime. Signature files arrive
//! as text; the caller (the pipeline, eventually) reads them.
//!
//! - [`scan`]: a text scanner for prompt injection, jailbreaks, system-prompt extraction and
//!   leaks, smuggled (invisible or encoded) instructions and exfiltration links. It is not yet
//!   wired into the pipeline: it exposes [`scan::Scanner`] and [`scan::Findings`].

pub mod scan;

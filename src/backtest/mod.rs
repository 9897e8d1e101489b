//! The analyst's tools: rule parameter overrides, rule examples, and back-test tallies.
//!
//! Pure: rule files arrive as text, records as values. The commands that read files, build
//! engines and print (`aiwarden rules lint|test`, `aiwarden replay`) live in `crate::cli`.

pub mod examples;
pub mod overrides;
pub mod tally;

pub use examples::{compare, parse_examples, Example, ExampleError, Expected, Mismatch};
pub use overrides::{apply_overrides, Override, OverrideError};
pub use tally::{RuleRow, Tally};

//! What the benchmarks generate text from: a deterministic generator and an ordinary business
//! and coding vocabulary. Used by `examples/e2e_bench`, whose data set the criterion benches
//! share so that they and the end-to-end run measure the same records, and by `benches/scan.rs`
//! (the generator only).

/// A small deterministic generator (no dependency, same stream every run).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next 31-bit value.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    /// A value below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Words of ordinary prompts.
pub const WORDS: &[&str] = &[
    "please",
    "summarise",
    "the",
    "contract",
    "clause",
    "about",
    "liability",
    "and",
    "payment",
    "terms",
    "for",
    "our",
    "customer",
    "review",
    "this",
    "function",
    "refactor",
    "tests",
    "query",
    "quarterly",
    "report",
    "draft",
    "email",
    "to",
    "team",
    "explain",
    "error",
    "in",
    "module",
];

//! Shared sink machinery, written once: batching settings, retry timing, HTTP client and TLS.

pub mod batch;
pub mod http;
pub mod retry;

//! Retry timing: exponential backoff with full jitter, and `Retry-After`.

use crate::config::duration;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// Request behaviour of a network sink: `[sinks.<name>.request]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestConfig {
    /// Longest one request may take before it counts as failed (and is retried).
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// Requests in flight at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// First retry delay; doubled per attempt, with full jitter.
    #[serde(default = "default_backoff_base", with = "duration")]
    pub retry_initial_backoff: Duration,
    /// Longest retry delay (a `Retry-After` from the server may ask for longer).
    #[serde(default = "default_backoff_cap", with = "duration")]
    pub retry_max_backoff: Duration,
    /// `gzip` (default) or `none`.
    #[serde(default)]
    pub compression: Compression,
    /// Consecutive failed requests that open the circuit breaker (default 5).
    #[serde(default = "default_breaker_threshold")]
    pub breaker_threshold: u32,
    /// How long an open breaker waits before a probe; doubled after each failed probe, up to
    /// `retry_max_backoff` (default 5 s).
    #[serde(default = "default_breaker_cooldown", with = "duration")]
    pub breaker_cooldown: Duration,
}

/// Request body compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// `Content-Encoding: gzip`.
    #[default]
    Gzip,
    /// Uncompressed.
    None,
}

impl Default for RequestConfig {
    fn default() -> Self {
        RequestConfig {
            timeout: default_timeout(),
            concurrency: default_concurrency(),
            retry_initial_backoff: default_backoff_base(),
            retry_max_backoff: default_backoff_cap(),
            compression: Compression::default(),
            breaker_threshold: default_breaker_threshold(),
            breaker_cooldown: default_breaker_cooldown(),
        }
    }
}

impl RequestConfig {
    /// Check the settings; the error is the key (relative to the sink) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.concurrency == 0 {
            return Err(("request.concurrency".into(), "must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(("request.timeout".into(), "must be greater than zero".into()));
        }
        if self.breaker_threshold == 0 || self.breaker_cooldown.is_zero() {
            return Err((
                "request.breaker_threshold".into(),
                "breaker_threshold and breaker_cooldown must be greater than zero".into(),
            ));
        }
        if self.retry_initial_backoff.is_zero()
            || self.retry_max_backoff < self.retry_initial_backoff
        {
            return Err((
                "request.retry_max_backoff".into(),
                "backoffs must be positive and max >= initial".into(),
            ));
        }
        Ok(())
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_concurrency() -> usize {
    2
}
fn default_breaker_threshold() -> u32 {
    5
}
fn default_breaker_cooldown() -> Duration {
    Duration::from_secs(5)
}
fn default_backoff_base() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_cap() -> Duration {
    Duration::from_secs(60)
}

/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter").
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// A fresh backoff.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// Attempts so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The next delay: random in [0, min(cap, base × 2^attempt)], but never shorter than the
    /// server's `Retry-After`.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(self.attempt.min(20)).unwrap_or(u32::MAX))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let jittered =
            Duration::from_secs_f64(rand::rng().random_range(0.0..=ceiling.as_secs_f64()));
        match retry_after {
            Some(after) => after.max(jittered),
            None => jittered,
        }
    }
}

/// The `Retry-After` of an answer, if it has a usable one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after)
}

/// Parse a `Retry-After` value: delta seconds or an HTTP date. Capped at one hour.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(delay.min(Duration::from_secs(3600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_within_its_cap_and_honours_retry_after() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        for attempt in 0..10 {
            let ceiling = Duration::from_secs(1 << attempt.min(3));
            let delay = backoff.next_delay(None);
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
        }
        assert!(backoff.next_delay(Some(Duration::from_secs(30))) >= Duration::from_secs(30));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999"), Some(Duration::from_secs(3600)));
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let delay = parse_retry_after(&soon).unwrap();
        assert!(delay > Duration::from_secs(100) && delay <= Duration::from_secs(120));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}

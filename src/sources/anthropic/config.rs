//! Configuration of the `anthropic` source: `[sources.<name>]` with `type = "anthropic"`.

use crate::config::{duration, Secret};
use crate::net::http::{validate_url, TlsConfig};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// Poll Anthropic's Compliance API activity feed and, optionally, the usage and cost reports.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicSourceConfig {
    /// The key: a Compliance Access Key (`sk-ant-api01-…`) or an Admin API key
    /// (`sk-ant-admin01-…`) with the `read:compliance_activities` scope, e.g.
    /// `{ file = "/etc/aiwarden/anthropic.key" }` or `{ env = "ANTHROPIC_COMPLIANCE_KEY" }`.
    pub api_key: Secret,
    /// The API's base URL (a proxy, or a mock in tests).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The `anthropic-version` header.
    #[serde(default = "default_anthropic_version")]
    pub anthropic_version: String,
    /// How long to wait between polls once the feed is read to its newest activity.
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Where the feed starts when there is no cursor yet: `"now"` (only what happens from the
    /// first start on) or an RFC 3339 time (back-fill from then).
    #[serde(default)]
    pub start_at: StartAt,
    /// Activities per page (1 to 5000).
    #[serde(default = "default_page_limit")]
    pub page_limit: u32,
    /// Only these activity types (`activity_types[]`); empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity_types: Vec<String>,
    /// Only these actors (`actor_ids[]`); empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actor_ids: Vec<String>,
    /// Only these organisations (`organization_ids[]`); empty for all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization_ids: Vec<String>,
    /// Read the activity feed (turn off to poll only the usage reports).
    #[serde(default = "default_true")]
    pub activities: bool,
    /// The usage and cost reports (Admin API key).
    #[serde(default)]
    pub usage: UsageConfig,
    /// Longest one request may take.
    #[serde(default = "default_timeout", with = "duration")]
    pub timeout: Duration,
    /// First retry delay after a 429, 5xx or network error; doubled per attempt, with jitter.
    #[serde(default = "default_backoff_base", with = "duration")]
    pub retry_initial_backoff: Duration,
    /// Longest retry delay (a `retry-after` from the API may ask for longer).
    #[serde(default = "default_backoff_cap", with = "duration")]
    pub retry_max_backoff: Duration,
    /// TLS settings (extra CA for a proxy).
    #[serde(default)]
    pub tls: TlsConfig,
}

/// The usage and cost reports: `[sources.<name>.usage]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsageConfig {
    /// Poll `/v1/organizations/usage_report/messages`.
    #[serde(default)]
    pub messages: bool,
    /// Poll `/v1/organizations/cost_report` (daily buckets).
    #[serde(default)]
    pub cost: bool,
    /// Poll `/v1/organizations/usage_report/claude_code` (per user and day).
    #[serde(default)]
    pub claude_code: bool,
    /// An Admin API key (`sk-ant-admin01-…`) when `api_key` is a Compliance Access Key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Secret>,
    /// Bucket width of the messages report: `1m`, `1h` or `1d`.
    #[serde(default = "default_bucket_width")]
    pub bucket_width: BucketWidth,
    /// Dimensions the messages report is grouped by (`group_by[]`).
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// Dimensions the cost report is grouped by (`group_by[]`).
    #[serde(default = "default_cost_group_by")]
    pub cost_group_by: Vec<String>,
    /// A bucket is final (emitted, never re-read) once it ended this long ago.
    #[serde(default = "default_settle", with = "duration")]
    pub settle: Duration,
    /// How far back the reports start when there is no report cursor yet.
    #[serde(default = "default_backfill", with = "duration")]
    pub backfill: Duration,
    /// How often the reports are polled.
    #[serde(default = "default_usage_interval", with = "duration")]
    pub interval: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            messages: false,
            cost: false,
            claude_code: false,
            api_key: None,
            bucket_width: default_bucket_width(),
            group_by: default_group_by(),
            cost_group_by: default_cost_group_by(),
            settle: default_settle(),
            backfill: default_backfill(),
            interval: default_usage_interval(),
        }
    }
}

impl UsageConfig {
    /// Whether any report is polled.
    pub fn any(&self) -> bool {
        self.messages || self.cost || self.claude_code
    }
}

/// Bucket width of the messages usage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum BucketWidth {
    /// One minute.
    #[serde(rename = "1m")]
    Minute,
    /// One hour.
    #[serde(rename = "1h")]
    Hour,
    /// One day.
    #[serde(rename = "1d")]
    Day,
}

impl BucketWidth {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            BucketWidth::Minute => "1m",
            BucketWidth::Hour => "1h",
            BucketWidth::Day => "1d",
        }
    }

    /// The width in seconds.
    pub fn seconds(self) -> i64 {
        match self {
            BucketWidth::Minute => 60,
            BucketWidth::Hour => 3_600,
            BucketWidth::Day => 86_400,
        }
    }
}

/// Where the activity feed starts without a cursor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartAt {
    /// From the first start on.
    #[default]
    Now,
    /// From this time on.
    Time(DateTime<Utc>),
}

impl<'de> Deserialize<'de> for StartAt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim() == "now" {
            return Ok(StartAt::Now);
        }
        DateTime::parse_from_rfc3339(text.trim())
            .map(|time| StartAt::Time(time.with_timezone(&Utc)))
            .map_err(|error| {
                serde::de::Error::custom(format!(
                    "expected \"now\" or an RFC 3339 time such as \"2026-11-01T00:00:00Z\": {error}"
                ))
            })
    }
}

impl Serialize for StartAt {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StartAt::Now => serializer.serialize_str("now"),
            StartAt::Time(time) => serializer.serialize_str(&time.to_rfc3339()),
        }
    }
}

/// Most activities the API returns per page.
pub const MAX_PAGE_LIMIT: u32 = 5000;

impl AnthropicSourceConfig {
    /// Check what serde cannot: returns the key (relative to the source) and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        validate_url("base_url", &self.base_url)?;
        if !(1..=MAX_PAGE_LIMIT).contains(&self.page_limit) {
            return Err((
                "page_limit".into(),
                format!("must be between 1 and {MAX_PAGE_LIMIT}"),
            ));
        }
        if self.interval.is_zero() || self.usage.interval.is_zero() {
            return Err(("interval".into(), "must be greater than zero".into()));
        }
        if self.timeout.is_zero() {
            return Err(("timeout".into(), "must be greater than zero".into()));
        }
        if self.retry_initial_backoff.is_zero()
            || self.retry_max_backoff < self.retry_initial_backoff
        {
            return Err((
                "retry_max_backoff".into(),
                "backoffs must be positive and max >= initial".into(),
            ));
        }
        if !self.activities && !self.usage.any() {
            return Err((
                "activities".into(),
                "nothing to poll: keep `activities = true` or enable a report in [usage]".into(),
            ));
        }
        if self.anthropic_version.trim().is_empty() {
            return Err(("anthropic_version".into(), "must not be empty".into()));
        }
        self.tls.validate()
    }
}

fn default_base_url() -> String {
    "https://api.anthropic.com".into()
}
fn default_anthropic_version() -> String {
    "2023-06-01".into()
}
fn default_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_page_limit() -> u32 {
    1000
}
fn default_true() -> bool {
    true
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_backoff_base() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_cap() -> Duration {
    Duration::from_secs(300)
}
fn default_bucket_width() -> BucketWidth {
    BucketWidth::Hour
}
fn default_group_by() -> Vec<String> {
    vec!["api_key_id".into(), "workspace_id".into(), "model".into()]
}
fn default_cost_group_by() -> Vec<String> {
    vec!["workspace_id".into(), "description".into()]
}
fn default_settle() -> Duration {
    Duration::from_secs(3_600)
}
fn default_backfill() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_usage_interval() -> Duration {
    Duration::from_secs(900)
}

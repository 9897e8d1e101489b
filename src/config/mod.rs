//! Configuration: a TOML file plus `AIWARDEN__SECTION__KEY` environment overrides, into a
//! validated [`Config`].
//!
//! Only this module knows TOML and the environment. Loading runs in three steps: the `config`
//! crate merges file and environment; serde (through `serde_path_to_error`, so an error names its
//! key) fills the structs, refusing unknown keys; [`Config::validate`] checks what types cannot.
//! `check-config` runs exactly the same steps as `run`.

pub mod duration;
mod secret;

pub use secret::{Secret, SecretError};

use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::telemetry::LogFormat;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The prefix of environment overrides: `AIWARDEN__AGENT__STATE_DIR=/tmp/state`.
pub const ENV_PREFIX: &str = "AIWARDEN";
/// The separator between the prefix and the keys of an environment override.
pub const ENV_SEPARATOR: &str = "__";

/// The whole agent configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Agent-wide settings.
    #[serde(default)]
    pub agent: AgentConfig,
    /// Detection settings.
    #[serde(default)]
    pub detect: DetectConfig,
    /// Where unusable input goes.
    #[serde(default)]
    pub dead_letter: DeadLetterConfig,
    /// The agent's own metrics and health endpoints.
    #[serde(default)]
    pub telemetry: TelemetryConfig,
    /// Named sources: `[sources.<name>]` with a `type`.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
    /// Named sinks: `[sinks.<name>]` with a `type`. With none, alerts go to standard output.
    #[serde(default)]
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Pseudonyms, IP masking and content redaction on the way out.
    #[serde(default)]
    pub privacy: crate::privacy::PrivacyConfig,
    /// The tamper-evident hash chain and signed checkpoints.
    #[serde(default)]
    pub evidence: crate::evidence::EvidenceConfig,
}

/// Agent-wide settings: `[agent]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Directory for checkpoints and other state; must be writable.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Tag stamped on every alert so SIEM searches can tell deployments apart.
    #[serde(default = "default_deployment_tag")]
    pub deployment_tag: String,
    /// Host name stamped on alerts; the machine's name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Log level or `tracing` filter directive (`RUST_LOG` wins).
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Log format: `auto` (text on a terminal, JSON otherwise), `text` or `json`.
    #[serde(default)]
    pub log_format: LogFormat,
    /// On SIGTERM, how long in-flight batches may take to drain before the agent exits anyway.
    #[serde(default = "default_shutdown_grace", with = "duration")]
    pub shutdown_grace: Duration,
    /// Batches in flight between stages; bounds memory and gives backpressure.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            state_dir: default_state_dir(),
            deployment_tag: default_deployment_tag(),
            hostname: None,
            log_level: default_log_level(),
            log_format: LogFormat::default(),
            shutdown_grace: default_shutdown_grace(),
            channel_capacity: default_channel_capacity(),
        }
    }
}

/// Detection settings: `[detect]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Directory of rule files (`*.toml`); the rule pack built into the binary when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_dir: Option<PathBuf>,
    /// File of users and departments cleared per data classification; nobody when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlements_file: Option<PathBuf>,
    /// Business-hours calendars per department; `calendars.toml` in `rules_dir`, else the
    /// built-in default (Monday to Friday, 08:00 to 18:00 UTC), when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendars_file: Option<PathBuf>,
    /// Directory of rule overrides (e.g. `/etc/aiwarden/rules.d`): each file names a rule by
    /// `id` and changes only the keys it gives (`enabled = false`, another threshold); a file
    /// with a new `id` adds a rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides_dir: Option<PathBuf>,
    /// How far behind the newest event time an event may arrive and still count in windows.
    #[serde(default = "default_allowed_lateness", with = "duration")]
    pub allowed_lateness: Duration,
    /// Most entities (users, sessions...) tracked per rule; idle ones are evicted first.
    #[serde(default = "default_max_entities")]
    pub max_entities_per_rule: usize,
    /// Most evidence event ids carried by one alert.
    #[serde(default = "default_evidence_sample")]
    pub evidence_sample: usize,
    /// Events stamped further than this ahead of the agent's clock are forwarded but kept out of
    /// detection (and counted): one record from the far future would otherwise move event time
    /// forward and make every later event too late for the windows.
    #[serde(default = "default_max_clock_skew", with = "duration")]
    pub max_clock_skew: Duration,
    /// How often detection state (windows, baselines) is saved to `<state_dir>`; it is also
    /// saved at every clean stop and restored at start.
    #[serde(default = "default_snapshot_interval", with = "duration")]
    pub snapshot_interval: Duration,
    /// Scan raw prompt/response text (when records carry it) for prompt injection, jailbreaks,
    /// smuggled instructions, exfiltration links and system-prompt leaks. Findings become
    /// `security_flags` (labels only, never the text), which the rules match.
    #[serde(default = "default_scan_content")]
    pub scan_content: bool,
    /// Canary strings planted in your system prompts: a response containing one is a leak.
    #[serde(default)]
    pub system_prompt_markers: Vec<String>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            rules_dir: None,
            entitlements_file: None,
            calendars_file: None,
            overrides_dir: None,
            allowed_lateness: default_allowed_lateness(),
            max_entities_per_rule: default_max_entities(),
            evidence_sample: default_evidence_sample(),
            max_clock_skew: default_max_clock_skew(),
            snapshot_interval: default_snapshot_interval(),
            scan_content: default_scan_content(),
            system_prompt_markers: Vec::new(),
        }
    }
}

/// Where unusable input goes: `[dead_letter]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// JSON-lines file; `<state_dir>/dead_letter.jsonl` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Most bytes of the offending input kept per entry (0 keeps none).
    #[serde(default = "default_max_raw_bytes")]
    pub max_raw_bytes: usize,
}

impl Default for DeadLetterConfig {
    fn default() -> Self {
        DeadLetterConfig {
            path: None,
            max_raw_bytes: default_max_raw_bytes(),
        }
    }
}

/// The agent's own endpoints: `[telemetry]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Serve `/metrics` (Prometheus) and `/health`.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Address to listen on; keep it on loopback (the endpoints have no authentication).
    #[serde(default = "default_telemetry_listen")]
    pub listen: std::net::SocketAddr,
    /// How often a summary line (records, alerts, dead letters, errors) is logged at info level.
    #[serde(default = "default_summary_interval", with = "duration")]
    pub summary_interval: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            enabled: true,
            listen: default_telemetry_listen(),
            summary_interval: default_summary_interval(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_telemetry_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9598))
}
fn default_summary_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/aiwarden")
}
fn default_deployment_tag() -> String {
    "claude_deployment".to_string()
}
fn default_log_level() -> String {
    "info".to_string()
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(10)
}
/// Two batches per channel absorb the stages' jitter; the sink intake is the bottleneck, so
/// more only hold records in memory (README "Benchmarks": 4 cost ~4 MiB, 16 ~40 MiB, at the
/// same throughput).
fn default_channel_capacity() -> usize {
    2
}
fn default_allowed_lateness() -> Duration {
    Duration::from_secs(300)
}
fn default_max_entities() -> usize {
    100_000
}
fn default_evidence_sample() -> usize {
    10
}
fn default_max_clock_skew() -> Duration {
    Duration::from_secs(3600)
}
fn default_snapshot_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_scan_content() -> bool {
    true
}
fn default_max_raw_bytes() -> usize {
    4096
}

/// Why a configuration cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or parsed as TOML.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A key has a wrong type, an unknown name, or a value that does not validate.
    #[error("{path}: key `{key}`: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key, e.g. `sources.audit.start_at`.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Load a file, apply environment overrides, and validate.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let environment = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator(ENV_SEPARATOR)
            .separator(ENV_SEPARATOR)
            .try_parsing(true);
        Self::load_with(path, environment)
    }

    /// Load with an explicit environment source (tests pass a fixed map).
    pub fn load_with(path: &Path, environment: config::Environment) -> Result<Config, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: if path.exists() {
                    "not a regular file".to_string()
                } else {
                    "no such file".to_string()
                },
            });
        }
        let merged = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(environment)
            .build()
            .map_err(|error| ConfigError::Parse {
                path: path.to_path_buf(),
                message: error.to_string(),
            })?;
        let config: Config = serde_path_to_error::deserialize(merged).map_err(|error| {
            let key = error.path().to_string();
            ConfigError::Invalid {
                path: path.to_path_buf(),
                key: if key == "." {
                    "(top level)".to_string()
                } else {
                    key
                },
                reason: strip_key_suffix(&error.inner().to_string()),
            }
        })?;
        config
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid {
                path: path.to_path_buf(),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// Check what serde cannot; the error is the dotted key and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.agent.deployment_tag.trim().is_empty() {
            return Err(("agent.deployment_tag".into(), "must not be empty".into()));
        }
        if self.agent.channel_capacity == 0 {
            return Err(("agent.channel_capacity".into(), "must be at least 1".into()));
        }
        if self.detect.max_entities_per_rule == 0 {
            return Err((
                "detect.max_entities_per_rule".into(),
                "must be at least 1".into(),
            ));
        }
        if self.telemetry.summary_interval.is_zero() {
            return Err((
                "telemetry.summary_interval".into(),
                "must be greater than zero".into(),
            ));
        }
        if self.sources.is_empty() {
            return Err((
                "sources".into(),
                "no source configured: add e.g. [sources.audit] with type = \"file\"".into(),
            ));
        }
        for (name, source) in &self.sources {
            check_name("sources", name)?;
            source
                .validate()
                .map_err(|(key, reason)| (format!("sources.{name}.{key}"), reason))?;
        }
        crate::sources::kafka::check_detector_sources(&self.sources)?;
        for (name, sink) in &self.sinks {
            check_name("sinks", name)?;
            sink.validate()
                .map_err(|(key, reason)| (format!("sinks.{name}.{key}"), reason))?;
        }
        self.privacy
            .validate()
            .map_err(|(key, reason)| (format!("privacy.{key}"), reason))?;
        self.evidence
            .validate()
            .map_err(|(key, reason)| (format!("evidence.{key}"), reason))?;
        Ok(())
    }

    /// The sinks to run: the configured ones, or alerts to standard output when there are none.
    pub fn effective_sinks(&self) -> BTreeMap<String, SinkConfig> {
        let mut sinks = if self.sinks.is_empty() {
            BTreeMap::from([("stdout".to_string(), SinkConfig::default_stdout())])
        } else {
            self.sinks.clone()
        };
        // The local sinks apply `[privacy]` and `[evidence]` themselves; the network sinks get
        // them through the delivery driver.
        let outbound = crate::sinks::file::Outbound {
            privacy: self.privacy.clone(),
            evidence: self.evidence.clone(),
        };
        for sink in sinks.values_mut() {
            match sink {
                SinkConfig::Stdout(config) => config.outbound = Some(outbound.clone()),
                SinkConfig::File(config) => config.outbound = Some(outbound.clone()),
                _ => {}
            }
        }
        sinks
    }

    /// The dead-letter file.
    pub fn dead_letter_path(&self) -> PathBuf {
        self.dead_letter
            .path
            .clone()
            .unwrap_or_else(|| self.agent.state_dir.join("dead_letter.jsonl"))
    }

    /// The effective configuration as TOML, secrets masked (for `check-config`).
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.sinks = self.effective_sinks();
        toml::to_string_pretty(&shown).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
    }
}

/// Names become metric labels and file names: keep them plain.
fn check_name(section: &str, name: &str) -> Result<(), (String, String)> {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        Ok(())
    } else {
        Err((
            format!("{section}.{name}"),
            "names may use only letters, digits, `_` and `-`".into(),
        ))
    }
}

/// serde_path_to_error already gives the key; drop the `config` crate's own " for key ..." tail.
fn strip_key_suffix(message: &str) -> String {
    match message.find(" for key `") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests;

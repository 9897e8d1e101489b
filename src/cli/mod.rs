//! The `aiwarden` command line: parse arguments, run a command, map the outcome to an exit code.
//!
//! Exit codes: 0 success; 1 a runtime failure; 2 the configuration or the command line is wrong.

mod connectors;
mod demo;
mod keygen;
mod pseudonym;
mod replay;
mod rules;
mod run;
mod status;
mod verify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The rest of the manual, shown by `aiwarden --help` (the package ships no separate man page).
const MANUAL: &str = "\
FILES
  /etc/aiwarden/aiwarden.toml        configuration (annotated; every key with its default)
  /etc/aiwarden/rules.d/             rule overrides
  /usr/share/aiwarden/rules/         the default rule pack (also built into the binary)
  /usr/share/aiwarden/connectors/    SIEM assets: Splunk add-on, Elastic templates, Sentinel tables and DCR
  /var/lib/aiwarden/checkpoints/     how far each file has been read (committed after delivery)
  /var/lib/aiwarden/dead_letter.jsonl        input that could not be used, with the reason
  /var/lib/aiwarden/dead_letter/<sink>.jsonl records a SIEM rejected, with its reason
  /var/lib/aiwarden/evidence/        each sink's chain head and the agent id ([evidence])

ENVIRONMENT
  AIWARDEN_CONFIG                    the configuration file (instead of --config)
  AIWARDEN__<SECTION>__<KEY>=value   override any configuration key, e.g. AIWARDEN__AGENT__LOG_LEVEL=debug
  RUST_LOG                           log filter (wins over [agent] log_level)

SIGNALS
  SIGTERM, SIGINT   stop reading, deliver what is in flight within [agent] shutdown_grace, save
                    checkpoints, exit 0; a second signal exits at once (nothing acknowledged is lost)
  SIGHUP            reload rules, entitlements and calendars (unchanged rules keep their state)

ENDPOINTS (loopback, [telemetry] listen, default 127.0.0.1:9598)
  /metrics          Prometheus text: counters, tracked entities, HDR latency quantiles
  /health           liveness
  /ready            200 unless a SIEM refuses a sink's configuration or a source stopped on an error

EXIT CODES
  0  success    1  runtime failure (or a sink unreachable with --connect)
  2  configuration or usage error    3  status: a sink is failing; verify: intact but unsigned

EXAMPLES
  aiwarden demo
  aiwarden check-config --config /etc/aiwarden/aiwarden.toml --connect
  zcat audit-2026-11.jsonl.gz | aiwarden run --config pipe.toml   (with a [sources.x] type = \"stdin\")
  aiwarden status
  aiwarden verify export.json --public-key /etc/aiwarden/checkpoint.key.pub
  aiwarden pseudonym lookup jdoe@acme.example
";

/// The default configuration file of a packaged install.
pub const DEFAULT_CONFIG: &str = "/etc/aiwarden/aiwarden.toml";

/// aiwarden watches LLM audit streams (API middleware logs, Claude Code telemetry, MCP tool
/// calls), detects anomalous or policy-breaking use, and writes tagged alerts and normalised
/// events to your SIEM or local files.
#[derive(Debug, Parser)]
#[command(name = "aiwarden", version, about, long_about = None, after_long_help = MANUAL)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent: read the configured sources, detect, deliver to the sinks, until stopped
    /// (SIGTERM/SIGINT drain in-flight batches and save positions) or until every source ends.
    Run {
        /// The configuration file (environment overrides: AIWARDEN__SECTION__KEY=value).
        #[arg(short, long, env = "AIWARDEN_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate a configuration and its rules, and print the effective configuration with
    /// secrets masked. Exits 2 naming the file, key and reason when something is wrong.
    CheckConfig {
        /// The configuration file.
        #[arg(short, long, env = "AIWARDEN_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print nothing when the configuration is valid (for ExecStartPre and scripts).
        #[arg(short, long)]
        quiet: bool,
        /// Also check that every sink reaches its SIEM with its credentials (sends no records;
        /// exits 1 when one cannot).
        #[arg(long)]
        connect: bool,
    },
    /// Show a running agent's state: sources, rules and sinks, from its /ready and /metrics.
    /// Exits 0 when ready, 1 when the agent cannot be reached, 3 when a sink is failing.
    Status {
        /// The configuration file (for `[telemetry] listen`).
        #[arg(short, long, env = "AIWARDEN_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Ask this address instead of the configured one, e.g. 127.0.0.1:9598.
        #[arg(long)]
        address: Option<std::net::SocketAddr>,
    },
    /// Run the default rules over a bundled sample stream and print the alerts: no setup needed.
    Demo {
        /// Print alerts as JSON lines instead of readable text.
        #[arg(long)]
        json: bool,
        /// Print the normalised events too.
        #[arg(long)]
        events: bool,
    },
    /// Check rule files and run their examples.
    Rules {
        /// What to do with the rules.
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Install a SIEM content pack through the SIEM's API.
    Connectors {
        /// What to do.
        #[command(subcommand)]
        command: ConnectorsCommand,
    },
    /// Back-test the rules over audit files (JSON lines, `.gz` too): decode them in order, run
    /// the rules on event time, send nothing, and print per rule the alerts, the distinct
    /// entities and the top entities. Bad lines are counted by reason, never fatal.
    Replay {
        /// The audit files, replayed in this order.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// A configuration file for its `[detect]` settings (rules, entitlements, calendars).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Read the rules from this directory instead of the configured or built-in ones.
        #[arg(long, value_name = "DIR")]
        rules_dir: Option<PathBuf>,
        /// Only events at or after this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Only events before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
        /// Change a rule parameter before compiling, e.g.
        /// `mcp-volume.threshold.tiers.0.above=60`, `token-spike.enabled=false`. Repeatable.
        #[arg(long = "set", value_name = "RULE.PARAM=VALUE")]
        set: Vec<crate::backtest::Override>,
        /// Write the alerts as JSON lines to this file.
        #[arg(long, value_name = "FILE")]
        alerts_out: Option<PathBuf>,
        /// Save the detection state (windows, baselines) the replay built into this state
        /// directory, so an agent started on it begins with the history, e.g.
        /// `--seed-state /var/lib/aiwarden` before a first start (with the agent stopped).
        #[arg(long, value_name = "DIR")]
        seed_state: Option<PathBuf>,
    },
    /// Prove that records exported from a SIEM are complete and unaltered: reads NDJSON/JSON
    /// (Splunk export, Elastic `_search`, Sentinel query results) or CSV, in any order and with
    /// duplicates, and reports verified records, duplicates, gaps, altered records, broken links
    /// and checkpoints verified or forged. Exits 0 when complete, intact and signed; 1 when
    /// something is missing, altered or forged; 2 on usage errors; 3 when intact but not signed.
    Verify {
        /// The exported files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// An agent's checkpoint public key file (`aiwarden keygen checkpoint` wrote it as
        /// `<key>.pub`). Repeatable, e.g. one per agent or across a key change.
        #[arg(long = "public-key", value_name = "FILE", required = true)]
        public_keys: Vec<PathBuf>,
        /// Demand every seq from this one (e.g. 1 for a whole chain); by default the export
        /// may start anywhere.
        #[arg(long, value_name = "SEQ")]
        from_seq: Option<u64>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Pseudonyms: find a named person's records in the SIEM.
    Pseudonym {
        /// What to do.
        #[command(subcommand)]
        command: pseudonym::PseudonymCommand,
    },
    /// Create the secret keys of pseudonymisation and of evidence checkpoints.
    Keygen {
        /// Which key.
        #[command(subcommand)]
        command: keygen::KeygenCommand,
    },
}

/// The `rules` commands.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Load and validate every rule file, the entitlements and the calendars; list the rules
    /// and every error (file, rule, field, line). Exits 2 when something is invalid.
    Lint {
        /// Read the rules from this directory instead of the configured or built-in ones.
        #[arg(long, value_name = "DIR")]
        rules_dir: Option<PathBuf>,
        /// A configuration file for its `[detect]` settings.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Run every `[[example]]` of every rule file through a fresh engine and compare the
    /// alerts with the expectation. Exits 1 when an example fails.
    Test {
        /// Read the rules from this directory instead of the built-in ones.
        #[arg(long, value_name = "DIR")]
        rules_dir: Option<PathBuf>,
    },
    /// Export every rule for a SIEM: `--format sigma DIR` writes Sigma rules (correlation
    /// rules for thresholds) to DIR/rules, pySigma processing pipelines to DIR/pipelines, and
    /// the rules Sigma cannot express, with the reason, to DIR/skipped.md.
    Export {
        /// The format.
        #[arg(long, value_enum)]
        format: rules::ExportFormat,
        /// The directory to write to (created when missing).
        #[arg(value_name = "DIR")]
        out: PathBuf,
        /// Read the rules from this directory instead of the built-in ones.
        #[arg(long, value_name = "DIR")]
        rules_dir: Option<PathBuf>,
    },
}

/// The `connectors` commands.
#[derive(Debug, Subcommand)]
pub enum ConnectorsCommand {
    /// Install a SIEM's content pack with the credentials of its configured sink.
    Install {
        /// The SIEM.
        #[command(subcommand)]
        siem: InstallTarget,
    },
}

/// The SIEMs `connectors install` knows.
#[derive(Debug, Subcommand)]
pub enum InstallTarget {
    /// Put the ILM policy, component and index templates of the aiwarden data streams through
    /// the Elasticsearch API (with the credentials and TLS settings of the elastic sink), and
    /// with --saved-objects / --rules import the Kibana data views and governance dashboard and
    /// the Elastic Security detection rules through the Kibana API. Safe to run again.
    Elastic {
        /// The configuration file holding the elastic sink.
        #[arg(short, long, env = "AIWARDEN_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The elastic sink to take the endpoint and credentials from (when there are several).
        #[arg(long, value_name = "NAME")]
        sink: Option<String>,
        /// The Kibana base URL, e.g. https://kibana.example:5601 (for --saved-objects, --rules).
        #[arg(long, value_name = "URL")]
        kibana: Option<String>,
        /// Also import the Kibana saved objects (data views, governance dashboard).
        #[arg(long)]
        saved_objects: bool,
        /// Also import the Elastic Security detection rules.
        #[arg(long)]
        rules: bool,
    },
}

/// A failure with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong, with context.
    pub error: anyhow::Error,
}

impl Failure {
    /// The configuration or command line is wrong (exit 2).
    pub fn config(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 2,
            error: error.into(),
        }
    }

    /// Something failed while running (exit 1).
    pub fn runtime(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
}

/// Parse the command line, run the command, and return the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run::run(&config),
        Command::CheckConfig {
            config,
            quiet,
            connect,
        } => run::check_config(&config, quiet, connect),
        Command::Status { config, address } => status::status(&config, address),
        Command::Demo { json, events } => demo::demo(json, events),
        Command::Rules {
            command: RulesCommand::Lint { rules_dir, config },
        } => rules::lint(rules_dir, config),
        Command::Rules {
            command: RulesCommand::Test { rules_dir },
        } => rules::test(rules_dir),
        Command::Rules {
            command:
                RulesCommand::Export {
                    format,
                    out,
                    rules_dir,
                },
        } => rules::export(format, &out, rules_dir),
        Command::Connectors {
            command:
                ConnectorsCommand::Install {
                    siem:
                        InstallTarget::Elastic {
                            config,
                            sink,
                            kibana,
                            saved_objects,
                            rules,
                        },
                },
        } => connectors::install_elastic(
            &config,
            sink.as_deref(),
            kibana,
            crate::connectors::elastic::InstallOptions {
                saved_objects,
                rules,
            },
        ),
        Command::Replay {
            files,
            config,
            rules_dir,
            from,
            to,
            set,
            alerts_out,
            seed_state,
        } => replay::replay(replay::ReplayArgs {
            files,
            config,
            rules_dir,
            from,
            to,
            set,
            alerts_out,
            seed_state,
        }),
        Command::Verify {
            files,
            public_keys,
            from_seq,
            json,
        } => verify::verify(verify::VerifyArgs {
            files,
            public_keys,
            from_seq,
            json,
        }),
        Command::Pseudonym { command } => pseudonym::run(command),
        Command::Keygen { command } => keygen::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("aiwarden: error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}

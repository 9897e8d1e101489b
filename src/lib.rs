//! aiwarden: watches LLM audit streams, detects anomalous or policy-breaking use, and delivers
//! alerts and normalised events to SIEMs.
//!
//! The modules follow the data flow:
//!
//! - [`sources`]: read raw lines (files, stdin) and commit positions once delivery is acknowledged.
//! - [`decode`]: raw lines into canonical [`record::AuditRecord`]s (pure).
//! - [`detect`]: rules over event time, producing [`record::Alert`]s (pure).
//! - [`enrich`]: content analyses such as the prompt-injection text scanner (pure).
//! - [`sinks`]: write alerts and events out (stdout, file; SIEMs next).
//! - [`pipeline`]: wires sources, decode, detect and sinks; acknowledgement, shutdown.
//! - [`config`]: TOML plus environment into a validated [`config::Config`].
//! - [`connectors`]: SIEM content packs aiwarden installs itself.
//! - [`record`]: the wire types every module speaks (a leaf).
//! - [`dead_letter`]: where input that cannot be used goes, with the reason.
//! - [`telemetry`]: logging and counters.
//! - [`evidence`]: the per-sink hash chain, signed checkpoints, and verification of SIEM exports.
//! - [`privacy`]: pseudonyms, IP masking and content redaction on the way to each sink.
//! - [`kafka`]: Kafka connection settings shared by the `kafka` sink, source and detector tier.
//! - [`cli`]: the commands of the `aiwarden` binary.
//!
//! Library modules return typed errors (`thiserror`); only [`cli`] uses `anyhow`.

pub mod backtest;
pub mod cli;
pub mod config;
pub mod connectors;
pub mod dead_letter;
pub mod decode;
pub mod detect;
pub mod enrich;
pub mod evidence;
pub mod kafka;
pub mod net;
pub mod pipeline;
pub mod privacy;
pub mod queue;
pub mod record;
pub mod sinks;
pub mod sources;
pub mod telemetry;

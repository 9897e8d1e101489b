//! Integration tests: the pipeline in-process, and the real binary in temporary directories.
//!
//! One test binary (one link step) with a module per area.

mod alerts;
mod anthropic;
mod cli;
mod connectors;
/// The end-to-end benchmark's data set, shared by the encoder tests.
#[path = "../../examples/e2e_bench/dataset.rs"]
#[allow(dead_code)]
mod dataset;
mod durability;
mod ecs_encoding;
mod elastic;
mod inputs;
mod json_writer;
mod kafka;
mod malformed;
mod mock;
mod privacy;
mod restart;
mod rotation;
mod rules_cmd;
mod sentinel;
mod splunk_hec;
mod syslog;
mod telemetry;
mod util;
mod verify;
mod verify_network;

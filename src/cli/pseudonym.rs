//! `aiwarden pseudonym lookup`: the pseudonym of a named person, for an investigator holding the
//! key, so an analyst can find that person's records in the SIEM.

use super::Failure;
use crate::config::Config;
use crate::privacy::PseudonymKeys;
use anyhow::anyhow;
use clap::Subcommand;
use std::path::PathBuf;

/// The `pseudonym` commands.
#[derive(Debug, Subcommand)]
pub enum PseudonymCommand {
    /// Print the pseudonym of each VALUE under the active key (with --all-keys, under every key
    /// in the file, for records sent before a rotation). Needs read access to the key file.
    Lookup {
        /// The identities, e.g. `jdoe@acme.example`.
        #[arg(required = true, value_name = "VALUE")]
        values: Vec<String>,
        /// The key file (instead of `[privacy] key_file` of the configuration).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The configuration file naming the key file.
        #[arg(short, long, env = "AIWARDEN_CONFIG", default_value = super::DEFAULT_CONFIG)]
        config: PathBuf,
        /// Every key of the file, oldest first, not only the active one.
        #[arg(long)]
        all_keys: bool,
    },
}

/// Run a `pseudonym` command.
pub fn run(command: PseudonymCommand) -> Result<(), Failure> {
    let PseudonymCommand::Lookup {
        values,
        key_file,
        config,
        all_keys,
    } = command;
    let key_file = match key_file {
        Some(path) => path,
        None => Config::load(&config)
            .map_err(Failure::config)?
            .privacy
            .key_file
            .ok_or_else(|| {
                Failure::config(anyhow!(
                    "no --key-file and no [privacy] key_file in {}",
                    config.display()
                ))
            })?,
    };
    let keys = PseudonymKeys::load(&key_file).map_err(Failure::config)?;
    for value in &values {
        if all_keys {
            for key in keys.all() {
                println!("{value}\t{}", key.pseudonym(value));
            }
        } else {
            println!("{value}\t{}", keys.pseudonym(value));
        }
    }
    Ok(())
}

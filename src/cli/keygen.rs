//! `aiwarden keygen`: create the secret keys of privacy and evidence, readable only by their
//! owner (mode 0600), never printing a secret.

use super::Failure;
use crate::evidence::CheckpointSigner;
use crate::privacy::pseudonym::{valid_key_id, PseudonymKeys};
use anyhow::{anyhow, Context};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `keygen` commands.
#[derive(Debug, Subcommand)]
pub enum KeygenCommand {
    /// Add a new pseudonym key to a key file (created when missing); the new key becomes the
    /// active one and older keys stay for lookups. Restart the agent to use it.
    Pseudonym {
        /// The key file, e.g. /etc/aiwarden/pseudonym.keys.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
        /// The new key's id (travels in every pseudonym); default: today's date, e.g. 2026-11-24.
        #[arg(long)]
        id: Option<String>,
    },
    /// Create the Ed25519 checkpoint signing key (refuses to overwrite one) and write its public
    /// key next to it (`FILE.pub`) for auditors.
    Checkpoint {
        /// The secret key file, e.g. /etc/aiwarden/checkpoint.key.
        #[arg(long, value_name = "FILE")]
        key_file: PathBuf,
    },
}

/// Run a `keygen` command.
pub fn run(command: KeygenCommand) -> Result<(), Failure> {
    match command {
        KeygenCommand::Pseudonym { key_file, id } => {
            let id = id.unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
            if !valid_key_id(&id) {
                return Err(Failure::config(anyhow!(
                    "a key id is 1 to 32 letters, digits, `-`, `_` or `.`"
                )));
            }
            if key_file.exists() {
                let keys = PseudonymKeys::load(&key_file).map_err(Failure::config)?;
                if keys.all().iter().any(|key| key.id() == id) {
                    return Err(Failure::config(anyhow!(
                        "{} already holds a key `{id}`: choose another --id",
                        key_file.display()
                    )));
                }
            }
            let secret = hex::encode(rand::random::<[u8; 32]>());
            append_private(&key_file, &format!("{id} {secret}\n")).map_err(Failure::runtime)?;
            println!(
                "added pseudonym key `{id}` to {} (now active)",
                key_file.display()
            );
            Ok(())
        }
        KeygenCommand::Checkpoint { key_file } => {
            if key_file.exists() {
                return Err(Failure::config(anyhow!(
                    "{} exists: a new signing key would orphan the public key auditors hold",
                    key_file.display()
                )));
            }
            let signer = CheckpointSigner::generate();
            append_private(&key_file, &format!("{}\n", signer.secret_hex()))
                .map_err(Failure::runtime)?;
            let public = hex::encode(signer.verifying_key().as_bytes());
            let mut public_path = key_file.clone().into_os_string();
            public_path.push(".pub");
            std::fs::write(&public_path, format!("{public}\n"))
                .with_context(|| format!("writing {}", PathBuf::from(&public_path).display()))
                .map_err(Failure::runtime)?;
            println!(
                "wrote {} (secret, mode 0600) and {} (public key {}, id {})",
                key_file.display(),
                PathBuf::from(&public_path).display(),
                public,
                signer.key_id()
            );
            Ok(())
        }
    }
}

/// Append to a file created with mode 0600.
fn append_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

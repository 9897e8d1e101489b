//! The `file` source: tails JSON-lines files across rotation, with persisted checkpoints.

mod config;

pub use config::{default_max_line_bytes, FileSourceConfig, StartAt};

use super::{SourceContext, SourceError};

/// Run the file source until shutdown.
pub async fn run(config: FileSourceConfig, context: SourceContext) -> Result<(), SourceError> {
    let _ = (config, context);
    Err(SourceError::Other(
        "the file source is not built yet".into(),
    ))
}

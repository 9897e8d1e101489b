//! SIEM content that aiwarden installs itself (`aiwarden connectors install <siem>`).
//!
//! The assets are the files of `connectors/` in the repository, compiled into the binary so
//! an installed agent always installs the content that matches the fields it emits.

pub mod elastic;

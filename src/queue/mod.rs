//! Durable per-sink queues: what a sink has accepted from the pipeline but not yet delivered.
//!
//! A network sink encodes each record once on intake and appends it here; its source may then
//! commit past it. Delivery reads the queue in order and marks records done as the SIEM accepts
//! them (or they are dead-lettered). ARCHITECTURE.md ("Durable queue") has the format, why a
//! segment log of our own, and the benchmark; README ("Durability") what survives a crash or a
//! power cut.

mod commit;
mod config;
pub mod disk;
pub mod frame;
mod reader;

pub use config::{Fsync, QueueConfig, QueueKind, WhenFull};
pub use disk::{Append, DiskQueue, Opened, QueueError, QueueStats, Writer};
pub use frame::{FrameGroup, QueuedRecord, RecordKind};
pub use reader::{Damaged, ReadItem, Reader};

#[cfg(test)]
mod tests;

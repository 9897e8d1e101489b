//! Durable per-sink queues: what a sink has accepted from the pipeline but not yet delivered.
//!
//! A network sink encodes each record once on intake and appends it here; its source may then
//! commit past it. Delivery reads the queue in order and marks records done as the SIEM accepts
//! them (or they are dead-lettered). See `queue/DESIGN.md` for the format, the choice of a
//! segment log of our own, and what survives a crash or a power cut.

mod config;
pub mod disk;
pub mod frame;

pub use config::{Fsync, QueueConfig, QueueKind, WhenFull};
pub use disk::{Append, Damaged, DiskQueue, Opened, QueueError, QueueStats, ReadItem, Reader, Writer};
pub use frame::{QueuedRecord, RecordKind};

#[cfg(test)]
mod tests;

//! The write side's pure core: aggregates, commands, events and value types. No I/O here.

pub mod metadata;
pub mod organization;
pub mod text;

pub use metadata::CommandMetadata;

//! The write side's pure core: aggregates, commands, events and value types. No I/O here.

pub mod account;
pub mod job;
pub mod metadata;
pub mod model_group;
pub mod model_name;
pub mod money;
pub mod organization;
pub mod team;
pub mod text;
pub mod upcast;
pub mod usage;

pub use metadata::CommandMetadata;
pub use money::{Money, Percent};

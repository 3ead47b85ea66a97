//! The use cases and the workers behind them: the command bus, the domain's lookups, the
//! gateway's admission and usage recording, the usage ledger and spend ingestion, the LiteLLM
//! reconciler, alert webhooks, the key vault, and the registry of every consumer. No HTTP here.

pub mod accounts;
pub mod commands;
pub mod consumers;
pub mod error;
pub mod gateway;
pub mod keys;
pub mod lookups;
pub mod metrics;
pub mod sync;
pub mod team_keys;
pub mod teams;
pub mod usage;
pub mod webhooks;

pub use error::{AppError, AppResult, ErrorKind};

//! The gateway's work behind HTTP: budget leases over the budgets read model's holds, LiteLLM's
//! prices, the stream tap that finds usage, and the batched usage recorder.

pub mod leases;
pub mod prices;
pub mod recorder;
pub mod sse;

//! The gateway's work behind HTTP: admission (body checks, model check, worst-case hold), budget
//! leases over the budgets read model's holds, LiteLLM's prices, the stream tap that finds
//! usage, and the batched usage recorder.

pub mod admission;
pub mod leases;
pub mod prices;
pub mod recorder;
pub mod sse;

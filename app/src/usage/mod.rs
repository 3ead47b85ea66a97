//! The usage ledger and the ways usage reaches it: our API, LiteLLM's spend logs (pulled) and
//! LiteLLM's `generic_api` callback (pushed).

pub mod call_ids;
pub mod ingest;
pub mod ledger;
pub mod litellm_rows;

pub use call_ids::{CallIds, Identity};
pub use ingest::{IngestSettings, SpendLogIngestor};
pub use ledger::{Incoming, Ledger, Prepared};

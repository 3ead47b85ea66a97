//! A typed client for LiteLLM's management API (the parts we drive: teams, keys, the model
//! catalog, readiness) and an in-process test double that answers like the real proxy.
//!
//! The contract and real captured responses: `../shared/litellm/README.md`. Errors are
//! classified by `error.type` first and the status second: LiteLLM reports many 400/404s with
//! `type: internal_server_error`, and some handlers answer FastAPI's `{"detail": ...}` instead.

mod client;
#[cfg(feature = "double")]
pub mod double;
mod error;
mod types;

pub use client::{ClientConfig, LitellmClient};
pub use error::LitellmError;
pub use types::{
    JobTag, KeyInfo, KeySpec, SpendLogMetadata, SpendLogPage, SpendLogRow, TeamInfo, TeamSpec,
};

/// How LiteLLM identifies a key in its database (SHA-256 hex of the key); every key endpoint
/// takes it in place of the key, so the key itself never has to travel in a URL.
pub fn key_hash(key: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

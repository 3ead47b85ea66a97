//! The credentials requests carry and how they are read and compared, with no dependency on
//! the rest of the service (the extractors in `auth` and the OpenAPI document both use them).

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const ADMIN_KEY_HEADER: &str = "x-admin-key";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The master key, kept only as a digest so comparisons take the same time whatever the
/// length or content of the guess.
pub struct AdminKey {
    digest: [u8; 32],
}

impl AdminKey {
    pub fn new(key: &SecretString) -> Self {
        Self {
            digest: Sha256::digest(key.expose_secret().as_bytes()).into(),
        }
    }

    /// A short, non-secret id of the key, recorded as the actor of admin commands.
    pub fn fingerprint(&self) -> String {
        self.digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The actor recorded for commands made with this key (with the header or the panel).
    pub fn actor(&self) -> String {
        format!("admin:{}", self.fingerprint())
    }

    /// A key for `purpose`, derived from the secret (so it changes when the secret does).
    pub fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.digest);
        hasher.update(purpose);
        hasher.finalize().into()
    }

    pub fn matches(&self, candidate: &[u8]) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate).into();
        self.digest.ct_eq(&candidate).into()
    }

    /// Whether the request's `Authorization: Bearer` token is this secret (the push and
    /// metrics tokens).
    pub fn is_bearer_of(&self, headers: &axum::http::HeaderMap) -> bool {
        self.matches(bearer(headers).unwrap_or_default().as_bytes())
    }
}

/// The token of an `Authorization: Bearer <token>` header (team keys, LiteLLM's push).
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A team's virtual key: `Authorization: Bearer …` (OpenAI's SDKs), else `x-api-key`
/// (Anthropic's).
pub fn team_key(headers: &axum::http::HeaderMap) -> Option<&str> {
    bearer(headers).or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_key_matches() {
        let key = AdminKey::new(&SecretString::from("mk-0123456789abcdef"));
        assert!(key.matches(b"mk-0123456789abcdef"));
        assert!(!key.matches(b"mk-0123456789abcdeF"));
        assert!(!key.matches(b"mk-0123456789abcdef "));
        assert!(!key.matches(b""));
    }
}

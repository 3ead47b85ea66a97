//! A team's value types, each parsed once at the edge: ids, alias, mode, limits, fingerprint.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::{self, TextError};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeamId(String);

impl TeamId {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("team_id", raw, 64).map(Self)
    }

    pub fn generate() -> Self {
        Self(format!("team_{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeamAlias(String);

impl TeamAlias {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::display_name("team_alias", raw, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BudgetMode {
    /// Requests stop when the credits are spent.
    #[default]
    Hard,
    /// Requests continue past the credits; warnings only.
    Soft,
}

impl BudgetMode {
    /// A mode read back from a read model, which holds only `as_str` values; anything else is
    /// held to the credits.
    pub fn from_stored(text: &str) -> Self {
        if text == Self::Soft.as_str() {
            Self::Soft
        } else {
            Self::Hard
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hard => "hard",
            Self::Soft => "soft",
        }
    }
}

/// Requests and tokens per minute; `None` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RateLimits {
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
}

impl RateLimits {
    pub const MAX_RPM: u64 = 10_000_000;
    pub const MAX_TPM: u64 = 10_000_000_000;

    pub fn new(rpm_limit: Option<u64>, tpm_limit: Option<u64>) -> Result<Self, String> {
        for (name, value, max) in [
            ("rpm_limit", rpm_limit, Self::MAX_RPM),
            ("tpm_limit", tpm_limit, Self::MAX_TPM),
        ] {
            if let Some(value) = value
                && (value == 0 || value > max)
            {
                return Err(format!(
                    "{name} must be between 1 and {max} (omit it for no limit)"
                ));
            }
        }
        Ok(Self {
            rpm_limit,
            tpm_limit,
        })
    }
}

/// A non-secret identifier of a virtual key: the first 16 hex digits of its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyFingerprint(String);

impl KeyFingerprint {
    pub fn new(hex_prefix: String) -> Self {
        Self(hex_prefix)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

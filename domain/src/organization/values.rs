//! An organization's value types, each parsed once at the edge.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::{self, TextError};

/// The aggregate id of an organization: URL-safe, chosen by the admin or generated.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrganizationId(String);

impl OrganizationId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("organization_id", raw, Self::MAX_LEN).map(Self)
    }

    pub fn generate() -> Self {
        Self(format!("org_{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::display_name("name", raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The organization's id in LiteLLM, when the operator mirrors organizations there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LitellmOrganizationId(String);

impl LitellmOrganizationId {
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("litellm_organization_id", raw, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = OrganizationId::generate();
        assert!(id.as_str().starts_with("org_"));
        assert_eq!(OrganizationId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn names_longer_than_the_limit_are_refused() {
        assert!(OrganizationName::parse(&"a".repeat(200)).is_ok());
        assert!(OrganizationName::parse(&"a".repeat(201)).is_err());
        assert!(OrganizationName::parse("").is_err());
    }
}

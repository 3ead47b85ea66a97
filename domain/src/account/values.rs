//! An account's value types, each parsed once at the edge.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::text::{self, TextError};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("account_id", raw, 64).map(Self)
    }

    pub fn generate() -> Self {
        Self(format!("acct_{}", Uuid::new_v4().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An API key's public id: the part of the key before its secret, shown in lists and the audit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApiKeyId(String);

impl ApiKeyId {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::identifier("key_id", raw, 64).map(Self)
    }

    pub fn generate() -> Self {
        Self(format!(
            "key_{}",
            &Uuid::new_v4().simple().to_string()[..16]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login email, kept in lower case so one person cannot hold two accounts by case alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        let trimmed = raw.trim().to_lowercase();
        let valid = raw.trim().chars().count() <= 254
            && trimmed.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !trimmed.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(trimmed))
        } else {
            Err(TextError::Invalid {
                field: "email",
                reason: "must be an email address such as ana@example.com".into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::display_name("display_name", raw, 200).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, TextError> {
        text::display_name("name", raw, 100).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            Email::parse(" Ana@Example.COM ").unwrap().as_str(),
            "ana@example.com"
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@example",
            "a b@example.com",
            "ana@.com",
            "a@b@c.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_ids_parse_back() {
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(id.as_str()).unwrap(), id);
        let key = ApiKeyId::generate();
        assert_eq!(ApiKeyId::parse(key.as_str()).unwrap(), key);
    }
}

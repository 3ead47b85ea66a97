//! Why an account command is refused.

use thiserror::Error;

use super::role::Role;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountError {
    #[error("account already exists")]
    AlreadyExists,
    #[error("account not found")]
    NotFound,
    #[error("the account is disabled; enable it first")]
    Disabled,
    #[error("a key's role may be no wider than its account's: {account} cannot hold a {key} key")]
    RoleTooWide {
        key: &'static str,
        account: &'static str,
    },
    #[error("API key not found")]
    KeyNotFound,
    #[error("expires_at must be in the future")]
    ExpiryInPast,
}

impl AccountError {
    pub fn role_too_wide(key: Role, account: Role) -> Self {
        Self::RoleTooWide {
            key: key.as_str(),
            account: account.as_str(),
        }
    }
}

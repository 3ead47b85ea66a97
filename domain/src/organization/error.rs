//! Why an organization command is refused.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrganizationError {
    #[error("organization already exists")]
    AlreadyExists,
    #[error("organization not found")]
    NotFound,
    #[error("the organization was deleted")]
    Deleted,
    #[error("the organization still has teams {0:?}; delete them first")]
    HasTeams(Vec<String>),
    #[error("lookup failed: {0}")]
    Lookup(String),
}

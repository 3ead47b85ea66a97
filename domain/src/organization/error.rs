use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrganizationError {
    #[error("organization already exists")]
    AlreadyExists,
    #[error("organization not found")]
    NotFound,
}

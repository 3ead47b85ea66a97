//! Why a team command is refused.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TeamError {
    #[error("a team with this team_id already exists")]
    AlreadyExists,
    #[error("team not found")]
    NotFound,
    #[error("the team was deleted; it accepts no more commands (its history is kept)")]
    Deleted,
    #[error("organization {0} does not exist")]
    OrganizationNotFound(String),
    #[error("organization {0} was deleted")]
    OrganizationDeleted(String),
    #[error("unknown model groups: {0:?}")]
    UnknownModelGroups(Vec<String>),
    #[error("model group {0} is not assigned to this team")]
    GroupNotAssigned(String),
    #[error("the team's credits would exceed the maximum balance")]
    CreditsOverflow,
    #[error("lookup failed: {0}")]
    Lookup(String),
}

//! The one error type of the use cases: what went wrong (a kind the HTTP layer maps to a status
//! once), a stable machine-readable code, a message safe to show, and for internal failures the
//! cause, which is logged and never shown.

use std::error::Error as StdError;

use store::db_errors::{is_unavailable, is_unstorable_text};

/// What kind of failure this is; `api` maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or asks for something that cannot be bounded (400).
    Invalid,
    /// No valid credential (401).
    Unauthorized,
    /// A valid credential that may not do this (403).
    Forbidden,
    NotFound,
    /// The current state forbids it (409).
    Conflict,
    /// Well-formed but refused by a rule (422).
    Unprocessable,
    /// A budget or rate limit is used up (429).
    Exhausted,
    /// Something this depends on is briefly away; retry (503).
    Unavailable,
    /// LiteLLM answered with an error or nonsense (502).
    Upstream,
    /// Our bug (500).
    Internal,
}

impl ErrorKind {
    /// The caller's mistake or situation, not ours (metrics count these as "rejected").
    pub fn is_callers(self) -> bool {
        !matches!(self, Self::Unavailable | Self::Upstream | Self::Internal)
    }
}

pub type Cause = Box<dyn StdError + Send + Sync>;

#[derive(Debug)]
pub struct AppError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// The cause of an internal or availability failure, for the log only.
    pub source: Option<Cause>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after),
            ..Self::new(ErrorKind::Unavailable, code, message)
        }
    }

    pub fn internal(source: impl Into<Cause>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(
                ErrorKind::Internal,
                "internal_error",
                "internal error; the request id in the x-request-id header identifies it in the logs",
            )
        }
    }

    pub fn with_source(mut self, source: impl Into<Cause>) -> Self {
        self.source = Some(source.into());
        self
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        if is_unstorable_text(&error) {
            return Self::invalid(
                "invalid_text",
                "text in the request contains a NUL character, which cannot be stored",
            );
        }
        if is_unavailable(&error) {
            return Self::unavailable(
                "database_unavailable",
                "the database is unavailable; retry shortly",
                1,
            )
            .with_source(error);
        }
        Self::internal(error)
    }
}

impl From<domain::text::TextError> for AppError {
    fn from(error: domain::text::TextError) -> Self {
        Self::unprocessable("validation_failed", error.to_string())
    }
}

impl From<domain::money::MoneyError> for AppError {
    fn from(error: domain::money::MoneyError) -> Self {
        Self::unprocessable("validation_failed", error.to_string())
    }
}

fn lookup_failed(message: String) -> AppError {
    AppError::unavailable("lookup_unavailable", message, 1)
}

impl From<domain::organization::OrganizationError> for AppError {
    fn from(error: domain::organization::OrganizationError) -> Self {
        use domain::organization::OrganizationError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict(
                "organization_exists",
                "an organization with this organization_id already exists",
            ),
            E::NotFound => Self::not_found("organization_not_found", "organization not found"),
            E::Deleted => Self::conflict("organization_deleted", message),
            E::HasTeams(_) => Self::conflict("organization_has_teams", message),
            E::Lookup(message) => lookup_failed(message),
        }
    }
}

impl From<domain::model_group::ModelGroupError> for AppError {
    fn from(error: domain::model_group::ModelGroupError) -> Self {
        use domain::model_group::ModelGroupError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict("model_group_exists", message),
            E::NotFound => Self::not_found("model_group_not_found", message),
            E::InUse(_) => Self::conflict("model_group_in_use", message),
            E::UnknownModels { .. } => Self::unprocessable("unknown_models", message),
            E::Lookup(message) => lookup_failed(message),
        }
    }
}

impl From<domain::team::TeamError> for AppError {
    fn from(error: domain::team::TeamError) -> Self {
        use domain::team::TeamError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict("team_exists", message),
            E::NotFound => Self::not_found("team_not_found", message),
            E::Deleted => Self::conflict("team_deleted", message),
            E::OrganizationNotFound(_) => Self::unprocessable("organization_not_found", message),
            E::OrganizationDeleted(_) => Self::unprocessable("organization_deleted", message),
            E::UnknownModelGroups(_) => Self::unprocessable("unknown_model_groups", message),
            E::GroupNotAssigned(_) => Self::conflict("model_group_not_assigned", message),
            E::CreditsOverflow => Self::unprocessable("credits_overflow", message),
            E::Lookup(message) => lookup_failed(message),
        }
    }
}

impl From<domain::job::JobError> for AppError {
    fn from(error: domain::job::JobError) -> Self {
        use domain::job::JobError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict("job_exists", message),
            E::NotFound => Self::not_found("job_not_found", message),
            E::AlreadyEnded(_) => Self::conflict("job_ended", message),
        }
    }
}

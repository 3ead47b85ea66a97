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

macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every `error.code` the API answers with: stable, machine-readable, one per reason.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)*
        }

        impl ErrorCode {
            /// Every code, for the OpenAPI document.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }
        }
    };
}

error_codes! {
    AccountDisabled => "account_disabled",
    AccountExists => "account_exists",
    AccountNotFound => "account_not_found",
    ApiKeyNotFound => "api_key_not_found",
    BudgetExceeded => "budget_exceeded",
    ConcurrentModification => "concurrent_modification",
    CreditsOverflow => "credits_overflow",
    CsrfFailed => "csrf_failed",
    DatabaseUnavailable => "database_unavailable",
    DuplicateValue => "duplicate_value",
    IdempotencyInProgress => "idempotency_in_progress",
    IdempotencyKeyConsumed => "idempotency_key_consumed",
    IdempotencyKeyReused => "idempotency_key_reused",
    InternalError => "internal_error",
    InvalidBody => "invalid_body",
    InvalidCursor => "invalid_cursor",
    InvalidForm => "invalid_form",
    InvalidHeader => "invalid_header",
    InvalidIdempotencyKey => "invalid_idempotency_key",
    InvalidJson => "invalid_json",
    InvalidPath => "invalid_path",
    InvalidPeriod => "invalid_period",
    InvalidPosition => "invalid_position",
    InvalidQuery => "invalid_query",
    InvalidRequest => "invalid_request",
    InvalidText => "invalid_text",
    InvalidTime => "invalid_time",
    InvalidUsage => "invalid_usage",
    JobEnded => "job_ended",
    JobExists => "job_exists",
    JobNotFound => "job_not_found",
    KeyExpiryInPast => "key_expiry_in_past",
    KeyRoleTooWide => "key_role_too_wide",
    LitellmBadAnswer => "litellm_bad_answer",
    LitellmError => "litellm_error",
    LitellmNotConfigured => "litellm_not_configured",
    LitellmUnavailable => "litellm_unavailable",
    LitellmUnreachable => "litellm_unreachable",
    LookupUnavailable => "lookup_unavailable",
    MethodNotAllowed => "method_not_allowed",
    ModelGroupExists => "model_group_exists",
    ModelGroupInUse => "model_group_in_use",
    ModelGroupNotAssigned => "model_group_not_assigned",
    ModelGroupNotFound => "model_group_not_found",
    ModelNotAllowed => "model_not_allowed",
    ModelUnpriced => "model_unpriced",
    NotPermitted => "not_permitted",
    OrganizationDeleted => "organization_deleted",
    OrganizationExists => "organization_exists",
    OrganizationHasTeams => "organization_has_teams",
    OrganizationNotFound => "organization_not_found",
    PayloadTooLarge => "payload_too_large",
    RequestBodyTimeout => "request_body_timeout",
    WebhookDestinationRefused => "webhook_destination_refused",
    PricesUnavailable => "prices_unavailable",
    ProjectionLag => "projection_lag",
    PushDisabled => "push_disabled",
    RouteNotFound => "route_not_found",
    SessionExpired => "session_expired",
    TeamDeleted => "team_deleted",
    TeamExists => "team_exists",
    TeamNotFound => "team_not_found",
    TooManyFailedLogins => "too_many_failed_logins",
    Unauthorized => "unauthorized",
    UnboundedRequest => "unbounded_request",
    UnknownModelGroups => "unknown_model_groups",
    UnknownModels => "unknown_models",
    UnsupportedMediaType => "unsupported_media_type",
    ValidationFailed => "validation_failed",
    WeakPassword => "weak_password",
    WebhookNotFound => "webhook_not_found",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub type Cause = Box<dyn StdError + Send + Sync>;

#[derive(Debug)]
pub struct AppError {
    pub kind: ErrorKind,
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// The cause of an internal or availability failure, for the log only.
    pub source: Option<Cause>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn invalid(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }

    pub fn unprocessable(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, code, message)
    }

    pub fn not_found(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, code, message)
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    pub fn unavailable(code: ErrorCode, message: impl Into<String>, retry_after: u64) -> Self {
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
                ErrorCode::InternalError,
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
                ErrorCode::InvalidText,
                "text in the request contains a NUL character, which cannot be stored",
            );
        }
        if is_unavailable(&error) {
            return Self::unavailable(
                ErrorCode::DatabaseUnavailable,
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
        Self::unprocessable(ErrorCode::ValidationFailed, error.to_string())
    }
}

impl From<domain::money::MoneyError> for AppError {
    fn from(error: domain::money::MoneyError) -> Self {
        Self::unprocessable(ErrorCode::ValidationFailed, error.to_string())
    }
}

fn lookup_failed(message: String) -> AppError {
    AppError::unavailable(ErrorCode::LookupUnavailable, message, 1)
}

impl From<domain::account::AccountError> for AppError {
    fn from(error: domain::account::AccountError) -> Self {
        use domain::account::AccountError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict(ErrorCode::AccountExists, message),
            E::NotFound => Self::not_found(ErrorCode::AccountNotFound, message),
            E::Disabled => Self::conflict(ErrorCode::AccountDisabled, message),
            E::RoleTooWide { .. } => Self::unprocessable(ErrorCode::KeyRoleTooWide, message),
            E::KeyNotFound => Self::not_found(ErrorCode::ApiKeyNotFound, message),
            E::ExpiryInPast => Self::unprocessable(ErrorCode::KeyExpiryInPast, message),
        }
    }
}

impl From<domain::organization::OrganizationError> for AppError {
    fn from(error: domain::organization::OrganizationError) -> Self {
        use domain::organization::OrganizationError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict(
                ErrorCode::OrganizationExists,
                "an organization with this organization_id already exists",
            ),
            E::NotFound => {
                Self::not_found(ErrorCode::OrganizationNotFound, "organization not found")
            }
            E::Deleted => Self::conflict(ErrorCode::OrganizationDeleted, message),
            E::HasTeams(_) => Self::conflict(ErrorCode::OrganizationHasTeams, message),
            E::Lookup(message) => lookup_failed(message),
        }
    }
}

impl From<domain::model_group::ModelGroupError> for AppError {
    fn from(error: domain::model_group::ModelGroupError) -> Self {
        use domain::model_group::ModelGroupError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict(ErrorCode::ModelGroupExists, message),
            E::NotFound => Self::not_found(ErrorCode::ModelGroupNotFound, message),
            E::InUse(_) => Self::conflict(ErrorCode::ModelGroupInUse, message),
            E::UnknownModels { .. } => Self::unprocessable(ErrorCode::UnknownModels, message),
            E::Lookup(message) => lookup_failed(message),
        }
    }
}

impl From<domain::team::TeamError> for AppError {
    fn from(error: domain::team::TeamError) -> Self {
        use domain::team::TeamError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict(ErrorCode::TeamExists, message),
            E::NotFound => Self::not_found(ErrorCode::TeamNotFound, message),
            E::Deleted => Self::conflict(ErrorCode::TeamDeleted, message),
            E::OrganizationNotFound(_) => {
                Self::unprocessable(ErrorCode::OrganizationNotFound, message)
            }
            E::OrganizationDeleted(_) => {
                Self::unprocessable(ErrorCode::OrganizationDeleted, message)
            }
            E::UnknownModelGroups(_) => Self::unprocessable(ErrorCode::UnknownModelGroups, message),
            E::GroupNotAssigned(_) => Self::conflict(ErrorCode::ModelGroupNotAssigned, message),
            E::CreditsOverflow => Self::unprocessable(ErrorCode::CreditsOverflow, message),
            E::Lookup(message) => lookup_failed(message),
        }
    }
}

impl From<domain::job::JobError> for AppError {
    fn from(error: domain::job::JobError) -> Self {
        use domain::job::JobError as E;
        let message = error.to_string();
        match error {
            E::AlreadyExists => Self::conflict(ErrorCode::JobExists, message),
            E::NotFound => Self::not_found(ErrorCode::JobNotFound, message),
            E::AlreadyEnded(_) => Self::conflict(ErrorCode::JobEnded, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_snake_case_text() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is listed twice");
            assert!(
                !text.is_empty()
                    && text.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    && !text.starts_with('_')
                    && !text.ends_with('_'),
                "{text} is not snake_case"
            );
        }
    }

    #[test]
    fn domain_refusals_keep_their_codes() {
        let error = AppError::from(domain::team::TeamError::NotFound);
        assert_eq!(
            (error.kind, error.code.as_str()),
            (ErrorKind::NotFound, "team_not_found")
        );
        let error = AppError::from(domain::model_group::ModelGroupError::AlreadyExists);
        assert_eq!(
            (error.kind, error.code.as_str()),
            (ErrorKind::Conflict, "model_group_exists")
        );
    }
}

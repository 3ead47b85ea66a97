//! The one HTTP error type: every failure becomes `{"error": {"code", "message"}}` with the
//! right status, and internal details are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use store::db_errors::{is_unavailable, is_unstorable_text};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// The cause of a 5xx, for the log only.
    pub source: Option<anyhow::Error>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            source: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after_secs: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self {
            source: Some(source.into()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error; the request id in the x-request-id header identifies it in the logs",
            )
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if is_unstorable_text(&error) {
            return Self::bad_request(
                "invalid_text",
                "text in the request contains a NUL character, which cannot be stored",
            );
        }
        if is_unavailable(&error) {
            return Self {
                source: Some(error.into()),
                ..Self::unavailable(
                    "database_unavailable",
                    "the database is unavailable; retry shortly",
                    1,
                )
            };
        }
        Self::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            match &self.source {
                Some(source) => {
                    tracing::error!(error = ?source, code = self.code, "request failed")
                }
                None => {
                    tracing::error!(code = self.code, message = %self.message, "request failed")
                }
            }
        }
        let body = Json(json!({"error": {"code": self.code, "message": self.message}}));
        let mut response = (self.status, body).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<domain::text::TextError> for ApiError {
    fn from(error: domain::text::TextError) -> Self {
        Self::unprocessable("validation_failed", error.to_string())
    }
}

impl From<domain::money::MoneyError> for ApiError {
    fn from(error: domain::money::MoneyError) -> Self {
        Self::unprocessable("validation_failed", error.to_string())
    }
}

fn lookup_failed(message: String) -> ApiError {
    ApiError::unavailable("lookup_unavailable", message, 1)
}

impl From<domain::organization::OrganizationError> for ApiError {
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

impl From<domain::model_group::ModelGroupError> for ApiError {
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

impl From<domain::team::TeamError> for ApiError {
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

//! Admin authentication: `X-Admin-Key: <MASTER_KEY>`, compared in constant time, or the admin
//! panel's session cookie with its CSRF token.

use app::error::ErrorCode;
use std::time::Instant;

use crate::credentials::{ADMIN_KEY_HEADER, CSRF_HEADER};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};

/// Proof that the request carries the master key; handlers that take it are admin-only.
#[derive(Debug, Clone)]
pub struct Admin {
    actor: String,
}

impl Admin {
    /// The actor recorded in event metadata: `admin:<key fingerprint>`.
    pub fn actor(&self) -> &str {
        &self.actor
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(Verified::Admin(admin)) = parts.extensions.get::<Verified>() {
            return Ok(admin.clone());
        }
        if let Some(value) = parts.headers.get(ADMIN_KEY_HEADER) {
            return from_key(parts, state, value.as_bytes());
        }
        if crate::panel::session::cookie(&parts.headers, crate::panel::session::SESSION_COOKIE)
            .is_some()
        {
            return from_session(parts, state).await;
        }
        Err(ApiError::unauthorized("missing X-Admin-Key header"))
    }
}

/// A caller verified before the handler ran (by the idempotency middleware), kept in the
/// request's extensions so the handler's extractor does not verify it again (a panel session
/// is a database update). Only the server puts it there.
#[derive(Clone)]
pub enum Verified {
    Admin(Admin),
    Team(app::team_keys::TeamCaller),
}

impl Verified {
    /// Whom an idempotency record belongs to: `admin:<key fingerprint>` or `team:<id>`.
    pub fn actor(&self) -> String {
        match self {
            Verified::Admin(admin) => admin.actor.clone(),
            Verified::Team(caller) => format!("team:{}", caller.team_id),
        }
    }
}

/// The verified caller of a request, without counting or logging a failure (the handler's own
/// extractor does that once): the admin (key, or live panel session with its CSRF token) or a
/// team (its virtual key). `None` for anything unauthenticated.
pub async fn verify(parts: &Parts, state: &AppState) -> Option<Verified> {
    if let Some(value) = parts.headers.get(ADMIN_KEY_HEADER) {
        return state.admin_key.matches(value.as_bytes()).then(|| {
            Verified::Admin(Admin {
                actor: state.admin_key.actor(),
            })
        });
    }
    if crate::panel::session::cookie(&parts.headers, crate::panel::session::SESSION_COOKIE)
        .is_some()
    {
        return from_session(parts, state).await.ok().map(Verified::Admin);
    }
    let key = crate::credentials::team_key(&parts.headers)?.trim();
    if key.is_empty() {
        return None;
    }
    state.team_keys.resolve(key).await.ok().map(Verified::Team)
}

/// `X-Admin-Key`: the key is verified first, so the right key is never refused; wrong keys
/// count against the client address like failed panel logins, and past the limit are 429.
fn from_key(parts: &Parts, state: &AppState, key: &[u8]) -> Result<Admin, ApiError> {
    if state.admin_key.matches(key) {
        return Ok(Admin {
            actor: state.admin_key.actor(),
        });
    }
    let client = state.client_address(parts);
    if let Err(wait) = state.login_limiter.failed(client, Instant::now()) {
        tracing::warn!(
            ?client,
            "admin key refused: too many wrong keys from this address"
        );
        return Err(too_many_failures(wait));
    }
    tracing::warn!(?client, "request with a wrong admin key");
    Err(ApiError::unauthorized("invalid admin key"))
}

/// 429 with the seconds left in the address's window.
fn too_many_failures(wait: std::time::Duration) -> ApiError {
    ApiError {
        retry_after_secs: Some(wait.as_secs().max(1)),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManyFailedLogins,
            "too many wrong admin keys from this address; retry after the Retry-After seconds",
        )
    }
}

/// The admin panel's requests: a live session cookie, and for anything but a read the
/// session's CSRF token in `X-CSRF-Token` (a header another site's form cannot send).
async fn from_session(parts: &Parts, state: &AppState) -> Result<Admin, ApiError> {
    let Some(session) = crate::panel::current_session(state, &parts.headers).await? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::SessionExpired,
            "the admin session has ended; log in again",
        ));
    };
    let reads = matches!(parts.method, Method::GET | Method::HEAD);
    let token = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !reads && !session.csrf_matches(token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::CsrfFailed,
            "missing or wrong X-CSRF-Token for this session; reload the page",
        ));
    }
    Ok(Admin {
        actor: session.actor,
    })
}

//! Admin authentication and authorization: `X-Admin-Key` holding the master key (compared in
//! constant time; the break-glass owner) or an account's API key (`sa_…`, its account's and its
//! own role both checked), or the admin panel's session cookie with its CSRF token; then the
//! route's permission (`crate::permissions`) against the caller's role, before any handler runs.

use app::error::ErrorCode;
use std::time::Instant;

use crate::credentials::{ADMIN_KEY_HEADER, CSRF_HEADER};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use domain::account::{Permission, Role};

/// A usage record's request id as an organization-scoped caller sees it: a digest. The id of a
/// call through saas-api is the call id it sent LiteLLM, and whoever holds one can, for its
/// lifetime, make direct calls that count as that one call; a customer's own admin must not.
pub fn redacted_request_id(request_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(request_id.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("redacted-{hex}")
}

/// The account id in an actor such as `account:acct_1/key:key_2` (what an account's key or
/// session records), `None` for any other actor.
pub fn actor_account(actor: &str) -> Option<&str> {
    actor.strip_prefix("account:")?.split('/').next()
}

/// Proof that the request carries an admin credential whose role allows the route; handlers
/// that take it are admin-only.
#[derive(Debug, Clone)]
pub struct Admin {
    actor: String,
    grant: Grant,
    /// The organizations the credential holds for; `None`: every organization.
    organizations: Option<Vec<String>>,
}

/// What the credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// The master key, or a panel session opened with it: everything.
    MasterKey,
    /// An account's key: what both the account's role and the key's allow.
    Key { account: Role, key: Role },
}

impl Admin {
    /// The actor recorded in event metadata: `admin:<key fingerprint>` for the master key,
    /// `account:<id>/key:<key id>` for an account's key.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The account behind the credential (`None` for the master key).
    pub fn account_id(&self) -> Option<&str> {
        actor_account(&self.actor)
    }

    /// The role in words: the account's, with the key's when it is narrower.
    pub fn role_name(&self) -> String {
        match self.grant {
            Grant::Key { account, key } if account == key => account.as_str().to_owned(),
            Grant::Key { account, key } => format!("{} (key: {})", account.as_str(), key.as_str()),
            Grant::MasterKey => "owner".to_owned(),
        }
    }

    pub fn may(&self, permission: Permission) -> bool {
        match self.grant {
            Grant::MasterKey => true,
            Grant::Key { account, key } => account.allows(permission) && key.allows(permission),
        }
    }

    fn master(state: &AppState) -> Self {
        Self {
            actor: state.admin_key.actor(),
            grant: Grant::MasterKey,
            organizations: None,
        }
    }

    fn of_account(actor: String, access: domain::account::Access) -> Self {
        Self {
            actor,
            grant: Grant::Key {
                account: access.account_role,
                key: access.key_role,
            },
            organizations: access.organizations,
        }
    }

    /// The organizations this caller may see and act on; `None`: every one.
    pub fn organizations(&self) -> Option<&[String]> {
        self.organizations.as_deref()
    }

    /// Whether the caller may see and act on `organization_id`.
    pub fn reaches(&self, organization_id: &str) -> bool {
        self.organizations
            .as_ref()
            .is_none_or(|list| list.iter().any(|o| o == organization_id))
    }

    /// The route's permission, or 403 `not_permitted` naming what the role lacks; then, for an
    /// organization-scoped caller, the route's organization (`crate::permissions::within`).
    async fn permitted(self, parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or(parts.uri.path(), MatchedPath::as_str);
        let needed = crate::permissions::needed(&parts.method, route);
        if self.may(needed) {
            if let Some(organizations) = &self.organizations {
                crate::permissions::within(organizations, needed, parts, route, state).await?;
            }
            return Ok(self);
        }
        let role = self.role_name();
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::NotPermitted,
            format!(
                "your role, {role}, may not {}",
                crate::permissions::describe(needed)
            ),
        ))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = if let Some(Verified::Admin(admin)) = parts.extensions.get::<Verified>() {
            admin.clone()
        } else if let Some(value) = parts.headers.get(ADMIN_KEY_HEADER) {
            from_key(parts, state, value.as_bytes()).await?
        } else if crate::panel::session::cookie(
            &parts.headers,
            crate::panel::session::SESSION_COOKIE,
        )
        .is_some()
        {
            from_session(parts, state).await?
        } else {
            return Err(ApiError::unauthorized("missing X-Admin-Key header"));
        };
        admin.permitted(parts, state).await
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
        if state.admin_key.matches(value.as_bytes()) {
            return Some(Verified::Admin(Admin::master(state)));
        }
        return account_key(state, value.as_bytes())
            .await
            .ok()
            .flatten()
            .map(Verified::Admin);
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

/// An account's key (`sa_…`), checked against its account's events.
async fn account_key(state: &AppState, key: &[u8]) -> Result<Option<Admin>, ApiError> {
    let Ok(key) = std::str::from_utf8(key) else {
        return Ok(None);
    };
    let holder = app::accounts::authenticate(&state.pool, key, chrono::Utc::now()).await?;
    Ok(holder.map(|holder| {
        let actor = format!("account:{}/key:{}", holder.account_id, holder.key_id);
        Admin::of_account(actor, holder.access)
    }))
}

/// `X-Admin-Key`: the key is verified first, so a right key is never refused; wrong keys
/// count against the client address like failed panel logins, and past the limit are 429.
async fn from_key(parts: &Parts, state: &AppState, key: &[u8]) -> Result<Admin, ApiError> {
    if state.admin_key.matches(key) {
        return Ok(Admin::master(state));
    }
    if let Some(admin) = account_key(state, key).await? {
        return Ok(admin);
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
    let Some((session, access)) = crate::panel::current_session(state, &parts.headers).await?
    else {
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
    Ok(match access {
        // A master-key session lives only under the master key in force (`current_session`).
        None => Admin::master(state),
        // The account as it is now, so a changed role or scope applies to open sessions at once.
        Some(access) => Admin::of_account(session.actor, access),
    })
}

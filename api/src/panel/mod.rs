//! The admin panel at `/admin`: a login form, a session cookie, and one page whose script
//! (ours, served from the binary) drives the same JSON API the operators' scripts use. The
//! master key never reaches the browser after the login form: the API accepts the session
//! cookie plus its CSRF token instead (see `auth::Admin`).

pub mod login_limit;
mod pages;
pub mod session;

use app::error::ErrorCode;
use std::time::Instant;

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::openapi::ApiErrors;
use crate::state::AppState;
use domain::account::Access;
use session::SESSION_COOKIE;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The double-submit cookie that protects the login form itself.
const LOGIN_CSRF_COOKIE: &str = "saas_admin_login";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(app))
        .routes(routes!(app_slash))
        .routes(routes!(login_form, login))
        .routes(routes!(logout))
        .routes(routes!(script))
        .routes(routes!(stylesheet))
        .layer(middleware::from_fn(security_headers))
}

/// The panel's pages load nothing from elsewhere, cannot be framed and are never cached.
async fn security_headers(request: Request, next: middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The session of this request's cookie, if it is live and was opened with the master key in
/// force now (rotating `MASTER_KEY` ends every session opened with the old one) or by an
/// account that is still enabled; with what that account may do now (`None` for the master
/// key), read from its events once.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(session::Session, Option<Access>)>, ApiError> {
    let Some(token) = session::cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let Some(session) = session::resolve(&state.pool, token).await? else {
        return Ok(None);
    };
    match &session.account_id {
        None => Ok((session.actor == state.admin_key.actor()).then_some((session, None))),
        Some(account_id) => Ok(app::accounts::session_access(&state.pool, account_id)
            .await?
            .map(|access| (session, Some(access)))),
    }
}

/// `GET /admin/`: the same page.
#[utoipa::path(get, path = "/admin/", tag = "admin panel",
    responses((status = 200, description = "The panel (with a live session)", body = String, content_type = "text/html"),
        (status = 303, description = "To the login page (no session)"), ApiErrors))]
async fn app_slash(state: State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    app(state, headers).await
}

#[utoipa::path(get, path = "/admin", tag = "admin panel",
    responses((status = 200, description = "The panel (with a live session)", body = String, content_type = "text/html"), (status = 303, description = "To the login page (no session)"), ApiErrors))]
async fn app(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    Ok(match current_session(&state, &headers).await? {
        Some((session, _)) => pages::html(StatusCode::OK, pages::app_shell(&session.csrf_token)),
        None => Redirect::to("/admin/login").into_response(),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct LoginQuery {
    /// Show the "logged out" notice.
    #[serde(default)]
    logged_out: bool,
    /// Show the "session expired" notice.
    #[serde(default)]
    expired: bool,
}

#[utoipa::path(get, path = "/admin/login", tag = "admin panel",
    params(LoginQuery),
    responses((status = 200, description = "The login form", body = String, content_type = "text/html"), (status = 303, description = "To the panel (already logged in)"), ApiErrors))]
async fn login_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    crate::extract::AppQuery(query): crate::extract::AppQuery<LoginQuery>,
) -> Result<Response, ApiError> {
    if current_session(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin").into_response());
    }
    let notice = if query.expired {
        Some(pages::Notice::Info("Your session ended. Log in again."))
    } else if query.logged_out {
        Some(pages::Notice::Info("You are logged out."))
    } else {
        None
    };
    Ok(login_page(StatusCode::OK, notice, &headers))
}

/// The login form with a fresh double-submit token in a cookie and a hidden field.
fn login_page(status: StatusCode, notice: Option<pages::Notice>, request: &HeaderMap) -> Response {
    let token = session::random_token();
    let mut response = pages::html(status, pages::login(&token, notice));
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_CSRF_COOKIE, &token, Duration::hours(1), request),
    );
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginForm {
    /// An account's email and password...
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// ...or the master key.
    #[serde(default)]
    master_key: String,
    #[serde(default)]
    csrf: String,
}

#[utoipa::path(post, path = "/admin/login", tag = "admin panel",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Logged in: the session cookie is set"), (status = 401, description = "Wrong key or password: the form again", body = String, content_type = "text/html"), (status = 403, description = "The form expired or came from another site", body = String, content_type = "text/html"), (status = 429, description = "Too many failed logins from this address or for this account (Retry-After)", body = String, content_type = "text/html"), ApiErrors))]
async fn login(
    State(state): State<AppState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(bad_form)?;
    let expected = session::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    let csrf_ok: bool = expected.as_bytes().ct_eq(form.csrf.as_bytes()).into();
    if expected.is_empty() || !csrf_ok {
        return Ok(login_page(
            StatusCode::FORBIDDEN,
            Some(pages::Notice::Error(
                "The login form expired or came from another site. Try again.".into(),
            )),
            &headers,
        ));
    }
    let client = login_limit::client_address(&extensions, &headers, &state.trusted_proxies);
    let email = form.email.trim().to_lowercase();
    let (actor, account_id) = if email.is_empty() {
        // The right key is never refused; wrong ones count, and past the limit wait.
        if form.master_key.is_empty() || !state.admin_key.matches(form.master_key.as_bytes()) {
            if let Err(wait) = state.login_limiter.failed(client, Instant::now()) {
                tracing::warn!(?client, "admin login refused: too many failed attempts");
                return Ok(too_many(wait, "from this address", &headers));
            }
            tracing::warn!(?client, "admin login with a wrong key");
            return Ok(login_page(
                StatusCode::UNAUTHORIZED,
                Some(pages::Notice::Error(
                    "That is not the master key. Check it and try again.".into(),
                )),
                &headers,
            ));
        }
        (state.admin_key.actor(), None)
    } else {
        match account_login(&state, client, &form, &headers).await? {
            Ok(account_id) => (format!("account:{account_id}/session"), Some(account_id)),
            Err(refusal) => return Ok(refusal),
        }
    };
    let token = session::create(&state.pool, &actor, account_id.as_deref()).await?;
    tracing::info!(%actor, "admin logged in to the panel");
    let mut response = Redirect::to("/admin").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &token, session::ABSOLUTE_TIMEOUT, &headers),
    );
    cookies.append(
        header::SET_COOKIE,
        session::set_cookie(LOGIN_CSRF_COOKIE, "", Duration::zero(), &headers),
    );
    if account_id.is_some() {
        // This browser is now known to the account: a flood of wrong passwords for it from
        // elsewhere does not lock it out.
        cookies.append(
            header::SET_COOKIE,
            session::set_cookie(
                login_limit::DEVICE_COOKIE,
                &state.login_limiter.device_token(&email),
                Duration::days(180),
                &headers,
            ),
        );
    }
    Ok(response)
}

/// An account's login: past the per-address or per-account limit a password is not even
/// checked, unless this browser logged in to the account before (its device cookie); the right
/// password from a known browser is never locked out.
async fn account_login(
    state: &AppState,
    client: Option<std::net::IpAddr>,
    form: &LoginForm,
    headers: &HeaderMap,
) -> Result<Result<String, Response>, ApiError> {
    let email = form.email.trim().to_lowercase();
    let known = session::cookie(headers, login_limit::DEVICE_COOKIE)
        .is_some_and(|token| state.login_limiter.knows_device(token, &email));
    let now = Instant::now();
    if !known && let Err(wait) = state.login_limiter.over_limit(client, &email, now) {
        tracing::warn!(
            ?client,
            "account login refused unchecked: too many failed attempts"
        );
        return Ok(Err(too_many(wait, "for this account or address", headers)));
    }
    let password = secrecy::SecretString::from(form.password.clone());
    match app::accounts::login(&state.pool, &email, password).await? {
        Some((account_id, _role)) => Ok(Ok(account_id)),
        None => {
            state.login_limiter.failed_login(client, &email, now);
            tracing::warn!(?client, "account login with a wrong email or password");
            Ok(Err(login_page(
                StatusCode::UNAUTHORIZED,
                Some(pages::Notice::Error(
                    "Wrong email or password, or the account is disabled.".into(),
                )),
                headers,
            )))
        }
    }
}

fn too_many(wait: std::time::Duration, scope: &str, headers: &HeaderMap) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = login_page(
        StatusCode::TOO_MANY_REQUESTS,
        Some(pages::Notice::Error(format!(
            "Too many failed logins {scope}. Try again in {seconds} s."
        ))),
        headers,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

#[utoipa::path(post, path = "/admin/logout", tag = "admin panel",
    request_body(content = LogoutForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Logged out"), ApiErrors))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Result<Response, ApiError> {
    let Form(form) = form.map_err(bad_form)?;
    let Some(token) = session::cookie(&headers, SESSION_COOKIE) else {
        return Ok(Redirect::to("/admin/login").into_response());
    };
    match session::resolve(&state.pool, token).await? {
        Some(live) if !live.csrf_matches(&form.csrf) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::CsrfFailed,
                "the form's CSRF token does not match the session; reload the page",
            ));
        }
        _ => session::delete(&state.pool, token).await?,
    }
    let mut response = Redirect::to("/admin/login?logged_out=true").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, "", Duration::zero(), &headers),
    );
    Ok(response)
}

/// The rejection's own text is not echoed: it could quote what was typed into the form.
fn bad_form(_: FormRejection) -> ApiError {
    ApiError::bad_request(
        ErrorCode::InvalidForm,
        "the form could not be read; send it as application/x-www-form-urlencoded",
    )
}

#[utoipa::path(get, path = "/admin/assets/app.js", tag = "admin panel",
    responses((status = 200, description = "The panel's script", body = String, content_type = "text/javascript")))]
async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("../../assets/admin/app.js"),
    )
}

#[utoipa::path(get, path = "/admin/assets/app.css", tag = "admin panel",
    responses((status = 200, description = "The panel's stylesheet", body = String, content_type = "text/css")))]
async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("../../assets/admin/app.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

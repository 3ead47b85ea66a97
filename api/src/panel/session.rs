//! Admin panel sessions: a random token in an HttpOnly, SameSite=Strict cookie, kept in the
//! database only as a digest, with a CSRF token that every state-changing request must echo.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "saas_admin_session";
/// A session ends after this long without a request...
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// ...and after this long in any case.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::hours(12);

/// A logged-in operator, as found from the session cookie.
#[derive(Debug, Clone)]
pub struct Session {
    pub csrf_token: String,
    pub actor: String,
    /// The account logged in; `None` for a session opened with the master key.
    pub account_id: Option<String>,
}

impl Session {
    /// Whether `candidate` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, candidate: &str) -> bool {
        self.csrf_token
            .as_bytes()
            .ct_eq(candidate.as_bytes())
            .into()
    }
}

/// A new random token: 32 bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Starts a session for `actor` (of `account_id`, if an account logged in); returns the token
/// for the cookie.
pub async fn create(
    pool: &PgPool,
    actor: &str,
    account_id: Option<&str>,
) -> Result<String, sqlx::Error> {
    let token = random_token();
    sqlx::query(
        "insert into admin_sessions (token_digest, csrf_token, actor, account_id, expires_at)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(digest(&token))
    .bind(random_token())
    .bind(actor)
    .bind(account_id)
    .bind(ABSOLUTE_TIMEOUT.num_seconds() as f64)
    .execute(pool)
    .await?;
    Ok(token)
}

/// The live session of `token`, touching it (idle expiry slides); `None` if unknown or expired.
pub async fn resolve(pool: &PgPool, token: &str) -> Result<Option<Session>, sqlx::Error> {
    let row: Option<(String, String, Option<String>)> = sqlx::query_as(
        "update admin_sessions set last_seen_at = now()
          where token_digest = $1 and expires_at > now()
            and last_seen_at > now() - make_interval(secs => $2)
         returning csrf_token, actor, account_id",
    )
    .bind(digest(token))
    .bind(IDLE_TIMEOUT.num_seconds() as f64)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(csrf_token, actor, account_id)| Session {
        csrf_token,
        actor,
        account_id,
    }))
}

/// Ends every session of the account (it was disabled).
pub async fn end_all_of(pool: &PgPool, account_id: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("delete from admin_sessions where account_id = $1")
        .bind(account_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub async fn delete(pool: &PgPool, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from admin_sessions where token_digest = $1")
        .bind(digest(token))
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes sessions that can no longer be used.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from admin_sessions
          where expires_at <= now() or last_seen_at <= now() - make_interval(secs => $1)",
    )
    .bind(IDLE_TIMEOUT.num_seconds() as f64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for the whole site; `Secure` when the
/// request reached us over HTTPS (a TLS-terminating proxy says so in `X-Forwarded-Proto`).
/// `max_age` zero deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, request: &HeaderMap) -> HeaderValue {
    let secure = request
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        max_age.num_seconds(),
        if secure { "; Secure" } else { "" }
    );
    // Tokens are URL-safe base64, so the value is always a valid header.
    HeaderValue::from_str(&cookie).expect("cookie values are header-safe")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_cookie_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; saas_admin_session=tok; b=2"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, "saas_admin"), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_https() {
        let mut request = HeaderMap::new();
        let plain = set_cookie("c", "v", Duration::minutes(1), &request);
        assert_eq!(plain, "c=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        request.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let secure = set_cookie("c", "v", Duration::minutes(1), &request);
        assert!(secure.to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let session = Session {
            csrf_token: "abc".into(),
            actor: "admin:x".into(),
            account_id: None,
        };
        assert!(session.csrf_matches("abc"));
        assert!(!session.csrf_matches("abd"));
        assert!(!session.csrf_matches(""));
    }
}

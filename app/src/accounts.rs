//! Operators' API keys: issued once (the key shown to the caller, only a SHA-256 of its secret
//! kept, outside the log) and checked on every request against the account's own events, so a
//! revocation or a disabled account refuses the very next request on every replica.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use domain::CommandMetadata;
use domain::account::{Access, Account, AccountCommand, AccountId, ApiKeyId, KeyName, Role};
use rand::RngCore;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::commands::{CommandBus, OnConflict};
use crate::error::{AppError, AppResult};

/// Every account key starts so: `sa_<key id>.<secret>`; anything else is not one.
pub const KEY_PREFIX: &str = "sa_";

/// A key just issued: the only time its secret exists outside the caller's hands.
pub struct IssuedKey {
    pub key_id: ApiKeyId,
    pub key: SecretString,
    pub position: i64,
}

/// Whose key a request carries, and what it may do: both roles must allow an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHolder {
    pub account_id: String,
    pub key_id: String,
    pub access: Access,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Issues a key for `account_id`: the command first (refused for a disabled account or a role
/// wider than the account's), then its digest. A crash in between leaves a key nobody holds.
pub async fn issue(
    commands: &CommandBus,
    pool: &PgPool,
    account_id: &AccountId,
    name: KeyName,
    role: Role,
    expires_at: Option<DateTime<Utc>>,
    meta: &CommandMetadata,
) -> AppResult<IssuedKey> {
    let key_id = ApiKeyId::generate();
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    let command = AccountCommand::CreateApiKey {
        key_id: key_id.clone(),
        name,
        role,
        expires_at,
        now: Utc::now(),
    };
    let position = commands
        .execute::<Account>(account_id.as_str(), command, meta, OnConflict::Retry)
        .await?;
    sqlx::query("insert into account_key_digests (key_id, account_id, digest) values ($1, $2, $3)")
        .bind(key_id.as_str())
        .bind(account_id.as_str())
        .bind(&digest(&secret)[..])
        .execute(pool)
        .await?;
    Ok(IssuedKey {
        key: format!("{KEY_PREFIX}{}.{secret}", key_id.as_str()).into(),
        key_id,
        position,
    })
}

/// The holder of `presented` if it is a live key of an enabled account; `None` for anything
/// else (the reason is logged, never told).
pub async fn authenticate(
    pool: &PgPool,
    presented: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<KeyHolder>> {
    let Some((key_id, secret)) = presented
        .strip_prefix(KEY_PREFIX)
        .and_then(|rest| rest.split_once('.'))
    else {
        return Ok(None);
    };
    let stored: Option<(String, Vec<u8>)> =
        sqlx::query_as("select account_id, digest from account_key_digests where key_id = $1")
            .bind(key_id)
            .fetch_optional(pool)
            .await?;
    let Some((account_id, stored)) = stored else {
        return Ok(None);
    };
    if !bool::from(stored.as_slice().ct_eq(&digest(secret)[..])) {
        return Ok(None);
    }
    let mut conn = pool.acquire().await?;
    let account = fold(&mut conn, &account_id).await?;
    let access = match account.key_access(key_id, now) {
        Ok(access) => access,
        Err(refusal) => {
            tracing::info!(key_id, ?refusal, "an account key was refused");
            return Ok(None);
        }
    };
    // The last use, at most once a minute per key: a write per request would be a write per read.
    sqlx::query(
        "insert into account_key_uses (key_id, last_used_at) values ($1, $2)
         on conflict (key_id) do update set last_used_at = excluded.last_used_at
          where account_key_uses.last_used_at < excluded.last_used_at - interval '1 minute'",
    )
    .bind(key_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(Some(KeyHolder {
        account_id,
        key_id: key_id.to_owned(),
        access,
    }))
}

/// The account as its events say now (not a read model that may lag).
async fn fold(conn: &mut sqlx::PgConnection, account_id: &str) -> AppResult<Account> {
    Ok(store::event_log::fold::<Account>(conn, account_id).await?)
}

/// The account's role now, if it exists.
pub async fn current_role(pool: &PgPool, account_id: &AccountId) -> AppResult<Option<Role>> {
    let mut conn = pool.acquire().await?;
    Ok(fold(&mut conn, account_id.as_str()).await?.role())
}

/// When each of `key_ids` was last used, if ever.
pub async fn last_uses(
    pool: &PgPool,
    key_ids: &[String],
) -> AppResult<Vec<(String, DateTime<Utc>)>> {
    Ok(
        sqlx::query_as("select key_id, last_used_at from account_key_uses where key_id = any($1)")
            .bind(key_ids)
            .fetch_all(pool)
            .await?,
    )
}

/// Passwords shorter than this are refused (a passphrase of a few words is longer).
pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 256;

fn hasher() -> argon2::Argon2<'static> {
    // argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane): OWASP's minimum.
    argon2::Argon2::default()
}

/// Sets the account's password: the command first (refused for an unknown or disabled
/// account), then the argon2id hash, outside the log.
pub async fn set_password(
    commands: &CommandBus,
    pool: &PgPool,
    account_id: &AccountId,
    password: SecretString,
    meta: &CommandMetadata,
) -> AppResult<i64> {
    use secrecy::ExposeSecret;
    let chars = password.expose_secret().chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(AppError::unprocessable(
            crate::error::ErrorCode::WeakPassword,
            format!("a password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let hash = tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        hasher()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(AppError::internal)?
    .map_err(|e| AppError::internal(anyhow::anyhow!("hashing a password: {e}")))?;
    let position = commands
        .execute::<Account>(
            account_id.as_str(),
            AccountCommand::RecordPasswordSet,
            meta,
            OnConflict::Retry,
        )
        .await?;
    sqlx::query(
        "insert into account_passwords (account_id, hash) values ($1, $2)
         on conflict (account_id) do update set hash = excluded.hash, set_at = now()",
    )
    .bind(account_id.as_str())
    .bind(hash)
    .execute(pool)
    .await?;
    Ok(position)
}

/// Who logs in with `email` and `password`: the account and its role, if the password is its
/// and the account is enabled. As slow for an unknown email as for a wrong password, so the
/// answer's timing does not tell which emails have accounts.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: SecretString,
) -> AppResult<Option<(String, Role)>> {
    use secrecy::ExposeSecret;
    let email = email.trim().to_lowercase();
    // The email's claim is written in the very transaction that created the account, so a
    // login right after creation finds it (a read model could lag).
    let found: Option<(String, Option<String>)> = sqlx::query_as(
        "select c.aggregate_id, p.hash from unique_claims c
           left join account_passwords p on p.account_id = c.aggregate_id
          where c.scope = 'account.email' and c.value = $1",
    )
    .bind(&email)
    .fetch_optional(pool)
    .await?;
    let (account_id, hash) = match found {
        Some((id, Some(hash))) => (Some(id), hash),
        _ => (None, DECOY_HASH.clone()),
    };
    let matches = tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            hasher()
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .map_err(AppError::internal)?;
    let Some(account_id) = account_id.filter(|_| matches) else {
        return Ok(None);
    };
    Ok(session_access(pool, &account_id)
        .await?
        .map(|access| (account_id, access.account_role)))
}

/// A hash of a random password nobody knows, verified against when there is no account, so
/// both paths cost one argon2 verification.
static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let (mut password, mut salt) = ([0u8; 32], [0u8; 16]);
    rand::rng().fill_bytes(&mut password);
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode");
    hasher()
        .hash_password(&password, &salt)
        .expect("argon2 hashes")
        .to_string()
});

/// What a session of the account may do now: `None` for an unknown or disabled account.
pub async fn session_access(pool: &PgPool, account_id: &str) -> AppResult<Option<Access>> {
    let mut conn = pool.acquire().await?;
    Ok(fold(&mut conn, account_id).await?.session_access())
}

//! `Idempotency-Key` on mutating admin requests (Stripe's rules): the first successful response
//! is stored (encrypted: some carry a virtual key) and replayed for retries with the same key
//! and body; the same key with another body is a 422; a retry while the first is still running
//! is a 409. Failed requests store nothing, so they can be retried with the same key.

use app::error::ErrorCode;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;
use crate::state::AppState;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// A record still "in progress" after this long belongs to a request that died with its process.
pub const ABANDONED_AFTER_SECS: f64 = 60.0;
/// Records are kept at least this long.
pub const RETENTION: Duration = Duration::from_secs(48 * 3600);

pub async fn middleware(State(state): State<AppState>, request: Request, next: Next) -> Response {
    // LLM calls are not replayed (a stream cannot be stored and served twice).
    let path = request.uri().path();
    if request.method() != Method::POST || path.starts_with("/v1/") || path.ends_with("/llm-call") {
        return next.run(request).await;
    }
    let Some(raw_key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let key = match raw_key.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= 200 => key.to_owned(),
        _ => {
            return ApiError::bad_request(
                ErrorCode::InvalidIdempotencyKey,
                "Idempotency-Key must be 1 to 200 printable ASCII characters",
            )
            .into_response();
        }
    };
    // Nothing is read, stored or replayed before the caller is authenticated; the record is
    // scoped to the verified actor (the admin key's fingerprint changes with the key, so a
    // rotation also retires its records), and its encryption is bound to that scope.
    let (mut parts, body) = request.into_parts();
    let Some(verified) = crate::auth::verify(&parts, &state).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let actor = verified.actor();
    parts.extensions.insert(verified);
    let bytes = match to_bytes(body, BODY_LIMIT_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            return crate::extract::body_timed_out(&error)
                .unwrap_or_else(|| {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        ErrorCode::PayloadTooLarge,
                        "request body too large",
                    )
                })
                .into_response();
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path());
    hasher.update([0]);
    hasher.update(&bytes);
    let request_hash: [u8; 32] = hasher.finalize().into();

    match claim(&state.pool, &actor, &key, &request_hash).await {
        Err(error) => ApiError::from(error).into_response(),
        Ok(Claim::Mismatch) => ApiError::unprocessable(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request; use a new key",
        )
        .into_response(),
        Ok(Claim::Consumed) => ApiError::conflict(
            ErrorCode::IdempotencyKeyConsumed,
            "a request with this Idempotency-Key took effect but its response was lost (the server stopped); read the resource to see the result",
        )
        .into_response(),
        Ok(Claim::InProgress) => ApiError {
            retry_after_secs: Some(1),
            ..ApiError::conflict(
                ErrorCode::IdempotencyInProgress,
                "a request with this Idempotency-Key is still running; retry shortly",
            )
        }
        .into_response(),
        Ok(Claim::Replayable {
            nonce,
            ciphertext,
            status,
        }) => match state.vault.decrypt(&nonce, &ciphertext, &binding(&actor, &key)) {
            Ok(body) => replay(status, body),
            Err(error) => ApiError::internal(error).into_response(),
        },
        Ok(Claim::Fresh) => {
            let response = next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
            finish(&state, &actor, &key, response).await
        }
    }
}

/// request_hash, status, nonce, encrypted response.
type StoredRecord = (Vec<u8>, Option<i16>, Option<Vec<u8>>, Option<Vec<u8>>);

enum Claim {
    Fresh,
    Mismatch,
    InProgress,
    Replayable {
        status: u16,
        nonce: Vec<u8>,
        ciphertext: Vec<u8>,
    },
    /// Abandoned in progress, but its command committed.
    Consumed,
}

async fn claim(
    pool: &PgPool,
    actor: &str,
    key: &str,
    request_hash: &[u8; 32],
) -> Result<Claim, sqlx::Error> {
    let inserted = sqlx::query(
        "insert into idempotency_keys (actor, key, request_hash) values ($1, $2, $3) on conflict do nothing",
    )
    .bind(actor)
    .bind(key)
    .bind(request_hash.as_slice())
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row: Option<StoredRecord> = sqlx::query_as(
        "select request_hash, status, nonce, response from idempotency_keys where actor = $1 and key = $2",
    )
    .bind(actor)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        // Deleted between our insert and select (the first attempt failed): run it now.
        None => Box::pin(claim(pool, actor, key, request_hash)).await?,
        Some((hash, _, _, _)) if hash != request_hash => Claim::Mismatch,
        Some((_, Some(status), Some(nonce), Some(ciphertext))) => Claim::Replayable {
            status: status as u16,
            nonce,
            ciphertext,
        },
        Some(_) => recover_abandoned(pool, actor, key).await?,
    })
}

/// An in-progress record older than `ABANDONED_AFTER_SECS` was left by a process that died.
/// If no event carries the key, the command never committed: this request takes the key over
/// and runs. If one does, the effect happened and only the answer was lost.
async fn recover_abandoned(pool: &PgPool, actor: &str, key: &str) -> Result<Claim, sqlx::Error> {
    let abandoned: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "select created_at from idempotency_keys
          where actor = $1 and key = $2 and status is null
            and created_at < now() - make_interval(secs => $3)",
    )
    .bind(actor)
    .bind(key)
    .bind(ABANDONED_AFTER_SECS)
    .fetch_optional(pool)
    .await?;
    let Some(since) = abandoned else {
        return Ok(Claim::InProgress);
    };
    let committed: bool = sqlx::query_scalar(
        "select exists(select 1 from events
                        where metadata ->> 'idempotency_key' = $1 and recorded_at >= $2)",
    )
    .bind(key)
    .bind(since)
    .fetch_one(pool)
    .await?;
    if committed {
        return Ok(Claim::Consumed);
    }
    let taken = sqlx::query(
        "update idempotency_keys set created_at = now()
          where actor = $1 and key = $2 and status is null and created_at = $3",
    )
    .bind(actor)
    .bind(key)
    .bind(since)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(if taken == 1 {
        Claim::Fresh
    } else {
        Claim::InProgress
    })
}

async fn finish(state: &AppState, actor: &str, key: &str, response: Response) -> Response {
    let status = response.status();
    if !status.is_success() {
        if let Err(error) =
            sqlx::query("delete from idempotency_keys where actor = $1 and key = $2")
                .bind(actor)
                .bind(key)
                .execute(&state.pool)
                .await
        {
            tracing::warn!(%error, "could not release an idempotency key");
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::internal(anyhow::anyhow!("response body could not be buffered"))
            .into_response();
    };
    let (nonce, ciphertext) = state.vault.encrypt(&bytes, &binding(actor, key));
    if let Err(error) = sqlx::query(
        "update idempotency_keys set status = $3, nonce = $4, response = $5 where actor = $1 and key = $2",
    )
    .bind(actor)
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(nonce)
    .bind(ciphertext)
    .execute(&state.pool)
    .await
    {
        // The command already took effect; answer it, and let a retry see "in progress".
        tracing::error!(%error, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(status: u16, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// What a stored answer's encryption is bound to: its scope and key, so a row moved to another
/// scope does not decrypt.
pub fn binding(actor: &str, key: &str) -> Vec<u8> {
    [actor.as_bytes(), b"\0", key.as_bytes()].concat()
}

/// Re-encrypts every stored answer under the new `ENCRYPTION_KEY`.
pub async fn rotate_all(
    tx: &mut sqlx::PgConnection,
    rotation: &app::keys::Rotation<'_>,
) -> Result<app::keys::Rotated, app::keys::RevealError> {
    let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "select actor, key, nonce, response from idempotency_keys
          where response is not null and nonce is not null for update",
    )
    .fetch_all(&mut *tx)
    .await?;
    let (changed, done) =
        rotation.reseal_all(rows.into_iter().map(|(actor, key, nonce, response)| {
            let associated = binding(&actor, &key);
            ((actor, key), associated, nonce, response)
        }))?;
    for ((actor, key), (nonce, response)) in changed {
        sqlx::query(
            "update idempotency_keys set nonce = $3, response = $4 where actor = $1 and key = $2",
        )
        .bind(&actor)
        .bind(&key)
        .bind(nonce)
        .bind(response)
        .execute(&mut *tx)
        .await?;
    }
    Ok(done)
}

/// Deletes records older than the retention period.
pub async fn purge_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "delete from idempotency_keys where created_at < now() - make_interval(secs => $1)",
    )
    .bind(RETENTION.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

//! Running a command: metadata from the request, bounded retries on optimistic-lock conflicts,
//! errors mapped once, and the global position the command wrote at.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::Utc;
use cqrs_es::{Aggregate, AggregateError};
use domain::CommandMetadata;
use sqlx::PgPool;
use sqlx::postgres::PgDatabaseError;
use store::repository::Cqrs;

use crate::error::ApiError;

/// Request-scoped facts every command records: request id, correlation id, idempotency key.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl RequestMeta {
    pub fn for_actor(&self, actor: &str) -> CommandMetadata {
        CommandMetadata {
            actor: actor.to_owned(),
            request_id: self.request_id.clone(),
            correlation_id: self
                .correlation_id
                .clone()
                .or_else(|| self.request_id.clone()),
            idempotency_key: self.idempotency_key.clone(),
            time: Utc::now(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let header = |name: &str| -> Result<Option<String>, ApiError> {
            match parts.headers.get(name) {
                None => Ok(None),
                Some(value) => {
                    let text = value
                        .to_str()
                        .ok()
                        .filter(|v| v.len() <= 200)
                        .ok_or_else(|| {
                            ApiError::bad_request(
                                "invalid_header",
                                format!("{name} must be printable ASCII of at most 200 characters"),
                            )
                        })?;
                    Ok(Some(text.to_owned()))
                }
            }
        };
        Ok(Self {
            request_id: header("x-request-id")?,
            correlation_id: header("x-correlation-id")?,
            idempotency_key: header("idempotency-key")?,
        })
    }
}

/// Whether a command may be re-run after losing an optimistic-lock race: true when running it
/// again against the newer state is what the caller meant (e.g. "add 10 credits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Retry,
    Fail,
}

const MAX_ATTEMPTS: u32 = 10;

/// Commands on one aggregate queue up in this process instead of racing to a conflict; the
/// optimistic lock still guards against other processes. Striped, so memory stays bounded.
pub struct AggregateLocks {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for AggregateLocks {
    fn default() -> Self {
        Self {
            stripes: (0..1024).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }
}

impl AggregateLocks {
    fn stripe(&self, aggregate_type: &str, id: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (aggregate_type, id).hash(&mut hasher);
        &self.stripes[(hasher.finish() % self.stripes.len() as u64) as usize]
    }
}

/// Executes `command` on aggregate `id` and returns the global position of the aggregate's
/// newest event, which the client can pass back as a read-your-writes hint.
pub async fn execute<A>(
    cqrs: &Cqrs<A>,
    locks: &AggregateLocks,
    pool: &PgPool,
    id: &str,
    command: A::Command,
    metadata: &CommandMetadata,
    on_conflict: OnConflict,
) -> Result<i64, ApiError>
where
    A: Aggregate,
    A::Command: Clone + std::fmt::Debug,
    A::Error: Into<ApiError>,
{
    let variant = crate::metrics::variant(&command);
    let outcome = run(cqrs, locks, pool, id, command, metadata, on_conflict).await;
    crate::metrics::command(
        A::TYPE,
        &variant,
        outcome.as_ref().err().map(|e| e.status.as_u16()),
    );
    outcome
}

async fn run<A>(
    cqrs: &Cqrs<A>,
    locks: &AggregateLocks,
    pool: &PgPool,
    id: &str,
    command: A::Command,
    metadata: &CommandMetadata,
    on_conflict: OnConflict,
) -> Result<i64, ApiError>
where
    A: Aggregate,
    A::Command: Clone,
    A::Error: Into<ApiError>,
{
    let _queued = locks.stripe(A::TYPE, id).lock().await;
    let attempts = async {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match cqrs
                .execute_with_metadata(id, command.clone(), metadata.to_map())
                .await
            {
                Ok(()) => return Ok(()),
                Err(AggregateError::AggregateConflict)
                    if on_conflict == OnConflict::Retry && attempt < MAX_ATTEMPTS =>
                {
                    // Another process won the race: back off exponentially, with jitter.
                    let ceiling = 2u64.pow(attempt.min(7));
                    tokio::time::sleep(std::time::Duration::from_millis(rand::random_range(
                        1..=ceiling,
                    )))
                    .await;
                }
                Err(error) => return Err(aggregate_error(error)),
            }
        }
    };
    let (outcome, written_at) = store::repository::appending(attempts).await;
    outcome?;
    if let Some(position) = written_at {
        return Ok(position);
    }
    // Nothing appended (a command that changed nothing): the stream's newest event.
    let mut conn = pool.acquire().await?;
    let position = store::event_log::stream_head(&mut conn, A::TYPE, id).await?;
    Ok(position.unwrap_or(0))
}

fn aggregate_error<E>(error: AggregateError<E>) -> ApiError
where
    E: std::error::Error + Into<ApiError>,
{
    match error {
        AggregateError::UserError(error) => error.into(),
        AggregateError::AggregateConflict => ApiError::conflict(
            "concurrent_modification",
            "the resource was changed by another request at the same time; retry",
        ),
        AggregateError::DatabaseConnectionError(source) => ApiError {
            source: Some(anyhow::anyhow!(source)),
            ..ApiError::unavailable(
                "database_unavailable",
                "the database is unavailable; retry shortly",
                1,
            )
        },
        AggregateError::UnexpectedError(source) => match unique_claim_violation(&*source) {
            Some(error) => error,
            None => match source.downcast::<sqlx::Error>() {
                Ok(sqlx_error) => ApiError::from(*sqlx_error),
                Err(source) => ApiError::internal(anyhow::anyhow!(source)),
            },
        },
        AggregateError::DeserializationError(source) => ApiError::internal(anyhow::anyhow!(source)),
    }
}

/// The `events_unique_claims` trigger refuses a value another aggregate holds with SQLSTATE
/// SL409, the claim's scope as DETAIL and the holder as HINT.
fn unique_claim_violation(source: &(dyn std::error::Error + 'static)) -> Option<ApiError> {
    let sqlx::Error::Database(db) = source.downcast_ref::<sqlx::Error>()? else {
        return None;
    };
    let pg = db.try_downcast_ref::<PgDatabaseError>()?;
    if pg.code() != "SL409" {
        return None;
    }
    let scope = pg.detail().unwrap_or("value");
    let field = scope.rsplit('.').next().unwrap_or(scope);
    let holder = pg.hint().unwrap_or("another resource");
    Some(ApiError::conflict(
        "duplicate_value",
        format!("{field} is already used by {holder}"),
    ))
}

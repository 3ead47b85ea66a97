//! The command bus: every command of every aggregate goes through `CommandBus::execute`, which
//! queues commands on one aggregate in-process, retries optimistic-lock conflicts for commands
//! that may re-run, maps errors once, counts the outcome, invalidates what the command made
//! stale, and returns the global position the command wrote at.

use crate::error::ErrorCode;
use std::sync::Arc;

use cqrs_es::{Aggregate, AggregateError};
use domain::CommandMetadata;
use domain::account::Account;
use domain::job::Job;
use domain::model_group::ModelGroup;
use domain::organization::Organization;
use domain::team::Team;
use sqlx::PgPool;
use sqlx::postgres::PgDatabaseError;
use store::repository::{self, Cqrs};

use crate::error::{AppError, AppResult};
use crate::team_keys::KeyCache;

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
struct AggregateLocks {
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

/// One framework per aggregate, over the same event store.
pub struct Aggregates {
    pub organizations: Cqrs<Organization>,
    pub model_groups: Cqrs<ModelGroup>,
    pub teams: Cqrs<Team>,
    pub jobs: Cqrs<Job>,
    pub accounts: Cqrs<Account>,
}

/// An aggregate the bus runs commands for.
pub trait OnBus: Aggregate<Command: Clone + std::fmt::Debug, Error: Into<AppError>> {
    fn framework(aggregates: &Aggregates) -> &Cqrs<Self>;
}

macro_rules! on_bus {
    ($($aggregate:ty => $field:ident),* $(,)?) => {$(
        impl OnBus for $aggregate {
            fn framework(aggregates: &Aggregates) -> &Cqrs<Self> {
                &aggregates.$field
            }
        }
    )*};
}

on_bus!(
    Organization => organizations,
    ModelGroup => model_groups,
    Team => teams,
    Job => jobs,
    Account => accounts,
);

pub struct CommandBus {
    aggregates: Aggregates,
    locks: AggregateLocks,
    pool: PgPool,
    key_cache: KeyCache,
}

impl CommandBus {
    pub fn new(aggregates: Aggregates, pool: PgPool, key_cache: KeyCache) -> Arc<Self> {
        Arc::new(Self {
            aggregates,
            locks: AggregateLocks::default(),
            pool,
            key_cache,
        })
    }

    /// Executes `command` on aggregate `id` and returns the global position of the aggregate's
    /// newest event, which the client can pass back as a read-your-writes hint.
    pub async fn execute<A: OnBus>(
        &self,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        on_conflict: OnConflict,
    ) -> AppResult<i64> {
        let variant = crate::metrics::variant(&command);
        let outcome = self.run::<A>(id, command, metadata, on_conflict).await;
        crate::metrics::command(A::TYPE, &variant, outcome.as_ref().err().map(|e| e.kind));
        let position = outcome?;
        if A::TYPE == Team::TYPE {
            // This process stops honouring the team's cached key before it answers; other
            // processes hear of it at commit (`saas_team_changed`).
            self.key_cache.invalidate(id, position);
        }
        Ok(position)
    }

    async fn run<A: OnBus>(
        &self,
        id: &str,
        command: A::Command,
        metadata: &CommandMetadata,
        on_conflict: OnConflict,
    ) -> AppResult<i64> {
        let cqrs = A::framework(&self.aggregates);
        let _queued = self.locks.stripe(A::TYPE, id).lock().await;
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
        let (outcome, written_at) = repository::appending(attempts).await;
        outcome?;
        if let Some(position) = written_at {
            return Ok(position);
        }
        // Nothing appended (a command that changed nothing): the stream's newest event.
        let mut conn = self.pool.acquire().await?;
        let position = store::event_log::stream_head(&mut conn, A::TYPE, id).await?;
        Ok(position.unwrap_or(0))
    }
}

fn aggregate_error<E>(error: AggregateError<E>) -> AppError
where
    E: std::error::Error + Into<AppError>,
{
    match error {
        AggregateError::UserError(error) => error.into(),
        AggregateError::AggregateConflict => AppError::conflict(
            ErrorCode::ConcurrentModification,
            "the resource was changed by another request at the same time; retry",
        ),
        AggregateError::DatabaseConnectionError(source) => AppError::unavailable(
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable; retry shortly",
            1,
        )
        .with_source(source),
        AggregateError::UnexpectedError(source) => match unique_claim_violation(&*source) {
            Some(error) => error,
            None => match source.downcast::<sqlx::Error>() {
                Ok(sqlx_error) => AppError::from(*sqlx_error),
                Err(source) => AppError::internal(source),
            },
        },
        AggregateError::DeserializationError(source) => AppError::internal(source),
    }
}

/// The `events_unique_claims` trigger refuses a value another aggregate holds with SQLSTATE
/// SL409, the claim's scope as DETAIL and the holder as HINT.
fn unique_claim_violation(source: &(dyn std::error::Error + 'static)) -> Option<AppError> {
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
    Some(AppError::conflict(
        ErrorCode::DuplicateValue,
        format!("{field} is already used by {holder}"),
    ))
}

//! The command bus: every command of every aggregate goes through `CommandBus::execute`, which
//! queues commands on one aggregate in-process and appends what queued together (`lane`),
//! retries optimistic-lock conflicts for commands that may re-run, maps errors once, counts the
//! outcome, invalidates what the command made stale, and returns the global position the
//! command wrote at.

mod lane;

pub use lane::Lane;

use crate::error::ErrorCode;
use std::sync::Arc;

use cqrs_es::{Aggregate, AggregateError};
use domain::CommandMetadata;
use domain::account::Account;
use domain::job::Job;
use domain::model_group::ModelGroup;
use domain::organization::Organization;
use domain::team::Team;
use sqlx::postgres::PgDatabaseError;

use crate::error::{AppError, AppResult};
use crate::team_keys::KeyCache;

/// Whether a command may be re-run after losing an optimistic-lock race: true when running it
/// again against the newer state is what the caller meant (e.g. "add 10 credits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Retry,
    Fail,
}

/// Attempts of a command that may re-run before its conflict is answered.
const MAX_ATTEMPTS: u32 = 10;

/// One command lane per aggregate type, over the same event store.
pub struct Aggregates {
    pub organizations: Arc<Lane<Organization>>,
    pub model_groups: Arc<Lane<ModelGroup>>,
    pub teams: Arc<Lane<Team>>,
    pub jobs: Arc<Lane<Job>>,
    pub accounts: Arc<Lane<Account>>,
}

/// An aggregate the bus runs commands for. `Clone`: a refused command's state is put back.
pub trait OnBus:
    Aggregate<
        Command: Clone + std::fmt::Debug + Send + Sync + 'static,
        Error: Into<AppError> + Send + 'static,
        Services: 'static,
    > + Clone
    + 'static
{
    fn lane(aggregates: &Aggregates) -> &Arc<Lane<Self>>;
}

macro_rules! on_bus {
    ($($aggregate:ty => $field:ident),* $(,)?) => {$(
        impl OnBus for $aggregate {
            fn lane(aggregates: &Aggregates) -> &Arc<Lane<Self>> {
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
    key_cache: KeyCache,
}

impl CommandBus {
    pub fn new(aggregates: Aggregates, key_cache: KeyCache) -> Arc<Self> {
        Arc::new(Self {
            aggregates,
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
        let outcome = A::lane(&self.aggregates)
            .execute(id, command, metadata, on_conflict)
            .await;
        crate::metrics::command(A::TYPE, &variant, outcome.as_ref().err().map(|e| e.kind));
        let position = outcome?;
        if A::TYPE == Team::TYPE {
            // This process stops honouring the team's cached key before it answers; other
            // processes hear of it at commit (`saas_team_changed`).
            self.key_cache.invalidate(id, position);
        }
        Ok(position)
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

//! The event store and nothing else: the cqrs-es repository, bulk appends of one-event streams,
//! the ordered reader with its horizon, the commit notifier, consumer checkpoints and the schema
//! (the migrations, with the hash chain and unique claims the database enforces on append).

pub mod append;
pub mod checkpoint;
pub mod db_errors;
pub mod event_log;
pub mod notifier;
pub mod repository;

pub use event_log::{LogPosition, StoredEvent};
pub use notifier::EventNotifier;
pub use repository::EventStore;

/// The schema of the event store and every read model, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The schema versions applied to this database, in order (readiness compares them with
/// `MIGRATOR`'s).
pub async fn applied_migrations(pool: &sqlx::PgPool) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar("select version from _sqlx_migrations where success order by version")
        .fetch_all(pool)
        .await
}

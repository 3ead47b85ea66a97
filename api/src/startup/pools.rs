//! The database pools: the request pool, the unflushed pool for budget holds, and the pools of
//! work that never appends events (named so the log's readers do not wait for them).

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};

use crate::config::Config;

/// Creates the database if it does not exist (tolerating a concurrent creator).
pub async fn ensure_database(url: &str) -> anyhow::Result<()> {
    if Postgres::database_exists(url)
        .await
        .context("connecting to PostgreSQL")?
    {
        return Ok(());
    }
    tracing::info!("database does not exist; creating it");
    match Postgres::create_database(url).await {
        Ok(()) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
        Err(e) => Err(e).context("creating the database"),
    }
}

pub async fn connect(config: &Config) -> anyhow::Result<PgPool> {
    connect_url(config.database_url.expose_secret(), config.db_pool_size).await
}

/// Creates the database at `url` if needed and opens a pool of `size` connections to it.
pub async fn connect_url(url: &str, size: u32) -> anyhow::Result<PgPool> {
    ensure_database(url).await?;
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .context("connecting to the database")
}

/// A small pool whose commits do not wait for the WAL flush. Only for budget holds: a hold is
/// a reservation in front of a request, not a record of money; if PostgreSQL itself crashed
/// and lost the last milliseconds of holds, the requests they guarded failed with it. Usage is
/// never written through this pool.
pub async fn connect_unflushed(config: &Config) -> anyhow::Result<PgPool> {
    // Holds never append events either, so the log's readers need not wait for them.
    connect_without_events(config, (config.db_pool_size / 2).max(2)).await
}

/// Connections for work that never appends events, named so (`NO_EVENTS_APPLICATION`) that the
/// log's readers do not wait for their transactions, and committing without waiting for the WAL
/// flush. Used by the consumers (one connection each and a spare, so under a burst of commands
/// they do not queue behind requests; a read model and its checkpoint move in one transaction,
/// so a lost commit loses both and the batch is applied again) and by the background workers
/// whose state is operational (LiteLLM sync status, webhook deliveries: a lost last write means
/// a repeated, idempotent sync or delivery).
pub async fn connect_without_events(config: &Config, size: u32) -> anyhow::Result<PgPool> {
    let url = config.database_url.expose_secret();
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(
            options
                .options([("synchronous_commit", "off")])
                .application_name(store::event_log::NO_EVENTS_APPLICATION),
        )
        .await
        .context("connecting to the database")
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    store::MIGRATOR
        .run(pool)
        .await
        .context("running database migrations")
}

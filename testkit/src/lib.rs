//! Test support: a fresh, migrated PostgreSQL database per test.
//!
//! The server comes from `TEST_DATABASE_URL` (default: the machine's local Postgres). Each call
//! creates `test_<uuid>`; `scripts/test` drops leftovers before a run.

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, Executor, PgConnection, PgPool};

pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    pub name: String,
    /// A URL the application under test can connect to.
    pub url: String,
    pub pool: PgPool,
}

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned())
}

/// The URL of database `name` on the test server.
pub fn database_url(name: &str) -> anyhow::Result<String> {
    let mut url = url_without_database(&server_url());
    url.push('/');
    url.push_str(name);
    Ok(url)
}

fn url_without_database(url: &str) -> String {
    // postgres://user@host:port/db?params -> postgres://user@host:port
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(slash) => url[..after_scheme + slash].to_owned(),
        None => url.to_owned(),
    }
}

/// A new empty database (no migrations), for tests of startup itself.
pub fn empty_database_name() -> String {
    format!("test_{}", uuid::Uuid::new_v4().simple())
}

/// A new database with every migration applied.
pub async fn fresh_database() -> anyhow::Result<TestDatabase> {
    let name = empty_database_name();
    let mut admin = PgConnection::connect(&server_url())
        .await
        .context("connecting to the test PostgreSQL server (is it running? see scripts/test)")?;
    admin
        .execute(format!(r#"create database "{name}""#).as_str())
        .await
        .context("creating the test database")?;
    let url = database_url(&name)?;
    let options: PgConnectOptions = url.parse()?;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(options)
        .await?;
    store::MIGRATOR.run(&pool).await?;
    Ok(TestDatabase { name, url, pool })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            url_without_database("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432"
        );
        assert_eq!(
            url_without_database("postgres://u:p@h/db?sslmode=disable"),
            "postgres://u:p@h"
        );
        assert_eq!(url_without_database("postgres://h:1"), "postgres://h:1");
    }
}

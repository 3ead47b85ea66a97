//! The accounts read model: operators' accounts and their API keys, for the accounts API and
//! for naming the person behind an actor in the audit trail.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::account::AccountEvent;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "accounts";

pub struct AccountsProjector;

#[async_trait]
impl Projector for AccountsProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["Account"])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["accounts", "account_api_keys"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Account" {
            return Ok(());
        }
        let decoded: AccountEvent = event
            .decode()
            .map_err(|e| ProjectionError::decode(event, e))?;
        let (at, position) = (event.recorded_at, event.global_position);
        let actor = event.meta("actor").unwrap_or("unknown");
        // Rows remember the last position applied, so applying an event twice is a no-op.
        let update = |set: &'static str| {
            format!(
                "update accounts set {set}, updated_at = $2, last_position = $3
                  where account_id = $1 and last_position < $3"
            )
        };
        match decoded {
            AccountEvent::AccountCreated {
                account_id,
                email,
                display_name,
                role,
                organizations,
            } => {
                sqlx::query(
                    "insert into accounts (account_id, email, display_name, role, organizations,
                        created_at, updated_at, created_by, created_position, last_position)
                     values ($1, $2, $3, $4, $8, $5, $5, $6, $7, $7)
                     on conflict (account_id) do nothing",
                )
                .bind(account_id.as_str())
                .bind(email.as_str())
                .bind(display_name.as_str())
                .bind(role.as_str())
                .bind(at)
                .bind(actor)
                .bind(position)
                .bind(organization_ids(&organizations))
                .execute(&mut *tx)
                .await?;
            }
            AccountEvent::AccountOrganizationsChanged {
                account_id,
                organizations,
            } => {
                sqlx::query(&update("organizations = $4"))
                    .bind(account_id.as_str())
                    .bind(at)
                    .bind(position)
                    .bind(organization_ids(&organizations))
                    .execute(&mut *tx)
                    .await?;
            }
            AccountEvent::AccountRoleChanged {
                account_id, role, ..
            } => {
                sqlx::query(&update("role = $4"))
                    .bind(account_id.as_str())
                    .bind(at)
                    .bind(position)
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            AccountEvent::AccountDisabled { account_id }
            | AccountEvent::AccountEnabled { account_id } => {
                let disabled = event.event_type == "AccountDisabled";
                sqlx::query(&update("disabled = $4"))
                    .bind(account_id.as_str())
                    .bind(at)
                    .bind(position)
                    .bind(disabled)
                    .execute(&mut *tx)
                    .await?;
            }
            AccountEvent::ApiKeyCreated {
                account_id,
                key_id,
                name,
                role,
                expires_at,
            } => {
                sqlx::query(
                    "insert into account_api_keys (key_id, account_id, name, role, expires_at,
                        created_at, created_by, created_position, last_position)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     on conflict (key_id) do nothing",
                )
                .bind(key_id.as_str())
                .bind(account_id.as_str())
                .bind(name.as_str())
                .bind(role.as_str())
                .bind(expires_at)
                .bind(at)
                .bind(actor)
                .bind(position)
                .execute(&mut *tx)
                .await?;
            }
            AccountEvent::AccountPasswordSet { account_id } => {
                sqlx::query(&update("password_set_at = $2"))
                    .bind(account_id.as_str())
                    .bind(at)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
            }
            AccountEvent::ApiKeyRevoked { key_id, .. } => {
                sqlx::query(
                    "update account_api_keys set revoked_at = $2, last_position = $3
                      where key_id = $1 and last_position < $3",
                )
                .bind(key_id.as_str())
                .bind(at)
                .bind(position)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

fn organization_ids(
    organizations: &Option<Vec<domain::organization::OrganizationId>>,
) -> Option<Vec<String>> {
    organizations
        .as_ref()
        .map(|list| list.iter().map(|o| o.as_str().to_owned()).collect())
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AccountRow {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    /// `None`: every organization.
    pub organizations: Option<Vec<String>>,
    pub disabled: bool,
    pub password_set_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub created_position: i64,
    pub last_position: i64,
}

const COLUMNS: &str =
    "account_id, email, display_name, role, organizations, disabled, password_set_at,
    created_at, updated_at, created_by, created_position, last_position";

pub async fn get(pool: &PgPool, account_id: &str) -> Result<Option<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from accounts where account_id = $1"
    ))
    .bind(account_id)
    .fetch_optional(pool)
    .await
}

/// A page of accounts in creation order, after the cursor (a `created_position`).
pub async fn list(
    pool: &PgPool,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<AccountRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from accounts where created_position > $1
          order by created_position limit $2"
    ))
    .bind(after.unwrap_or(0))
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub account_id: String,
    pub name: String,
    pub role: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub last_position: i64,
}

/// An account's keys, oldest first.
pub async fn keys_of(pool: &PgPool, account_id: &str) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(
        "select key_id, account_id, name, role, expires_at, revoked_at, created_at, created_by,
                last_position
           from account_api_keys where account_id = $1 order by created_position",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
}

/// The display name and email of each of `account_ids` that exists, for naming actors.
pub async fn names(
    pool: &PgPool,
    account_ids: &[String],
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select account_id, display_name, email from accounts where account_id = any($1)",
    )
    .bind(account_ids)
    .fetch_all(pool)
    .await
}

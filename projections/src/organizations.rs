//! The organizations read model: one row per organization, for lookups and paginated lists.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::organization::OrganizationEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "organizations";

pub struct OrganizationsProjector;

#[async_trait]
impl Projector for OrganizationsProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["Organization"])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["organizations"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Organization" {
            return Ok(());
        }
        let decoded: OrganizationEvent = event
            .decode()
            .map_err(|e| ProjectionError::decode(event, e))?;
        // Rows remember the last position applied, so applying an event twice is a no-op.
        match decoded {
            OrganizationEvent::OrganizationCreated {
                organization_id,
                name,
                litellm_organization_id,
            } => {
                sqlx::query(
                    "insert into organizations (organization_id, name, litellm_organization_id,
                        created_at, updated_at, created_by, created_position, last_position)
                     values ($1, $2, $3, $4, $4, $5, $6, $6)
                     on conflict (organization_id) do nothing",
                )
                .bind(organization_id.as_str())
                .bind(name.as_str())
                .bind(litellm_organization_id.as_ref().map(|id| id.as_str()))
                .bind(event.recorded_at)
                .bind(event.meta("actor").unwrap_or("unknown"))
                .bind(event.global_position)
                .execute(&mut *tx)
                .await?;
            }
            OrganizationEvent::OrganizationRenamed {
                organization_id,
                name,
                ..
            } => {
                sqlx::query(
                    "update organizations set name = $2, updated_at = $3, last_position = $4
                      where organization_id = $1 and last_position < $4",
                )
                .bind(organization_id.as_str())
                .bind(name.as_str())
                .bind(event.recorded_at)
                .bind(event.global_position)
                .execute(&mut *tx)
                .await?;
            }
            OrganizationEvent::OrganizationDeleted { organization_id } => {
                sqlx::query(
                    "update organizations set deleted_at = $2, updated_at = $2, last_position = $3
                      where organization_id = $1 and last_position < $3",
                )
                .bind(organization_id.as_str())
                .bind(event.recorded_at)
                .bind(event.global_position)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct OrganizationRow {
    pub organization_id: String,
    pub name: String,
    pub litellm_organization_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub created_position: i64,
    /// The global position of the last event applied to this organization.
    #[serde(rename = "position")]
    pub last_position: i64,
}

const COLUMNS: &str = "organization_id, name, litellm_organization_id, created_at, updated_at,
    created_by, deleted_at, created_position, last_position";

pub async fn get(
    pool: &PgPool,
    organization_id: &str,
) -> Result<Option<OrganizationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from organizations where organization_id = $1"
    ))
    .bind(organization_id)
    .fetch_optional(pool)
    .await
}

/// A page of organizations in creation order, after the cursor (a `created_position`).
pub async fn list(
    pool: &PgPool,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<OrganizationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from organizations
          where created_position > $1
          order by created_position
          limit $2"
    ))
    .bind(after.unwrap_or(0))
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from organizations")
        .fetch_one(pool)
        .await
}

//! The model groups read model.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::model_group::ModelGroupEvent;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "model_groups";

pub struct ModelGroupsProjector;

#[async_trait]
impl Projector for ModelGroupsProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["ModelGroup"])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["model_groups"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "ModelGroup" {
            return Ok(());
        }
        let decoded: ModelGroupEvent = event
            .decode()
            .map_err(|e| ProjectionError::decode(event, e))?;
        let names = |models: &[domain::model_name::ModelName]| -> Vec<String> {
            models.iter().map(|m| m.as_str().to_owned()).collect()
        };
        match decoded {
            ModelGroupEvent::ModelGroupCreated {
                group_name,
                models,
                description,
                verified,
            } => {
                // A deleted group's name can be created again: the row is reset.
                sqlx::query(
                    "insert into model_groups (group_name, description, models, created_at, updated_at,
                        deleted_at, created_position, last_position, verified)
                     values ($1, $2, $3, $4, $4, null, $5, $5, $6)
                     on conflict (group_name) do update
                        set description = excluded.description, models = excluded.models,
                            verified = excluded.verified,
                            created_at = excluded.created_at, updated_at = excluded.updated_at,
                            deleted_at = null, created_position = excluded.created_position,
                            last_position = excluded.last_position
                      where model_groups.last_position < excluded.last_position",
                )
                .bind(group_name.as_str())
                .bind(description)
                .bind(names(&models))
                .bind(event.recorded_at)
                .bind(event.global_position)
                .bind(verified)
                .execute(&mut *tx)
                .await?;
            }
            ModelGroupEvent::ModelGroupModelsChanged {
                group_name,
                models,
                verified,
                ..
            } => {
                sqlx::query(
                    "update model_groups set models = $2, updated_at = $3, last_position = $4, verified = $5
                      where group_name = $1 and last_position < $4",
                )
                .bind(group_name.as_str())
                .bind(names(&models))
                .bind(event.recorded_at)
                .bind(event.global_position)
                .bind(verified)
                .execute(&mut *tx)
                .await?;
            }
            ModelGroupEvent::ModelGroupDeleted { group_name } => {
                sqlx::query(
                    "update model_groups set deleted_at = $2, updated_at = $2, last_position = $3
                      where group_name = $1 and last_position < $3",
                )
                .bind(group_name.as_str())
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
pub struct ModelGroupRow {
    pub group_name: String,
    pub description: Option<String>,
    pub models: Vec<String>,
    /// Checked against LiteLLM's catalog when last set.
    pub verified: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub created_position: i64,
    #[serde(rename = "position")]
    pub last_position: i64,
}

const COLUMNS: &str = "group_name, description, models, verified, created_at, updated_at, created_position, last_position";

/// A live (not deleted) group.
pub async fn get(pool: &PgPool, group_name: &str) -> Result<Option<ModelGroupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from model_groups where group_name = $1 and deleted_at is null"
    ))
    .bind(group_name)
    .fetch_optional(pool)
    .await
}

pub async fn list(
    pool: &PgPool,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<ModelGroupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from model_groups where deleted_at is null and created_position > $1
          order by created_position limit $2"
    ))
    .bind(after.unwrap_or(0))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Of `names`, those that are not live groups.
pub async fn missing(pool: &PgPool, names: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select n from unnest($1::text[]) with ordinality as t(n, i)
          where not exists (select 1 from model_groups g where g.group_name = t.n and g.deleted_at is null)
          order by i",
    )
    .bind(names)
    .fetch_all(pool)
    .await
}

/// SQL for the distinct models of the live groups named by a text-array expression, sorted (an
/// empty array when none): what a team with those groups may call. The one definition of a
/// team's allowed models, for every query that needs them.
#[macro_export]
macro_rules! live_models_of {
    ($groups:literal) => {
        concat!(
            "coalesce((select array_agg(distinct m order by m) from model_groups g, unnest(g.models) m
                        where g.group_name = any(",
            $groups,
            ") and g.deleted_at is null), '{}')"
        )
    };
}

/// The distinct models of the given live groups, sorted: what a team with them may call.
pub async fn models_of(pool: &PgPool, groups: &[String]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(concat!("select ", live_models_of!("$1")))
        .bind(groups)
        .fetch_one(pool)
        .await
}

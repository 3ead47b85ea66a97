//! Marks teams whose LiteLLM state must change ("dirty"), for the reconciler. Level-triggered:
//! the mark says *that* a team must be looked at, never *what* to do; the reconciler computes
//! the whole desired state from the read models.

use async_trait::async_trait;
use domain::model_group::ModelGroupEvent;
use domain::team::TeamEvent;
use sqlx::PgConnection;

use projections::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const NAME: &str = "litellm_sync_marker";

pub struct LitellmSyncMarker;

/// Marks many teams in one statement (each team once, in id order, so two markers lock rows in
/// the same order).
const MARK: &str = "insert into litellm_sync (team_id, wanted_position, status, next_attempt_at)
     select m.team_id, m.position, 'pending', now()
       from unnest($1::text[], $2::bigint[]) as m(team_id, position)
     on conflict (team_id) do update
        set wanted_position = greatest(litellm_sync.wanted_position, excluded.wanted_position),
            status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()";

#[async_trait]
impl Projector for LitellmSyncMarker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["Team", "ModelGroup"])
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    /// A batch's team events become one statement marking each team at its newest position
    /// (a mark is level-triggered, so only the newest matters); a group's change marks the
    /// teams using it as it comes.
    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let mut teams = std::collections::BTreeMap::<&str, i64>::new();
        for event in events {
            if event.aggregate_type == "Team" {
                let decoded: TeamEvent = event
                    .decode()
                    .map_err(|e| ProjectionError::decode(event, e))?;
                // A reveal changes nothing in LiteLLM.
                if !matches!(decoded, TeamEvent::VirtualKeyRevealed { .. }) {
                    let newest = teams.entry(event.aggregate_id.as_str()).or_default();
                    *newest = (*newest).max(event.global_position);
                }
            } else {
                mark_group_users(tx, event).await?;
            }
        }
        if !teams.is_empty() {
            let (ids, positions): (Vec<&str>, Vec<i64>) = teams.into_iter().unzip();
            sqlx::query(MARK)
                .bind(&ids)
                .bind(&positions)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// Marks every live team using a model group whose models changed or that was deleted.
async fn mark_group_users(
    tx: &mut PgConnection,
    event: &StoredEvent,
) -> Result<(), ProjectionError> {
    if event.aggregate_type != "ModelGroup" {
        return Ok(());
    }
    let decoded: ModelGroupEvent = event
        .decode()
        .map_err(|e| ProjectionError::decode(event, e))?;
    let group = match &decoded {
        ModelGroupEvent::ModelGroupModelsChanged { group_name, .. }
        | ModelGroupEvent::ModelGroupDeleted { group_name } => group_name.as_str(),
        ModelGroupEvent::ModelGroupCreated { .. } => return Ok(()),
    };
    // Teams the teams read model does not show yet have their own, later mark (from their
    // creation or assignment), and the reconciler reads fully caught-up models.
    sqlx::query(
        "insert into litellm_sync (team_id, wanted_position, status, next_attempt_at)
         select team_id, $2, 'pending', now() from teams
          where $1 = any(model_groups) and status <> 'deleted'
         on conflict (team_id) do update
            set wanted_position = greatest(litellm_sync.wanted_position, excluded.wanted_position),
                status = 'pending', attempts = 0, next_attempt_at = now(), updated_at = now()",
    )
    .bind(group)
    .bind(event.global_position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct SyncRow {
    pub team_id: String,
    pub status: String,
    pub wanted_position: i64,
    pub synced_position: Option<i64>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

const COLUMNS: &str = "team_id, status, wanted_position, synced_position, attempts, last_error, next_attempt_at, updated_at";

pub async fn status_of(pool: &sqlx::PgPool, team_id: &str) -> Result<Option<SyncRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from litellm_sync where team_id = $1"
    ))
    .bind(team_id)
    .fetch_optional(pool)
    .await
}

/// Counts per status, and the teams that are failing or waiting longest.
pub async fn summary(
    pool: &sqlx::PgPool,
    limit: i64,
) -> Result<(Vec<(String, i64)>, Vec<SyncRow>), sqlx::Error> {
    let counts =
        sqlx::query_as("select status, count(*) from litellm_sync group by status order by status")
            .fetch_all(pool)
            .await?;
    let attention = sqlx::query_as(&format!(
        "select {COLUMNS} from litellm_sync where status <> 'in_sync' order by attempts desc, next_attempt_at limit $1"
    ))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok((counts, attention))
}

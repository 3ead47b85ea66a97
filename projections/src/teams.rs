//! The teams read model: settings, credits and status per team; allowed models are resolved
//! from the live model groups at query time, so a group change shows at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::team::TeamEvent;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "teams";

pub struct TeamsProjector;

/// Runs `set_clause` on the team row unless the event was already applied.
async fn update(
    tx: &mut PgConnection,
    event: &StoredEvent,
    team_id: &str,
    set_clause: &str,
    bind: impl FnOnce(
        sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "update teams set {set_clause}, updated_at = $2, last_position = $3
          where team_id = $1 and last_position < $3"
    );
    let query = sqlx::query(&sql)
        .bind(team_id)
        .bind(event.recorded_at)
        .bind(event.global_position);
    bind(query).execute(&mut *tx).await?;
    Ok(())
}

#[async_trait]
impl Projector for TeamsProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["Team"])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["teams"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        if event.aggregate_type != "Team" {
            return Ok(());
        }
        let decoded: TeamEvent = event
            .decode()
            .map_err(|e| ProjectionError::decode(event, e))?;
        let id = event.aggregate_id.as_str();
        let groups = |g: &[domain::model_name::GroupName]| -> Vec<String> {
            g.iter().map(|g| g.as_str().to_owned()).collect()
        };
        match decoded {
            TeamEvent::TeamCreated {
                team_id,
                organization_id,
                team_alias,
                model_groups,
                credits,
                budget_mode,
                rate_limits,
                markup_percent,
                key_fingerprint,
            } => {
                sqlx::query(
                    "insert into teams (team_id, organization_id, team_alias, model_groups, credits,
                        budget_mode, rpm_limit, tpm_limit, markup_percent, status, key_fingerprint,
                        created_at, updated_at, created_by, created_position, last_position)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $11, $11, $12, $13, $13)
                     on conflict (team_id) do nothing",
                )
                .bind(team_id.as_str())
                .bind(organization_id.as_str())
                .bind(team_alias.as_str())
                .bind(groups(&model_groups))
                .bind(credits.as_decimal())
                .bind(budget_mode.as_str())
                .bind(rate_limits.rpm_limit.map(|v| v as i64))
                .bind(rate_limits.tpm_limit.map(|v| v as i64))
                .bind(markup_percent.as_decimal())
                .bind(key_fingerprint.as_str())
                .bind(event.recorded_at)
                .bind(event.meta("actor").unwrap_or("unknown"))
                .bind(event.global_position)
                .execute(&mut *tx)
                .await?;
            }
            TeamEvent::CreditsAdded { credits_total, .. } => {
                update(tx, event, id, "credits = $4", |q| {
                    q.bind(credits_total.as_decimal())
                })
                .await?
            }
            TeamEvent::ModelGroupAssigned { model_groups, .. }
            | TeamEvent::ModelGroupUnassigned { model_groups, .. } => {
                update(tx, event, id, "model_groups = $4", |q| {
                    q.bind(groups(&model_groups))
                })
                .await?
            }
            TeamEvent::BudgetModeSet { budget_mode, .. } => {
                update(tx, event, id, "budget_mode = $4", |q| {
                    q.bind(budget_mode.as_str())
                })
                .await?
            }
            TeamEvent::RateLimitsSet { rate_limits, .. } => {
                update(tx, event, id, "rpm_limit = $4, tpm_limit = $5", |q| {
                    q.bind(rate_limits.rpm_limit.map(|v| v as i64))
                        .bind(rate_limits.tpm_limit.map(|v| v as i64))
                })
                .await?
            }
            TeamEvent::MarkupSet { markup_percent, .. } => {
                update(tx, event, id, "markup_percent = $4", |q| {
                    q.bind(markup_percent.as_decimal())
                })
                .await?
            }
            TeamEvent::TeamSuspended { .. } => {
                update(tx, event, id, "status = 'suspended'", |q| q).await?
            }
            TeamEvent::TeamResumed { .. } => {
                update(tx, event, id, "status = 'active'", |q| q).await?
            }
            TeamEvent::VirtualKeyRotated {
                new_fingerprint, ..
            } => {
                update(tx, event, id, "key_fingerprint = $4", |q| {
                    q.bind(new_fingerprint.as_str().to_owned())
                })
                .await?
            }
            TeamEvent::VirtualKeyRevealed { .. } => {
                update(tx, event, id, "keys_revealed = keys_revealed + 1", |q| q).await?
            }
            TeamEvent::TeamDeleted { .. } => {
                update(tx, event, id, "status = 'deleted'", |q| q).await?
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TeamRow {
    pub team_id: String,
    pub organization_id: String,
    pub team_alias: String,
    pub model_groups: Vec<String>,
    /// The distinct models of the team's live groups, sorted.
    pub allowed_models: Vec<String>,
    pub credits: Decimal,
    pub spend: Decimal,
    pub budget_mode: String,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub markup_percent: Decimal,
    pub status: String,
    pub key_fingerprint: String,
    pub keys_revealed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub created_position: i64,
    pub last_position: i64,
}

impl TeamRow {
    pub fn remaining_budget(&self) -> Decimal {
        self.credits - self.spend
    }
}

const SELECT: &str = concat!(
    "select t.team_id, t.organization_id, t.team_alias, t.model_groups, ",
    crate::live_models_of!("t.model_groups"),
    " as allowed_models,
        t.credits,
        coalesce((select b.spend from team_budgets b where b.team_id = t.team_id), 0) as spend,
        t.budget_mode, t.rpm_limit, t.tpm_limit, t.markup_percent, t.status,
        t.key_fingerprint, t.keys_revealed, t.created_at, t.updated_at, t.created_by,
        t.created_position, t.last_position
   from teams t"
);

pub async fn get(pool: &PgPool, team_id: &str) -> Result<Option<TeamRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} where t.team_id = $1"))
        .bind(team_id)
        .fetch_optional(pool)
        .await
}

/// Which teams a list holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct TeamQuery<'a> {
    pub organization_id: Option<&'a str>,
    /// Only teams of these organizations (an organization-scoped caller's); `None`: all.
    pub within: Option<&'a [String]>,
    /// Deleted teams are left out unless asked for (or `status` is `deleted`).
    pub include_deleted: bool,
    /// Only teams with this status (`active`, `suspended`, `deleted`).
    pub status: Option<&'a str>,
    /// Only teams whose alias or id contains this text, ignoring case.
    pub search: Option<&'a str>,
}

/// A page of teams in creation order.
pub async fn list(
    pool: &PgPool,
    query: &TeamQuery<'_>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<TeamRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} where ($1::text is null or t.organization_id = $1)
                    and ($7::text[] is null or t.organization_id = any($7))
                    and ($2 or t.status <> 'deleted' or $3 = 'deleted')
                    and ($3::text is null or t.status = $3)
                    and ($4::text is null or strpos(lower(t.team_alias), lower($4)) > 0
                         or strpos(lower(t.team_id), lower($4)) > 0)
                    and t.created_position > $5
                  order by t.created_position limit $6"
    ))
    .bind(query.organization_id)
    .bind(query.include_deleted)
    .bind(query.status)
    .bind(query.search)
    .bind(after.unwrap_or(0))
    .bind(limit)
    .bind(query.within)
    .fetch_all(pool)
    .await
}

/// Teams (not deleted) that have `group` assigned.
pub async fn using_group(pool: &PgPool, group: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select team_id from teams where $1 = any(model_groups) and status <> 'deleted' order by team_id")
        .bind(group)
        .fetch_all(pool)
        .await
}

/// Teams (not deleted) of an organization.
pub async fn live_in_organization(
    pool: &PgPool,
    organization_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select team_id from teams where organization_id = $1 and status <> 'deleted' order by team_id")
        .bind(organization_id)
        .fetch_all(pool)
        .await
}

//! The admin dashboard's figures, read from the teams, organizations and budgets read models.

use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};

/// Teams by status with their credits and spend.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StatusTotals {
    pub status: String,
    pub teams: i64,
    pub credits: Decimal,
    pub spend: Decimal,
}

pub async fn teams_by_status(pool: &PgPool) -> Result<Vec<StatusTotals>, sqlx::Error> {
    sqlx::query_as(
        "select t.status, count(*) as teams, coalesce(sum(t.credits), 0) as credits,
                coalesce(sum(b.spend), 0) as spend
           from teams t left join team_budgets b on b.team_id = t.team_id
          group by t.status order by t.status",
    )
    .fetch_all(pool)
    .await
}

pub async fn live_organizations(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from organizations where deleted_at is null")
        .fetch_one(pool)
        .await
}

/// A team that has used at least the asked share of its credits.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct NearBudget {
    pub team_id: String,
    pub team_alias: String,
    pub organization_id: String,
    pub budget_mode: String,
    pub credits: Decimal,
    pub spend: Decimal,
    pub percent_used: Decimal,
}

/// Live teams whose spend is at least `percent` of their credits (teams without credits that
/// have spent count as over), most used first.
pub async fn near_budget(
    pool: &PgPool,
    percent: Decimal,
    limit: i64,
) -> Result<Vec<NearBudget>, sqlx::Error> {
    sqlx::query_as(
        "select t.team_id, t.team_alias, t.organization_id, b.budget_mode, b.credits, b.spend,
                case when b.credits > 0 then round(b.spend * 100 / b.credits, 2) else 100 end
                  as percent_used
           from team_budgets b join teams t on t.team_id = b.team_id
          where t.status <> 'deleted' and b.spend > 0 and b.spend * 100 >= b.credits * $1
          order by percent_used desc, t.team_id limit $2",
    )
    .bind(percent)
    .bind(limit)
    .fetch_all(pool)
    .await
}

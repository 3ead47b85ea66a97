//! Usage reports. A period is answered from daily roll-ups for its whole UTC days and from the
//! usage records for its partial edges, so any `[from, to)` is exact and a report never scans
//! more raw rows than two partial days hold.

use chrono::{DateTime, NaiveDate, Utc};
use domain::usage::Period;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};

/// Whose usage.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Team(&'a str),
    Organization(&'a str),
    All,
}

/// How usage is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Nothing,
    Model,
    Team,
    Day,
    /// Key `<day>|<model>`.
    DayModel,
}

/// Totals of one bucket (a model, a team or a day; empty key for a plain total).
#[derive(Debug, Clone, PartialEq, Eq, Default, FromRow)]
pub struct UsageBucket {
    pub key: String,
    pub requests: i64,
    pub failed_requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub provider_cost: Decimal,
    pub price: Decimal,
}

impl UsageBucket {
    pub fn total_tokens(&self) -> i64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    pub fn add(&mut self, other: &UsageBucket) {
        self.requests += other.requests;
        self.failed_requests += other.failed_requests;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cached_tokens += other.cached_tokens;
        self.provider_cost += other.provider_cost;
        self.price += other.price;
    }
}

/// Usage in `period`, bucketed by `group`, busiest (by price) first.
pub async fn usage(
    pool: &PgPool,
    scope: Scope<'_>,
    period: &Period,
    group: GroupBy,
) -> Result<Vec<UsageBucket>, sqlx::Error> {
    let (filter, value) = match scope {
        Scope::Team(id) => ("team_id = $1", Some(id)),
        Scope::Organization(id) => ("organization_id = $1", Some(id)),
        Scope::All => ("$1::text is null", None),
    };
    let key = match group {
        GroupBy::Nothing => "''",
        GroupBy::Model => "model",
        GroupBy::Team => "team_id",
        GroupBy::Day => "day::text",
        GroupBy::DayModel => "day::text || '|' || model",
    };
    let plan = period.plan();
    let days = plan.days;
    let edge = |i: usize| plan.edges.get(i).copied();
    let sql = format!(
        "select {key} as key,
                coalesce(sum(requests), 0)::bigint as requests,
                coalesce(sum(failed_requests), 0)::bigint as failed_requests,
                coalesce(sum(prompt_tokens), 0)::bigint as prompt_tokens,
                coalesce(sum(completion_tokens), 0)::bigint as completion_tokens,
                coalesce(sum(cached_tokens), 0)::bigint as cached_tokens,
                coalesce(sum(provider_cost), 0) as provider_cost,
                coalesce(sum(price), 0) as price
           from (select team_id, model, day, requests, failed_requests, prompt_tokens,
                        completion_tokens, cached_tokens, provider_cost, price
                   from usage_daily
                  where {filter} and $2
                    and ($3::date is null or day >= $3) and ($4::date is null or day < $4)
                 union all
                 select team_id, model, (occurred_at at time zone 'UTC')::date, 1,
                        (status = 'failure')::int, prompt_tokens, completion_tokens, cached_tokens,
                        provider_cost, price
                   from usage_records
                  where {filter}
                    and ((occurred_at >= $5 and occurred_at < $6)
                      or (occurred_at >= $7 and occurred_at < $8))) u
          group by 1
          order by price desc, key"
    );
    let mut rows: Vec<UsageBucket> = sqlx::query_as(&sql)
        .bind(value)
        .bind(days.is_some())
        .bind(days.and_then(|d| d.first))
        .bind(days.and_then(|d| d.end))
        .bind(edge(0).map(|e| e.0))
        .bind(edge(0).map(|e| e.1))
        .bind(edge(1).map(|e| e.0))
        .bind(edge(1).map(|e| e.1))
        .fetch_all(pool)
        .await?;
    if group == GroupBy::Nothing && rows.is_empty() {
        rows.push(UsageBucket::default());
    }
    Ok(rows)
}

/// One team's line in a cross-team report.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct TeamHeader {
    pub team_id: String,
    pub team_alias: String,
    pub organization_id: String,
    pub status: String,
}

/// Teams of one organization (or all), deleted ones included: they may have spent.
pub async fn team_headers(
    pool: &PgPool,
    organization_id: Option<&str>,
) -> Result<Vec<TeamHeader>, sqlx::Error> {
    sqlx::query_as(
        "select team_id, team_alias, organization_id, status from teams
          where $1::text is null or organization_id = $1
          order by created_position",
    )
    .bind(organization_id)
    .fetch_all(pool)
    .await
}

/// One recorded request, as exported.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct UsageRecordRow {
    pub request_id: String,
    pub occurred_at: DateTime<Utc>,
    pub team_id: String,
    pub organization_id: String,
    pub key_fingerprint: Option<String>,
    pub model: String,
    pub provider_model: Option<String>,
    pub status: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub provider_cost: Decimal,
    pub price: Decimal,
    pub latency_ms: Option<i64>,
    pub job_id: Option<String>,
    pub source: String,
    pub position: i64,
}

/// Records of a period in time order, optionally of one team or organization; binds, in order:
/// team id, organization id, from, to.
pub const EXPORT_SQL: &str = "select request_id, occurred_at, team_id, organization_id, key_fingerprint, model,
        provider_model, status, prompt_tokens, completion_tokens, cached_tokens, provider_cost, price,
        latency_ms, job_id, source, position
   from usage_records
  where ($1::text is null or team_id = $1) and ($2::text is null or organization_id = $2)
    and ($3::timestamptz is null or occurred_at >= $3) and ($4::timestamptz is null or occurred_at < $4)
  order by occurred_at, request_id";

/// What we recorded for a team, and for one of its keys: the provider cost LiteLLM also counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, FromRow)]
pub struct RecordedSpend {
    pub requests: i64,
    pub provider_cost: Decimal,
    pub price: Decimal,
}

pub async fn recorded_for_team(pool: &PgPool, team_id: &str) -> Result<RecordedSpend, sqlx::Error> {
    sqlx::query_as(
        "select coalesce(sum(requests), 0)::bigint as requests,
                coalesce(sum(provider_cost), 0) as provider_cost, coalesce(sum(price), 0) as price
           from usage_daily where team_id = $1",
    )
    .bind(team_id)
    .fetch_one(pool)
    .await
}

pub async fn recorded_for_key(
    pool: &PgPool,
    team_id: &str,
    fingerprint: &str,
) -> Result<RecordedSpend, sqlx::Error> {
    sqlx::query_as(
        "select count(*) as requests, coalesce(sum(provider_cost), 0) as provider_cost,
                coalesce(sum(price), 0) as price
           from usage_records where team_id = $1 and key_fingerprint = $2",
    )
    .bind(team_id)
    .bind(fingerprint)
    .fetch_one(pool)
    .await
}

/// Turns day buckets into a dense series over `days`, zero-filled.
pub fn dense_series(
    days: &[NaiveDate],
    buckets: Vec<UsageBucket>,
) -> Vec<(NaiveDate, UsageBucket)> {
    let mut by_day: std::collections::HashMap<String, UsageBucket> =
        buckets.into_iter().map(|b| (b.key.clone(), b)).collect();
    days.iter()
        .map(|day| {
            let key = day.format("%Y-%m-%d").to_string();
            let bucket = by_day.remove(&key).unwrap_or(UsageBucket {
                key,
                ..UsageBucket::default()
            });
            (*day, bucket)
        })
        .collect()
}

//! The jobs read model: each job's state, and its calls, tokens and cost summed from the usage
//! records that carry its id.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::job::JobEvent;
use domain::usage::{USAGE_AGGREGATE, UsageEvent};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::projector::{ProjectionError, Projector};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "jobs";

pub struct JobsProjector;

#[async_trait]
impl Projector for JobsProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["Job", USAGE_AGGREGATE])
    }

    fn tables(&self) -> &'static [&'static str] {
        &["jobs"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        match event.aggregate_type.as_str() {
            "Job" => apply_job(tx, event).await,
            USAGE_AGGREGATE => {
                // Most usage has no job; skip those without decoding the whole record.
                let peek: JobOfUsage = event
                    .decode()
                    .map_err(|e| ProjectionError::decode(event, e))?;
                if peek.usage_recorded.job_id.is_none() {
                    return Ok(());
                }
                let UsageEvent::UsageRecorded(record) = event
                    .decode()
                    .map_err(|e| ProjectionError::decode(event, e))?;
                let Some(job_id) = record.job_id else {
                    return Ok(());
                };
                // Only calls of the job's own team count (a job id is not a capability).
                sqlx::query(
                    "update jobs set calls = calls + 1,
                         failed_calls = failed_calls + $3,
                         prompt_tokens = prompt_tokens + $4,
                         completion_tokens = completion_tokens + $5,
                         provider_cost = provider_cost + $6, price = price + $7,
                         last_call_at = greatest(last_call_at, $8)
                      where job_id = $1 and team_id = $2",
                )
                .bind(&job_id)
                .bind(record.team_id.as_str())
                .bind(i64::from(
                    record.status == domain::usage::UsageStatus::Failure,
                ))
                .bind(i64::try_from(record.prompt_tokens).unwrap_or(i64::MAX))
                .bind(i64::try_from(record.completion_tokens).unwrap_or(i64::MAX))
                .bind(record.provider_cost.as_decimal())
                .bind(record.price.as_decimal())
                .bind(record.occurred_at)
                .execute(&mut *tx)
                .await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

async fn apply_job(tx: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
    let decoded: JobEvent = event
        .decode()
        .map_err(|e| ProjectionError::decode(event, e))?;
    match decoded {
        JobEvent::JobCreated {
            job_id,
            team_id,
            job_type,
            metadata,
        } => {
            sqlx::query(
                "insert into jobs (job_id, team_id, job_type, status, metadata, created_at, created_position)
                 values ($1, $2, $3, 'running', $4, $5, $6) on conflict do nothing",
            )
            .bind(job_id.as_str())
            .bind(team_id.as_str())
            .bind(job_type)
            .bind(metadata)
            .bind(event.recorded_at)
            .bind(event.global_position)
            .execute(&mut *tx)
            .await?;
        }
        JobEvent::JobCompleted { job_id, result, .. } => {
            sqlx::query("update jobs set status = 'completed', result = $2, ended_at = $3 where job_id = $1")
                .bind(job_id.as_str())
                .bind(result)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
        }
        JobEvent::JobFailed { job_id, error, .. } => {
            sqlx::query(
                "update jobs set status = 'failed', error = $2, ended_at = $3 where job_id = $1",
            )
            .bind(job_id.as_str())
            .bind(error)
            .bind(event.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct JobRow {
    pub job_id: String,
    pub team_id: String,
    pub job_type: String,
    pub status: String,
    pub metadata: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub calls: i64,
    pub failed_calls: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub provider_cost: Decimal,
    pub price: Decimal,
    pub last_call_at: Option<DateTime<Utc>>,
    pub created_position: i64,
}

const SELECT: &str =
    "select job_id, team_id, job_type, status, metadata, result, error, created_at,
        ended_at, calls, failed_calls, prompt_tokens, completion_tokens, provider_cost, price,
        last_call_at, created_position from jobs";

pub async fn get(pool: &PgPool, job_id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} where job_id = $1"))
        .bind(job_id)
        .fetch_optional(pool)
        .await
}

/// A page of a team's jobs, newest last.
pub async fn of_team(
    pool: &PgPool,
    team_id: &str,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} where team_id = $1 and created_position > $2 order by created_position limit $3"
    ))
    .bind(team_id)
    .bind(after.unwrap_or(0))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Just the job id of a usage record (the rest of the payload is skipped, not built).
#[derive(serde::Deserialize)]
struct JobOfUsage {
    #[serde(rename = "UsageRecorded")]
    usage_recorded: JobIdOnly,
}

#[derive(serde::Deserialize)]
struct JobIdOnly {
    job_id: Option<String>,
}

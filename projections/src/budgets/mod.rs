//! The budget read model (credits, spend at the team's price, remaining, last usage) and the
//! threshold alerts. When spend crosses 80% or 100% of a team's credits, this projector appends
//! a `ThresholdCrossed` event in the same transaction that moves its checkpoint; the alert's
//! stream id (team, credit level, threshold) makes a second append a no-op. So an alert fires
//! exactly once per threshold per credit level, however many replicas run, and a replay from
//! position zero re-derives the same alerts without writing them again.

pub mod holds;

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::Money;
use domain::team::TeamEvent;
use domain::usage::{
    BUDGET_ALERT_AGGREGATE, BudgetEvent, BudgetState, USAGE_AGGREGATE, UsageEvent, alert_stream_id,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};

use crate::projector::{CarriedColumn, ProjectionError, Projector};
use store::append::{self, StreamStart};
use store::event_log::StoredEvent;

pub const PROJECTOR: &str = "budgets";

#[derive(Default)]
pub struct BudgetsProjector {
    /// During a rebuild, every team's budget so far, kept across batches and written once by
    /// `finish_rebuild` (loading and saving each batch's thousand teams was most of this
    /// projector's share of a rebuild). Empty outside a rebuild.
    rebuilt: std::sync::Mutex<HashMap<String, Folded>>,
}

impl BudgetsProjector {
    /// The rebuild's budgets (a panic while folding leaves them to a rebuild that fails anyway).
    fn rebuilt(&self) -> std::sync::MutexGuard<'_, HashMap<String, Folded>> {
        self.rebuilt.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What folding a batch asks to be written besides the budgets.
#[derive(Default)]
struct Effects<'a> {
    holds: Vec<(String, Option<Decimal>)>,
    alerts: Vec<StreamStart>,
    alert_rows: Vec<&'a StoredEvent>,
}

fn relevant(events: &[StoredEvent]) -> Vec<&StoredEvent> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e.aggregate_type.as_str(),
                "Team" | USAGE_AGGREGATE | BUDGET_ALERT_AGGREGATE
            )
        })
        .collect()
}

/// Folds the events, in order, into the teams' budgets.
fn fold<'a>(
    teams: &mut HashMap<String, Folded>,
    events: &[&'a StoredEvent],
) -> Result<Effects<'a>, ProjectionError> {
    let mut effects = Effects::default();
    for event in events {
        match event.aggregate_type.as_str() {
            "Team" => fold_team(teams, event, &mut effects.alerts)?,
            USAGE_AGGREGATE => fold_usage(teams, event, &mut effects.alerts, &mut effects.holds)?,
            _ => {
                let BudgetEvent::ThresholdCrossed { .. } = event
                    .decode::<BudgetEvent>()
                    .map_err(|e| ProjectionError::decode(event, e))?;
                effects.alert_rows.push(event);
            }
        }
    }
    Ok(effects)
}

/// Appends the alerts the batch raised (a no-op for those already in the log) and keeps the
/// ones it read.
async fn write_alerts(tx: &mut PgConnection, effects: &Effects<'_>) -> Result<(), ProjectionError> {
    append::open_streams(tx, &effects.alerts).await?;
    for event in &effects.alert_rows {
        record_alert(tx, event).await?;
    }
    Ok(())
}

/// A team's budget while a batch is folded.
#[derive(Debug, Clone)]
struct Folded {
    organization_id: String,
    state: BudgetState,
    budget_mode: String,
    request_count: i64,
    last_usage_at: Option<DateTime<Utc>>,
    deleted: bool,
    last_position: i64,
}

#[derive(FromRow)]
struct StoredBudget {
    team_id: String,
    organization_id: String,
    credits: Decimal,
    spend: Decimal,
    budget_mode: String,
    credit_level: i64,
    alerted_percent: i32,
    request_count: i64,
    last_usage_at: Option<DateTime<Utc>>,
    deleted: bool,
    last_position: i64,
}

#[async_trait]
impl Projector for BudgetsProjector {
    fn name(&self) -> &'static str {
        PROJECTOR
    }

    fn interests(&self) -> Option<&'static [&'static str]> {
        Some(&["Team", USAGE_AGGREGATE, BUDGET_ALERT_AGGREGATE])
    }

    fn appends_events(&self) -> bool {
        true
    }

    fn tables(&self) -> &'static [&'static str] {
        &["team_budgets", "budget_alerts"]
    }

    fn shadowed_tables(&self) -> &'static [&'static str] {
        &["budget_holds"]
    }

    /// Credit held by in-flight gateway requests is not in the log.
    fn carried_columns(&self) -> &'static [CarriedColumn] {
        &[CarriedColumn {
            table: "team_budgets",
            key: "team_id",
            column: "held",
        }]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> Result<(), ProjectionError> {
        self.apply_batch(tx, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let relevant = relevant(events);
        if relevant.is_empty() {
            return Ok(());
        }
        let mut teams = load(tx, &relevant).await?;
        let effects = fold(&mut teams, &relevant)?;
        let released = holds::release(tx, &effects.holds).await?;
        write_alerts(tx, &effects).await?;
        // Last, so the lock on busy teams' rows (which the gateway's holds also update) is held
        // only from here to the commit.
        save(tx, &teams, &released).await?;
        let (others, amounts): (Vec<&str>, Vec<Decimal>) = released
            .iter()
            .filter(|(team, _)| !teams.contains_key(*team))
            .map(|(team, amount)| (team.as_str(), *amount))
            .unzip();
        if !others.is_empty() {
            sqlx::query(
                "update team_budgets b set held = b.held - x.amount
                   from unnest($1::text[], $2::numeric[]) as x(team_id, amount)
                  where b.team_id = x.team_id",
            )
            .bind(&others)
            .bind(&amounts)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Folds into the budgets kept in memory; the rebuild's budget_holds copy is empty, so
    /// there is nothing to release.
    async fn rebuild_batch(
        &self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        let relevant = relevant(events);
        // Folding is synchronous: the lock is released before anything is written.
        let effects = fold(&mut self.rebuilt(), &relevant)?;
        write_alerts(tx, &effects).await
    }

    async fn finish_rebuild(&self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        let teams = std::mem::take(&mut *self.rebuilt());
        save(tx, &teams, &HashMap::new()).await?;
        Ok(())
    }
}

async fn load(
    tx: &mut PgConnection,
    events: &[&StoredEvent],
) -> Result<HashMap<String, Folded>, sqlx::Error> {
    let mut ids: Vec<String> = Vec::new();
    for event in events {
        match event.aggregate_type.as_str() {
            "Team" => ids.push(event.aggregate_id.clone()),
            USAGE_AGGREGATE => {
                if let Ok(peek) = event.decode::<TeamOfUsage>() {
                    ids.push(peek.usage_recorded.team_id);
                }
            }
            _ => {}
        }
    }
    ids.sort();
    ids.dedup();
    let rows: Vec<StoredBudget> = sqlx::query_as(
        "select team_id, organization_id, credits, spend, budget_mode, credit_level,
                alerted_percent, request_count, last_usage_at, deleted, last_position
           from team_budgets where team_id = any($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let state = BudgetState {
                credits: Money::from_decimal(r.credits),
                spend: Money::from_decimal(r.spend),
                credit_level: r.credit_level,
                alerted_percent: u32::try_from(r.alerted_percent).unwrap_or(0),
            };
            let folded = Folded {
                organization_id: r.organization_id,
                state,
                budget_mode: r.budget_mode,
                request_count: r.request_count,
                last_usage_at: r.last_usage_at,
                deleted: r.deleted,
                last_position: r.last_position,
            };
            (r.team_id, folded)
        })
        .collect())
}

/// Announces thresholds the team has newly crossed.
fn raise_alerts(
    team_id: &str,
    folded: &mut Folded,
    request_id: Option<domain::usage::RequestId>,
    at: DateTime<Utc>,
    out: &mut Vec<StreamStart>,
) -> Result<(), ProjectionError> {
    for threshold in folded.state.due_alerts() {
        folded.state.mark_alerted(threshold);
        let event = BudgetEvent::ThresholdCrossed {
            team_id: domain::team::TeamId::parse(team_id)
                .map_err(|e| ProjectionError::Encode(format!("team id {team_id:?}: {e}")))?,
            threshold_percent: threshold,
            credit_level: folded.state.credit_level,
            credits: folded.state.credits,
            spend: folded.state.spend,
            request_id: request_id.clone(),
            crossed_at: at,
        };
        let mut metadata = HashMap::new();
        metadata.insert("actor".to_owned(), "system:budgets".to_owned());
        metadata.insert(
            "time".to_owned(),
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        );
        let start = StreamStart::new(
            BUDGET_ALERT_AGGREGATE,
            alert_stream_id(team_id, folded.state.credit_level, threshold),
            &event,
            &metadata,
        )
        .map_err(|e| ProjectionError::Encode(e.to_string()))?;
        out.push(start);
    }
    Ok(())
}

fn fold_team(
    teams: &mut HashMap<String, Folded>,
    event: &StoredEvent,
    alerts: &mut Vec<StreamStart>,
) -> Result<(), ProjectionError> {
    let decoded: TeamEvent = event
        .decode()
        .map_err(|e| ProjectionError::decode(event, e))?;
    let id = event.aggregate_id.as_str();
    if let TeamEvent::TeamCreated {
        organization_id,
        credits,
        budget_mode,
        ..
    } = &decoded
    {
        teams.entry(id.to_owned()).or_insert_with(|| Folded {
            organization_id: organization_id.as_str().to_owned(),
            state: BudgetState::new(*credits),
            budget_mode: budget_mode.as_str().to_owned(),
            request_count: 0,
            last_usage_at: None,
            deleted: false,
            last_position: event.global_position,
        });
        return Ok(());
    }
    let Some(folded) = teams.get_mut(id) else {
        return Ok(());
    };
    // Exactly-once comes from the checkpoint; positions across streams are not commit-ordered.
    folded.last_position = folded.last_position.max(event.global_position);
    match decoded {
        TeamEvent::CreditsAdded { credits_total, .. } => {
            folded.state.grant(credits_total);
            raise_alerts(id, folded, None, event.recorded_at, alerts)?;
        }
        TeamEvent::BudgetModeSet { budget_mode, .. } => {
            folded.budget_mode = budget_mode.as_str().to_owned();
        }
        TeamEvent::TeamDeleted { .. } => folded.deleted = true,
        _ => {}
    }
    Ok(())
}

fn fold_usage(
    teams: &mut HashMap<String, Folded>,
    event: &StoredEvent,
    alerts: &mut Vec<StreamStart>,
    holds: &mut Vec<(String, Option<Decimal>)>,
) -> Result<(), ProjectionError> {
    let UsageEvent::UsageRecorded(record) = event
        .decode()
        .map_err(|e| ProjectionError::decode(event, e))?;
    if let Some(hold) = &record.hold {
        holds.push((hold.key.clone(), hold.amount.map(|m| m.as_decimal())));
    }
    let team_id = record.team_id.as_str();
    let Some(folded) = teams.get_mut(team_id) else {
        tracing::warn!(
            team_id,
            position = event.global_position,
            "usage for a team the budget model does not know; ignored"
        );
        return Ok(());
    };
    folded.state.add_spend(record.price);
    folded.request_count += 1;
    folded.last_usage_at = folded.last_usage_at.max(Some(record.occurred_at));
    folded.last_position = folded.last_position.max(event.global_position);
    raise_alerts(
        team_id,
        folded,
        Some(record.request_id),
        event.recorded_at,
        alerts,
    )
}

/// Writes the folded budgets; `released` held credit leaves `held` in the same statement.
async fn save(
    tx: &mut PgConnection,
    teams: &HashMap<String, Folded>,
    released: &HashMap<String, Decimal>,
) -> Result<(), sqlx::Error> {
    if teams.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut orgs = Vec::new();
    let mut credits = Vec::new();
    let mut spend = Vec::new();
    let mut modes = Vec::new();
    let mut levels = Vec::new();
    let mut alerted = Vec::new();
    let mut counts = Vec::new();
    let mut last_usage = Vec::new();
    let mut deleted = Vec::new();
    let mut positions = Vec::new();
    let mut releases = Vec::new();
    for (id, f) in teams {
        releases.push(released.get(id).copied().unwrap_or_default());
        ids.push(id.as_str());
        orgs.push(f.organization_id.as_str());
        credits.push(f.state.credits.as_decimal());
        spend.push(f.state.spend.as_decimal());
        modes.push(f.budget_mode.as_str());
        levels.push(f.state.credit_level);
        alerted.push(i32::try_from(f.state.alerted_percent).unwrap_or(i32::MAX));
        counts.push(f.request_count);
        last_usage.push(f.last_usage_at);
        deleted.push(f.deleted);
        positions.push(f.last_position);
    }
    sqlx::query(
        // `held` of the proposed row carries the release: a new row has no holds (0), an
        // existing one subtracts it.
        "insert into team_budgets (team_id, organization_id, credits, spend, budget_mode, credit_level,
             alerted_percent, request_count, last_usage_at, deleted, last_position, held)
         select * from unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::text[],
             $6::bigint[], $7::int[], $8::bigint[], $9::timestamptz[], $10::bool[], $11::bigint[],
             $12::numeric[])
         on conflict (team_id) do update set
             held = team_budgets.held - excluded.held,
             credits = excluded.credits, spend = excluded.spend, budget_mode = excluded.budget_mode,
             credit_level = excluded.credit_level, alerted_percent = excluded.alerted_percent,
             request_count = excluded.request_count, last_usage_at = excluded.last_usage_at,
             deleted = excluded.deleted, last_position = excluded.last_position",
    )
    .bind(&ids)
    .bind(&orgs)
    .bind(&credits)
    .bind(&spend)
    .bind(&modes)
    .bind(&levels)
    .bind(&alerted)
    .bind(&counts)
    .bind(&last_usage)
    .bind(&deleted)
    .bind(&positions)
    .bind(&releases)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn record_alert(tx: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
    let BudgetEvent::ThresholdCrossed {
        team_id,
        threshold_percent,
        credit_level,
        credits,
        spend,
        request_id,
        crossed_at,
    } = event
        .decode()
        .map_err(|e| ProjectionError::decode(event, e))?;
    sqlx::query(
        "insert into budget_alerts (team_id, credit_level, threshold_percent, credits, spend,
             request_id, crossed_at, position)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict do nothing",
    )
    .bind(team_id.as_str())
    .bind(credit_level)
    .bind(i32::try_from(threshold_percent).unwrap_or(i32::MAX))
    .bind(credits.as_decimal())
    .bind(spend.as_decimal())
    .bind(request_id.as_ref().map(|r| r.as_str()))
    .bind(crossed_at)
    .bind(event.global_position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A team's budget as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct BudgetRow {
    pub team_id: String,
    pub organization_id: String,
    pub credits: Decimal,
    pub spend: Decimal,
    pub budget_mode: String,
    pub credit_level: i64,
    pub request_count: i64,
    pub last_usage_at: Option<DateTime<Utc>>,
    pub last_position: i64,
    /// Held by requests in flight (hard mode) until their usage is in `spend`.
    pub held: Decimal,
}

impl BudgetRow {
    pub fn state(&self) -> BudgetState {
        BudgetState {
            credits: Money::from_decimal(self.credits),
            spend: Money::from_decimal(self.spend),
            credit_level: self.credit_level,
            alerted_percent: 0,
        }
    }
}

pub async fn get(pool: &PgPool, team_id: &str) -> Result<Option<BudgetRow>, sqlx::Error> {
    sqlx::query_as(
        "select team_id, organization_id, credits, spend, budget_mode, credit_level, request_count,
                last_usage_at, last_position, held
           from team_budgets where team_id = $1",
    )
    .bind(team_id)
    .fetch_optional(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct AlertRow {
    pub team_id: String,
    pub credit_level: i64,
    pub threshold_percent: i32,
    pub credits: Decimal,
    pub spend: Decimal,
    pub request_id: Option<String>,
    pub crossed_at: DateTime<Utc>,
    pub position: i64,
}

/// Threshold alerts of one team (or all), oldest first.
pub async fn alerts(pool: &PgPool, team_id: Option<&str>) -> Result<Vec<AlertRow>, sqlx::Error> {
    sqlx::query_as(
        "select team_id, credit_level, threshold_percent, credits, spend, request_id, crossed_at, position
           from budget_alerts where ($1::text is null or team_id = $1)
          order by position limit 1000",
    )
    .bind(team_id)
    .fetch_all(pool)
    .await
}

/// Just the team of a usage record (the rest of the payload is skipped, not built).
#[derive(serde::Deserialize)]
struct TeamOfUsage {
    #[serde(rename = "UsageRecorded")]
    usage_recorded: TeamIdOnly,
}

#[derive(serde::Deserialize)]
struct TeamIdOnly {
    team_id: String,
}

/// How many live teams have spent at least 80 % and at least 100 % of their credits (teams
/// without credits left out), for `/metrics`.
pub async fn budget_levels(pool: &sqlx::PgPool) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where spend >= credits * 0.8),
                count(*) filter (where spend >= credits)
           from team_budgets where not deleted and credits > 0",
    )
    .fetch_one(pool)
    .await
}

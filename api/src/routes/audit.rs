//! The audit trail over HTTP: events with filters and a cursor, a team's history, and a team
//! (and its usage) as the log stood at an instant.

use app::error::ErrorCode;
use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use domain::team::{TeamAsOf, TeamError, TeamEvent};
use domain::usage::Period;
use projections::audit::{self, AuditFilter};
use serde::Deserialize;
use serde_json::{Value, json};
use store::event_log::{self, StoredEvent};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::AppQuery;
use crate::openapi::ApiErrors;
use crate::responses::{self, Amount};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ListParams;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(events))
        .routes(routes!(team_history))
}

const MAX_PAGE: i64 = 1000;
const DEFAULT_PAGE: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditParams {
    /// Only events of this organization and its teams.
    #[param(pattern = "^[^\\x00]*$")]
    organization_id: Option<String>,
    /// Only this team's events.
    #[param(pattern = "^[^\\x00]*$")]
    team_id: Option<String>,
    /// `Organization`, `ModelGroup`, `Team`, `Job` or `Usage`.
    #[param(pattern = "^[^\\x00]*$")]
    aggregate_type: Option<String>,
    /// Only this aggregate.
    #[param(pattern = "^[^\\x00]*$")]
    aggregate_id: Option<String>,
    /// Only this event type, such as `CreditsAdded`.
    #[param(pattern = "^[^\\x00]*$")]
    event_type: Option<String>,
    /// Only events by this actor, such as `admin:3f2a…`.
    #[param(pattern = "^[^\\x00]*$")]
    actor: Option<String>,
    /// RFC 3339 time, inclusive.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339 time, exclusive.
    #[param(format = DateTime)]
    to: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// 1 to 1000 (100 by default).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Include usage records (`false` leaves them out).
    #[serde(default)]
    include_usage: Option<bool>,
}

/// An RFC 3339 instant from a query parameter.
pub(crate) fn instant(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidTime,
                format!("{field} must be an RFC 3339 time such as 2026-10-01T00:00:00Z"),
            )
        })
}

impl AuditParams {
    fn filter(&self) -> Result<(AuditFilter, i64), ApiError> {
        let (limit, after) = ListParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .bounded(DEFAULT_PAGE, MAX_PAGE)?;
        // Positions start at 1: a negative cursor is no page's.
        if after.is_some_and(|p| p < 0) {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidCursor,
                "cursor must be a next_cursor value from a previous page",
            ));
        }
        let from = self
            .from
            .as_deref()
            .map(|t| instant("from", t))
            .transpose()?;
        let to = self.to.as_deref().map(|t| instant("to", t)).transpose()?;
        let filter = AuditFilter {
            organization_id: self.organization_id.clone(),
            team_id: self.team_id.clone(),
            aggregate_type: self.aggregate_type.clone(),
            aggregate_id: self.aggregate_id.clone(),
            event_type: self.event_type.clone(),
            actor: self.actor.clone(),
            from,
            to,
            without_usage: false,
            after,
        };
        Ok((filter, limit))
    }
}

/// Who the actors of `events` are, by name: `Name <email>` for an account's key or session,
/// `master key` for the master key; others (teams, the system) are their own names.
async fn actor_names(
    state: &AppState,
    events: &[StoredEvent],
) -> ApiResult<std::collections::HashMap<String, String>> {
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| e.meta("actor").and_then(crate::auth::actor_account))
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids.dedup();
    let names = projections::accounts::names(&state.pool, &ids).await?;
    Ok(names
        .into_iter()
        .map(|(id, name, email)| (id, format!("{name} <{email}>")))
        .collect())
}

fn actor_name(actor: Option<&str>, names: &std::collections::HashMap<String, String>) -> Value {
    match actor {
        Some(actor) if actor.starts_with("admin:") => json!("master key"),
        Some(actor) => crate::auth::actor_account(actor)
            .and_then(|id| names.get(id))
            .map_or(Value::Null, |name| json!(name)),
        None => Value::Null,
    }
}

/// One event as an auditor reads it: the payload without its enum wrapper.
fn event_json(event: &StoredEvent) -> Value {
    let payload = match &event.payload {
        Value::Object(map) if map.len() == 1 => map.values().next().cloned().unwrap_or_default(),
        other => other.clone(),
    };
    json!({
        "position": event.global_position,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": payload,
        "actor": event.meta("actor"),
        "request_id": event.meta("request_id"),
        "recorded_at": event.recorded_at,
    })
}

async fn page(
    state: &AppState,
    admin: &Admin,
    filter: &AuditFilter,
    limit: i64,
) -> ApiResult<Json<Value>> {
    let events = audit::events(&state.pool, filter, limit).await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(|e| e.global_position.to_string()))
        .flatten();
    let names = actor_names(state, &events).await?;
    let events: Vec<Value> = events
        .iter()
        .map(|event| {
            let mut json = event_json(event);
            json["actor_name"] = actor_name(event.meta("actor"), &names);
            // A usage record's id may be a call id saas-api sent (see auth::redacted_request_id).
            if admin.organizations().is_some() && event.aggregate_type == "Usage" {
                if let Some(id) = json["payload"]["request_id"].as_str() {
                    json["payload"]["request_id"] = json!(crate::auth::redacted_request_id(id));
                }
                // A usage stream is named `<team>:<request id>`.
                if let Some((team, id)) = event.aggregate_id.split_once(':') {
                    json["aggregate_id"] =
                        json!(format!("{team}:{}", crate::auth::redacted_request_id(id)));
                }
            }
            json
        })
        .collect();
    Ok(Json(json!({
        "events": events,
        "next_cursor": next,
    })))
}

#[utoipa::path(get, path = "/api/audit/events", tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of events in log order, with actor and request id", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn events(
    admin: Admin,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AuditParams>,
) -> ApiResult<Json<Value>> {
    let (mut filter, limit) = params.filter()?;
    filter.without_usage = params.include_usage == Some(false);
    // An organization's events are found through the teams read model (which teams are its):
    // a team created a moment ago is in its organization's audit.
    if filter.organization_id.is_some() {
        state.caught_up(&projections::teams::TeamsProjector).await?;
    }
    page(&state, &admin, &filter, limit).await
}

/// Every change to a team with who made it; usage records only with `include_usage=true`.
#[utoipa::path(get, path = "/api/teams/{id}/history", tag = "audit",
    params(("id" = String, Path, description = "team id"), AuditParams),
    responses((status = 200, description = "The team's changes, oldest first", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn team_history(
    admin: Admin,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<AuditParams>,
) -> ApiResult<Json<Value>> {
    let (mut filter, limit) = params.filter()?;
    let mut conn = state.pool.acquire().await?;
    if event_log::stream_head(&mut conn, "Team", &id)
        .await?
        .is_none()
    {
        return Err(TeamError::NotFound.into());
    }
    drop(conn);
    filter.team_id = Some(id);
    filter.without_usage = params.include_usage != Some(true);
    page(&state, &admin, &filter, limit).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AsOfParams {
    /// An RFC 3339 time: answer as things stood then, rebuilt from the events.
    #[param(format = DateTime)]
    pub as_of: Option<String>,
}

/// The team's events up to `as_of`, decoded, and whether it existed then.
async fn team_events(state: &AppState, id: &str) -> ApiResult<Vec<StoredEvent>> {
    let mut conn = state.pool.acquire().await?;
    let events = event_log::read_stream(&mut conn, "Team", id).await?;
    if events.is_empty() {
        return Err(TeamError::NotFound.into());
    }
    Ok(events)
}

fn team_at(events: &[StoredEvent], as_of: DateTime<Utc>) -> ApiResult<TeamAsOf> {
    let decoded = events
        .iter()
        .filter(|e| e.recorded_at <= as_of)
        .map(|e| e.decode::<TeamEvent>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    TeamAsOf::fold(&decoded).ok_or_else(|| {
        ApiError::not_found(
            ErrorCode::TeamNotFound,
            format!("the team did not exist yet at {}", as_of.to_rfc3339()),
        )
    })
}

/// `GET /api/teams/{id}?as_of=`: the team rebuilt from its events up to that instant, with the
/// models its groups held then, its spend then, and every change made since (and by whom).
pub(crate) async fn team_as_of(
    state: &AppState,
    id: &str,
    raw: &str,
) -> ApiResult<responses::TeamAsOf> {
    let as_of = instant("as_of", raw)?;
    let events = team_events(state, id).await?;
    let team = team_at(&events, as_of)?;
    let groups: Vec<String> = team
        .model_groups
        .iter()
        .map(|g| g.as_str().to_owned())
        .collect();
    let mut models: Vec<String> = audit::group_models_as_of(&state.pool, &groups, as_of)
        .await?
        .into_iter()
        .flat_map(|(_, models)| models)
        .collect();
    models.sort();
    models.dedup();
    let spend = audit::spend_as_of(&state.pool, id, as_of).await?;
    let credits = team.credits.as_decimal();
    let changed_since = events
        .iter()
        .filter(|e| e.recorded_at > as_of)
        .map(|e| responses::ChangeSince {
            position: e.global_position,
            event_type: e.event_type.clone(),
            actor: e.meta("actor").map(str::to_owned),
            recorded_at: e.recorded_at,
        })
        .collect();
    Ok(responses::TeamAsOf {
        team_id: team.team_id,
        organization_id: team.organization_id,
        team_alias: team.team_alias,
        status: team.status.as_str().to_owned(),
        model_groups: groups,
        allowed_models: models,
        credits: Amount(credits),
        spend: Amount(spend),
        remaining_budget: Amount(credits - spend),
        budget_mode: team.budget_mode.into(),
        rate_limits: responses::RateLimitsAsOf {
            rpm_limit: team.rate_limits.rpm_limit,
            tpm_limit: team.rate_limits.tpm_limit,
        },
        markup_percent: Amount(team.markup_percent.as_decimal()),
        key_fingerprint: team.key_fingerprint.as_str().to_owned(),
        as_of,
        changed_since,
    })
}

/// `GET /api/teams/{id}/usage?as_of=`: usage by model counting only records appended by then.
pub(crate) async fn team_usage_as_of(
    state: &AppState,
    id: &str,
    raw: &str,
    period: &Period,
) -> ApiResult<Json<crate::responses::TeamUsage>> {
    let as_of = instant("as_of", raw)?;
    let events = team_events(state, id).await?;
    let team = team_at(&events, as_of)?;
    let buckets = audit::usage_as_of(&state.pool, id, as_of, period.from, period.to).await?;
    let (totals, models_used) = crate::responses::by_model(&buckets);
    let spend = audit::spend_as_of(&state.pool, id, as_of).await?;
    let credits = team.credits.as_decimal();
    Ok(Json(crate::responses::TeamUsage {
        team_id: id.to_owned(),
        organization_id: team.organization_id.as_str().to_owned(),
        as_of: Some(as_of),
        period: period.into(),
        totals,
        credits: Amount(credits),
        remaining_budget: Amount(credits - spend),
        percent_used: None,
        budget_mode: team.budget_mode.into(),
        models_used,
    }))
}

//! Teams: creation with a virtual key, credits, model groups, budget mode, limits, markup,
//! suspension, key rotation and reveal, deletion; and the read model queries.

use app::error::ErrorCode;
use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use domain::model_name::GroupName;
use domain::money::{Money, Percent};
use domain::organization::OrganizationId;
use domain::team::{
    BudgetMode, NewTeam, RateLimits, Team, TeamAlias, TeamCommand, TeamError, TeamId,
};
use projections::teams::{self as read_model};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListParams, page, position_header};
use crate::auth::Admin;
use app::commands::OnConflict;

use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::RequestMeta;
use crate::extract::{AppJson, AppQuery, DecimalText};
use crate::openapi::ApiErrors;
use crate::responses::{self, Amount, TeamChange, TeamChanged};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show, delete_by_method))
        .routes(routes!(add_credits))
        .routes(routes!(assign_group))
        .routes(routes!(unassign_group))
        .routes(routes!(set_budget_mode))
        .routes(routes!(set_rate_limits))
        .routes(routes!(set_markup))
        .routes(routes!(suspend))
        .routes(routes!(resume))
        .routes(routes!(rotate_key))
        .routes(routes!(delete))
        .routes(routes!(reveal_key))
        .routes(routes!(list_for_organization))
        .routes(routes!(sync_status))
}

fn team_id(raw: &str) -> Result<TeamId, ApiError> {
    TeamId::parse(raw).map_err(|_| TeamError::NotFound.into())
}

/// What every command on an existing team needs: the admin, the request's metadata, the state
/// and the team id from the path.
struct TeamTarget {
    admin: Admin,
    meta: RequestMeta,
    state: AppState,
    id: TeamId,
}

impl FromRequestParts<AppState> for TeamTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = Admin::from_request_parts(parts, state).await?;
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::from(TeamError::NotFound))?;
        Ok(Self {
            admin,
            meta,
            state: state.clone(),
            id: team_id(&raw)?,
        })
    }
}

impl TeamTarget {
    /// Commands whose re-run means the same thing retry conflicts (`OnConflict::Retry`).
    async fn run(&self, command: TeamCommand, on_conflict: OnConflict) -> ApiResult<i64> {
        run(
            &self.state,
            &self.admin,
            &self.meta,
            &self.id,
            command,
            on_conflict,
        )
        .await
    }

    /// The metadata the team's commands record (the admin as actor).
    fn metadata(&self) -> domain::CommandMetadata {
        self.meta.for_actor(self.admin.actor())
    }

    fn done(&self, position: i64, change: TeamChange) -> (HeaderMap, Json<TeamChanged>) {
        done(&self.id, position, change)
    }
}

async fn run(
    state: &AppState,
    admin: &Admin,
    meta: &RequestMeta,
    id: &TeamId,
    command: TeamCommand,
    on_conflict: OnConflict,
) -> ApiResult<i64> {
    let position = state
        .commands
        .execute::<Team>(
            id.as_str(),
            command,
            &meta.for_actor(admin.actor()),
            on_conflict,
        )
        .await?;
    Ok(position)
}

fn done(id: &TeamId, position: i64, change: TeamChange) -> (HeaderMap, Json<TeamChanged>) {
    let body = TeamChanged {
        team_id: id.as_str().to_owned(),
        position,
        change,
    };
    (position_header(position), Json(body))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateTeam {
    #[schema(schema_with = crate::request_schemas::identifier::<64>)]
    organization_id: String,
    #[schema(schema_with = crate::request_schemas::identifier_or_null::<64>)]
    team_id: Option<String>,
    /// The team's display name; its id when absent (as in the original project).
    #[schema(schema_with = crate::request_schemas::display_name_or_null::<200>)]
    team_alias: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::request_schemas::group_names)]
    model_groups: Vec<String>,
    #[schema(schema_with = crate::request_schemas::money_or_null)]
    credits: Option<DecimalText>,
    #[schema(value_type = Option<responses::BudgetMode>)]
    budget_mode: Option<BudgetMode>,
    #[schema(minimum = 1, maximum = 10_000_000)]
    #[serde(default, deserialize_with = "crate::extract::whole_number::optional")]
    rpm_limit: Option<u64>,
    #[schema(minimum = 1, maximum = 10_000_000_000_u64)]
    #[serde(default, deserialize_with = "crate::extract::whole_number::optional")]
    tpm_limit: Option<u64>,
    #[schema(schema_with = crate::request_schemas::markup_or_null)]
    markup_percent: Option<DecimalText>,
}

fn parse_groups(raw: &[String]) -> Result<Vec<GroupName>, ApiError> {
    if raw.len() > 50 {
        return Err(ApiError::unprocessable(
            ErrorCode::ValidationFailed,
            "a team may have at most 50 model groups",
        ));
    }
    let mut groups: Vec<GroupName> = Vec::new();
    for name in raw {
        let group = GroupName::parse(name)?;
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    Ok(groups)
}

fn rate_limits(rpm: Option<u64>, tpm: Option<u64>) -> Result<RateLimits, ApiError> {
    RateLimits::new(rpm, tpm)
        .map_err(|message| ApiError::unprocessable(ErrorCode::ValidationFailed, message))
}

#[utoipa::path(post, path = "/api/teams/create", tag = "teams",
    request_body = CreateTeam,
    responses((status = 201, description = "Created; the answer carries the virtual key", body = responses::TeamCreated), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn create(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateTeam>,
) -> ApiResult<(StatusCode, HeaderMap, Json<responses::TeamCreated>)> {
    let team_id = match body.team_id.as_deref() {
        Some(raw) => TeamId::parse(raw)?,
        None => TeamId::generate(),
    };
    let credits = match &body.credits {
        Some(raw) => Money::parse_non_negative("credits", &raw.0)?,
        None => Money::ZERO,
    };
    let markup_percent = match &body.markup_percent {
        Some(raw) => Percent::parse_markup("markup_percent", &raw.0)?,
        None => Percent::ZERO,
    };
    let organization_id = OrganizationId::parse(&body.organization_id)?;
    // Outside an organization-scoped caller's organizations, it does not exist for them.
    if !admin.reaches(organization_id.as_str()) {
        return Err(domain::organization::OrganizationError::NotFound.into());
    }
    let team_alias = TeamAlias::parse(body.team_alias.as_deref().unwrap_or(team_id.as_str()))?;
    let model_groups = parse_groups(&body.model_groups)?;
    let rate_limits = rate_limits(body.rpm_limit, body.tpm_limit)?;
    let created = app::teams::create(
        &state.commands,
        &state.vault,
        &state.pool,
        |key_fingerprint| NewTeam {
            team_id,
            organization_id,
            team_alias,
            model_groups,
            credits,
            budget_mode: body.budget_mode.unwrap_or_default(),
            rate_limits,
            markup_percent,
            key_fingerprint,
        },
        &meta.for_actor(admin.actor()),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        position_header(created.position),
        Json(responses::TeamCreated::from(&created)),
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AddCredits {
    #[schema(schema_with = crate::request_schemas::positive_money)]
    amount: DecimalText,
    #[schema(schema_with = crate::request_schemas::display_name_or_null::<500>)]
    reason: Option<String>,
}

type Answer = ApiResult<(HeaderMap, Json<TeamChanged>)>;

fn reason(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(raw
        .map(|r| domain::text::display_name("reason", r, 500))
        .transpose()?)
}

#[utoipa::path(post, path = "/api/teams/{id}/credits/add", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = AddCredits,
    responses((status = 200, description = "Credits added", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn add_credits(team: TeamTarget, AppJson(body): AppJson<AddCredits>) -> Answer {
    let amount = Money::parse_amount("amount", &body.amount.0)?;
    let reason = reason(body.reason.as_deref())?;
    // Safe to re-run on a conflict: each request adds its amount once.
    let position = team
        .run(
            TeamCommand::AddCredits { amount, reason },
            OnConflict::Retry,
        )
        .await?;
    Ok(team.done(
        position,
        TeamChange::Credits {
            amount: Amount(amount.as_decimal()),
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    #[schema(schema_with = crate::request_schemas::identifier::<64>)]
    group_name: String,
}

#[utoipa::path(post, path = "/api/teams/{id}/model-groups/assign", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = GroupBody,
    responses((status = 200, description = "Assigned", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn assign_group(team: TeamTarget, AppJson(body): AppJson<GroupBody>) -> Answer {
    let group = GroupName::parse(&body.group_name)?;
    let command = TeamCommand::AssignModelGroup {
        group: group.clone(),
    };
    let position = team.run(command, OnConflict::Retry).await?;
    Ok(team.done(
        position,
        TeamChange::Assigned {
            assigned: group.as_str().to_owned(),
        },
    ))
}

#[utoipa::path(post, path = "/api/teams/{id}/model-groups/unassign", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = GroupBody,
    responses((status = 200, description = "Unassigned", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn unassign_group(team: TeamTarget, AppJson(body): AppJson<GroupBody>) -> Answer {
    let group = GroupName::parse(&body.group_name)?;
    let command = TeamCommand::UnassignModelGroup {
        group: group.clone(),
    };
    let position = team.run(command, OnConflict::Retry).await?;
    Ok(team.done(
        position,
        TeamChange::Unassigned {
            unassigned: group.as_str().to_owned(),
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BudgetModeBody {
    #[schema(value_type = responses::BudgetMode)]
    budget_mode: BudgetMode,
}

#[utoipa::path(post, path = "/api/teams/{id}/budget-mode", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = BudgetModeBody,
    responses((status = 200, description = "Set", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn set_budget_mode(team: TeamTarget, AppJson(body): AppJson<BudgetModeBody>) -> Answer {
    let command = TeamCommand::SetBudgetMode {
        budget_mode: body.budget_mode,
    };
    let position = team.run(command, OnConflict::Retry).await?;
    Ok(team.done(
        position,
        TeamChange::BudgetMode {
            budget_mode: body.budget_mode.into(),
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RateLimitsBody {
    #[schema(minimum = 1, maximum = 10_000_000)]
    #[serde(default, deserialize_with = "crate::extract::whole_number::optional")]
    rpm_limit: Option<u64>,
    #[schema(minimum = 1, maximum = 10_000_000_000_u64)]
    #[serde(default, deserialize_with = "crate::extract::whole_number::optional")]
    tpm_limit: Option<u64>,
}

#[utoipa::path(post, path = "/api/teams/{id}/rate-limits", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = RateLimitsBody,
    responses((status = 200, description = "Set", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn set_rate_limits(team: TeamTarget, AppJson(body): AppJson<RateLimitsBody>) -> Answer {
    let limits = rate_limits(body.rpm_limit, body.tpm_limit)?;
    let position = team
        .run(
            TeamCommand::SetRateLimits {
                rate_limits: limits,
            },
            OnConflict::Retry,
        )
        .await?;
    Ok(team.done(
        position,
        TeamChange::RateLimits {
            rpm_limit: limits.rpm_limit,
            tpm_limit: limits.tpm_limit,
        },
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MarkupBody {
    #[schema(schema_with = crate::request_schemas::markup)]
    markup_percent: DecimalText,
}

#[utoipa::path(post, path = "/api/teams/{id}/markup", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = MarkupBody,
    responses((status = 200, description = "Set", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn set_markup(team: TeamTarget, AppJson(body): AppJson<MarkupBody>) -> Answer {
    let markup_percent = Percent::parse_markup("markup_percent", &body.markup_percent.0)?;
    let position = team
        .run(TeamCommand::SetMarkup { markup_percent }, OnConflict::Retry)
        .await?;
    Ok(team.done(
        position,
        TeamChange::Markup {
            markup_percent: Amount(markup_percent.as_decimal()),
        },
    ))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SuspendBody {
    #[schema(schema_with = crate::request_schemas::display_name_or_null::<500>)]
    reason: Option<String>,
}

#[utoipa::path(post, path = "/api/teams/{id}/suspend", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    request_body = SuspendBody,
    responses((status = 200, description = "Suspended: the key stops working", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn suspend(team: TeamTarget, AppJson(body): AppJson<SuspendBody>) -> Answer {
    let reason = reason(body.reason.as_deref())?;
    let position = team
        .run(TeamCommand::Suspend { reason }, OnConflict::Retry)
        .await?;
    Ok(team.done(
        position,
        TeamChange::Status {
            status: "suspended".into(),
        },
    ))
}

#[utoipa::path(post, path = "/api/teams/{id}/resume", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "Active again", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn resume(team: TeamTarget) -> Answer {
    let position = team.run(TeamCommand::Resume, OnConflict::Retry).await?;
    Ok(team.done(
        position,
        TeamChange::Status {
            status: "active".into(),
        },
    ))
}

#[utoipa::path(post, path = "/api/teams/{id}/rotate-key", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "The new key; the old one stops working", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn rotate_key(team: TeamTarget) -> Answer {
    let rotated = app::teams::rotate_key(
        &team.state.commands,
        &team.state.vault,
        &team.state.pool,
        &team.id,
        &team.metadata(),
    )
    .await?;
    Ok(team.done(
        rotated.position,
        TeamChange::Key {
            virtual_key: rotated.key.expose().to_owned(),
            key_fingerprint: rotated.key.fingerprint().as_str().to_owned(),
        },
    ))
}

#[utoipa::path(post, path = "/api/teams/{id}/delete", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "Deleted", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn delete(team: TeamTarget) -> Answer {
    let position = team.run(TeamCommand::Delete, OnConflict::Fail).await?;
    Ok(team.done(
        position,
        TeamChange::Status {
            status: "deleted".into(),
        },
    ))
}

/// `DELETE /api/teams/{id}`: the same command as `POST .../delete`.
#[utoipa::path(delete, path = "/api/teams/{id}", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "Deleted", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn delete_by_method(team: TeamTarget) -> Answer {
    delete(team).await
}

/// Reveals the team's current key. The reveal is recorded (with its fingerprint) first, so
/// there is no reveal without an audit trail.
#[utoipa::path(post, path = "/api/teams/{id}/virtual-key", tag = "teams",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "The current key (the reveal is audited)", body = TeamChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn reveal_key(team: TeamTarget) -> Answer {
    let revealed = app::teams::reveal_key(
        &team.state.commands,
        &team.state.vault,
        &team.state.pool,
        &team.id,
        &team.metadata(),
    )
    .await?;
    Ok(done(
        &team.id,
        revealed.position,
        TeamChange::Key {
            virtual_key: revealed.key.expose().to_owned(),
            key_fingerprint: revealed.fingerprint,
        },
    ))
}

#[utoipa::path(get, path = "/api/teams/{id}", tag = "teams",
    params(("id" = String, Path, description = "team id"), super::audit::AsOfParams),
    responses((status = 200, description = "The team (with its LiteLLM sync state), or its state as of a time", body = responses::TeamOrAsOf), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn show(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(as_of): AppQuery<super::audit::AsOfParams>,
) -> ApiResult<Json<Value>> {
    if let Some(raw) = &as_of.as_of {
        let then = super::audit::team_as_of(&state, &id, raw).await?;
        return serde_json::to_value(responses::TeamOrAsOf::AsOf(Box::new(then)))
            .map(Json)
            .map_err(ApiError::internal);
    }
    state
        .read_after_all(
            &[read_model::PROJECTOR, projections::model_groups::PROJECTOR],
            read_after,
        )
        .await?;
    let row = read_model::get(&state.pool, &id)
        .await?
        .ok_or_else(|| ApiError::from(TeamError::NotFound))?;
    let now = responses::TeamOrAsOf::Now(Box::new(responses::Team::from(&row)));
    let mut body = serde_json::to_value(now).map_err(ApiError::internal)?;
    let sync = app::sync::marker::status_of(&state.pool, &id).await?;
    body["litellm_sync"] = sync_json(&state, sync);
    Ok(Json(body))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct TeamFilter {
    /// Only this organization's teams.
    #[param(pattern = "^[^\\x00]*$")]
    organization_id: Option<String>,
    /// Include deleted teams.
    #[serde(default)]
    include_deleted: bool,
    /// `active`, `suspended` or `deleted`.
    #[param(pattern = "^(active|suspended|deleted)?$")]
    status: Option<String>,
    /// Part of the alias or team id.
    #[param(pattern = "^[^\\x00]*$")]
    q: Option<String>,
}

impl TeamFilter {
    fn query<'a>(
        &'a self,
        organization_id: Option<&'a str>,
    ) -> ApiResult<read_model::TeamQuery<'a>> {
        let status = self.status.as_deref().filter(|s| !s.is_empty());
        if let Some(status) = status
            && !["active", "suspended", "deleted"].contains(&status)
        {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "status must be active, suspended or deleted",
            ));
        }
        Ok(read_model::TeamQuery {
            organization_id,
            within: None,
            include_deleted: self.include_deleted,
            status,
            search: self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()),
        })
    }
}

async fn list_teams(
    state: &AppState,
    query: read_model::TeamQuery<'_>,
    params: &ListParams,
    read_after: ReadAfter,
) -> ApiResult<Json<responses::TeamPage>> {
    let (limit, after) = params.validate()?;
    state
        .read_after_all(
            &[read_model::PROJECTOR, projections::model_groups::PROJECTOR],
            read_after,
        )
        .await?;
    let rows = read_model::list(&state.pool, &query, after, limit + 1).await?;
    let (rows, next_cursor) = page(rows, limit, |row| row.created_position);
    Ok(Json(responses::TeamPage {
        teams: rows.iter().map(responses::Team::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/teams", tag = "teams",
    params(ListParams, TeamFilter),
    responses((status = 200, description = "A page of teams", body = responses::TeamPage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn list(
    admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ListParams>,
    AppQuery(filter): AppQuery<TeamFilter>,
) -> ApiResult<Json<responses::TeamPage>> {
    let query = read_model::TeamQuery {
        within: admin.organizations(),
        ..filter.query(filter.organization_id.as_deref())?
    };
    list_teams(&state, query, &params, read_after).await
}

#[utoipa::path(get, path = "/api/organizations/{id}/teams", tag = "teams",
    params(("id" = String, Path, description = "organization id"), ListParams, TeamFilter),
    responses((status = 200, description = "A page of the organization's teams", body = responses::TeamPage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn list_for_organization(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(organization_id): AppPath<String>,
    AppQuery(params): AppQuery<ListParams>,
    AppQuery(filter): AppQuery<TeamFilter>,
) -> ApiResult<Json<responses::TeamPage>> {
    state
        .read_after(projections::organizations::PROJECTOR, read_after)
        .await?;
    if projections::organizations::get(&state.pool, &organization_id)
        .await?
        .is_none()
    {
        return Err(domain::organization::OrganizationError::NotFound.into());
    }
    let query = filter.query(Some(&organization_id))?;
    list_teams(&state, query, &params, read_after).await
}

fn sync_json(state: &AppState, sync: Option<app::sync::marker::SyncRow>) -> Value {
    if !state.litellm_sync_enabled {
        return json!({"status": "disabled"});
    }
    match sync {
        Some(row) => serde_json::to_value(row).unwrap_or(Value::Null),
        None => json!({"status": "pending"}),
    }
}

/// `GET /api/sync/status`: how LiteLLM sync is doing overall.
#[utoipa::path(get, path = "/api/sync/status", tag = "teams",
    responses((status = 200, description = "LiteLLM sync state: counts and problems", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn sync_status(_admin: Admin, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(sync_summary(&state, 50).await?))
}

/// Teams per sync status and up to `limit` of those not in sync (sync status, dashboard).
pub(super) async fn sync_summary(state: &AppState, limit: i64) -> ApiResult<Value> {
    let (counts, attention) = app::sync::marker::summary(&state.pool, limit).await?;
    let counts: serde_json::Map<String, Value> = counts
        .into_iter()
        .map(|(status, n)| (status, json!(n)))
        .collect();
    Ok(json!({
        "enabled": state.litellm_sync_enabled,
        "teams": counts,
        "not_in_sync": attention,
    }))
}

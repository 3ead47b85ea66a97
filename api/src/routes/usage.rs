//! Usage reports: per team, per organization, across teams, daily series, CSV export; and the
//! budget and threshold alerts that spend drives.

use app::error::ErrorCode;
use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use domain::usage::{Period, PeriodError};
use futures::TryStreamExt;
use projections::budgets::{self, BudgetRow};
use projections::reports::{self, GroupBy, Scope, UsageBucket, UsageRecordRow};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::report_shapes::totals_json;
use crate::auth::Admin;
use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::{AppQuery, decimal_json};
use crate::openapi::ApiErrors;
use crate::responses::{self, Amount};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(team_usage))
        .routes(routes!(team_daily))
        .routes(routes!(team_budget))
        .routes(routes!(organization_usage))
        .routes(routes!(organization_daily))
        .routes(routes!(all_teams))
        .routes(routes!(daily_by_model))
        .routes(routes!(export_csv))
        .routes(routes!(alerts))
}

/// Read models a usage answer is built from.
const USAGE_MODELS: [&str; 3] = [
    projections::usage::PROJECTOR,
    projections::budgets::PROJECTOR,
    projections::teams::PROJECTOR,
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PeriodParams {
    /// Start of the period (RFC 3339 time or YYYY-MM-DD, inclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    from: Option<String>,
    /// End of the period (exclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    to: Option<String>,
}

impl From<PeriodError> for ApiError {
    fn from(error: PeriodError) -> Self {
        ApiError::bad_request(ErrorCode::InvalidPeriod, error.to_string())
    }
}

impl PeriodParams {
    fn period(&self) -> Result<Period, ApiError> {
        Ok(Period::parse(self.from.as_deref(), self.to.as_deref())?)
    }
}

fn period_json(period: &Period) -> Value {
    json!({"from": period.from, "to": period.to})
}

async fn team_budget_row(state: &AppState, team_id: &str) -> ApiResult<BudgetRow> {
    budgets::get(&state.pool, team_id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::TeamNotFound, "team not found"))
}

#[utoipa::path(get, path = "/api/teams/{id}/usage", tag = "usage",
    params(("id" = String, Path, description = "team id"), PeriodParams, super::audit::AsOfParams),
    responses((status = 200, description = "The team's usage by model and its budget", body = responses::TeamUsage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn team_usage(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<PeriodParams>,
    AppQuery(as_of): AppQuery<super::audit::AsOfParams>,
) -> ApiResult<Json<responses::TeamUsage>> {
    let period = params.period()?;
    if let Some(raw) = &as_of.as_of {
        return super::audit::team_usage_as_of(&state, &id, raw, &period).await;
    }
    state.read_after_all(&USAGE_MODELS, read_after).await?;
    let budget = team_budget_row(&state, &id).await?;
    let by_model = reports::usage(&state.pool, Scope::Team(&id), &period, GroupBy::Model).await?;
    let (totals, models_used) = responses::by_model(&by_model);
    let budget_state = budget.state();
    Ok(Json(responses::TeamUsage {
        team_id: id,
        organization_id: budget.organization_id.clone(),
        as_of: None,
        period: (&period).into(),
        totals,
        credits: Amount(budget.credits),
        remaining_budget: Amount(budget_state.remaining()),
        percent_used: Some(budget_state.percent_used().map(Amount)),
        budget_mode: responses::BudgetMode::stored(&budget.budget_mode),
        models_used,
    }))
}

fn series_json(days: &[chrono::NaiveDate], buckets: Vec<UsageBucket>) -> Vec<Value> {
    reports::dense_series(days, buckets)
        .into_iter()
        .map(|(day, b)| {
            json!({
                "date": day.format("%Y-%m-%d").to_string(),
                "requests": b.requests,
                "spend": decimal_json(b.price),
                "provider_cost": decimal_json(b.provider_cost),
                "tokens": b.total_tokens(),
            })
        })
        .collect()
}

#[utoipa::path(get, path = "/api/teams/{id}/usage/daily", tag = "usage",
    params(("id" = String, Path, description = "team id"), PeriodParams),
    responses((status = 200, description = "Spend per UTC day", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn team_daily(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<PeriodParams>,
) -> ApiResult<Json<Value>> {
    let period = params.period()?;
    let days = period.series_days(Utc::now().date_naive())?;
    state.read_after_all(&USAGE_MODELS, read_after).await?;
    team_budget_row(&state, &id).await?;
    let buckets = reports::usage(&state.pool, Scope::Team(&id), &period, GroupBy::Day).await?;
    Ok(Json(json!({
        "team_id": id,
        "period": period_json(&period),
        "days": series_json(&days, buckets),
    })))
}

#[utoipa::path(get, path = "/api/teams/{id}/budget", tag = "usage",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "Credits, spend, held and remaining", body = responses::TeamBudget), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn team_budget(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<responses::TeamBudget>> {
    state
        .read_after(projections::budgets::PROJECTOR, read_after)
        .await?;
    let row = team_budget_row(&state, &id).await?;
    let alerts = budgets::alerts(&state.pool, Some(&id)).await?;
    Ok(Json(responses::TeamBudget {
        budget: responses::Budget::from(&row),
        alerts: alerts.iter().map(responses::BudgetAlert::from).collect(),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AlertParams {
    /// Only this team.
    #[param(pattern = "^[^\\x00]*$")]
    team_id: Option<String>,
}

#[utoipa::path(get, path = "/api/budget-alerts", tag = "usage",
    params(AlertParams),
    responses((status = 200, description = "Threshold and exhaustion alerts", body = responses::BudgetAlerts), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn alerts(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AlertParams>,
) -> ApiResult<Json<responses::BudgetAlerts>> {
    state
        .read_after(projections::budgets::PROJECTOR, read_after)
        .await?;
    let rows = budgets::alerts(&state.pool, params.team_id.as_deref()).await?;
    Ok(Json(responses::BudgetAlerts {
        alerts: rows.iter().map(responses::BudgetAlert::from).collect(),
    }))
}

async fn require_organization(state: &AppState, id: &str) -> ApiResult<()> {
    projections::organizations::get(&state.pool, id)
        .await?
        .map(|_| ())
        .ok_or_else(|| {
            ApiError::not_found(ErrorCode::OrganizationNotFound, "organization not found")
        })
}

/// One line per team: every team of the scope, those without usage as zeros.
async fn team_lines(
    state: &AppState,
    organization_id: Option<&str>,
    period: &Period,
) -> ApiResult<(UsageBucket, Vec<(reports::TeamHeader, UsageBucket)>)> {
    let scope = match organization_id {
        Some(id) => Scope::Organization(id),
        None => Scope::All,
    };
    let headers = reports::team_headers(&state.pool, organization_id).await?;
    let buckets = reports::usage(&state.pool, scope, period, GroupBy::Team).await?;
    let mut by_team: std::collections::HashMap<String, UsageBucket> =
        buckets.into_iter().map(|b| (b.key.clone(), b)).collect();
    let mut total = UsageBucket::default();
    let mut lines = Vec::with_capacity(headers.len());
    for header in headers {
        let bucket = by_team.remove(&header.team_id).unwrap_or_default();
        if bucket.requests == 0 && header.status == "deleted" {
            continue;
        }
        total.add(&bucket);
        lines.push((header, bucket));
    }
    Ok((total, lines))
}

fn team_line_json(header: &reports::TeamHeader, bucket: &UsageBucket) -> Value {
    let mut line = Map::new();
    line.insert("team_id".into(), json!(header.team_id));
    line.insert("team_alias".into(), json!(header.team_alias));
    line.insert("organization_id".into(), json!(header.organization_id));
    line.insert("status".into(), json!(header.status));
    line.extend(totals_json(bucket));
    Value::Object(line)
}

#[utoipa::path(get, path = "/api/organizations/{id}/usage", tag = "usage",
    params(("id" = String, Path, description = "organization id"), PeriodParams),
    responses((status = 200, description = "The organization's usage by team and model", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn organization_usage(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<PeriodParams>,
) -> ApiResult<Json<Value>> {
    let period = params.period()?;
    state.read_after_all(&USAGE_MODELS, read_after).await?;
    require_organization(&state, &id).await?;
    let (total, mut lines) = team_lines(&state, Some(&id), &period).await?;
    lines.sort_by(|a, b| {
        b.1.price
            .cmp(&a.1.price)
            .then(a.0.team_id.cmp(&b.0.team_id))
    });
    let mut body = Map::new();
    body.insert("organization_id".into(), json!(id));
    body.insert("period".into(), period_json(&period));
    body.extend(totals_json(&total));
    body.insert(
        "teams".into(),
        Value::Array(lines.iter().map(|(h, b)| team_line_json(h, b)).collect()),
    );
    Ok(Json(Value::Object(body)))
}

#[utoipa::path(get, path = "/api/organizations/{id}/usage/daily", tag = "usage",
    params(("id" = String, Path, description = "organization id"), PeriodParams),
    responses((status = 200, description = "Spend per UTC day", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn organization_daily(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppQuery(params): AppQuery<PeriodParams>,
) -> ApiResult<Json<Value>> {
    let period = params.period()?;
    let days = period.series_days(Utc::now().date_naive())?;
    state.read_after_all(&USAGE_MODELS, read_after).await?;
    require_organization(&state, &id).await?;
    let buckets =
        reports::usage(&state.pool, Scope::Organization(&id), &period, GroupBy::Day).await?;
    Ok(Json(json!({
        "organization_id": id,
        "period": period_json(&period),
        "days": series_json(&days, buckets),
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DailyParams {
    /// Start of the period (RFC 3339 time or YYYY-MM-DD, inclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    from: Option<String>,
    /// End of the period (exclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    to: Option<String>,
    /// Only this organization.
    #[param(pattern = "^[^\\x00]*$")]
    organization_id: Option<String>,
    /// Only this team.
    #[param(pattern = "^[^\\x00]*$")]
    team_id: Option<String>,
}

/// `GET /api/usage/daily`: spend per UTC day and model, of everything, an organization or a team.
#[utoipa::path(get, path = "/api/usage/daily", tag = "usage",
    params(DailyParams),
    responses((status = 200, description = "Spend per UTC day and model", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn daily_by_model(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<DailyParams>,
) -> ApiResult<Json<Value>> {
    let period = Period::parse(params.from.as_deref(), params.to.as_deref())?;
    let days = period.series_days(Utc::now().date_naive())?;
    state.read_after_all(&USAGE_MODELS, read_after).await?;
    let scope = match (params.team_id.as_deref(), params.organization_id.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "give team_id or organization_id, not both",
            ));
        }
        (Some(team), None) => {
            team_budget_row(&state, team).await?;
            Scope::Team(team)
        }
        (None, Some(organization)) => {
            require_organization(&state, organization).await?;
            Scope::Organization(organization)
        }
        (None, None) => Scope::All,
    };
    let buckets = reports::usage(&state.pool, scope, &period, GroupBy::DayModel).await?;
    let mut models: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut per_day: std::collections::HashMap<String, Map<String, Value>> = Default::default();
    let mut totals: std::collections::HashMap<String, UsageBucket> = Default::default();
    for bucket in buckets {
        let Some((day, model)) = bucket.key.split_once('|') else {
            continue;
        };
        models.insert(model.to_owned());
        per_day
            .entry(day.to_owned())
            .or_default()
            .insert(model.to_owned(), decimal_json(bucket.price));
        totals
            .entry(day.to_owned())
            .or_insert_with(|| UsageBucket {
                key: day.to_owned(),
                ..UsageBucket::default()
            })
            .add(&bucket);
    }
    let series = series_json(&days, totals.into_values().collect())
        .into_iter()
        .map(|mut day| {
            let models = day["date"]
                .as_str()
                .and_then(|date| per_day.remove(date))
                .unwrap_or_default();
            day["models"] = Value::Object(models);
            day
        })
        .collect::<Vec<_>>();
    Ok(Json(json!({
        "period": period_json(&period),
        "models": models,
        "days": series,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct AllTeamsParams {
    /// Start of the period (RFC 3339 time or YYYY-MM-DD, inclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    from: Option<String>,
    /// End of the period (exclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    to: Option<String>,
    /// Only this organization.
    #[param(pattern = "^[^\\x00]*$")]
    organization_id: Option<String>,
    /// `spend`, `requests`, `tokens` or `team_alias`.
    #[param(pattern = "^(spend|requests|tokens|team_alias)$")]
    sort: Option<String>,
    /// `asc` or `desc`.
    #[param(pattern = "^(asc|desc)$")]
    order: Option<String>,
    /// Rows per page, 1 to 1000 (50 by default).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Rows to skip.
    offset: Option<usize>,
}

#[utoipa::path(get, path = "/api/usage/teams", tag = "usage",
    params(AllTeamsParams),
    responses((status = 200, description = "Usage of every team, sorted and paged", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn all_teams(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<AllTeamsParams>,
) -> ApiResult<Json<Value>> {
    let period = Period::parse(params.from.as_deref(), params.to.as_deref())?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 1000",
        ));
    }
    let descending = match params.order.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                "order must be asc or desc",
            ));
        }
    };
    let sort = params.sort.as_deref().unwrap_or("spend");
    if !["spend", "requests", "tokens", "team_alias"].contains(&sort) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "sort must be one of spend, requests, tokens, team_alias",
        ));
    }
    state.read_after_all(&USAGE_MODELS, read_after).await?;
    let (total, mut lines) = team_lines(&state, params.organization_id.as_deref(), &period).await?;
    lines.sort_by(|(ha, a), (hb, b)| {
        let primary = match sort {
            "requests" => a.requests.cmp(&b.requests),
            "tokens" => a.total_tokens().cmp(&b.total_tokens()),
            "team_alias" => ha.team_alias.cmp(&hb.team_alias),
            _ => a.price.cmp(&b.price),
        };
        let primary = if descending {
            primary.reverse()
        } else {
            primary
        };
        primary.then(ha.team_id.cmp(&hb.team_id))
    });
    let total_teams = lines.len();
    let offset = params.offset.unwrap_or(0);
    let page: Vec<Value> = lines
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(h, b)| team_line_json(h, b))
        .collect();
    let mut totals = Map::new();
    totals.extend(totals_json(&total));
    Ok(Json(json!({
        "period": period_json(&period),
        "sort": sort,
        "order": if descending { "desc" } else { "asc" },
        "total_teams": total_teams,
        "offset": offset,
        "limit": limit,
        "teams": page,
        "totals": totals,
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// Start of the period (RFC 3339 time or YYYY-MM-DD, inclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    from: Option<String>,
    /// End of the period (exclusive).
    #[param(schema_with = crate::request_schemas::date_or_time)]
    to: Option<String>,
    /// Only this team.
    #[param(pattern = "^[^\\x00]*$")]
    team_id: Option<String>,
    /// Only this organization.
    #[param(pattern = "^[^\\x00]*$")]
    organization_id: Option<String>,
}

const CSV_HEADER: [&str; 17] = [
    "request_id",
    "occurred_at",
    "team_id",
    "organization_id",
    "key_fingerprint",
    "model",
    "provider_model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "total_tokens",
    "provider_cost",
    "price",
    "latency_ms",
    "job_id",
    "source",
];

fn csv_line(
    writer: &mut csv::Writer<Vec<u8>>,
    r: &UsageRecordRow,
    redact: bool,
) -> csv::Result<()> {
    let text = |value: &str| as_text(value).into_owned();
    writer.write_record([
        if redact {
            crate::auth::redacted_request_id(&r.request_id)
        } else {
            text(&r.request_id)
        },
        r.occurred_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        text(&r.team_id),
        text(&r.organization_id),
        text(r.key_fingerprint.as_deref().unwrap_or("")),
        text(&r.model),
        text(r.provider_model.as_deref().unwrap_or("")),
        text(&r.status),
        r.prompt_tokens.to_string(),
        r.completion_tokens.to_string(),
        r.cached_tokens.to_string(),
        (r.prompt_tokens + r.completion_tokens).to_string(),
        r.provider_cost.normalize().to_string(),
        r.price.normalize().to_string(),
        r.latency_ms.map(|l| l.to_string()).unwrap_or_default(),
        text(r.job_id.as_deref().unwrap_or("")),
        text(&r.source),
    ])
}

/// Text a client can set (request and job ids, model names) that a spreadsheet would run as a
/// formula gets a leading `'`, which spreadsheets show as text (OWASP's advice for CSV).
fn as_text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// Streams the records of a period as CSV; memory stays flat however many there are.
#[utoipa::path(get, path = "/api/usage/records.csv", tag = "usage",
    params(ExportParams),
    responses((status = 200, description = "Every usage record of the period, streamed", body = String, content_type = "text/csv"), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn export_csv(
    admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ExportParams>,
) -> ApiResult<Response> {
    let period = Period::parse(params.from.as_deref(), params.to.as_deref())?;
    state
        .read_after(projections::usage::PROJECTOR, read_after)
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let pool = state.pool.clone();
    // A customer's own admin never sees the call ids saas-api sent (see auth::redacted_request_id).
    let redact = admin.organizations().is_some();
    tokio::spawn(async move {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let _ = writer.write_record(CSV_HEADER);
        let mut rows = sqlx::query_as::<_, UsageRecordRow>(reports::EXPORT_SQL)
            .bind(params.team_id)
            .bind(params.organization_id)
            .bind(period.from)
            .bind(period.to)
            .fetch(&pool);
        loop {
            match rows.try_next().await {
                Ok(Some(row)) => {
                    if let Err(error) = csv_line(&mut writer, &row, redact) {
                        tracing::error!(%error, "CSV export could not write a row");
                        break;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    // The status line has gone out; a cut-off body is all a client can be told.
                    tracing::error!(%error, "CSV export failed mid-stream");
                    return;
                }
            }
            if writer.get_ref().len() >= 64 * 1024 && !flush(&mut writer, &tx).await {
                return;
            }
        }
        flush(&mut writer, &tx).await;
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    }));
    let name = format!(
        "attachment; filename=\"usage-{}-{}.csv\"",
        params
            .from
            .as_deref()
            .unwrap_or("start")
            .replace(['"', '/', '\\'], ""),
        params
            .to
            .as_deref()
            .unwrap_or("now")
            .replace(['"', '/', '\\'], "")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}

/// Sends what the writer holds; false when the client went away.
async fn flush(writer: &mut csv::Writer<Vec<u8>>, tx: &tokio::sync::mpsc::Sender<Bytes>) -> bool {
    let full = std::mem::replace(writer, csv::Writer::from_writer(Vec::new()));
    let Ok(chunk) = full.into_inner() else {
        return false;
    };
    chunk.is_empty() || tx.send(Bytes::from(chunk)).await.is_ok()
}

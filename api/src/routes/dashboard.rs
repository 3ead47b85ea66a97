//! `GET /api/dashboard`: what an operator looks at first: totals, spend today and this month,
//! teams near their budget, and LiteLLM sync problems.

use axum::Json;
use axum::extract::State;
use chrono::{Datelike, Utc};
use domain::usage::Period;
use projections::reports::{self, GroupBy, Scope};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::auth::Admin;
use crate::consistency::ReadAfter;
use crate::error::ApiResult;
use crate::extract::decimal_json;
use crate::openapi::ApiErrors;
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

/// Teams at or above this share of their credits are listed as near their budget.
const NEAR_BUDGET_PERCENT: i64 = 80;

#[utoipa::path(get, path = "/api/dashboard", tag = "operations",
    responses((status = 200, description = "Totals, spend today and this month, teams near their budget, sync problems", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn dashboard(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
) -> ApiResult<Json<Value>> {
    state
        .read_after_all(
            &[
                projections::organizations::PROJECTOR,
                projections::teams::PROJECTOR,
                projections::budgets::PROJECTOR,
                projections::usage::PROJECTOR,
            ],
            read_after,
        )
        .await?;
    let pool = &state.pool;
    let today = Utc::now().date_naive();
    let month_start = today.with_day(1).unwrap_or(today);
    let spend_since = |day: chrono::NaiveDate| async move {
        let period = Period::parse(Some(&day.format("%Y-%m-%d").to_string()), None)?;
        let total = reports::usage(pool, Scope::All, &period, GroupBy::Nothing).await?;
        let bucket = total.into_iter().next().unwrap_or_default();
        Ok::<_, crate::error::ApiError>(json!({
            "spend": decimal_json(bucket.price),
            "provider_cost": decimal_json(bucket.provider_cost),
            "requests": bucket.requests,
            "tokens": bucket.total_tokens(),
        }))
    };
    let by_status = projections::dashboard::teams_by_status(pool).await?;
    let live = by_status.iter().filter(|s| s.status != "deleted");
    let credits: Decimal = live.clone().map(|s| s.credits).sum();
    let spend: Decimal = live.clone().map(|s| s.spend).sum();
    let near =
        projections::dashboard::near_budget(pool, Decimal::from(NEAR_BUDGET_PERCENT), 20).await?;
    Ok(Json(json!({
        "organizations": projections::dashboard::live_organizations(pool).await?,
        "teams": by_status.iter().map(|s| (s.status.clone(), json!(s.teams))).collect::<serde_json::Map<_, _>>(),
        "credits": decimal_json(credits),
        "spend": decimal_json(spend),
        "remaining": decimal_json(credits - spend),
        "today": spend_since(today).await?,
        "this_month": spend_since(month_start).await?,
        "near_budget_percent": NEAR_BUDGET_PERCENT,
        "near_budget": near.iter().map(|t| json!({
            "team_id": t.team_id,
            "team_alias": t.team_alias,
            "organization_id": t.organization_id,
            "budget_mode": t.budget_mode,
            "credits": decimal_json(t.credits),
            "spend": decimal_json(t.spend),
            "percent_used": decimal_json(t.percent_used),
        })).collect::<Vec<_>>(),
        "sync": super::teams::sync_summary(&state, 10).await?,
    })))
}

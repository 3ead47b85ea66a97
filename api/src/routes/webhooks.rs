//! Webhook configuration per organization and the delivery log.

use app::error::ErrorCode;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::{AppJson, AppQuery};
use crate::openapi::ApiErrors;
use crate::state::AppState;
use app::webhooks;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(show, set, remove))
        .routes(routes!(deliveries))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetWebhook {
    /// An absolute `http(s)` URL of a public address.
    #[schema(pattern = "^[hH][tT][tT][pP][sS]?://")]
    url: String,
}

/// The organization exists and is live, as of every command committed before this request (an
/// organization created a moment ago is found).
async fn require_organization(state: &AppState, id: &str) -> ApiResult<()> {
    state
        .caught_up(&projections::organizations::OrganizationsProjector)
        .await?;
    match projections::organizations::get(&state.pool, id).await? {
        Some(org) if org.deleted_at.is_none() => Ok(()),
        _ => Err(ApiError::not_found(
            ErrorCode::OrganizationNotFound,
            "organization not found",
        )),
    }
}

/// Sets (or replaces) the URL; a new signing secret is generated and shown this once.
#[utoipa::path(post, path = "/api/organizations/{id}/webhook", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")),
    request_body = SetWebhook,
    responses((status = 200, description = "Set; the signing secret is shown this once", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn set(
    _admin: Admin,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<SetWebhook>,
) -> ApiResult<Json<Value>> {
    require_organization(&state, &id).await?;
    let url = body.url.trim();
    let parsed = reqwest::Url::parse(url).map_err(|_| {
        ApiError::unprocessable(
            ErrorCode::ValidationFailed,
            "url must be an absolute http(s) URL",
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || url.len() > 2000 || parsed.host().is_none() {
        return Err(ApiError::unprocessable(
            ErrorCode::ValidationFailed,
            "url must be an absolute http(s) URL of at most 2000 characters",
        ));
    }
    if !state.allow_private_webhooks
        && let Some(why) = webhooks::destination::refusal(&parsed).await
    {
        return Err(ApiError::unprocessable(
            ErrorCode::WebhookDestinationRefused,
            format!(
                "webhooks are delivered to public addresses only, and {why}; set WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true for development"
            ),
        ));
    }
    let secret = webhooks::generate_secret();
    webhooks::save(&state.pool, &state.vault, &id, url, &secret).await?;
    Ok(Json(json!({
        "organization_id": id,
        "url": url,
        "secret": secret,
        "signature": "X-Saas-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, \"<t>.<body>\")>",
    })))
}

#[utoipa::path(get, path = "/api/organizations/{id}/webhook", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")),
    responses((status = 200, description = "The organization's webhook URL (not its secret)", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn show(
    _admin: Admin,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<Value>> {
    let row = webhooks::current(&state.pool, &id).await?;
    let (url, updated_at) =
        row.ok_or_else(|| ApiError::not_found(ErrorCode::WebhookNotFound, "no webhook is set"))?;
    Ok(Json(
        json!({"organization_id": id, "url": url, "updated_at": updated_at}),
    ))
}

#[utoipa::path(delete, path = "/api/organizations/{id}/webhook", tag = "webhooks",
    params(("id" = String, Path, description = "organization id")),
    responses((status = 200, description = "Removed", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn remove(
    _admin: Admin,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<Value>> {
    if !webhooks::remove(&state.pool, &id).await? {
        return Err(ApiError::not_found(
            ErrorCode::WebhookNotFound,
            "no webhook is set",
        ));
    }
    Ok(Json(json!({"organization_id": id, "removed": true})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// Only this organization's deliveries.
    #[param(pattern = "^[^\\x00]*$")]
    organization_id: Option<String>,
    /// `pending`, `delivered`, `dead` or `no_webhook`.
    #[param(pattern = "^(pending|delivered|dead|no_webhook)$")]
    status: Option<String>,
    /// 1 to 1000 (100 by default).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, serde::Serialize, sqlx::FromRow)]
struct DeliveryRow {
    delivery_id: String,
    organization_id: String,
    team_id: String,
    event_type: String,
    payload: Value,
    status: String,
    attempts: i32,
    last_status: Option<i32>,
    last_error: Option<String>,
    next_attempt_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
    delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The delivery log, newest first.
#[utoipa::path(get, path = "/api/webhooks/deliveries", tag = "webhooks",
    params(DeliveryParams),
    responses((status = 200, description = "The delivery log, newest first", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn deliveries(
    _admin: Admin,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<DeliveryParams>,
) -> ApiResult<Json<Value>> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 1000",
        ));
    }
    if let Some(status) = &params.status
        && !["pending", "delivered", "dead", "no_webhook"].contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "status must be one of pending, delivered, dead, no_webhook",
        ));
    }
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "select delivery_id, organization_id, team_id, event_type, payload, status, attempts,
                last_status, last_error, next_attempt_at, created_at, delivered_at
           from webhook_deliveries
          where ($1::text is null or organization_id = $1) and ($2::text is null or status = $2)
          order by created_at desc, delivery_id limit $3",
    )
    .bind(params.organization_id)
    .bind(params.status)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(json!({"deliveries": rows})))
}

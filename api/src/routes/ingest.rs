//! Where usage comes in: recorded by an admin or integration, pushed by LiteLLM's `generic_api`
//! callback, or pulled by the spend-log ingestor (whose progress is shown here); and the
//! reconciliation of what we recorded with LiteLLM's own counters.

use app::error::ErrorCode;
use axum::Json;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use domain::usage::{UsageInput, UsageSource, UsageStatus};
use litellm::LitellmError;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Admin;
use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::RequestMeta;
use crate::extract::{AppBytes, AppJson, DecimalText, decimal_json};
use crate::openapi::ApiErrors;
use crate::responses;
use crate::routes::position_header;
use crate::state::AppState;
use app::usage::ledger::{Incoming, Refusal};
use app::usage::{ingest, litellm_rows};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// LiteLLM flushes up to 512 logged requests per push; each is a few kilobytes.
const PUSH_BODY_LIMIT: usize = 16 * 1024 * 1024;
const MAX_RECORDS: usize = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record))
        .routes(routes!(ingestion_status))
        .routes(routes!(push).layer(DefaultBodyLimit::max(PUSH_BODY_LIMIT)))
        .routes(routes!(reconciliation))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RecordBody {
    records: Vec<RecordItem>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RecordItem {
    // No NUL in any text (PostgreSQL cannot store it); what else a record needs is checked per
    // record and answered with 422 `invalid_usage`, naming it.
    #[schema(pattern = "^[^\\x00]*$")]
    request_id: String,
    #[schema(pattern = "^[^\\x00]*$")]
    team_id: String,
    #[schema(pattern = "^[^\\x00]*$")]
    model: String,
    #[schema(pattern = "^[^\\x00]*$")]
    provider_model: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::whole_number::required")]
    prompt_tokens: u64,
    #[serde(default, deserialize_with = "crate::extract::whole_number::required")]
    completion_tokens: u64,
    #[serde(default, deserialize_with = "crate::extract::whole_number::required")]
    cached_tokens: u64,
    provider_cost: DecimalText,
    status: Option<responses::UsageStatus>,
    #[serde(default, deserialize_with = "crate::extract::whole_number::optional")]
    latency_ms: Option<u64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    occurred_at: Option<DateTime<Utc>>,
    #[schema(pattern = "^[^\\x00]*$")]
    job_id: Option<String>,
}

fn refusal_text(index: usize, request_id: &str, why: &str) -> String {
    format!("records[{index}] ({request_id:?}): {why}")
}

/// Records usage reported by an integration. All or nothing: one bad record refuses the batch;
/// request ids already recorded are counted as duplicates and change nothing.
#[utoipa::path(post, path = "/api/usage/records", tag = "usage",
    request_body = RecordBody,
    responses((status = 201, description = "Recorded (request ids seen before count as duplicates)", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn record(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppJson(body): AppJson<RecordBody>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    if body.records.is_empty() || body.records.len() > MAX_RECORDS {
        return Err(ApiError::unprocessable(
            ErrorCode::ValidationFailed,
            format!("records must hold 1 to {MAX_RECORDS} items"),
        ));
    }
    let now = Utc::now();
    let mut problems = Vec::new();
    let mut batch = Vec::with_capacity(body.records.len());
    for (index, item) in body.records.into_iter().enumerate() {
        let raw = item.provider_cost.0.trim_matches('"');
        let Some(cost) = litellm_rows::decimal(&Value::String(raw.to_owned())) else {
            problems.push(refusal_text(
                index,
                &item.request_id,
                "provider_cost must be a decimal number",
            ));
            continue;
        };
        batch.push(Incoming {
            input: UsageInput {
                request_id: item.request_id,
                model: item.model,
                provider_model: item.provider_model,
                prompt_tokens: item.prompt_tokens,
                completion_tokens: item.completion_tokens,
                cached_tokens: item.cached_tokens,
                provider_cost: cost,
                status: item.status.map_or(UsageStatus::Success, UsageStatus::from),
                latency_ms: item.latency_ms,
                occurred_at: item.occurred_at.unwrap_or(now),
                job_id: item.job_id,
                source: UsageSource::Api,
            },
            key_hash: None,
            call_id: None,
            team_id: Some(item.team_id),
        });
    }
    let mut prepared = state.ledger.prepare(batch.clone(), now).await?;
    if prepared.not_ours() > 0 {
        // The team may have been created a moment ago; look again once the teams read model
        // holds everything committed so far.
        projections::progress::wait_caught_up(
            &state.pool,
            &state.progress,
            &projections::teams::TeamsProjector,
            state.read_wait_timeout,
        )
        .await?;
        prepared = state.ledger.prepare(batch, now).await?;
    }
    for (index, request_id, refusal) in &prepared.refused {
        let why = match refusal {
            Refusal::NotOurs => "team not found".to_owned(),
            Refusal::Invalid(error) => error.to_string(),
        };
        problems.push(refusal_text(*index, request_id, &why));
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        return Err(ApiError::unprocessable(
            ErrorCode::InvalidUsage,
            format!(
                "{} of the records were refused and nothing was recorded: {}",
                problems.len(),
                shown.join("; ")
            ),
        ));
    }
    let appended = state
        .ledger
        .append(&prepared.records, &meta.for_actor(admin.actor()))
        .await
        .map_err(ApiError::internal)?;
    let headers = appended
        .last_position
        .map(position_header)
        .unwrap_or_default();
    Ok((
        headers,
        Json(json!({
            "recorded": appended.recorded,
            "duplicates": appended.duplicates + prepared.repeated,
            "position": appended.last_position,
        })),
    ))
}

/// Proof that the request carries `SPEND_PUSH_TOKEN`. An extractor of the request's head, so
/// the token is checked before any of the (up to 16 MiB) body is read.
struct Pusher;

impl axum::extract::FromRequestParts<AppState> for Pusher {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let Some(token) = &state.spend_push_token else {
            return Err(ApiError::not_found(
                ErrorCode::PushDisabled,
                "spend push is off; set SPEND_PUSH_TOKEN to turn it on",
            ));
        };
        if !token.is_bearer_of(&parts.headers) {
            return Err(ApiError::unauthorized("invalid push token"));
        }
        Ok(Pusher)
    }
}

/// LiteLLM's `generic_api` callback: a JSON array of logged requests (or one, or NDJSON).
#[utoipa::path(post, path = "/api/litellm/spend-push", tag = "usage",
    request_body(content = Value, description = "A JSON array or object of logged requests, or NDJSON", content_type = "application/json"),
    responses((status = 200, description = "Counts of what was recorded", body = Object), ApiErrors),
    security(("push_token" = [])))]
async fn push(
    State(state): State<AppState>,
    _pusher: Pusher,
    AppBytes(body): AppBytes,
) -> ApiResult<Json<Value>> {
    let items = parse_push(&body)?;
    let mut batch = Vec::with_capacity(items.len());
    let mut unreadable = 0;
    for item in &items {
        match litellm_rows::from_push(item, &state.call_ids) {
            Ok(incoming) => batch.push(incoming),
            Err(error) => {
                unreadable += 1;
                tracing::warn!(reason = error.0, "unreadable pushed item skipped");
            }
        }
    }
    let prepared = state.ledger.prepare(batch, Utc::now()).await?;
    let metadata = domain::CommandMetadata::new("system:spend-push", Utc::now());
    let appended = state
        .ledger
        .append(&prepared.records, &metadata)
        .await
        .map_err(ApiError::internal)?;
    let stats = ingest::PassStats {
        rows_seen: items.len() as u64,
        recorded: appended.recorded as u64,
        duplicates: (appended.duplicates + prepared.repeated) as u64,
        not_ours: prepared.not_ours() as u64,
        invalid: (prepared.invalid() + unreadable) as u64,
        pages: 1,
    };
    ingest::record_push(&state.pool, &stats).await?;
    Ok(Json(json!({
        "received": items.len(),
        "recorded": appended.recorded,
        "duplicates": appended.duplicates + prepared.repeated,
        "not_ours": prepared.not_ours(),
        "invalid": prepared.invalid() + unreadable,
    })))
}

fn parse_push(body: &[u8]) -> ApiResult<Vec<Value>> {
    let bad = || {
        ApiError::bad_request(
            ErrorCode::InvalidJson,
            "expected a JSON array, object or NDJSON",
        )
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items),
        Ok(item @ Value::Object(_)) => Ok(vec![item]),
        Ok(_) => Err(bad()),
        Err(_) => {
            let text = std::str::from_utf8(body).map_err(|_| bad())?;
            text.lines()
                .filter(|line| !line.trim().is_empty())
                .map(|line| serde_json::from_str(line).map_err(|_| bad()))
                .collect()
        }
    }
}

#[utoipa::path(get, path = "/api/usage/ingestion", tag = "usage",
    responses((status = 200, description = "LiteLLM spend ingestion's cursors and counts", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn ingestion_status(_admin: Admin, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let cursors = ingest::status(&state.pool).await?;
    Ok(Json(json!({
        "polling": state.litellm.is_some(),
        "push": state.spend_push_token.is_some(),
        "cursors": cursors,
    })))
}

impl From<LitellmError> for ApiError {
    fn from(error: LitellmError) -> Self {
        if error.is_transient() {
            ApiError::unavailable(ErrorCode::LitellmUnavailable, format!("{error}"), 5)
        } else {
            ApiError::new(
                axum::http::StatusCode::BAD_GATEWAY,
                ErrorCode::LitellmError,
                format!("{error}"),
            )
        }
    }
}

fn litellm_spend(spend: Option<&serde_json::Number>) -> Decimal {
    spend
        .and_then(|n| litellm_rows::decimal(&Value::Number(n.clone())))
        .unwrap_or_default()
}

/// LiteLLM's float counters pick up rounding noise; below a micro-dollar is agreement.
const TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 6);

fn drift_json(ours: Decimal, theirs: Option<Decimal>) -> Value {
    match theirs {
        None => {
            json!({"litellm": null, "recorded": decimal_json(ours), "drift": null, "status": "missing_in_litellm"})
        }
        Some(theirs) => {
            let drift = theirs - ours;
            let status = if drift.abs() <= TOLERANCE {
                "in_agreement"
            } else if drift > Decimal::ZERO {
                "litellm_higher"
            } else {
                "litellm_lower"
            };
            json!({"litellm": decimal_json(theirs), "recorded": decimal_json(ours),
                   "drift": decimal_json(drift), "status": status})
        }
    }
}

/// Our recorded provider cost against LiteLLM's spend counters, for the team and its key.
#[utoipa::path(get, path = "/api/teams/{id}/reconciliation", tag = "usage",
    params(("id" = String, Path, description = "team id")),
    responses((status = 200, description = "Our recorded cost against LiteLLM's spend counters", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn reconciliation(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<Value>> {
    state
        .read_after_all(
            &[projections::usage::PROJECTOR, projections::teams::PROJECTOR],
            read_after,
        )
        .await?;
    let team = projections::teams::get(&state.pool, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::TeamNotFound, "team not found"))?;
    let Some(client) = &state.litellm else {
        return Err(ApiError::conflict(
            ErrorCode::LitellmNotConfigured,
            "LITELLM_MASTER_KEY is not set, so there is no LiteLLM to compare with",
        ));
    };
    let team_recorded = projections::reports::recorded_for_team(&state.pool, &id).await?;
    let key_recorded =
        projections::reports::recorded_for_key(&state.pool, &id, &team.key_fingerprint).await?;
    let key_hash = app::keys::hash_hex(&state.pool, &team.key_fingerprint).await?;
    let litellm_team = client.team_info(&id).await?;
    let litellm_key = match &key_hash {
        Some(hash) => client.key_info(hash).await?,
        None => None,
    };
    let team_drift = drift_json(
        team_recorded.provider_cost,
        litellm_team.map(|t| litellm_spend(t.spend.as_ref())),
    );
    let key_drift = drift_json(
        key_recorded.provider_cost,
        litellm_key.map(|k| litellm_spend(k.spend.as_ref())),
    );
    let in_agreement =
        team_drift["status"] == "in_agreement" && key_drift["status"] == "in_agreement";
    Ok(Json(json!({
        "team_id": id,
        "key_fingerprint": team.key_fingerprint,
        "checked_at": Utc::now(),
        "in_agreement": in_agreement,
        "tolerance": decimal_json(TOLERANCE),
        "team": team_drift,
        "key": key_drift,
        "recorded_requests": team_recorded.requests,
        "note": "amounts are provider cost; LiteLLM writes spend about 10-15 s after a request and we ingest it after that, so a fresh drift can close on its own",
    })))
}

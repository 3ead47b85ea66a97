//! The team-facing surface: an OpenAI-compatible base URL (`/v1`) and the job API, both
//! authenticated with the team's virtual key.

use app::error::ErrorCode;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::job::{Job, JobCommand, JobError, JobId, JobStatus};
use domain::team::TeamId;
use domain::usage::Endpoint;
use projections::jobs::{self as read_model};
use serde_json::{Value, json};

use crate::auth::Admin;
use app::commands::OnConflict;

use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::RequestMeta;
use crate::extract::{AppBytes, AppJson};
use crate::gateway;
use crate::openapi::ApiErrors;
use crate::responses;
use crate::routes::{ListParams, page, position_header};
use crate::state::AppState;
use crate::team_auth::Team;
use app::team_keys::TeamCaller;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

/// Prompts can be long; LLM request bodies get more room than admin commands.
const LLM_BODY_LIMIT: usize = 8 * 1024 * 1024;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat_completions).layer(DefaultBodyLimit::max(LLM_BODY_LIMIT)))
        .routes(routes!(completions).layer(DefaultBodyLimit::max(LLM_BODY_LIMIT)))
        .routes(routes!(embeddings).layer(DefaultBodyLimit::max(LLM_BODY_LIMIT)))
        .routes(routes!(messages).layer(DefaultBodyLimit::max(LLM_BODY_LIMIT)))
        .routes(routes!(models))
        .routes(routes!(create_job))
        .routes(routes!(show_job))
        .routes(routes!(llm_call).layer(DefaultBodyLimit::max(LLM_BODY_LIMIT)))
        .routes(routes!(complete_job))
        .routes(routes!(fail_job))
        .routes(routes!(team_jobs))
}

#[utoipa::path(post, path = "/v1/chat/completions", tag = "gateway",
    request_body(content = Object, description = "An OpenAI chat completion request", content_type = "application/json"),
    responses((status = 200, description = "The upstream answer: JSON, or with `stream: true` server-sent events passed through as they arrive", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn chat_completions(
    Team(caller): Team,
    State(state): State<AppState>,
    AppBytes(body): AppBytes,
) -> ApiResult<Response> {
    gateway::forward(&state, caller, Endpoint::ChatCompletions, body, None).await
}

#[utoipa::path(post, path = "/v1/completions", tag = "gateway",
    request_body(content = Object, description = "An OpenAI (legacy) completion request: `prompt` is a string, strings, token ids or arrays of them; `max_tokens` defaults to 16", content_type = "application/json"),
    responses((status = 200, description = "The upstream answer: JSON, or with `stream: true` server-sent events passed through as they arrive", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn completions(
    Team(caller): Team,
    State(state): State<AppState>,
    AppBytes(body): AppBytes,
) -> ApiResult<Response> {
    gateway::forward(&state, caller, Endpoint::Completions, body, None).await
}

#[utoipa::path(post, path = "/v1/embeddings", tag = "gateway",
    request_body(content = Object, description = "An OpenAI embeddings request: `input` is a string, strings, token ids or arrays of them", content_type = "application/json"),
    responses((status = 200, description = "The upstream answer", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn embeddings(
    Team(caller): Team,
    State(state): State<AppState>,
    AppBytes(body): AppBytes,
) -> ApiResult<Response> {
    gateway::forward(&state, caller, Endpoint::Embeddings, body, None).await
}

/// Anthropic's messages API (LiteLLM translates it for models of other providers); the team's
/// key as `x-api-key`, as Anthropic's SDK sends it, or as a bearer token.
#[utoipa::path(post, path = "/v1/messages", tag = "gateway",
    request_body(content = Object, description = "An Anthropic messages request (`max_tokens` required)", content_type = "application/json"),
    responses((status = 200, description = "The upstream answer: JSON, or with `stream: true` Anthropic's server-sent events passed through as they arrive", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn messages(
    Team(caller): Team,
    State(state): State<AppState>,
    AppBytes(body): AppBytes,
) -> ApiResult<Response> {
    gateway::forward(&state, caller, Endpoint::Messages, body, None).await
}

/// The team's models, in OpenAI's list shape (resolved with the key, like the chat path's check).
#[utoipa::path(get, path = "/v1/models", tag = "gateway",
    responses((status = 200, description = "The team's models, in OpenAI's list shape", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn models(Team(caller): Team) -> Json<Value> {
    let data: Vec<Value> = caller
        .allowed_models
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "saas-litellm"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateJob {
    #[schema(schema_with = crate::request_schemas::display_name::<100>)]
    job_type: String,
    #[serde(default)]
    metadata: Option<Value>,
    #[schema(schema_with = crate::request_schemas::identifier_or_null::<64>)]
    job_id: Option<String>,
}

fn team_id(caller: &TeamCaller) -> ApiResult<TeamId> {
    TeamId::parse(&caller.team_id).map_err(ApiError::internal)
}

fn job_id(raw: &str) -> ApiResult<JobId> {
    JobId::parse(raw).map_err(|_| JobError::NotFound.into())
}

#[utoipa::path(post, path = "/api/jobs/create", tag = "gateway",
    request_body = CreateJob,
    responses((status = 201, description = "Created", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn create_job(
    Team(caller): Team,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateJob>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let job_type = domain::text::display_name("job_type", &body.job_type, 100)?;
    let metadata = body.metadata.unwrap_or_else(|| json!({}));
    if !metadata.is_object() || metadata.to_string().len() > 16 * 1024 {
        return Err(ApiError::unprocessable(
            ErrorCode::ValidationFailed,
            "metadata must be a JSON object of at most 16 KiB",
        ));
    }
    domain::text::storable_json("metadata", &metadata)?;
    let job_id = match &body.job_id {
        Some(raw) => JobId::parse(raw)?,
        None => JobId::generate(),
    };
    let command = JobCommand::Create {
        job_id: job_id.clone(),
        team_id: team_id(&caller)?,
        job_type: job_type.clone(),
        metadata,
    };
    let position = state
        .commands
        .execute::<Job>(
            job_id.as_str(),
            command,
            &meta.for_actor(&format!("team:{}", caller.team_id)),
            OnConflict::Fail,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        position_header(position),
        Json(
            json!({"job_id": job_id.as_str(), "job_type": job_type, "status": "running",
                    "team_id": caller.team_id, "position": position}),
        ),
    ))
}

/// The job's current state, folded from its own events (not a read model): a call must never
/// slip in after the job ended.
async fn job_state(state: &AppState, id: &JobId) -> ApiResult<Job> {
    let mut conn = state.pool.acquire().await?;
    Ok(store::event_log::fold::<Job>(&mut conn, id.as_str()).await?)
}

#[utoipa::path(post, path = "/api/jobs/{id}/llm-call", tag = "gateway",
    params(("id" = String, Path, description = "job id")),
    request_body(content = Object, description = "An OpenAI chat completion request", content_type = "application/json"),
    responses((status = 200, description = "The upstream answer: JSON, or with `stream: true` server-sent events passed through as they arrive", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn llm_call(
    Team(caller): Team,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppBytes(body): AppBytes,
) -> ApiResult<Response> {
    let id = job_id(&id)?;
    let job = job_state(&state, &id).await?;
    if job.team_id().map(TeamId::as_str) != Some(caller.team_id.as_str()) {
        return Err(JobError::NotFound.into());
    }
    if job.status() != JobStatus::Running {
        return Err(JobError::AlreadyEnded(job.status().as_str()).into());
    }
    gateway::forward(
        &state,
        caller,
        Endpoint::ChatCompletions,
        body,
        Some(id.as_str().to_owned()),
    )
    .await
}

/// An optional JSON body: empty is `{}`.
fn optional_body(body: &Bytes) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice(body) {
        Ok(object @ Value::Object(_)) => Ok(object),
        Ok(_) => Err(ApiError::unprocessable(
            ErrorCode::InvalidBody,
            "the body must be a JSON object or empty",
        )),
        Err(e) => Err(ApiError::bad_request(
            ErrorCode::InvalidJson,
            format!("the body is not valid JSON: {e}"),
        )),
    }
}

async fn end_job(
    state: &AppState,
    caller: &TeamCaller,
    meta: &RequestMeta,
    id: &str,
    command: JobCommand,
    status: &str,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let id = job_id(id)?;
    let position = state
        .commands
        .execute::<Job>(
            id.as_str(),
            command,
            &meta.for_actor(&format!("team:{}", caller.team_id)),
            OnConflict::Retry,
        )
        .await?;
    Ok((
        position_header(position),
        Json(json!({"job_id": id.as_str(), "status": status, "position": position})),
    ))
}

#[utoipa::path(post, path = "/api/jobs/{id}/complete", tag = "gateway",
    params(("id" = String, Path, description = "job id")),
    request_body(content = Option<Object>, description = "Optional: `{\"result\": ...}` or `{\"error\": ...}`", content_type = "application/json"),
    responses((status = 200, description = "Completed", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn complete_job(
    Team(caller): Team,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppBytes(body): AppBytes,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let body = optional_body(&body)?;
    domain::text::storable_json("result", &body)?;
    let command = JobCommand::Complete {
        team_id: team_id(&caller)?,
        result: body.get("result").cloned(),
    };
    end_job(&state, &caller, &meta, &id, command, "completed").await
}

#[utoipa::path(post, path = "/api/jobs/{id}/fail", tag = "gateway",
    params(("id" = String, Path, description = "job id")),
    request_body(content = Option<Object>, description = "Optional: `{\"result\": ...}` or `{\"error\": ...}`", content_type = "application/json"),
    responses((status = 200, description = "Failed", body = Object), ApiErrors),
    security(("team_key" = [])))]
async fn fail_job(
    Team(caller): Team,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppBytes(body): AppBytes,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let body = optional_body(&body)?;
    domain::text::storable_json("error", &body)?;
    let error = body
        .get("error")
        .map(|e| {
            e.as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| e.to_string())
        })
        .map(|e| e.chars().take(2000).collect());
    let command = JobCommand::Fail {
        team_id: team_id(&caller)?,
        error,
    };
    end_job(&state, &caller, &meta, &id, command, "failed").await
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "gateway",
    params(("id" = String, Path, description = "job id")),
    responses((status = 200, description = "The job: calls, tokens, cost, duration", body = responses::Job), ApiErrors),
    security(("team_key" = [])))]
async fn show_job(
    Team(caller): Team,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<responses::Job>> {
    state.read_after(read_model::PROJECTOR, read_after).await?;
    let row = read_model::get(&state.pool, &id)
        .await?
        .filter(|row| row.team_id == caller.team_id)
        .ok_or_else(|| ApiError::from(JobError::NotFound))?;
    Ok(Json(responses::Job::from(&row)))
}

#[utoipa::path(get, path = "/api/teams/{id}/jobs", tag = "gateway",
    params(("id" = String, Path, description = "team id"), ListParams),
    responses((status = 200, description = "A page of the team's jobs", body = responses::JobPage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn team_jobs(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    crate::extract::AppQuery(params): crate::extract::AppQuery<ListParams>,
) -> ApiResult<Json<responses::JobPage>> {
    let (limit, after) = params.validate()?;
    state.read_after(read_model::PROJECTOR, read_after).await?;
    if projections::teams::get(&state.pool, &id).await?.is_none() {
        return Err(ApiError::not_found(
            ErrorCode::TeamNotFound,
            "team not found",
        ));
    }
    let rows = read_model::of_team(&state.pool, &id, after, limit + 1).await?;
    let (rows, next) = page(rows, limit, |r| r.created_position);
    Ok(Json(responses::JobPage {
        jobs: rows.iter().map(responses::Job::from).collect(),
        next_cursor: next,
    }))
}

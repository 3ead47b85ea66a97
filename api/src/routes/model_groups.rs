//! Model groups: named sets of LiteLLM model names.

use app::error::ErrorCode;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::model_group::{MAX_MODELS, ModelGroup, ModelGroupCommand, ModelGroupError};
use domain::model_name::{GroupName, parse_models};
use projections::model_groups as read_model;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ListParams, position_header};
use crate::auth::Admin;
use app::commands::OnConflict;

use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::RequestMeta;
use crate::extract::{AppJson, AppQuery};
use crate::openapi::ApiErrors;
use crate::responses::{
    self, ModelGroupCreated, ModelGroupDeleted, ModelGroupModelsSet, ModelGroupPage,
};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(set_models))
        .routes(routes!(delete))
        .routes(routes!(catalog))
}

/// `GET /api/litellm/models`: the model names LiteLLM serves, to pick a group's models from.
#[utoipa::path(get, path = "/api/litellm/models", tag = "model groups",
    responses((status = 200, description = "The model names LiteLLM serves (409 without LiteLLM)", body = Object), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn catalog(_admin: Admin, State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let Some(client) = &state.litellm else {
        return Err(ApiError::conflict(
            ErrorCode::LitellmNotConfigured,
            "LITELLM_MASTER_KEY is not set, so there is no LiteLLM catalog to read",
        ));
    };
    let mut models = client.model_names().await?;
    models.sort();
    models.dedup();
    Ok(Json(json!({ "models": models })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    #[schema(schema_with = crate::request_schemas::identifier::<64>)]
    group_name: String,
    #[schema(schema_with = crate::request_schemas::model_names)]
    models: Vec<String>,
    #[schema(schema_with = crate::request_schemas::display_name_or_null::<1000>)]
    description: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetModels {
    #[schema(schema_with = crate::request_schemas::model_names)]
    models: Vec<String>,
}

fn group_name(raw: &str) -> Result<GroupName, ApiError> {
    GroupName::parse(raw).map_err(|_| ModelGroupError::NotFound.into())
}

async fn run(
    state: &AppState,
    admin: &Admin,
    meta: &RequestMeta,
    name: &GroupName,
    command: ModelGroupCommand,
) -> ApiResult<i64> {
    Ok(state
        .commands
        .execute::<ModelGroup>(
            name.as_str(),
            command,
            &meta.for_actor(admin.actor()),
            OnConflict::Fail,
        )
        .await?)
}

#[utoipa::path(post, path = "/api/model-groups/create", tag = "model groups",
    request_body = CreateGroup,
    responses((status = 201, description = "Created", body = ModelGroupCreated), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn create(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateGroup>,
) -> ApiResult<(StatusCode, HeaderMap, Json<ModelGroupCreated>)> {
    let name = GroupName::parse(&body.group_name)?;
    let models = parse_models(&body.models, MAX_MODELS)?;
    let description = body
        .description
        .as_deref()
        .map(|d| domain::text::display_name("description", d, 1000))
        .transpose()?;
    let command = ModelGroupCommand::Create {
        group_name: name.clone(),
        models: models.clone(),
        description: description.clone(),
    };
    let position = run(&state, &admin, &meta, &name, command).await?;
    Ok((
        StatusCode::CREATED,
        position_header(position),
        Json(ModelGroupCreated {
            group_name: name.as_str().to_owned(),
            models: models.iter().map(|m| m.as_str().to_owned()).collect(),
            description,
            position,
        }),
    ))
}

#[utoipa::path(post, path = "/api/model-groups/{name}/models", tag = "model groups",
    params(("name" = String, Path, description = "model group name")),
    request_body = SetModels,
    responses((status = 200, description = "The group's new models", body = ModelGroupModelsSet), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn set_models(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
    AppJson(body): AppJson<SetModels>,
) -> ApiResult<(HeaderMap, Json<ModelGroupModelsSet>)> {
    let name = group_name(&name)?;
    let models = parse_models(&body.models, MAX_MODELS)?;
    let position = run(
        &state,
        &admin,
        &meta,
        &name,
        ModelGroupCommand::SetModels {
            models: models.clone(),
        },
    )
    .await?;
    Ok((
        position_header(position),
        Json(ModelGroupModelsSet {
            group_name: name.as_str().to_owned(),
            models: models.iter().map(|m| m.as_str().to_owned()).collect(),
            position,
        }),
    ))
}

#[utoipa::path(post, path = "/api/model-groups/{name}/delete", tag = "model groups",
    params(("name" = String, Path, description = "model group name")),
    responses((status = 200, description = "Deleted (only when no team uses it)", body = ModelGroupDeleted), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn delete(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> ApiResult<(HeaderMap, Json<ModelGroupDeleted>)> {
    let name = group_name(&name)?;
    let position = run(&state, &admin, &meta, &name, ModelGroupCommand::Delete).await?;
    Ok((
        position_header(position),
        Json(ModelGroupDeleted {
            group_name: name.as_str().to_owned(),
            deleted: true,
            position,
        }),
    ))
}

#[utoipa::path(get, path = "/api/model-groups/{name}", tag = "model groups",
    params(("name" = String, Path, description = "model group name")),
    responses((status = 200, description = "The group", body = responses::ModelGroup), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn show(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(name): AppPath<String>,
) -> ApiResult<Json<responses::ModelGroup>> {
    state.read_after(read_model::PROJECTOR, read_after).await?;
    read_model::get(&state.pool, &name)
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| ModelGroupError::NotFound.into())
}

#[utoipa::path(get, path = "/api/model-groups", tag = "model groups",
    params(ListParams),
    responses((status = 200, description = "A page of groups", body = ModelGroupPage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn list(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ListParams>,
) -> ApiResult<Json<ModelGroupPage>> {
    let (limit, after) = params.validate()?;
    state.read_after(read_model::PROJECTOR, read_after).await?;
    let rows = read_model::list(&state.pool, after, limit + 1).await?;
    let (rows, next_cursor) = super::page(rows, limit, |row| row.created_position);
    Ok(Json(ModelGroupPage {
        model_groups: rows.into_iter().map(responses::ModelGroup::from).collect(),
        next_cursor,
    }))
}

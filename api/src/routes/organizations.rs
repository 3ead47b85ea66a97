//! Organizations: `POST /api/organizations/create`, rename, and the read model queries.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use domain::organization::{
    LitellmOrganizationId, Organization, OrganizationCommand, OrganizationId, OrganizationName,
};
use projections::organizations as read_model;
use serde::Deserialize;

use super::{ListParams, page, position_header};
use crate::auth::Admin;
use app::commands::OnConflict;

use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::AppPath;
use crate::extract::RequestMeta;
use crate::extract::{AppJson, AppQuery};
use crate::openapi::ApiErrors;
use crate::responses::{
    self, OrganizationCreated, OrganizationDeleted, OrganizationPage, OrganizationRenamed,
};
use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(rename))
        .routes(routes!(delete))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOrganization {
    #[schema(schema_with = crate::request_schemas::display_name::<200>)]
    name: String,
    #[schema(schema_with = crate::request_schemas::identifier_or_null::<64>)]
    organization_id: Option<String>,
    #[schema(schema_with = crate::request_schemas::identifier_or_null::<128>)]
    litellm_organization_id: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RenameOrganization {
    #[schema(schema_with = crate::request_schemas::display_name::<200>)]
    name: String,
}

#[utoipa::path(post, path = "/api/organizations/create", tag = "organizations",
    request_body = CreateOrganization,
    responses((status = 201, description = "Created", body = OrganizationCreated), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn create(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateOrganization>,
) -> ApiResult<(StatusCode, HeaderMap, Json<OrganizationCreated>)> {
    let organization_id = match body.organization_id.as_deref() {
        Some(raw) => OrganizationId::parse(raw)?,
        None => OrganizationId::generate(),
    };
    let name = OrganizationName::parse(&body.name)?;
    let litellm_organization_id = body
        .litellm_organization_id
        .as_deref()
        .map(LitellmOrganizationId::parse)
        .transpose()?;
    let command = OrganizationCommand::Create {
        organization_id: organization_id.clone(),
        name: name.clone(),
        litellm_organization_id: litellm_organization_id.clone(),
    };
    let position = state
        .commands
        .execute::<Organization>(
            organization_id.as_str(),
            command,
            &meta.for_actor(admin.actor()),
            OnConflict::Fail,
        )
        .await?;
    tracing::info!(
        organization_id = organization_id.as_str(),
        position,
        "organization created"
    );
    Ok((
        StatusCode::CREATED,
        position_header(position),
        Json(OrganizationCreated {
            organization_id: organization_id.as_str().to_owned(),
            name: name.as_str().to_owned(),
            litellm_organization_id: litellm_organization_id.map(|id| id.as_str().to_owned()),
            position,
        }),
    ))
}

#[utoipa::path(post, path = "/api/organizations/{id}/rename", tag = "organizations",
    params(("id" = String, Path, description = "organization id")),
    request_body = RenameOrganization,
    responses((status = 200, description = "Renamed", body = OrganizationRenamed), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn rename(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<RenameOrganization>,
) -> ApiResult<(HeaderMap, Json<OrganizationRenamed>)> {
    let organization_id = OrganizationId::parse(&id)
        .map_err(|_| ApiError::from(domain::organization::OrganizationError::NotFound))?;
    let name = OrganizationName::parse(&body.name)?;
    let position = state
        .commands
        .execute::<Organization>(
            organization_id.as_str(),
            OrganizationCommand::Rename { name: name.clone() },
            &meta.for_actor(admin.actor()),
            OnConflict::Retry,
        )
        .await?;
    Ok((
        position_header(position),
        Json(OrganizationRenamed {
            organization_id: organization_id.as_str().to_owned(),
            name: name.as_str().to_owned(),
            position,
        }),
    ))
}

#[utoipa::path(get, path = "/api/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "organization id")),
    responses((status = 200, description = "The organization", body = responses::Organization), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn show(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<responses::Organization>> {
    state.read_after(read_model::PROJECTOR, read_after).await?;
    read_model::get(&state.pool, &id)
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| domain::organization::OrganizationError::NotFound.into())
}

#[utoipa::path(get, path = "/api/organizations", tag = "organizations",
    params(ListParams),
    responses((status = 200, description = "A page of organizations", body = OrganizationPage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn list(
    admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ListParams>,
) -> ApiResult<Json<OrganizationPage>> {
    let (limit, after) = params.validate()?;
    state.read_after(read_model::PROJECTOR, read_after).await?;
    // An organization-scoped caller sees its own organizations, on one page (they are few).
    if let Some(within) = admin.organizations() {
        let mut organizations = Vec::new();
        for id in within {
            if let Some(row) = read_model::get(&state.pool, id).await? {
                organizations.push(responses::Organization::from(row));
            }
        }
        return Ok(Json(OrganizationPage {
            total: organizations.len() as i64,
            organizations,
            next_cursor: None,
        }));
    }
    // One extra row tells whether another page exists.
    let rows = read_model::list(&state.pool, after, limit + 1).await?;
    let (rows, next_cursor) = page(rows, limit, |row| row.created_position);
    let total = read_model::count(&state.pool).await?;
    Ok(Json(OrganizationPage {
        organizations: rows
            .into_iter()
            .map(responses::Organization::from)
            .collect(),
        next_cursor,
        total,
    }))
}

#[utoipa::path(post, path = "/api/organizations/{id}/delete", tag = "organizations",
    params(("id" = String, Path, description = "organization id")),
    responses((status = 200, description = "Deleted (only without live teams)", body = OrganizationDeleted), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn delete(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<(HeaderMap, Json<OrganizationDeleted>)> {
    let organization_id = OrganizationId::parse(&id)
        .map_err(|_| ApiError::from(domain::organization::OrganizationError::NotFound))?;
    let position = state
        .commands
        .execute::<Organization>(
            organization_id.as_str(),
            OrganizationCommand::Delete,
            &meta.for_actor(admin.actor()),
            OnConflict::Fail,
        )
        .await?;
    Ok((
        position_header(position),
        Json(OrganizationDeleted {
            organization_id: organization_id.as_str().to_owned(),
            deleted: true,
            position,
        }),
    ))
}

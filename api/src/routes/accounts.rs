//! Operators' accounts and their API keys (owners only, as `crate::permissions` declares):
//! create, list, change role, disable, enable; issue, list and revoke keys.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::account::{
    Account, AccountCommand, AccountError, AccountId, ApiKeyId, DisplayName, Email, KeyName, Role,
};
use projections::accounts as read_model;
use serde::Deserialize;

use super::{ListParams, page, position_header};
use crate::auth::Admin;
use crate::consistency::ReadAfter;
use crate::error::{ApiError, ApiResult};
use crate::extract::{AppJson, AppPath, AppQuery, RequestMeta};
use crate::openapi::ApiErrors;
use crate::responses::{self, AccountChanged, AccountPage, ApiKeyIssued, ApiKeyList, RoleName};
use crate::state::AppState;
use app::commands::OnConflict;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(change_role))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(issue_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(set_password))
        .routes(routes!(change_organizations))
        .routes(routes!(me))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SetPassword {
    /// 12 to 256 characters; kept only as an argon2id hash, outside the event log.
    #[schema(min_length = 12, max_length = 256)]
    password: String,
}

#[utoipa::path(post, path = "/api/accounts/{id}/password", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    request_body = SetPassword,
    responses((status = 200, description = "Set: the account can log in to the panel with its email and this password", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn set_password(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<SetPassword>,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    let id = account_id(&id)?;
    let position = app::accounts::set_password(
        &state.commands,
        &state.pool,
        &id,
        body.password.into(),
        &meta.for_actor(admin.actor()),
    )
    .await?;
    Ok(changed(&id, position))
}

/// Who is calling and what their role lets them do (the panel hides what it may not).
#[utoipa::path(get, path = "/api/me", tag = "accounts",
    responses((status = 200, description = "The caller", body = responses::Me), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn me(admin: Admin, State(state): State<AppState>) -> ApiResult<Json<responses::Me>> {
    use domain::account::Permission as P;
    let account = match admin.account_id() {
        Some(id) => read_model::get(&state.pool, id)
            .await?
            .as_ref()
            .map(responses::Account::from),
        None => None,
    };
    let may = |p| admin.may(p);
    Ok(Json(responses::Me {
        actor: admin.actor().to_owned(),
        role: admin.role_name(),
        organizations: admin.organizations().map(<[String]>::to_vec),
        account,
        may: responses::Abilities {
            manage: may(P::Manage),
            billing: may(P::Billing),
            suspend: may(P::Suspend),
            rotate_key: may(P::RotateKey),
            reveal_key: may(P::RevealKey),
            accounts: may(P::Accounts),
        },
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAccount {
    #[schema(
        max_length = 254,
        pattern = "^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$"
    )]
    email: String,
    #[schema(schema_with = crate::request_schemas::display_name::<200>)]
    display_name: String,
    role: RoleName,
    /// The organizations the role holds for (a customer's own admin); every one if absent.
    #[serde(default)]
    #[schema(nullable, min_items = 1)]
    organizations: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeOrganizations {
    /// The organizations the role holds for from now on; `null` for every one.
    #[schema(nullable, min_items = 1)]
    organizations: Option<Vec<String>>,
}

/// Organization ids that exist (and are not deleted), or 422 naming the first that does not.
async fn existing_organizations(
    state: &AppState,
    raw: Option<Vec<String>>,
) -> ApiResult<Option<Vec<domain::organization::OrganizationId>>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Err(ApiError::unprocessable(
            app::error::ErrorCode::ValidationFailed,
            "organizations must name at least one organization, or be null for every one",
        ));
    }
    // Every organization created before this request is known (one made a moment ago too).
    state
        .caught_up(&projections::organizations::OrganizationsProjector)
        .await?;
    let mut ids = Vec::new();
    for id in raw {
        let known = projections::organizations::get(&state.pool, &id)
            .await?
            .filter(|row| row.deleted_at.is_none());
        if known.is_none() {
            return Err(ApiError::unprocessable(
                app::error::ErrorCode::ValidationFailed,
                format!("organization {id:?} does not exist"),
            ));
        }
        let id = domain::organization::OrganizationId::parse(&id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(Some(ids))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeRole {
    role: RoleName,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueKey {
    #[schema(schema_with = crate::request_schemas::display_name::<100>)]
    name: String,
    /// The key's role: no wider than the account's (its own role if absent).
    role: Option<RoleName>,
    /// When the key stops working (RFC 3339, in the future); never if absent.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<DateTime<Utc>>,
}

fn account_id(raw: &str) -> ApiResult<AccountId> {
    AccountId::parse(raw).map_err(|_| AccountError::NotFound.into())
}

/// The answer to a command on account `id` that wrote at `position`.
fn changed(id: &AccountId, position: i64) -> (HeaderMap, Json<AccountChanged>) {
    (
        position_header(position),
        Json(AccountChanged {
            account_id: id.as_str().to_owned(),
            position,
        }),
    )
}

async fn execute(
    state: &AppState,
    admin: &Admin,
    meta: &RequestMeta,
    id: &AccountId,
    command: AccountCommand,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    let position = state
        .commands
        .execute::<Account>(
            id.as_str(),
            command,
            &meta.for_actor(admin.actor()),
            OnConflict::Retry,
        )
        .await?;
    Ok(changed(id, position))
}

#[utoipa::path(post, path = "/api/accounts/create", tag = "accounts",
    request_body = CreateAccount,
    responses((status = 201, description = "Created", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn create(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateAccount>,
) -> ApiResult<(StatusCode, HeaderMap, Json<AccountChanged>)> {
    let id = AccountId::generate();
    let command = AccountCommand::Create {
        account_id: id.clone(),
        email: Email::parse(&body.email)?,
        display_name: DisplayName::parse(&body.display_name)?,
        role: body.role.into(),
        organizations: existing_organizations(&state, body.organizations).await?,
    };
    let (headers, answer) = execute(&state, &admin, &meta, &id, command).await?;
    tracing::info!(account_id = id.as_str(), "account created");
    Ok((StatusCode::CREATED, headers, answer))
}

#[utoipa::path(get, path = "/api/accounts", tag = "accounts",
    params(ListParams),
    responses((status = 200, description = "A page of accounts", body = AccountPage), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn list(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ListParams>,
) -> ApiResult<Json<AccountPage>> {
    let (limit, after) = params.validate()?;
    state.read_after(read_model::PROJECTOR, read_after).await?;
    let rows = read_model::list(&state.pool, after, limit + 1).await?;
    let (rows, next_cursor) = page(rows, limit, |row| row.created_position);
    Ok(Json(AccountPage {
        accounts: rows.iter().map(responses::Account::from).collect(),
        next_cursor,
    }))
}

async fn row(state: &AppState, id: &str) -> ApiResult<read_model::AccountRow> {
    read_model::get(&state.pool, id)
        .await?
        .ok_or_else(|| AccountError::NotFound.into())
}

#[utoipa::path(get, path = "/api/accounts/{id}", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, description = "The account", body = responses::Account), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn show(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<responses::Account>> {
    state.read_after(read_model::PROJECTOR, read_after).await?;
    Ok(Json(responses::Account::from(&row(&state, &id).await?)))
}

#[utoipa::path(post, path = "/api/accounts/{id}/role", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    request_body = ChangeRole,
    responses((status = 200, description = "Changed (its keys keep their own roles, but never do more than the account's)", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn change_role(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<ChangeRole>,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    let command = AccountCommand::ChangeRole {
        role: body.role.into(),
    };
    execute(&state, &admin, &meta, &account_id(&id)?, command).await
}

#[utoipa::path(post, path = "/api/accounts/{id}/organizations", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    request_body = ChangeOrganizations,
    responses((status = 200, description = "Changed: the account's keys and sessions reach only these organizations from the next request on", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn change_organizations(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<ChangeOrganizations>,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    let organizations = existing_organizations(&state, body.organizations).await?;
    let command = AccountCommand::ChangeOrganizations { organizations };
    execute(&state, &admin, &meta, &account_id(&id)?, command).await
}

#[utoipa::path(post, path = "/api/accounts/{id}/disable", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, description = "Disabled: its keys are refused from the next request on", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn disable(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    execute(
        &state,
        &admin,
        &meta,
        &account_id(&id)?,
        AccountCommand::Disable,
    )
    .await
}

#[utoipa::path(post, path = "/api/accounts/{id}/enable", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, description = "Enabled", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn enable(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    execute(
        &state,
        &admin,
        &meta,
        &account_id(&id)?,
        AccountCommand::Enable,
    )
    .await
}

#[utoipa::path(post, path = "/api/accounts/{id}/api-keys", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    request_body = IssueKey,
    responses((status = 201, description = "Issued: `api_key` is shown this once; send it as `X-Admin-Key`", body = ApiKeyIssued), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn issue_key(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<IssueKey>,
) -> ApiResult<(StatusCode, HeaderMap, Json<ApiKeyIssued>)> {
    use secrecy::ExposeSecret;
    let id = account_id(&id)?;
    let name = KeyName::parse(&body.name)?;
    let role = match body.role {
        Some(role) => Role::from(role),
        None => app::accounts::current_role(&state.pool, &id)
            .await?
            .ok_or_else(|| ApiError::from(AccountError::NotFound))?,
    };
    let issued = app::accounts::issue(
        &state.commands,
        &state.pool,
        &id,
        name.clone(),
        role,
        body.expires_at,
        &meta.for_actor(admin.actor()),
    )
    .await?;
    tracing::info!(
        account_id = id.as_str(),
        key_id = issued.key_id.as_str(),
        "API key issued"
    );
    Ok((
        StatusCode::CREATED,
        position_header(issued.position),
        Json(ApiKeyIssued {
            key_id: issued.key_id.as_str().to_owned(),
            account_id: id.as_str().to_owned(),
            api_key: issued.key.expose_secret().to_owned(),
            name: name.as_str().to_owned(),
            role: role.as_str().to_owned(),
            expires_at: body.expires_at,
            position: issued.position,
        }),
    ))
}

#[utoipa::path(get, path = "/api/accounts/{id}/api-keys", tag = "accounts",
    params(("id" = String, Path, description = "account id")),
    responses((status = 200, description = "The account's keys, with their last use", body = ApiKeyList), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn list_keys(
    _admin: Admin,
    read_after: ReadAfter,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> ApiResult<Json<ApiKeyList>> {
    state.read_after(read_model::PROJECTOR, read_after).await?;
    row(&state, &id).await?;
    let keys = read_model::keys_of(&state.pool, &id).await?;
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.clone()).collect();
    let uses: std::collections::HashMap<String, DateTime<Utc>> =
        app::accounts::last_uses(&state.pool, &ids)
            .await?
            .into_iter()
            .collect();
    Ok(Json(ApiKeyList {
        api_keys: keys
            .into_iter()
            .map(|k| responses::ApiKey {
                last_used_at: uses.get(&k.key_id).copied(),
                key_id: k.key_id,
                account_id: k.account_id,
                name: k.name,
                role: k.role,
                expires_at: k.expires_at,
                revoked_at: k.revoked_at,
                created_at: k.created_at,
                created_by: k.created_by,
            })
            .collect(),
    }))
}

#[utoipa::path(post, path = "/api/accounts/{id}/api-keys/{key_id}/revoke", tag = "accounts",
    params(("id" = String, Path, description = "account id"), ("key_id" = String, Path, description = "key id")),
    responses((status = 200, description = "Revoked: refused from the next request on", body = AccountChanged), ApiErrors),
    security(("admin_key" = []), ("admin_session" = [])))]
async fn revoke_key(
    admin: Admin,
    meta: RequestMeta,
    State(state): State<AppState>,
    AppPath((id, key_id)): AppPath<(String, String)>,
) -> ApiResult<(HeaderMap, Json<AccountChanged>)> {
    let key_id = ApiKeyId::parse(&key_id).map_err(|_| ApiError::from(AccountError::KeyNotFound))?;
    let command = AccountCommand::RevokeApiKey { key_id };
    execute(&state, &admin, &meta, &account_id(&id)?, command).await
}

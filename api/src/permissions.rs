//! Which permission each admin route needs: one table for the whole API, checked by the `Admin`
//! extractor before a handler runs (so a refused request changes nothing), and compared with the
//! OpenAPI document by the permission-matrix test so no route goes undeclared.

use app::error::ErrorCode;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use domain::account::Permission;

use crate::error::ApiError;
use crate::state::AppState;

/// Every admin route that changes something, with what it needs. Reads need `Read` (accounts'
/// reads need `Accounts`); a route missing here needs `Accounts`, so a forgotten one is closed
/// to all but owners.
pub const WRITES: &[(&str, &str, Permission)] = &[
    ("POST", "/api/organizations/create", Permission::Manage),
    ("POST", "/api/organizations/{id}/rename", Permission::Manage),
    ("POST", "/api/organizations/{id}/delete", Permission::Manage),
    (
        "POST",
        "/api/organizations/{id}/webhook",
        Permission::Manage,
    ),
    (
        "DELETE",
        "/api/organizations/{id}/webhook",
        Permission::Manage,
    ),
    ("POST", "/api/model-groups/create", Permission::Manage),
    (
        "POST",
        "/api/model-groups/{name}/models",
        Permission::Manage,
    ),
    (
        "POST",
        "/api/model-groups/{name}/delete",
        Permission::Manage,
    ),
    ("POST", "/api/teams/create", Permission::Manage),
    (
        "POST",
        "/api/teams/{id}/model-groups/assign",
        Permission::Manage,
    ),
    (
        "POST",
        "/api/teams/{id}/model-groups/unassign",
        Permission::Manage,
    ),
    ("POST", "/api/teams/{id}/rate-limits", Permission::Manage),
    ("POST", "/api/teams/{id}/delete", Permission::Manage),
    ("DELETE", "/api/teams/{id}", Permission::Manage),
    ("POST", "/api/teams/{id}/credits/add", Permission::Billing),
    ("POST", "/api/teams/{id}/markup", Permission::Billing),
    ("POST", "/api/teams/{id}/budget-mode", Permission::Billing),
    ("POST", "/api/usage/records", Permission::Billing),
    ("POST", "/api/teams/{id}/suspend", Permission::Suspend),
    ("POST", "/api/teams/{id}/resume", Permission::Suspend),
    ("POST", "/api/teams/{id}/rotate-key", Permission::RotateKey),
    ("POST", "/api/teams/{id}/virtual-key", Permission::RevealKey),
    ("POST", "/api/accounts/create", Permission::Accounts),
    ("POST", "/api/accounts/{id}/role", Permission::Accounts),
    ("POST", "/api/accounts/{id}/disable", Permission::Accounts),
    ("POST", "/api/accounts/{id}/enable", Permission::Accounts),
    ("POST", "/api/accounts/{id}/api-keys", Permission::Accounts),
    ("POST", "/api/accounts/{id}/password", Permission::Accounts),
    (
        "POST",
        "/api/accounts/{id}/organizations",
        Permission::Accounts,
    ),
    (
        "POST",
        "/api/accounts/{id}/api-keys/{key_id}/revoke",
        Permission::Accounts,
    ),
];

/// What `method` on the route template `route` needs.
pub fn needed(method: &Method, route: &str) -> Permission {
    if route.starts_with("/api/accounts") {
        return Permission::Accounts;
    }
    if method == Method::GET || method == Method::HEAD {
        return Permission::Read;
    }
    WRITES
        .iter()
        .find(|(m, r, _)| *m == method.as_str() && *r == route)
        .map_or(Permission::Accounts, |(_, _, permission)| *permission)
}

/// Reads an organization-scoped caller may make without naming an organization: their lists
/// are filtered to the caller's organizations by the handlers, or hold nothing of any.
const SCOPED_READS: &[&str] = &[
    "/api/organizations",
    "/api/teams",
    "/api/me",
    "/api/model-groups",
    "/api/model-groups/{name}",
    "/api/litellm/models",
];

/// Reports an organization-scoped caller may read when they name one of its organizations
/// (`organization_id`) or one of its teams (`team_id`).
const SCOPED_REPORTS: &[&str] = &[
    "/api/usage/teams",
    "/api/usage/daily",
    "/api/usage/records.csv",
    "/api/budget-alerts",
    "/api/audit/events",
    "/api/webhooks/deliveries",
];

fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::NotPermitted, message)
}

/// The segment of `path` where `route` has `{id}`.
fn path_id<'a>(route: &str, path: &'a str) -> Option<&'a str> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(template, _)| *template == "{id}")
        .map(|(_, segment)| segment)
}

/// What an organization-scoped caller (`organizations`) may reach: an organization or team
/// outside them is answered 404, as if it did not exist; a report must name one of theirs; a
/// route over every organization (the dashboard, the catalog's changes, sync and ingestion,
/// accounts) is 403. Lists are filtered by their handlers (`Admin::organizations`), and a new
/// team's organization is checked by its handler (it is in the body).
pub async fn within(
    organizations: &[String],
    needed: Permission,
    parts: &Parts,
    route: &str,
    state: &AppState,
) -> Result<(), ApiError> {
    let reaches = |id: &str| organizations.iter().any(|o| o == id);
    let team_organization = async |team_id: &str| -> Result<Option<String>, ApiError> {
        Ok(projections::teams::get(&state.pool, team_id)
            .await?
            .map(|row| row.organization_id))
    };
    let organization_not_found =
        || ApiError::from(domain::organization::OrganizationError::NotFound);
    let team_not_found = || ApiError::from(domain::team::TeamError::NotFound);
    if needed == Permission::Accounts {
        return Err(forbidden(
            "an account scoped to organizations cannot manage accounts",
        ));
    }
    let path = parts.uri.path();
    if route.starts_with("/api/organizations/{id}") {
        let id = path_id(route, path).unwrap_or_default();
        return if reaches(id) {
            Ok(())
        } else {
            Err(organization_not_found())
        };
    }
    if route.starts_with("/api/teams/{id}") {
        let id = path_id(route, path).unwrap_or_default();
        let organization = match team_organization(id).await? {
            Some(organization) => Some(organization),
            // A team created a moment ago may not be in the read model yet: ask again once it
            // holds every committed event, or another organization's new team would pass.
            None => {
                state.caught_up(&projections::teams::TeamsProjector).await?;
                team_organization(id).await?
            }
        };
        return match organization {
            Some(organization) if !reaches(&organization) => Err(team_not_found()),
            // A team that does not exist is the handler's 404.
            _ => Ok(()),
        };
    }
    let reads = parts.method == Method::GET || parts.method == Method::HEAD;
    if route == "/api/teams/create" || (reads && SCOPED_READS.contains(&route)) {
        return Ok(());
    }
    if reads && SCOPED_REPORTS.contains(&route) {
        let query: std::collections::HashMap<String, String> =
            axum::extract::Query::try_from_uri(&parts.uri)
                .map(|q: axum::extract::Query<_>| q.0)
                .unwrap_or_default();
        let named = |name: &str| query.get(name).filter(|v| !v.is_empty());
        // Every one named must be the caller's: a report may read either.
        let (organization, team) = (named("organization_id"), named("team_id"));
        if let Some(organization) = organization
            && !reaches(organization)
        {
            return Err(organization_not_found());
        }
        if let Some(team) = team {
            match team_organization(team).await? {
                Some(organization) if reaches(&organization) => {}
                _ => return Err(team_not_found()),
            }
        }
        if organization.is_some() || team.is_some() {
            return Ok(());
        }
        return Err(forbidden(
            "an account scoped to organizations must name one of them (organization_id) or one of their teams (team_id)",
        ));
    }
    Err(forbidden(
        "an account scoped to organizations cannot use a route that spans every organization",
    ))
}

/// The permission's name in a refusal.
pub fn describe(permission: Permission) -> &'static str {
    match permission {
        Permission::Read => "read",
        Permission::Manage => "manage organizations, model groups and teams",
        Permission::Billing => "change credits, plans and usage",
        Permission::Suspend => "suspend or resume teams",
        Permission::RotateKey => "rotate virtual keys",
        Permission::RevealKey => "reveal virtual keys",
        Permission::Accounts => "manage accounts and their keys",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_need_read_and_unknown_writes_need_accounts() {
        assert_eq!(needed(&Method::GET, "/api/teams"), Permission::Read);
        assert_eq!(needed(&Method::GET, "/api/accounts"), Permission::Accounts);
        assert_eq!(
            needed(&Method::POST, "/api/teams/{id}/credits/add"),
            Permission::Billing
        );
        assert_eq!(
            needed(&Method::POST, "/api/unheard-of"),
            Permission::Accounts
        );
    }
}

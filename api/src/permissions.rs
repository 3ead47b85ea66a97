//! Which permission each admin route needs: one table for the whole API, checked by the `Admin`
//! extractor before a handler runs (so a refused request changes nothing), and compared with the
//! OpenAPI document by the permission-matrix test so no route goes undeclared.

use axum::http::Method;
use domain::account::Permission;

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

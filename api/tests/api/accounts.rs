//! Operators' accounts, roles and API keys, tried as an operator who holds a narrower key would:
//! every admin operation of the OpenAPI document against every role (refused ones write
//! nothing), a revoked key or a disabled account refused on the very next request, keys no
//! wider than their account, and the audit naming the account and key behind each command with
//! no secret in the log.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// What the issue's roles may do, written from its text (not from the server's table).
fn allowed(role: &str, method: &str, template: &str) -> bool {
    if role == "owner" {
        return true;
    }
    if template.starts_with("/api/accounts") {
        return false;
    }
    if method == "get" {
        return true;
    }
    let ends = |suffix: &str| template.ends_with(suffix);
    match role {
        "admin" => true,
        "billing" => {
            ends("/credits/add")
                || ends("/markup")
                || ends("/budget-mode")
                || template == "/api/usage/records"
        }
        "support" => ends("/suspend") || ends("/resume") || ends("/rotate-key"),
        _ => false,
    }
}

/// Every operation of the OpenAPI document that takes the admin key: (method, template, path),
/// the path's `{id}` filled with the account, organization or team a route names.
fn admin_operations(
    account: &str,
    organization: &str,
    team: &str,
) -> Vec<(String, String, String)> {
    let document = serde_json::to_value(api::routes::openapi()).unwrap();
    let mut operations = Vec::new();
    for (template, item) in document["paths"].as_object().unwrap() {
        let id = if template.starts_with("/api/accounts") {
            account
        } else if template.starts_with("/api/organizations") {
            organization
        } else {
            team
        };
        let path = template
            .replace("{id}", id)
            .replace("{name}", "gpt")
            .replace("{key_id}", "key_0000000000000000");
        for (method, operation) in item.as_object().unwrap() {
            let admin_only = operation["security"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|scheme| scheme.get("admin_key").is_some());
            if admin_only {
                operations.push((method.clone(), template.clone(), path.clone()));
            }
        }
    }
    operations
}

async fn create_account(app: &TestApp, email: &str, role: &str) -> String {
    let (status, body) = app
        .post_json(
            "/api/accounts/create",
            json!({"email": email, "display_name": email, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["account_id"].as_str().unwrap().to_owned()
}

async fn issue_key(app: &TestApp, account_id: &str, body: Value) -> (u16, Value) {
    app.post_json(&format!("/api/accounts/{account_id}/api-keys"), body)
        .await
}

async fn key_for(app: &TestApp, email: &str, role: &str) -> (String, String) {
    let (account_id, key, _) = key_and_position(app, email, role).await;
    (account_id, key)
}

async fn key_and_position(app: &TestApp, email: &str, role: &str) -> (String, String, i64) {
    let account_id = create_account(app, email, role).await;
    let (status, body) = issue_key(app, &account_id, json!({"name": "test"})).await;
    assert_eq!(status, 201, "{body}");
    let key = body["api_key"].as_str().unwrap().to_owned();
    (account_id, key, body["position"].as_i64().unwrap())
}

async fn call(app: &TestApp, key: &str, method: &str, path: &str) -> reqwest::Response {
    let method: Method = method.to_uppercase().parse().unwrap();
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .header("x-admin-key", key);
    if method != Method::GET {
        request = request.json(&json!({}));
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_admin_operation_answers_each_role_as_the_role_allows_and_refusals_write_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_m", "model_groups": ["gpt"], "credits": 10}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let target = create_account(&app, "target@example.com", "viewer").await;
    let operations = admin_operations(&target, "org_acme", "team_m");
    let mut checked = 0;
    // Narrowest first, so what a wider role is allowed to change (a delete) comes last.
    for role in ["viewer", "support", "billing", "admin", "owner"] {
        let (_, key) = key_for(&app, &format!("{role}@example.com"), role).await;
        for (method, template, path) in &operations {
            let (method, template) = (method.as_str(), template.as_str());
            checked += 1;
            let what = format!("{role}: {} {template}", method.to_uppercase());
            let before = app.event_count().await;
            let response = call(&app, &key, method, path).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if allowed(role, method, template) {
                assert!(
                    status != 401 && body["error"]["code"] != "not_permitted",
                    "{what} was refused: {status} {body}"
                );
            } else {
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (403, Some("not_permitted")),
                    "{what}: {body}"
                );
                assert_eq!(app.event_count().await, before, "{what} wrote");
            }
        }
    }
    assert!(checked >= 5 * 55, "operations × roles checked: {checked}");
}

#[tokio::test]
async fn a_revoked_key_or_a_disabled_account_is_refused_on_the_next_request() {
    let app = spawn_app().await;
    let (account_id, key, position) = key_and_position(&app, "ana@example.com", "admin").await;
    assert_eq!(call(&app, &key, "get", "/api/teams").await.status(), 200);
    let (_, keys) = app
        .get_json(
            &format!("/api/accounts/{account_id}/api-keys"),
            Some(position),
        )
        .await;
    let key_id = keys["api_keys"][0]["key_id"].as_str().unwrap().to_owned();
    assert!(keys["api_keys"][0]["last_used_at"].is_string(), "{keys}");

    let (status, body) = app
        .post_json(
            &format!("/api/accounts/{account_id}/api-keys/{key_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(&app, &key, "get", "/api/teams").await.status(), 401);

    let (status, second) = issue_key(&app, &account_id, json!({"name": "second"})).await;
    assert_eq!(status, 201, "{second}");
    let second = second["api_key"].as_str().unwrap().to_owned();
    assert_eq!(call(&app, &second, "get", "/api/teams").await.status(), 200);
    let disable = format!("/api/accounts/{account_id}/disable");
    assert_eq!(app.post_json(&disable, json!({})).await.0, 200);
    assert_eq!(call(&app, &second, "get", "/api/teams").await.status(), 401);
    // A disabled account gets no new key either.
    let (status, body) = issue_key(&app, &account_id, json!({"name": "third"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("account_disabled"))
    );
    let enable = format!("/api/accounts/{account_id}/enable");
    assert_eq!(app.post_json(&enable, json!({})).await.0, 200);
    assert_eq!(call(&app, &second, "get", "/api/teams").await.status(), 200);
    // A forged key with a real key id, and a key of the wrong shape, are refused alike.
    let forged = format!("{}x", &second[..second.len() - 1]);
    assert_eq!(call(&app, &forged, "get", "/api/teams").await.status(), 401);
}

#[tokio::test]
async fn a_key_is_no_wider_than_its_account_and_only_owners_manage_accounts() {
    let app = spawn_app().await;
    let support = create_account(&app, "sam@example.com", "support").await;
    for wider in ["billing", "admin", "owner"] {
        let (status, body) = issue_key(&app, &support, json!({"name": "k", "role": wider})).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (422, &json!("key_role_too_wide"))
        );
    }
    let (status, body) = issue_key(
        &app,
        &support,
        json!({"name": "k", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("key_expiry_in_past"))
    );
    let (status, body) = app
        .post_json(
            "/api/accounts/create",
            json!({"email": "SAM@example.com", "display_name": "Sam again", "role": "viewer"}),
        )
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("duplicate_value")),
        "{body}"
    );
    // An admin's key cannot make itself an owner, nor anyone else.
    let (admin_id, admin_key, position) = key_and_position(&app, "ada@example.com", "admin").await;
    let response = app
        .client
        .post(app.url(&format!("/api/accounts/{admin_id}/role")))
        .header("x-admin-key", &admin_key)
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let (_, account) = app
        .get_json(&format!("/api/accounts/{admin_id}"), Some(position))
        .await;
    assert_eq!(account["role"], "admin");
    // Narrowing the account narrows what its keys may do, whatever role a key was given.
    let change = format!("/api/accounts/{admin_id}/role");
    assert_eq!(
        app.post_json(&change, json!({"role": "viewer"})).await.0,
        200
    );
    let response = app
        .client
        .post(app.url("/api/organizations/create"))
        .header("x-admin-key", &admin_key)
        .json(&json!({"name": "Not allowed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn the_audit_names_the_account_and_key_behind_a_command_and_no_key_is_in_the_log() {
    let app = spawn_app().await;
    let (account_id, key) = key_for(&app, "ana@example.com", "admin").await;
    let response = app
        .client
        .post(app.url("/api/organizations/create"))
        .header("x-admin-key", &key)
        .json(&json!({"organization_id": "org_by_ana", "name": "By Ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (_, audit) = app
        .get_json(
            "/api/audit/events?aggregate_type=Organization&aggregate_id=org_by_ana",
            None,
        )
        .await;
    let key_id = key.trim_start_matches("sa_").split('.').next().unwrap();
    assert_eq!(
        audit["events"][0]["actor"],
        format!("account:{account_id}/key:{key_id}"),
        "{audit}"
    );
    let log: Vec<String> = sqlx::query_scalar("select payload::text || metadata::text from events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let secret = key.split('.').nth(1).unwrap();
    assert!(
        log.iter().all(|row| !row.contains(secret)),
        "a key's secret is in the log"
    );
}

/// An account may be scoped to an organization created a moment ago, which the organizations
/// read model does not show yet: it is not refused as unknown.
#[tokio::test]
async fn an_account_can_be_scoped_to_an_organization_just_created() {
    let app =
        spawn_app_with(|config| config.read_wait_timeout = std::time::Duration::from_millis(800))
            .await;
    let blocker = app.stall_projector("organizations").await;
    let (status, body) = app
        .post_json(
            "/api/organizations/create",
            json!({"organization_id": "org_new", "name": "New"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let account = json!({"email": "new-admin@example.com", "display_name": "New's admin",
                         "role": "admin", "organizations": ["org_new"]});
    let (status, body) = app.post_json("/api/accounts/create", account.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "projection_lag", "{body}");

    blocker.rollback().await.unwrap();
    let (status, body) = app.post_json("/api/accounts/create", account).await;
    assert_eq!(status, 201, "{body}");
}

/// The catalog (org_acme among it) and a second organization, org_beta.
async fn catalog_and_a_second_organization(app: &TestApp) {
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/organizations/create",
            json!({"organization_id": "org_beta", "name": "Beta"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

/// An admin account scoped to org_acme: its id, and its API key with the position it was
/// issued at.
async fn acme_admin_key(app: &TestApp) -> (String, String, i64) {
    let (status, body) = app
        .post_json(
            "/api/accounts/create",
            json!({"email": "acme-admin@example.com", "display_name": "Acme's admin", "role": "admin",
                   "organizations": ["org_acme"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let account_id = body["account_id"].as_str().unwrap().to_owned();
    let (status, body) = issue_key(app, &account_id, json!({"name": "acme"})).await;
    assert_eq!(status, 201, "{body}");
    (
        account_id,
        body["api_key"].as_str().unwrap().to_owned(),
        body["position"].as_i64().unwrap(),
    )
}

/// The race an organization-scoped admin could try: act on another organization's team in the
/// moment after it is created, before the teams read model (which says whose a team is) shows
/// it. The command must not go through.
#[tokio::test]
async fn a_scoped_admin_cannot_act_on_another_organizations_team_before_it_is_projected() {
    let app =
        spawn_app_with(|config| config.read_wait_timeout = std::time::Duration::from_millis(800))
            .await;
    catalog_and_a_second_organization(&app).await;
    let (_, key, position) = acme_admin_key(&app).await;
    let add_credits = |wait: bool| {
        let (app, key) = (&app, &key);
        async move {
            let mut request = app
                .client
                .post(app.url("/api/teams/team_victim/credits/add"))
                .header("x-admin-key", key)
                .json(&json!({"amount": 5}));
            if wait {
                request = request.header("x-wait-for-position", position.to_string());
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // The key works (its account is projected) and reaches nothing outside org_acme.
    let (status, body) = add_credits(true).await;
    assert_eq!(status, 404, "{body}");

    // Hold the teams projector's checkpoint row, as a stalled projector would, and create the
    // victim team in the other organization.
    let blocker = app.stall_projector("teams").await;
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_beta", "team_id": "team_victim", "model_groups": ["gpt"], "credits": 10}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = add_credits(false).await;
    assert!(
        status >= 400,
        "a scoped admin acted on another organization's team: {status} {body}"
    );

    blocker.rollback().await.unwrap();
    let (status, body) = add_credits(false).await;
    assert_eq!(status, 404, "{body}");
    let credited: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_id = 'team_victim' and event_type = 'CreditsAdded'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        credited, 0,
        "credits were added to another organization's team"
    );
}

#[tokio::test]
async fn an_organization_scoped_admin_sees_and_acts_on_nothing_outside_its_organizations() {
    let app = spawn_app().await;
    catalog_and_a_second_organization(&app).await;
    for (team, org) in [("team_in", "org_acme"), ("team_out", "org_beta")] {
        let (status, body) = app
            .post_json(
                "/api/teams/create",
                json!({"organization_id": org, "team_id": team, "model_groups": ["gpt"], "credits": 10}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (account_id, key, position) = acme_admin_key(&app).await;
    let get = |path: String| {
        let (app, key) = (&app, &key);
        async move {
            let response = app
                .client
                .get(app.url(&path))
                .header("x-admin-key", key)
                .header("x-wait-for-position", position.to_string())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let post = |path: String, body: Value| {
        let (app, key) = (&app, &key);
        async move {
            let response = app
                .client
                .post(app.url(&path))
                .header("x-admin-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Lists hold only its organization.
    let (_, teams) = get("/api/teams".into()).await;
    let ids: Vec<&str> = teams["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["team_in"], "{teams}");
    let (_, organizations) = get("/api/organizations".into()).await;
    assert_eq!(
        organizations["organizations"].as_array().unwrap().len(),
        1,
        "{organizations}"
    );
    let (_, me) = get("/api/me".into()).await;
    assert_eq!(me["organizations"], json!(["org_acme"]), "{me}");
    // Every team and organization route answers the other organization's ids 404, writing nothing.
    let document = serde_json::to_value(api::routes::openapi()).unwrap();
    let before = app.event_count().await;
    let mut walked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let (outside, code) = if template.starts_with("/api/teams/{id}") {
            ("team_out", "team_not_found")
        } else if template.starts_with("/api/organizations/{id}") {
            ("org_beta", "organization_not_found")
        } else {
            continue;
        };
        for method in item.as_object().unwrap().keys() {
            let path = template.replace("{id}", outside);
            let response = call(&app, &key, method, &path).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (404, Some(code)),
                "{method} {path}: {body}"
            );
            walked += 1;
        }
    }
    assert!(walked >= 25, "walked {walked}");
    assert_eq!(app.event_count().await, before, "a refused call wrote");
    // Its own organization's teams it manages as an admin.
    let (status, body) = post(
        "/api/teams/team_in/credits/add".into(),
        json!({"amount": 5}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        "/api/teams/create".into(),
        json!({"organization_id": "org_beta", "team_id": "team_sneak", "model_groups": ["gpt"], "credits": 1}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("organization_not_found"))
    );
    let (status, _) = post(
        "/api/teams/create".into(),
        json!({"organization_id": "org_acme", "team_id": "team_new", "model_groups": ["gpt"], "credits": 1}),
    )
    .await;
    assert_eq!(status, 201);
    // Reports must name its organization or team; the other's are not found; global ones refused.
    assert_eq!(
        get("/api/usage/teams?organization_id=org_acme".into())
            .await
            .0,
        200
    );
    assert_eq!(get("/api/usage/daily?team_id=team_in".into()).await.0, 200);
    assert_eq!(
        get("/api/usage/daily?organization_id=org_acme&team_id=team_out".into())
            .await
            .0,
        404
    );
    assert_eq!(
        get("/api/audit/events?organization_id=org_beta".into())
            .await
            .0,
        404
    );
    for global in [
        "/api/usage/teams",
        "/api/dashboard",
        "/api/audit/events",
        "/api/sync/status",
        "/api/accounts",
    ] {
        let (status, body) = get(global.into()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("not_permitted")),
            "{global}"
        );
    }
    let (status, _) = post(
        "/api/organizations/create".into(),
        json!({"name": "Mine now"}),
    )
    .await;
    assert_eq!(status, 403);
    // Usage of its own teams it reads, but never the request ids behind them: a gateway call's
    // id is the call id saas-api sent LiteLLM, which would let direct calls pass as that call.
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [{"request_id": "call-id-nobody-may-see", "team_id": "team_in",
                                "model": "gpt-4o", "provider_cost": 0.01, "prompt_tokens": 1, "completion_tokens": 1}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let wait = body["position"].as_i64().unwrap().to_string();
    for path in [
        "/api/usage/records.csv?organization_id=org_acme",
        "/api/audit/events?organization_id=org_acme&include_usage=true",
        "/api/teams/team_in/history?include_usage=true",
    ] {
        let response = app
            .client
            .get(app.url(path))
            .header("x-admin-key", &key)
            .header("x-wait-for-position", &wait)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("call-id-nobody-may-see"), "{path}: {text}");
        assert!(
            text.contains("redacted-"),
            "{path} lists the record: {text}"
        );
    }
    // Widening the account to every organization applies from the next request.
    let scope = format!("/api/accounts/{account_id}/organizations");
    assert_eq!(
        app.post_json(&scope, json!({"organizations": null}))
            .await
            .0,
        200
    );
    assert_eq!(get("/api/teams/team_out".into()).await.0, 200);
    // An organization that does not exist cannot be granted.
    let (status, body) = app
        .post_json(&scope, json!({"organizations": ["org_nowhere"]}))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed"))
    );
}

/// What a role scoped to one organization may do with another organization's ids, written from
/// the issue's text: what the role may not do at all is 403; accounts are 403; another
/// organization's or team's ids are 404, as if they did not exist; its own lists are served
/// (filtered); reports without an organization or team of its own, and everything spanning every
/// organization, are 403.
fn scoped_answer(role: &str, method: &str, template: &str) -> (u16, &'static str) {
    const LISTS: &[&str] = &[
        "/api/organizations",
        "/api/teams",
        "/api/me",
        "/api/model-groups",
        "/api/model-groups/{name}",
        "/api/litellm/models",
    ];
    if !allowed(role, method, template) || template.starts_with("/api/accounts") {
        return (403, "not_permitted");
    }
    if template.starts_with("/api/teams/{id}") {
        return (404, "team_not_found");
    }
    if template.starts_with("/api/organizations/{id}") {
        return (404, "organization_not_found");
    }
    if (method == "get" && LISTS.contains(&template)) || template == "/api/teams/create" {
        return (200, "");
    }
    (403, "not_permitted")
}

#[tokio::test]
async fn every_admin_operation_answers_each_organization_scoped_role_as_the_issue_says() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, body) = app
        .post_json(
            "/api/organizations/create",
            json!({"organization_id": "org_other", "name": "Other"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_other", "team_id": "team_other", "model_groups": ["gpt"], "credits": 10}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let target = create_account(&app, "scoped-target@example.com", "viewer").await;
    let operations = admin_operations(&target, "org_other", "team_other");
    let mut checked = 0;
    for role in ["viewer", "support", "billing", "admin", "owner"] {
        let (status, body) = app
            .post_json(
                "/api/accounts/create",
                json!({"email": format!("scoped-{role}@example.com"), "display_name": role,
                       "role": role, "organizations": ["org_acme"]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let account_id = body["account_id"].as_str().unwrap().to_owned();
        let (status, body) = issue_key(&app, &account_id, json!({"name": "scoped"})).await;
        assert_eq!(status, 201, "{body}");
        let key = body["api_key"].as_str().unwrap().to_owned();
        for (method, template, path) in &operations {
            let (method, template) = (method.as_str(), template.as_str());
            checked += 1;
            let what = format!("{role} of org_acme: {} {template}", method.to_uppercase());
            let before = app.event_count().await;
            let response = call(&app, &key, method, path).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            match scoped_answer(role, method, template) {
                (200, _) => assert!(
                    status != 401 && status != 403 && status != 404,
                    "{what} was refused: {status} {body}"
                ),
                (expected, code) => {
                    assert_eq!(
                        (status, body["error"]["code"].as_str()),
                        (expected, Some(code)),
                        "{what}: {body}"
                    );
                    assert_eq!(app.event_count().await, before, "{what} wrote");
                }
            }
        }
    }
    assert!(
        checked >= 5 * 55,
        "operations × scoped roles checked: {checked}"
    );
    // Nothing of the other organization changed.
    let (_, team) = app.get_json("/api/teams/team_other", None).await;
    assert_eq!(
        (team["status"].as_str(), team["credits"].as_f64()),
        (Some("active"), Some(10.0)),
        "{team}"
    );
}

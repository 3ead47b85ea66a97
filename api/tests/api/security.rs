//! Who may call what. The walk takes every operation of the router from its OpenAPI document
//! (built from the same registrations as the router, so a new route is walked too) and calls it
//! with missing, wrong and other parties' credentials against resources that exist.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{MASTER_KEY, TestApp, assert_error, spawn_app, spawn_app_with};

const PUSH_TOKEN: &str = "push-token-3b9f1c7e5a2d4f60";

/// Routes anyone may call: probes, metrics, this document, and the panel's login pages.
const PUBLIC: [&str; 10] = [
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/admin",
    "/admin/",
    "/admin/login",
    "/admin/logout",
    "/admin/assets/app.js",
    "/admin/assets/app.css",
];

enum Credential<'a> {
    None,
    AdminKey(&'a str),
    Bearer(&'a str),
    Cookie(&'a str),
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    credential: &Credential<'_>,
) -> reqwest::Response {
    let method: Method = method.to_uppercase().parse().unwrap();
    let mut request = app.client.request(method.clone(), app.url(path));
    if method != Method::GET {
        request = request.json(&json!({}));
    }
    request = match credential {
        Credential::None => request,
        Credential::AdminKey(key) => request.header("x-admin-key", *key),
        Credential::Bearer(key) => request.bearer_auth(key),
        Credential::Cookie(cookie) => request.header("cookie", *cookie),
    };
    request.send().await.unwrap()
}

async fn team_key(app: &TestApp, team_id: &str) -> String {
    let (status, body) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": team_id, "team_alias": team_id,
                   "model_groups": ["gpt"], "credits": "10"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["virtual_key"].as_str().unwrap().to_owned()
}

/// Asserts a refusal: the status, a JSON error, and no secret in the body.
async fn refused(response: reqwest::Response, status: u16, what: &str, secrets: &[&str]) {
    assert_eq!(response.status().as_u16(), status, "{what}");
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|_| panic!("{what}: not a JSON body"));
    assert!(body["error"]["code"].is_string(), "{what}: {body}");
    for secret in secrets {
        assert!(!body.to_string().contains(secret), "{what} echoed a secret");
    }
}

#[tokio::test]
async fn every_route_refuses_missing_wrong_and_other_parties_credentials() {
    let app = spawn_app_with(|c| {
        // The walk presents thousands of wrong keys from one address.
        c.admin_failures_per_minute = u32::MAX;
        c.spend_ingest.push_token = Some(PUSH_TOKEN.to_owned().into());
    })
    .await;
    app.seed_catalog().await;
    let key_a = team_key(&app, "team_a").await;
    let key_b = team_key(&app, "team_b").await;
    let response = app
        .client
        .post(app.url("/api/jobs/create"))
        .bearer_auth(&key_a)
        .json(&json!({"job_type": "walk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let job_a = response.json::<Value>().await.unwrap()["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secrets = [MASTER_KEY, key_a.as_str(), key_b.as_str(), PUSH_TOKEN];
    let events_before = app.event_count().await;

    let document = serde_json::to_value(api::routes::openapi()).unwrap();
    let (mut admin_ops, mut team_ops, mut push_ops) = (0, 0, 0);
    for (template, item) in document["paths"].as_object().unwrap() {
        // Real resources, so a refusal is about the credential and not a missing id.
        let id = if template.starts_with("/api/jobs/") {
            job_a.as_str()
        } else if template.starts_with("/api/organizations/") {
            "org_acme"
        } else {
            "team_a"
        };
        let path = template.replace("{id}", id).replace("{name}", "gpt");
        for (method, operation) in item.as_object().unwrap() {
            let what = format!("{} {template}", method.to_uppercase());
            let schemes: Vec<&str> = operation["security"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if schemes.contains(&"admin_key") {
                admin_ops += 1;
                for credential in [
                    Credential::None,
                    Credential::AdminKey("wrong-key"),
                    Credential::AdminKey(&MASTER_KEY[..MASTER_KEY.len() - 1]),
                    Credential::AdminKey(&key_a),
                    Credential::Bearer(&key_a),
                    Credential::Bearer(MASTER_KEY),
                    Credential::Cookie("saas_admin_session=forged-session-token"),
                ] {
                    let response = call(&app, method, &path, &credential).await;
                    refused(response, 401, &what, &secrets).await;
                }
            } else if schemes.contains(&"team_key") {
                team_ops += 1;
                for credential in [
                    Credential::None,
                    Credential::Bearer("sk-not-a-key"),
                    Credential::Bearer(MASTER_KEY),
                    Credential::AdminKey(MASTER_KEY),
                ] {
                    let response = call(&app, method, &path, &credential).await;
                    refused(response, 401, &what, &secrets).await;
                }
                // Another team's key: its job does not exist for them.
                if template.contains("{id}") {
                    let response = call(&app, method, &path, &Credential::Bearer(&key_b)).await;
                    refused(response, 404, &what, &secrets).await;
                }
            } else if schemes.contains(&"push_token") {
                push_ops += 1;
                for credential in [
                    Credential::None,
                    Credential::Bearer("wrong-push-token"),
                    Credential::Bearer(MASTER_KEY),
                    Credential::Bearer(&key_a),
                ] {
                    let response = call(&app, method, &path, &credential).await;
                    refused(response, 401, &what, &secrets).await;
                }
            } else {
                assert!(
                    PUBLIC.contains(&template.as_str()),
                    "{what} has no security requirement"
                );
            }
        }
    }
    // The walk covered the surface (counts grow with the API, never shrink below today's).
    assert!(admin_ops >= 48, "admin operations walked: {admin_ops}");
    assert!(team_ops >= 7, "team operations walked: {team_ops}");
    assert_eq!(push_ops, 1);
    // Nothing a refused call could have written was written.
    assert_eq!(app.event_count().await, events_before);
    let job: Value = app
        .client
        .get(app.url(&format!("/api/jobs/{job_a}")))
        .bearer_auth(&key_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(job["status"], "running", "{job}");
}

#[tokio::test]
async fn wrong_admin_keys_are_rate_limited_per_address() {
    let app = spawn_app().await;
    for _ in 0..api::panel::login_limit::MAX_FAILURES {
        let response = app
            .client
            .get(app.url("/api/organizations"))
            .header("x-admin-key", "guess")
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
    // The next try waits, even with the right key: a guesser learns nothing from it.
    for key in ["guess", MASTER_KEY] {
        let response = app
            .client
            .get(app.url("/api/organizations"))
            .header("x-admin-key", key)
            .send()
            .await
            .unwrap();
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
        assert_error(response, 429, "too_many_failed_logins").await;
    }
}

#[tokio::test]
async fn bodies_above_the_limit_are_refused_with_413_and_change_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let key = team_key(&app, "team_big").await;
    let before = app.event_count().await;

    let big_name = "x".repeat(api::extract::BODY_LIMIT_BYTES + 1);
    let response = app
        .admin_post("/api/organizations/create")
        .json(&json!({"name": big_name}))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;

    // LLM requests may be larger (8 MiB), but not without bound.
    let prompt = "y".repeat(9 * 1024 * 1024);
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
    assert_eq!(app.event_count().await, before);
}

//! Who may call what. The walk takes every operation of the router from its OpenAPI document
//! (built from the same registrations as the router, so a new route is walked too) and calls it
//! with missing, wrong and other parties' credentials against resources that exist.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{MASTER_KEY, TestApp, assert_error, spawn_app, spawn_app_with};

const PUSH_TOKEN: &str = "push-token-3b9f1c7e5a2d4f60";

/// Routes anyone may call: probes, metrics, this document, and the panel's login pages.
const METRICS_TOKEN: &str = "metrics-token-9d2e4b6a8c0f1e3d";
const PUBLIC: [&str; 9] = [
    "/health",
    "/ready",
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
        c.edge.metrics_token = Some(METRICS_TOKEN.to_owned().into());
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
    let secrets = [
        MASTER_KEY,
        key_a.as_str(),
        key_b.as_str(),
        PUSH_TOKEN,
        METRICS_TOKEN,
    ];
    // A real account key, then the same key id with a changed secret.
    let (status, account) = app
        .post_json(
            "/api/accounts/create",
            json!({"email": "walk@example.com", "display_name": "Walk", "role": "owner"}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    let account_id = account["account_id"].as_str().unwrap();
    let (status, issued) = app
        .post_json(
            &format!("/api/accounts/{account_id}/api-keys"),
            json!({"name": "walk"}),
        )
        .await;
    assert_eq!(status, 201, "{issued}");
    let real = issued["api_key"].as_str().unwrap();
    let forged_account_key = format!(
        "{}{}",
        &real[..real.len() - 2],
        if real.ends_with("AA") { "BB" } else { "AA" }
    );
    let secrets: Vec<&str> = secrets
        .iter()
        .copied()
        .chain([real, forged_account_key.as_str()])
        .collect();
    let events_before = app.event_count().await;

    let document = serde_json::to_value(api::routes::openapi()).unwrap();
    let (mut admin_ops, mut team_ops, mut push_ops, mut metrics_ops) = (0, 0, 0, 0);
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
                    // An account key's shape with no such key, and with a real key id but
                    // another secret.
                    Credential::AdminKey(
                        "sa_key_0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    ),
                    Credential::AdminKey(&forged_account_key),
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
            } else if schemes.contains(&"metrics_token") {
                metrics_ops += 1;
                for credential in [
                    Credential::None,
                    Credential::Bearer("wrong-metrics-token"),
                    Credential::Bearer(MASTER_KEY),
                    Credential::Bearer(PUSH_TOKEN),
                    Credential::AdminKey(MASTER_KEY),
                ] {
                    let response = call(&app, method, &path, &credential).await;
                    refused(response, 401, &what, &secrets).await;
                }
                let response = call(&app, method, &path, &Credential::Bearer(METRICS_TOKEN)).await;
                assert_eq!(response.status(), 200, "{what} with its token");
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
    assert_eq!(metrics_ops, 1);
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

async fn admin_get_from(
    app: &TestApp,
    key: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/api/organizations"))
        .header("x-admin-key", key);
    if let Some(client) = forwarded_for {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn wrong_admin_keys_are_limited_per_address_and_never_lock_out_the_right_key() {
    let app = spawn_app().await;
    for _ in 0..api::panel::login_limit::MAX_FAILURES {
        assert_error(
            admin_get_from(&app, "guess", None).await,
            401,
            "unauthorized",
        )
        .await;
    }
    // A flood of guesses from the address waits...
    let response = admin_get_from(&app, "guess", None).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    assert_error(response, 429, "too_many_failed_logins").await;
    // ...and the admin, from the same address, is not refused for it.
    assert_eq!(admin_get_from(&app, MASTER_KEY, None).await.status(), 200);
    // An untrusted peer cannot escape its count by naming another client.
    let response = admin_get_from(&app, "guess", Some("203.0.113.7")).await;
    assert_error(response, 429, "too_many_failed_logins").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count() {
    let app =
        spawn_app_with(|c| c.edge.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    for _ in 0..=api::panel::login_limit::MAX_FAILURES {
        admin_get_from(&app, "guess", Some("203.0.113.7")).await;
    }
    let response = admin_get_from(&app, "guess", Some("203.0.113.7")).await;
    assert_error(response, 429, "too_many_failed_logins").await;
    // Another client behind the same proxy is not limited by the first one's guesses.
    let response = admin_get_from(&app, "guess", Some("198.51.100.2")).await;
    assert_error(response, 401, "unauthorized").await;
    // A client-written hop before the proxy's own entry does not move the count.
    let response = admin_get_from(&app, "guess", Some("198.51.100.99, 203.0.113.7")).await;
    assert_error(response, 429, "too_many_failed_logins").await;
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

/// A raw connection to the service, for clients that misbehave at the HTTP level.
async fn raw_connection(app: &TestApp) -> tokio::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    tokio::net::TcpStream::connect(address).await.unwrap()
}

/// Reads until the server closes the connection; panics if it has not within `limit` (the
/// bug this guards against is a connection held forever).
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    limit: std::time::Duration,
) -> String {
    use tokio::io::AsyncReadExt;
    let mut received = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection");
    String::from_utf8_lossy(&received).into_owned()
}

fn short_timeouts(c: &mut api::config::Config) {
    c.edge.header_timeout = std::time::Duration::from_secs(1);
    c.edge.body_timeout = std::time::Duration::from_secs(1);
    c.spend_ingest.push_token = Some(PUSH_TOKEN.to_owned().into());
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(short_timeouts).await;
    let mut stream = raw_connection(&app).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    read_until_closed(&mut stream, std::time::Duration::from_secs(15)).await;
}

#[tokio::test]
async fn a_kept_alive_connection_that_sends_nothing_more_is_closed() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(short_timeouts).await;
    let mut stream = raw_connection(&app).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream, std::time::Duration::from_secs(15)).await;
    assert!(received.starts_with("HTTP/1.1 200"), "{received}");
}

#[tokio::test]
async fn a_body_trickling_in_past_the_deadline_is_refused_with_408_and_changes_nothing() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(short_timeouts).await;
    let before = app.event_count().await;
    let mut stream = raw_connection(&app).await;
    let head = format!(
        "POST /api/organizations/create HTTP/1.1\r\nHost: localhost\r\nX-Admin-Key: {MASTER_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \"Sl"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let received = read_until_closed(&mut stream, std::time::Duration::from_secs(15)).await;
    assert!(received.starts_with("HTTP/1.1 408"), "{received}");
    assert!(received.contains("request_body_timeout"), "{received}");
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn the_spend_push_checks_its_token_before_reading_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|c| {
        c.spend_ingest.push_token = Some(PUSH_TOKEN.to_owned().into());
    })
    .await;
    let mut stream = raw_connection(&app).await;
    // Sixteen megabytes announced, none sent: the answer must not wait for them.
    stream
        .write_all(
            b"POST /api/litellm/spend-push HTTP/1.1\r\nHost: localhost\r\n\
              Authorization: Bearer wrong-token\r\nContent-Type: application/json\r\n\
              Content-Length: 16000000\r\n\r\n",
        )
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("answered without the body")
        .unwrap();
    let received = String::from_utf8_lossy(&buffer[..n]);
    assert!(received.starts_with("HTTP/1.1 401"), "{received}");
}

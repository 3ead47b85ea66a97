//! Threshold alerts delivered as signed webhooks, retried until the receiver takes them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

#[derive(Clone, Default)]
struct Receiver {
    /// (signature header, delivery id header, body) of every request, accepted or not.
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
    /// Requests to refuse with 500 before accepting.
    refuse: Arc<Mutex<u32>>,
}

async fn receiver() -> (String, Receiver) {
    let state = Receiver::default();
    let handler_state = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let state = handler_state.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                state.seen.lock().unwrap().push((
                    header("x-saas-signature"),
                    header("x-saas-delivery"),
                    body,
                ));
                let mut refuse = state.refuse.lock().unwrap();
                if *refuse > 0 {
                    *refuse -= 1;
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

/// Sets `org_acme`'s webhook URL.
async fn set_webhook(app: &TestApp, url: &str) -> reqwest::Response {
    app.admin_post("/api/organizations/org_acme/webhook")
        .json(&json!({"url": url}))
        .send()
        .await
        .unwrap()
}

async fn spend(app: &TestApp, request_id: &str, team: &str, cost: &str) {
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [{"request_id": request_id, "team_id": team, "model": "gpt-4o", "provider_cost": cost}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

async fn deliveries(app: &TestApp, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let rows = |log: &Value| log["deliveries"].as_array().cloned().unwrap_or_default();
    let log = app
        .get_until(
            "/api/webhooks/deliveries",
            Duration::from_secs(15),
            "delivery log never matched",
            |log| want(&rows(log)),
        )
        .await;
    rows(&log)
}

#[tokio::test]
async fn threshold_alerts_are_delivered_signed_once_with_retries() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (url, hook) = receiver().await;
    *hook.refuse.lock().unwrap() = 1;
    let (status, configured) = app
        .post_json("/api/organizations/org_acme/webhook", json!({"url": url}))
        .await;
    assert_eq!(status, 200, "{configured}");
    let secret = configured["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (_, shown) = app
        .get_json("/api/organizations/org_acme/webhook", None)
        .await;
    assert_eq!(shown["url"], url.as_str());
    assert!(
        shown.get("secret").is_none(),
        "the secret is shown only once"
    );

    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_w", "team_alias": "w", "credits": 10}),
        )
        .await;
    assert_eq!(status, 201);
    spend(&app, "w-1", "team_w", "8.5").await;

    // The first attempt is refused; the retry is accepted.
    let rows = deliveries(&app, |rows| {
        rows.len() == 1 && rows[0]["status"] == "delivered"
    })
    .await;
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(rows[0]["payload"]["threshold_percent"], 80);
    assert_eq!(rows[0]["payload"]["organization_id"], "org_acme");
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].1, seen[1].1,
        "the delivery id is stable across retries"
    );
    let (signature, _, body) = &seen[1];
    let t: i64 = signature
        .split(',')
        .next()
        .and_then(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        signature,
        &app::webhooks::signature(&secret, t, body.as_bytes())
    );
    assert_ne!(
        signature,
        &app::webhooks::signature("whsec_other", t, body.as_bytes())
    );
    let payload: Value = serde_json::from_str(body).unwrap();
    assert_eq!(payload["team_id"], "team_w");

    spend(&app, "w-2", "team_w", "2").await;
    let rows = deliveries(&app, |rows| {
        rows.len() == 2 && rows.iter().all(|r| r["status"] == "delivered")
    })
    .await;
    assert!(
        rows.iter()
            .any(|r| r["payload"]["threshold_percent"] == 100)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hook.seen.lock().unwrap().len(),
        3,
        "each alert once, plus one retry"
    );
}

#[tokio::test]
async fn webhook_configuration_is_validated() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    for url in ["not a url", "ftp://example.test/x", "/relative"] {
        let response = set_webhook(&app, url).await;
        assert_error(response, 422, "validation_failed").await;
    }
    let response = app
        .admin_post("/api/organizations/nope/webhook")
        .json(&json!({"url": "http://127.0.0.1:9/x"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "organization_not_found").await;
    let response = app
        .admin_get("/api/organizations/org_acme/webhook")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "webhook_not_found").await;
    let response = app
        .admin_get("/api/webhooks/deliveries?status=lost")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_query").await;

    // Without a webhook, alerts are logged as such and nothing is sent.
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_n", "team_alias": "n", "credits": 1}),
        )
        .await;
    assert_eq!(status, 201);
    spend(&app, "n-1", "team_n", "5").await;
    deliveries(&app, |rows| {
        rows.len() == 2 && rows.iter().all(|r| r["status"] == "no_webhook")
    })
    .await;
}

#[tokio::test]
async fn webhooks_never_reach_private_addresses_unless_allowed() {
    let app = crate::helpers::spawn_app_with(|c| c.edge.allow_private_webhooks = false).await;
    app.seed_catalog().await;
    let (url, hook) = receiver().await;
    let port = url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook")
        .to_owned();
    // Refused when set: loopback, the cloud metadata address, private ranges, this machine.
    for url in [
        url.clone(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://10.0.0.5/hook".to_owned(),
        "http://[::1]/hook".to_owned(),
        format!("http://localhost:{port}/hook"),
    ] {
        let response = set_webhook(&app, &url).await;
        assert_error(response, 422, "webhook_destination_refused").await;
    }
    // A URL that passed when it was set (a name re-pointed since, or set by an earlier
    // release) is checked again when delivered: by the address the name resolves to, and by
    // the address written in it.
    app.team(crate::helpers::TeamSpec::new("team_p", "10"))
        .await;
    let vault = app::keys::Vault::new(
        api::config::decode_encryption_key(crate::helpers::ENCRYPTION_KEY).unwrap(),
    );
    for (url, request, cost) in [
        (format!("http://localhost:{port}/hook"), "p-1", "8.5"),
        (url.clone(), "p-2", "2"),
    ] {
        app::webhooks::save(&app.pool, &vault, "org_acme", &url, "whsec_test")
            .await
            .unwrap();
        spend(&app, request, "team_p", cost).await;
        let expected = if request == "p-1" { 1 } else { 2 };
        let rows = deliveries(&app, |rows| {
            rows.len() == expected
                && rows[0]["attempts"].as_i64().unwrap_or(0) >= 1
                && rows[0]["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("public address"))
        })
        .await;
        assert!(rows.iter().all(|r| r["status"] != "delivered"), "{rows:?}");
    }
    assert!(
        hook.seen.lock().unwrap().is_empty(),
        "nothing reached the private receiver"
    );
}

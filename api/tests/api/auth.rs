use serde_json::json;

use crate::helpers::{MASTER_KEY, assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn admin_routes_refuse_a_missing_or_wrong_key() {
    // More wrong keys than the per-address limit allows in a minute.
    let app = spawn_app_with(|c| c.admin_failures_per_minute = 100).await;
    let routes = [
        ("POST", "/api/organizations/create"),
        ("GET", "/api/organizations"),
        ("GET", "/api/organizations/org_x"),
        ("POST", "/api/organizations/org_x/rename"),
    ];
    for (method, path) in routes {
        for key in [
            None,
            Some("wrong-key"),
            Some(&MASTER_KEY[..MASTER_KEY.len() - 1]),
        ] {
            let mut request = app
                .client
                .request(method.parse().unwrap(), app.url(path))
                .json(&json!({"name": "Acme"}));
            if let Some(key) = key {
                request = request.header("x-admin-key", key);
            }
            let response = request.send().await.unwrap();
            let body = assert_error(response, 401, "unauthorized").await;
            assert!(!body.to_string().contains(MASTER_KEY));
        }
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = spawn_app().await;
    let response = app.admin_get("/api/nope").send().await.unwrap();
    assert_error(response, 404, "route_not_found").await;
    let response = app
        .admin_get("/api/organizations/create")
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "method_not_allowed").await;
}

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app, spawn_app_with};

#[tokio::test]
async fn the_seed_request_creates_an_organization_readable_at_its_position() {
    let app = spawn_app().await;
    let response = app
        .create_org(json!({"name": "Acme Corp", "litellm_organization_id": "acme-litellm"}))
        .await;
    assert_eq!(response.status(), 201);
    let header_position: i64 = response.headers()["x-event-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let id = body["organization_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("org_"));
    assert_eq!(body["position"], header_position);

    let response = app
        .get_after(&format!("/api/organizations/{id}"), header_position)
        .await;
    assert_eq!(response.status(), 200);
    let org: Value = response.json().await.unwrap();
    assert_eq!(org["organization_id"], id);
    assert_eq!(org["name"], "Acme Corp");
    assert_eq!(org["litellm_organization_id"], "acme-litellm");
    assert!(org["created_by"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(org["position"], header_position);
}

#[tokio::test]
async fn a_client_chosen_id_is_kept_and_cannot_be_taken_twice() {
    let app = spawn_app().await;
    let response = app
        .create_org(json!({"organization_id": "org_demo", "name": "Demo"}))
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        response.json::<Value>().await.unwrap()["organization_id"],
        "org_demo"
    );

    let response = app
        .create_org(json!({"organization_id": "org_demo", "name": "Other"}))
        .await;
    assert_error(response, 409, "organization_exists").await;
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn a_duplicate_litellm_organization_id_is_refused_and_appends_nothing() {
    let app = spawn_app().await;
    let first = app
        .create_org(json!({"name": "One", "litellm_organization_id": "shared"}))
        .await;
    assert_eq!(first.status(), 201);
    let first_id = first.json::<Value>().await.unwrap()["organization_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = app
        .create_org(json!({"name": "Two", "litellm_organization_id": "shared"}))
        .await;
    let body = assert_error(response, 409, "duplicate_value").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("litellm_organization_id") && message.contains(&first_id),
        "{message}"
    );
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn concurrent_creates_with_one_litellm_id_let_exactly_one_through() {
    let app = spawn_app().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let client = app.client.clone();
        let url = app.url("/api/organizations/create");
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("x-admin-key", crate::helpers::MASTER_KEY)
                .json(
                    &json!({"name": format!("Racer {i}"), "litellm_organization_id": "contested"}),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn invalid_requests_get_json_errors_and_append_nothing() {
    let app = spawn_app().await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"name": ""}), 422, "validation_failed"),
        (json!({"name": "   "}), 422, "validation_failed"),
        (json!({"name": "x".repeat(500)}), 422, "validation_failed"),
        (json!({"name": "ok", "extra": 1}), 422, "invalid_body"),
        (json!({"litellm_organization_id": "x"}), 422, "invalid_body"),
        (json!({"name": 42}), 422, "invalid_body"),
        (
            json!({"name": "ok", "organization_id": "has space"}),
            422,
            "validation_failed",
        ),
        (
            json!({"name": "ok", "litellm_organization_id": ""}),
            422,
            "validation_failed",
        ),
        (json!(["name"]), 422, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let response = app.create_org(body.clone()).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        assert_error(response, status, code).await;
    }

    let response = app
        .admin_post("/api/organizations/create")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_json").await;

    let response = app
        .admin_post("/api/organizations/create")
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type").await;

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024));
    let response = app
        .admin_post("/api/organizations/create")
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;

    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn rename_changes_the_name_and_records_who_did_it() {
    let app = spawn_app().await;
    let created: Value = app
        .create_org(json!({"organization_id": "org_r", "name": "Old"}))
        .await
        .json()
        .await
        .unwrap();
    let response = app
        .admin_post("/api/organizations/org_r/rename")
        .header("x-request-id", "rename-req-1")
        .json(&json!({"name": "New"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let position = body["position"].as_i64().unwrap();
    assert!(position > created["position"].as_i64().unwrap());

    let org: Value = app
        .get_after("/api/organizations/org_r", position)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(org["name"], "New");

    let (event_type, metadata): (String, Value) =
        sqlx::query_as("select event_type, metadata::jsonb from events where global_position = $1")
            .bind(position)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(event_type, "OrganizationRenamed");
    assert!(metadata["actor"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(metadata["request_id"], "rename-req-1");
    assert!(metadata["time"].as_str().is_some());
}

#[tokio::test]
async fn renaming_to_the_same_name_appends_nothing() {
    let app = spawn_app().await;
    app.create_org(json!({"organization_id": "org_same", "name": "Same"}))
        .await;
    let response = app
        .admin_post("/api/organizations/org_same/rename")
        .json(&json!({"name": "Same"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.event_count().await, 1);
}

#[tokio::test]
async fn renaming_or_reading_an_unknown_organization_is_404() {
    let app = spawn_app().await;
    let response = app
        .admin_post("/api/organizations/org_missing/rename")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "organization_not_found").await;
    let response = app
        .admin_get("/api/organizations/org_missing")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "organization_not_found").await;
    let response = app
        .admin_post("/api/organizations/org_x/rename")
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_error(response, 422, "validation_failed").await;
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn the_list_pages_through_every_organization_once_in_creation_order() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    let mut last_position = 0;
    for i in 0..7 {
        let body: Value = app
            .create_org(json!({"name": format!("Org {i}")}))
            .await
            .json()
            .await
            .unwrap();
        created.push(body["organization_id"].as_str().unwrap().to_owned());
        last_position = body["position"].as_i64().unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/organizations?limit=3".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = app
            .get_after(&path, last_position)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(page["total"], 7);
        let orgs = page["organizations"].as_array().unwrap();
        assert!(orgs.len() <= 3);
        seen.extend(
            orgs.iter()
                .map(|o| o["organization_id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
}

#[tokio::test]
async fn bad_list_and_wait_parameters_are_400() {
    let app = spawn_app().await;
    for path in [
        "/api/organizations?limit=0",
        "/api/organizations?limit=1000",
        "/api/organizations?limit=abc",
        "/api/organizations?cursor=zzz",
    ] {
        let response = app.admin_get(path).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    let response = app
        .admin_get("/api/organizations?wait_for_position=-3")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_position").await;
    let response = app
        .admin_get("/api/organizations?wait_for_position=999999")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_position").await;
}

#[tokio::test]
async fn waiting_for_an_unprojected_position_times_out_with_503_then_succeeds() {
    let app = spawn_app_with(|config| config.read_wait_timeout = Duration::from_millis(800)).await;
    // Hold the projector's checkpoint row, as a stalled projector would: it cannot apply.
    let blocker = app.stall_projector("organizations").await;
    let body: Value = app
        .create_org(json!({"name": "Lagging"}))
        .await
        .json()
        .await
        .unwrap();
    let position = body["position"].as_i64().unwrap();

    let response = app.get_after("/api/organizations", position).await;
    assert_eq!(response.status(), 503, "{:?}", response.headers());
    assert_eq!(response.headers()["retry-after"], "1");
    assert_error(response, 503, "projection_lag").await;

    blocker.rollback().await.unwrap();
    let response = app.get_after("/api/organizations", position).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["organizations"][0]["name"], "Lagging");
}

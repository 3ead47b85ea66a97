use crate::helpers::{spawn_app, spawn_app_on};
use serde_json::json;

#[tokio::test]
async fn the_service_creates_and_migrates_a_missing_database() {
    let name = testkit::empty_database_name();
    let url = testkit::database_url(&name).unwrap();
    let app = spawn_app_on(&url).await;
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_name in ('events', 'snapshots', 'consumer_checkpoints', 'organizations')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(tables, 4);
}

#[tokio::test]
async fn a_restarted_service_keeps_its_data_and_catches_up() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let created = app.create_org(json!({"name": "Before restart"})).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["organization_id"].clone();
    app.stop().await;

    let app = spawn_app_on(&url).await;
    let response = app
        .admin_get(&format!("/api/organizations/{}", id.as_str().unwrap()))
        .header("x-wait-for-position", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["name"], "Before restart");
}

#[tokio::test]
async fn graceful_shutdown_stops_the_server() {
    let app = spawn_app().await;
    let address = app.url("/health");
    app.stop().await;
    assert!(reqwest::get(&address).await.is_err());
}

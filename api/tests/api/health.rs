use crate::helpers::spawn_app;

#[tokio::test]
async fn health_answers_without_credentials() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn ready_reports_migrations_and_consumer_lag() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    assert_eq!(
        body["migrations"]["applied"],
        body["migrations"]["expected"]
    );
    let consumers = body["consumers"].as_array().unwrap();
    assert!(
        consumers.iter().any(|c| c["consumer"] == "organizations"),
        "{body}"
    );
}

#[tokio::test]
async fn ready_is_503_when_migrations_are_missing() {
    let app = spawn_app().await;
    sqlx::query(
        "delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let response = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
}

#[tokio::test]
async fn request_ids_are_echoed_back() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-abc-123");
}

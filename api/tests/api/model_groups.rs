use serde_json::json;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn groups_are_created_changed_listed_and_deleted() {
    let app = spawn_app().await;
    let (status, body) = app
        .post_json("/api/model-groups/create", json!({"group_name": "gpt", "models": ["gpt-4o", "gpt-4o", "GPT-4o"], "description": "OpenAI"}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        body["models"],
        json!(["gpt-4o", "GPT-4o"]),
        "duplicates dropped, case kept"
    );

    let (status, body) = app
        .post_json(
            "/api/model-groups/gpt/models",
            json!({"models": ["gpt-4o-mini"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, group) = app
        .get_json("/api/model-groups/gpt", body["position"].as_i64())
        .await;
    assert_eq!(status, 200);
    assert_eq!(group["models"], json!(["gpt-4o-mini"]));
    assert_eq!(group["description"], "OpenAI");

    let (_, list) = app.get_json("/api/model-groups", None).await;
    assert_eq!(list["model_groups"].as_array().unwrap().len(), 1);

    let (status, body) = app
        .post_json("/api/model-groups/gpt/delete", json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get_json("/api/model-groups/gpt", body["position"].as_i64())
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_group_used_by_a_team_cannot_be_deleted() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_alias": "T", "model_groups": ["gpt"]}),
        )
        .await;
    assert_eq!(status, 201);
    let before = app.event_count().await;
    let response = app
        .admin_post("/api/model-groups/gpt/delete")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let body = assert_error(response, 409, "model_group_in_use").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("team_"));
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn invalid_groups_are_refused_and_append_nothing() {
    let app = spawn_app().await;
    app.post_json(
        "/api/model-groups/create",
        json!({"group_name": "gpt", "models": ["gpt-4o"]}),
    )
    .await;
    let cases = [
        (
            json!({"group_name": "gpt", "models": ["x"]}),
            409,
            "model_group_exists",
        ),
        (
            json!({"group_name": "new", "models": []}),
            422,
            "validation_failed",
        ),
        (
            json!({"group_name": "new", "models": [" gpt-4o"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"group_name": "bad name", "models": ["a"]}),
            422,
            "validation_failed",
        ),
        (
            json!({"group_name": "new", "models": "gpt-4o"}),
            422,
            "invalid_body",
        ),
        (
            json!({"group_name": "new", "models": ["a"], "extra": true}),
            422,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        let response = app
            .admin_post("/api/model-groups/create")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(response, status, code).await;
    }
    let response = app
        .admin_post("/api/model-groups/missing/models")
        .json(&json!({"models": ["a"]}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "model_group_not_found").await;
    assert_eq!(app.event_count().await, 1);
}

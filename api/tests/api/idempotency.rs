use serde_json::{Value, json};

use crate::helpers::{MASTER_KEY, assert_error, spawn_app};

async fn post_with_key(
    app: &crate::helpers::TestApp,
    path: &str,
    key: &str,
    body: Value,
) -> reqwest::Response {
    app.admin_post(path)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A service with the seed catalog and a team `team_x`.
async fn app_with_team_x() -> crate::helpers::TestApp {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, _) = app
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_x", "team_alias": "X"}),
        )
        .await;
    assert_eq!(status, 201);
    app
}

#[tokio::test]
async fn a_retried_request_returns_the_first_response_without_a_second_effect() {
    let app = app_with_team_x().await;
    let first = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "pay-1",
        json!({"amount": 10}),
    )
    .await;
    assert_eq!(first.status(), 200);
    let first_body: Value = first.json().await.unwrap();
    let second = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "pay-1",
        json!({"amount": 10}),
    )
    .await;
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.json::<Value>().await.unwrap(), first_body);
    let added: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'CreditsAdded'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(added, 1);

    let response = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "pay-1",
        json!({"amount": 11}),
    )
    .await;
    assert_error(response, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn a_replayed_team_creation_returns_the_same_key_which_is_stored_encrypted() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let body = json!({"organization_id": "org_acme", "team_alias": "Idem"});
    let first: Value = post_with_key(&app, "/api/teams/create", "create-1", body.clone())
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post_with_key(&app, "/api/teams/create", "create-1", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["virtual_key"], second["virtual_key"]);
    assert_eq!(first["team_id"], second["team_id"]);
    assert_eq!(app.events_of("Team").await, 1);
    let key = first["virtual_key"].as_str().unwrap();
    let stored: Vec<u8> =
        sqlx::query_scalar("select response from idempotency_keys where key = 'create-1'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains(&key[3..]));
}

#[tokio::test]
async fn a_failed_request_keeps_its_key_free_for_a_corrected_retry() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let response = post_with_key(
        &app,
        "/api/teams/create",
        "fix-1",
        json!({"organization_id": "org_missing", "team_alias": "A"}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let response = post_with_key(
        &app,
        "/api/teams/create",
        "fix-1",
        json!({"organization_id": "org_acme", "team_alias": "A"}),
    )
    .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn keys_are_scoped_to_the_credential_and_bad_keys_are_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/organizations/create"))
        .header("x-admin-key", MASTER_KEY)
        .header("idempotency-key", "x".repeat(300))
        .json(&json!({"name": "A"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_idempotency_key").await;
    // An unauthenticated request with a key is refused and does not reserve the key.
    let response = app
        .client
        .post(app.url("/api/organizations/create"))
        .header("idempotency-key", "k-1")
        .json(&json!({"name": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = post_with_key(
        &app,
        "/api/organizations/create",
        "k-1",
        json!({"name": "A"}),
    )
    .await;
    assert_eq!(response.status(), 201);
}

/// A record left "in progress" by a crashed process: what the retry gets depends on whether
/// the crashed request's command committed.
#[tokio::test]
async fn a_key_abandoned_by_a_crash_is_recovered_safely() {
    let app = app_with_team_x().await;
    // Records are scoped to the verified actor: `admin:` and the key's fingerprint.
    let actor = {
        use sha2::{Digest, Sha256};
        let fingerprint = Sha256::digest(MASTER_KEY.as_bytes())[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        format!("admin:{fingerprint}")
    };
    let body = json!({"amount": 7});
    let hash = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update("POST");
        h.update([0]);
        h.update("/api/teams/team_x/credits/add");
        h.update([0]);
        h.update(serde_json::to_vec(&body).unwrap());
        h.finalize().to_vec()
    };
    for key in ["crashed-before-commit", "crashed-after-commit"] {
        sqlx::query("insert into idempotency_keys (actor, key, request_hash, created_at) values ($1, $2, $3, now() - interval '5 minutes')")
            .bind(&actor)
            .bind(key)
            .bind(&hash)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    // The second one's command did commit before the crash: an event carries its key.
    sqlx::query("insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                 values ('Probe', 'p', 1, 'Probe', '1.0', '{}', '{\"idempotency_key\": \"crashed-after-commit\"}')")
        .execute(&app.pool)
        .await
        .unwrap();

    let response = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "crashed-before-commit",
        body.clone(),
    )
    .await;
    assert_eq!(response.status(), 200, "nothing committed: the retry runs");
    let response = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "crashed-after-commit",
        body,
    )
    .await;
    assert_error(response, 409, "idempotency_key_consumed").await;
    let added: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'CreditsAdded'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        added, 1,
        "only the retry of the request that never committed added credits"
    );
}

#[tokio::test]
async fn stored_answers_do_not_outlive_a_master_key_rotation() {
    let app = app_with_team_x().await;
    let first = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "pay-rotate",
        json!({"amount": 10}),
    )
    .await;
    assert_eq!(first.status(), 200);
    let database_url = app.database_url.clone();
    app.stop().await;

    const NEW_KEY: &str = "mk-rotated-5e7a9c1b3d5f7a9c1b3d";
    let app = crate::helpers::spawn_app_with_database(&database_url, |c| {
        c.master_key = NEW_KEY.to_owned().into();
    })
    .await;
    // The old key is refused before anything is replayed.
    let old = post_with_key(
        &app,
        "/api/teams/team_x/credits/add",
        "pay-rotate",
        json!({"amount": 10}),
    )
    .await;
    assert!(old.headers().get("idempotent-replayed").is_none());
    assert_error(old, 401, "unauthorized").await;
    // The new key's request with the same idempotency key is a new request.
    let fresh = app
        .client
        .post(app.url("/api/teams/team_x/credits/add"))
        .header("x-admin-key", NEW_KEY)
        .header("idempotency-key", "pay-rotate")
        .json(&json!({"amount": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    let position = fresh.json::<Value>().await.unwrap()["position"]
        .as_i64()
        .unwrap();
    let (_, team) = app
        .get_json_as(NEW_KEY, "/api/teams/team_x", Some(position))
        .await;
    assert_eq!(
        crate::helpers::dec(&team["credits"]),
        crate::helpers::dec(&json!("20")),
        "{team}"
    );
}

use serde_json::{Value, json};

use crate::helpers::{MASTER_KEY, TestApp, assert_error, spawn_app, spawn_app_with_database};

fn seed_team() -> Value {
    json!({
        "organization_id": "org_acme",
        "team_id": "team_support",
        "team_alias": "Support bot",
        "model_groups": ["gpt"],
        "credits": 84.50,
        "budget_mode": "hard",
        "rpm_limit": 60,
        "tpm_limit": 100000,
        "markup_percent": 20
    })
}

#[tokio::test]
async fn creating_a_team_returns_its_key_and_the_read_model_agrees() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, created) = app.post_json("/api/teams/create", seed_team()).await;
    assert_eq!(status, 201, "{created}");
    let key = created["virtual_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk-") && key.len() >= 40);
    assert_eq!(created["allowed_models"], json!(["gpt-4o", "gpt-4o-mini"]));
    assert_eq!(created["credits"], json!(84.5));
    assert_eq!(created["remaining_budget"], json!(84.5));
    assert_eq!(created["budget_mode"], "hard");

    let (status, team) = app
        .get_json("/api/teams/team_support", created["position"].as_i64())
        .await;
    assert_eq!(status, 200);
    assert_eq!(team["organization_id"], "org_acme");
    assert_eq!(team["credits"], json!(84.5));
    assert_eq!(team["spend"], json!(0));
    assert_eq!(team["remaining_budget"], json!(84.5));
    assert_eq!(team["rpm_limit"], 60);
    assert_eq!(team["markup_percent"], json!(20));
    assert_eq!(team["status"], "active");
    assert_eq!(team["key_fingerprint"], created["key_fingerprint"]);
    assert!(team.get("virtual_key").is_none());

    // The key is nowhere in clear: not in events, not in the key table.
    let in_events: i64 = sqlx::query_scalar(
        "select count(*) from events where payload::text like $1 or metadata::text like $1",
    )
    .bind(format!("%{}%", &key[3..]))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(in_events, 0);
    let ciphertext: Vec<u8> =
        sqlx::query_scalar("select ciphertext from virtual_keys where team_id = 'team_support'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&ciphertext).contains(&key[3..]));

    // Metadata names the admin key by fingerprint, never the key itself.
    let metadata: Value =
        sqlx::query_scalar("select metadata::jsonb from events where event_type = 'TeamCreated'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(
        metadata["actor"].as_str().unwrap().starts_with("admin:"),
        "{metadata}"
    );
    assert!(!metadata.to_string().contains(MASTER_KEY));
}

/// As in the original project, a team needs no alias: it is named by its id until renamed.
#[tokio::test]
async fn a_team_created_without_an_alias_is_named_by_its_id() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let mut body = seed_team();
    body.as_object_mut().unwrap().remove("team_alias");
    let (status, created) = app.post_json("/api/teams/create", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    let (_, team) = app
        .get_json("/api/teams/team_support", created["position"].as_i64())
        .await;
    assert_eq!(team["team_alias"], "team_support");

    // Neither id nor alias given: the generated id names it.
    body.as_object_mut().unwrap().remove("team_id");
    let (status, created) = app.post_json("/api/teams/create", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["team_id"].as_str().unwrap();
    let (_, team) = app
        .get_json(&format!("/api/teams/{id}"), created["position"].as_i64())
        .await;
    assert_eq!(team["team_alias"], id);
}

#[tokio::test]
async fn invalid_teams_are_refused_and_append_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json(
        "/api/organizations/create",
        json!({"organization_id": "org_gone", "name": "Gone"}),
    )
    .await;
    let (status, _) = app
        .post_json("/api/organizations/org_gone/delete", json!({}))
        .await;
    assert_eq!(status, 200);
    app.post_json("/api/teams/create", seed_team()).await;
    let before = app.event_count().await;

    let with = |patch: Value| {
        let mut body = seed_team();
        body["team_id"] = json!("team_other");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (seed_team(), 409, "team_exists"),
        (
            with(json!({"organization_id": "org_missing"})),
            422,
            "organization_not_found",
        ),
        (
            with(json!({"organization_id": "org_gone"})),
            422,
            "organization_deleted",
        ),
        (
            with(json!({"model_groups": ["gpt", "nope"]})),
            422,
            "unknown_model_groups",
        ),
        (with(json!({"credits": -1})), 422, "validation_failed"),
        (
            with(json!({"credits": 1000000000.5})),
            422,
            "validation_failed",
        ),
        (
            with(json!({"credits": 0.0000001})),
            422,
            "validation_failed",
        ),
        (with(json!({"credits": "ten"})), 422, "validation_failed"),
        (with(json!({"credits": true})), 422, "invalid_body"),
        (with(json!({"budget_mode": "medium"})), 422, "invalid_body"),
        (with(json!({"rpm_limit": 0})), 422, "validation_failed"),
        (with(json!({"rpm_limit": -5})), 422, "invalid_body"),
        (
            with(json!({"markup_percent": 5000})),
            422,
            "validation_failed",
        ),
        (with(json!({"team_alias": ""})), 422, "validation_failed"),
        (with(json!({"surprise": 1})), 422, "invalid_body"),
    ];
    for (body, status, code) in cases {
        let response = app
            .admin_post("/api/teams/create")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_error(response, status, code).await;
    }
    assert_eq!(app.event_count().await, before);
    let keys: i64 = sqlx::query_scalar("select count(*) from virtual_keys")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(keys, 1, "keys of refused teams are discarded");
}

/// Sends every request at once (a path on `app`, or a whole URL); answers (status, body) in
/// the same order.
async fn burst(app: &TestApp, requests: Vec<(String, Value)>) -> Vec<(u16, Value)> {
    let mut tasks = Vec::new();
    for (path, body) in requests {
        let client = app.client.clone();
        let url = if path.starts_with("http") {
            path
        } else {
            app.url(&path)
        };
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .header("x-admin-key", MASTER_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Global position, transaction id and request id of every event of this type on the team.
async fn team_events(app: &TestApp, event_type: &str) -> Vec<(i64, String, String)> {
    sqlx::query_as(
        "select global_position, tx_id::text, metadata->>'request_id' from events
          where aggregate_type = 'Team' and aggregate_id = 'team_support' and event_type = $1
          order by global_position",
    )
    .bind(event_type)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn sixty_four_concurrent_credit_additions_all_count_each_with_its_own_answer() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json("/api/teams/create", seed_team()).await;
    let add = || {
        (
            "/api/teams/team_support/credits/add".to_owned(),
            json!({"amount": 1.25, "reason": "load"}),
        )
    };
    let answers = burst(&app, (0..64).map(|_| add()).collect()).await;
    for (status, body) in &answers {
        assert_eq!(
            *status, 200,
            "one process queues commands on one team: {body}"
        );
    }
    let mut positions: Vec<i64> = answers
        .iter()
        .map(|(_, body)| body["position"].as_i64().unwrap())
        .collect();
    positions.sort();
    let max_position = *positions.last().unwrap();
    let (_, team) = app
        .get_json("/api/teams/team_support", Some(max_position))
        .await;
    assert_eq!(
        team["credits"],
        json!(84.5 + 1.25 * 64.0),
        "the sum is exact"
    );
    let events = team_events(&app, "CreditsAdded").await;
    assert_eq!(events.len(), 64, "one event per acknowledged request");
    assert_eq!(
        positions,
        events.iter().map(|e| e.0).collect::<Vec<_>>(),
        "each command is answered with the position of its own event"
    );
    let requests: std::collections::HashSet<&str> = events.iter().map(|e| e.2.as_str()).collect();
    assert_eq!(
        requests.len(),
        64,
        "each event carries its own request's metadata"
    );
    let commits: std::collections::HashSet<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert!(
        commits.len() < 64,
        "commands that queued behind one another are appended together ({} commits for 64)",
        commits.len()
    );
}

#[tokio::test]
async fn a_burst_on_one_team_answers_refused_commands_alone_and_keeps_the_rest() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json("/api/teams/create", seed_team()).await;
    let requests: Vec<(String, Value)> = (0..48)
        .map(|i| match i % 3 {
            // "claude" exists but is not the team's: refused on the team's state.
            0 => (
                "/api/teams/team_support/model-groups/unassign".to_owned(),
                json!({"group_name": "claude"}),
            ),
            1 => (
                "/api/teams/team_support/credits/add".to_owned(),
                json!({"amount": "0.10"}),
            ),
            _ => (
                "/api/teams/team_support/rate-limits".to_owned(),
                json!({"rpm_limit": 100 + i, "tpm_limit": 100000}),
            ),
        })
        .collect();
    let answers = burst(&app, requests).await;
    let mut newest = 0;
    for (i, (status, body)) in answers.iter().enumerate() {
        if i % 3 == 0 {
            assert_eq!(*status, 409, "{body}");
            assert_eq!(body["error"]["code"], "model_group_not_assigned", "{body}");
        } else {
            assert_eq!(*status, 200, "{body}");
            newest = newest.max(body["position"].as_i64().unwrap());
        }
    }
    let (_, team) = app.get_json("/api/teams/team_support", Some(newest)).await;
    assert_eq!(team["credits"], json!(84.5 + 0.1 * 16.0), "{team}");
    assert_eq!(team_events(&app, "CreditsAdded").await.len(), 16);
    assert!(team_events(&app, "ModelGroupUnassigned").await.is_empty());
    assert_eq!(team["allowed_models"], json!(["gpt-4o", "gpt-4o-mini"]));
}

#[tokio::test]
async fn two_processes_adding_credits_to_one_team_lose_nothing() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json("/api/teams/create", seed_team()).await;
    let other = spawn_app_with_database(&app.database_url, |_| {}).await;
    let add = |target: &TestApp| {
        (
            target.url("/api/teams/team_support/credits/add"),
            json!({"amount": "0.50"}),
        )
    };
    // Both processes at once: their appends race on the optimistic lock, and the losers'
    // whole batches are decided again against the winner's state.
    let requests = (0..64)
        .map(|i| if i % 2 == 0 { add(&app) } else { add(&other) })
        .collect();
    let mut newest = 0;
    let mut added = 0;
    for (status, body) in burst(&app, requests).await {
        if status == 200 {
            added += 1;
            newest = newest.max(body["position"].as_i64().unwrap());
        } else {
            assert_eq!(status, 409, "only exhausted retries may fail: {body}");
            assert_eq!(body["error"]["code"], "concurrent_modification");
        }
    }
    assert!(added > 0);
    let (_, team) = app.get_json("/api/teams/team_support", Some(newest)).await;
    assert_eq!(team["credits"], json!(84.5 + 0.5 * added as f64), "{team}");
    assert_eq!(team_events(&app, "CreditsAdded").await.len(), added);
    // Each process kept the team as it last appended it; the other one's appends made that
    // stale. A command that may not re-run (delete) must still be decided on the real state,
    // not refused as a conflict with a stale copy.
    let (status, body) = app
        .post_json(
            "/api/teams/team_support/credits/add",
            json!({"amount": "1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let response = other
        .admin_post("/api/teams/team_support/delete")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    other.stop().await;
}

#[tokio::test]
async fn group_assignment_changes_models_without_a_new_key() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (_, created) = app.post_json("/api/teams/create", seed_team()).await;
    let (status, body) = app
        .post_json(
            "/api/teams/team_support/model-groups/assign",
            json!({"group_name": "claude"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, team) = app
        .get_json("/api/teams/team_support", body["position"].as_i64())
        .await;
    assert_eq!(
        team["allowed_models"],
        json!(["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"])
    );
    assert_eq!(team["key_fingerprint"], created["key_fingerprint"]);

    let (status, body) = app
        .post_json(
            "/api/teams/team_support/model-groups/unassign",
            json!({"group_name": "gpt"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, team) = app
        .get_json("/api/teams/team_support", body["position"].as_i64())
        .await;
    assert_eq!(team["model_groups"], json!(["claude"]));
    assert_eq!(team["allowed_models"], json!(["claude-3-5-sonnet"]));

    // A change to the group's models shows on the team at once.
    let (_, body) = app
        .post_json(
            "/api/model-groups/claude/models",
            json!({"models": ["claude-3-7"]}),
        )
        .await;
    let (_, team) = app
        .get_json("/api/teams/team_support", body["position"].as_i64())
        .await;
    assert_eq!(team["allowed_models"], json!(["claude-3-7"]));

    let response = app
        .admin_post("/api/teams/team_support/model-groups/unassign")
        .json(&json!({"group_name": "gpt"}))
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "model_group_not_assigned").await;
}

#[tokio::test]
async fn settings_suspension_rotation_reveal_and_deletion() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (_, created) = app.post_json("/api/teams/create", seed_team()).await;
    let old_key = created["virtual_key"].as_str().unwrap().to_owned();

    assert_eq!(
        app.post_json(
            "/api/teams/team_support/budget-mode",
            json!({"budget_mode": "soft"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.post_json(
            "/api/teams/team_support/rate-limits",
            json!({"rpm_limit": 10, "tpm_limit": null})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        app.post_json(
            "/api/teams/team_support/markup",
            json!({"markup_percent": 12.5})
        )
        .await
        .0,
        200
    );
    let (status, body) = app
        .post_json(
            "/api/teams/team_support/suspend",
            json!({"reason": "unpaid invoice"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, team) = app
        .get_json("/api/teams/team_support", body["position"].as_i64())
        .await;
    assert_eq!(team["budget_mode"], "soft");
    assert_eq!(team["rpm_limit"], 10);
    assert_eq!(team["tpm_limit"], Value::Null);
    assert_eq!(team["markup_percent"], json!(12.5));
    assert_eq!(team["status"], "suspended");

    let (status, body) = app
        .post_json("/api/teams/team_support/resume", json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, team) = app
        .get_json("/api/teams/team_support", body["position"].as_i64())
        .await;
    assert_eq!(team["status"], "active");

    let (status, rotated) = app
        .post_json("/api/teams/team_support/rotate-key", json!({}))
        .await;
    assert_eq!(status, 200);
    let new_key = rotated["virtual_key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert_ne!(rotated["key_fingerprint"], created["key_fingerprint"]);

    let (status, revealed) = app
        .post_json("/api/teams/team_support/virtual-key", json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(revealed["virtual_key"], new_key);
    let (_, team) = app
        .get_json("/api/teams/team_support", revealed["position"].as_i64())
        .await;
    assert_eq!(team["keys_revealed"], 1);
    assert_eq!(team["key_fingerprint"], rotated["key_fingerprint"]);

    let response = app
        .admin_post("/api/organizations/org_acme/delete")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "organization_has_teams").await;

    let response = app
        .client
        .delete(app.url("/api/teams/team_support"))
        .header("x-admin-key", MASTER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let position = response.json::<Value>().await.unwrap()["position"].as_i64();
    let (_, team) = app.get_json("/api/teams/team_support", position).await;
    assert_eq!(team["status"], "deleted");

    let before = app.event_count().await;
    let response = app
        .admin_post("/api/teams/team_support/credits/add")
        .json(&json!({"amount": 5}))
        .send()
        .await
        .unwrap();
    assert_error(response, 409, "team_deleted").await;
    assert_eq!(app.event_count().await, before);

    // History stays; the organization can go now that its only team is deleted.
    let (status, _) = app
        .post_json("/api/organizations/org_acme/delete", json!({}))
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_amounts_and_unknown_teams_are_refused() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json("/api/teams/create", seed_team()).await;
    let before = app.event_count().await;
    for (amount, code) in [
        (json!(0), "validation_failed"),
        (json!(-3), "validation_failed"),
        (json!(1e10), "validation_failed"),
        (json!(null), "invalid_body"),
    ] {
        let response = app
            .admin_post("/api/teams/team_support/credits/add")
            .json(&json!({"amount": amount}))
            .send()
            .await
            .unwrap();
        assert_error(response, 422, code).await;
    }
    let response = app
        .admin_post("/api/teams/team_nope/credits/add")
        .json(&json!({"amount": 1}))
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "team_not_found").await;
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn teams_are_listed_by_organization() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json(
        "/api/organizations/create",
        json!({"organization_id": "org_b", "name": "B"}),
    )
    .await;
    let mut last = 0;
    for (org, id) in [
        ("org_acme", "team_a1"),
        ("org_b", "team_b1"),
        ("org_acme", "team_a2"),
    ] {
        let (status, body) = app
            .post_json("/api/teams/create", json!({"organization_id": org, "team_id": id, "team_alias": id, "model_groups": ["gpt"]}))
            .await;
        assert_eq!(status, 201);
        last = body["position"].as_i64().unwrap();
    }
    let ids = |body: &Value| -> Vec<String> {
        body["teams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["team_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, all) = app.get_json("/api/teams", Some(last)).await;
    assert_eq!(ids(&all), ["team_a1", "team_b1", "team_a2"]);
    let (_, acme) = app
        .get_json("/api/teams?organization_id=org_acme", None)
        .await;
    assert_eq!(ids(&acme), ["team_a1", "team_a2"]);
    let (_, acme) = app
        .get_json("/api/organizations/org_acme/teams?limit=1", None)
        .await;
    assert_eq!(ids(&acme), ["team_a1"]);
    assert!(acme["next_cursor"].is_string());
    let (status, _) = app
        .get_json("/api/organizations/org_missing/teams", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_team_named_model_group_is_announced_as_that_team_not_as_every_team() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let mut listener = sqlx::postgres::PgListener::connect_with(&app.pool)
        .await
        .unwrap();
    listener.listen("saas_team_changed").await.unwrap();
    let team = app
        .team(crate::helpers::TeamSpec::new("ModelGroup", "10"))
        .await;
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .expect("the team's change is announced")
        .unwrap();
    assert_eq!(
        app::team_keys::TeamChange::parse(note.payload()),
        app::team_keys::TeamChange::Team {
            team_id: "ModelGroup".into(),
            position: team.position
        }
    );
}

/// cqrs-es 0.5 already rebuilds from the events when a snapshot does not deserialize (this
/// passed before any change); the test keeps that true if the repository is ever replaced.
#[tokio::test]
async fn a_team_whose_snapshot_was_written_by_an_older_shape_still_takes_commands() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.team(crate::helpers::TeamSpec::new("team_snap", "0"))
        .await;
    for _ in 0..api::startup::SNAPSHOT_EVERY {
        let (status, body) = app
            .post_json("/api/teams/team_snap/credits/add", json!({"amount": "1"}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // What a release before `markup_percent` existed would have stored.
    let changed = sqlx::query(
        "update snapshots set payload = (payload::jsonb - 'markup_percent')::json
          where aggregate_type = 'Team' and aggregate_id = 'team_snap'",
    )
    .execute(&app.pool)
    .await
    .unwrap()
    .rows_affected();
    assert_eq!(changed, 1, "the team was snapshotted");
    // The new release starts on the old database.
    let database_url = app.database_url.clone();
    app.stop().await;
    let app = crate::helpers::spawn_app_with_database(&database_url, |_| {}).await;

    let (status, body) = app
        .post_json("/api/teams/team_snap/credits/add", json!({"amount": "1"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, team) = app
        .get_json("/api/teams/team_snap", body["position"].as_i64())
        .await;
    assert_eq!(
        crate::helpers::dec(&team["credits"]),
        rust_decimal::Decimal::from(api::startup::SNAPSHOT_EVERY as i64 + 1)
    );
}

/// JSON Schema's `integer` is any number without a fraction: `60.0` and `6e1` are 60, as a
/// client's JSON library may write them; `60.5` is refused and changes nothing.
#[tokio::test]
async fn whole_numbers_written_as_floats_are_whole_numbers() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let (status, created) = app.post_json("/api/teams/create", seed_team()).await;
    assert_eq!(status, 201, "{created}");
    for (rpm, want) in [(json!(60.0), 60), (json!(6e1), 60), (json!(61), 61)] {
        let (status, body) = app
            .post_json(
                "/api/teams/team_support/rate-limits",
                json!({"rpm_limit": rpm, "tpm_limit": null}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (_, team) = app
            .get_json("/api/teams/team_support", body["position"].as_i64())
            .await;
        assert_eq!(team["rpm_limit"], want);
    }
    let events = app.events_of("Team").await;
    for refused in [json!(60.5), json!(-1.0), json!("60")] {
        let (status, body) = app
            .post_json(
                "/api/teams/team_support/rate-limits",
                json!({"rpm_limit": refused}),
            )
            .await;
        assert_eq!(status, 422, "{refused}: {body}");
    }
    assert_eq!(app.events_of("Team").await, events);
}

/// A burst appended together can cross a snapshot boundary with many events: the snapshot must
/// be the state after the last of them, at that sequence (cqrs-es's own commit snapshots the
/// boundary's state, which a repository writing the last sequence would silently mislabel).
#[tokio::test]
async fn a_burst_across_a_snapshot_boundary_snapshots_the_state_it_is_labelled_with() {
    use cqrs_es::Aggregate;
    let app = spawn_app().await;
    app.seed_catalog().await;
    app.post_json("/api/teams/create", seed_team()).await;
    let every = api::startup::SNAPSHOT_EVERY as i64;
    loop {
        let events = team_events(&app, "CreditsAdded").await.len() as i64;
        if events + 1 >= every - 3 {
            break;
        }
        let (status, _) = app
            .post_json(
                "/api/teams/team_support/credits/add",
                json!({"amount": "0.01"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let requests = (0..32)
        .map(|i| {
            (
                "/api/teams/team_support/rate-limits".to_owned(),
                json!({"rpm_limit": 1000 + i, "tpm_limit": 100000}),
            )
        })
        .collect();
    for (status, body) in burst(&app, requests).await {
        assert_eq!(status, 200, "{body}");
    }
    let (last_sequence, payload): (i64, Value) = sqlx::query_as(
        "select last_sequence, payload::jsonb from snapshots
          where aggregate_type = 'Team' and aggregate_id = 'team_support'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the team was snapshotted");
    assert!(last_sequence >= every, "{last_sequence}");
    let mut conn = app.pool.acquire().await.unwrap();
    let mut folded = domain::team::Team::default();
    for event in store::event_log::read_stream(&mut conn, "Team", "team_support")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.sequence <= last_sequence)
    {
        folded.apply(event.decode().unwrap());
    }
    assert_eq!(payload, serde_json::to_value(&folded).unwrap());
}

//! LiteLLM sync against the in-process double: the reconciler makes LiteLLM match our state,
//! keeps it matching, and converges after outages.

use std::time::Duration;

use litellm::double::{Fault, LitellmDouble};
use serde_json::{Value, json};

use crate::helpers::{
    LITELLM_MASTER, TeamSpec, TestApp, double, spawn_app_with_double, wait_in_sync,
};

async fn app_with(double: &LitellmDouble, resync: Duration) -> TestApp {
    spawn_app_with_double(double, |c| c.litellm_resync_every = resync).await
}

async fn create_team(app: &TestApp, team_id: &str) -> (String, i64) {
    let spec = TeamSpec::new(team_id, "0")
        .set("credits", 120)
        .set("markup_percent", 20)
        .set("rpm_limit", 60);
    let team = app.team(spec).await;
    (team.key, team.position)
}

/// A double, an app syncing with it (every team re-checked each `resync`), the catalog, and
/// `team_id` created and in sync in LiteLLM; returns them with the team's key.
async fn synced_team(resync: Duration, team_id: &str) -> (LitellmDouble, TestApp, String) {
    let double = double().await;
    let app = app_with(&double, resync).await;
    app.seed_catalog().await;
    let (key, position) = create_team(&app, team_id).await;
    wait_in_sync(&app, team_id, position).await;
    (double, app, key)
}

/// Waits up to 15 s for `done`, checking every 100 ms; fails with `what` if it never holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn litellm_follows_every_team_command() {
    let (double, app, key) = synced_team(Duration::from_secs(300), "team_s").await;
    let team = double.team("team_s").expect("team created in LiteLLM");
    assert_eq!(team["models"], json!(["gpt-4o", "gpt-4o-mini"]));
    assert_eq!(
        team["max_budget"],
        json!(100.0),
        "120 credits at 20% markup = 100 of provider cost"
    );
    assert_eq!(team["rpm_limit"], 60);
    assert_eq!(
        double.key(&key).expect("our key is in LiteLLM")["team_id"],
        "team_s"
    );

    let (_, body) = app
        .post_json(
            "/api/teams/team_s/model-groups/assign",
            json!({"group_name": "claude"}),
        )
        .await;
    wait_in_sync(&app, "team_s", body["position"].as_i64().unwrap()).await;
    assert_eq!(
        double.team("team_s").unwrap()["models"],
        json!(["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"])
    );

    let (_, body) = app.post_json("/api/teams/team_s/suspend", json!({})).await;
    wait_in_sync(&app, "team_s", body["position"].as_i64().unwrap()).await;
    assert_eq!(double.team("team_s").unwrap()["blocked"], true);
    assert_eq!(double.key(&key).unwrap()["blocked"], true);

    let (_, body) = app.post_json("/api/teams/team_s/resume", json!({})).await;
    wait_in_sync(&app, "team_s", body["position"].as_i64().unwrap()).await;
    assert_eq!(double.team("team_s").unwrap()["blocked"], false);
    assert_eq!(double.key(&key).unwrap()["blocked"], false);

    let (_, body) = app
        .post_json(
            "/api/teams/team_s/budget-mode",
            json!({"budget_mode": "soft"}),
        )
        .await;
    wait_in_sync(&app, "team_s", body["position"].as_i64().unwrap()).await;
    assert_eq!(double.team("team_s").unwrap()["max_budget"], Value::Null);
    assert_eq!(double.team("team_s").unwrap()["soft_budget"], json!(80.0));

    let (_, rotated) = app
        .post_json("/api/teams/team_s/rotate-key", json!({}))
        .await;
    wait_in_sync(&app, "team_s", rotated["position"].as_i64().unwrap()).await;
    let new_key = rotated["virtual_key"].as_str().unwrap();
    assert!(double.key(new_key).is_some(), "the new key is live");
    assert!(double.key(&key).is_none(), "the old key is gone");

    let (_, body) = app.post_json("/api/teams/team_s/delete", json!({})).await;
    wait_in_sync(&app, "team_s", body["position"].as_i64().unwrap()).await;
    assert!(double.team("team_s").is_none());
    assert!(double.key(new_key).is_none());
}

#[tokio::test]
async fn a_model_group_change_resyncs_its_teams() {
    let (double, app, _) = synced_team(Duration::from_secs(300), "team_g").await;
    let (_, body) = app
        .post_json(
            "/api/model-groups/gpt/models",
            json!({"models": ["gpt-4o-mini"]}),
        )
        .await;
    wait_in_sync(&app, "team_g", body["position"].as_i64().unwrap()).await;
    assert_eq!(
        double.team("team_g").unwrap()["models"],
        json!(["gpt-4o-mini"])
    );
}

#[tokio::test]
async fn changes_made_while_litellm_is_down_all_arrive() {
    let double = double().await;
    let app = app_with(&double, Duration::from_secs(300)).await;
    app.seed_catalog().await;
    double.stop();
    let mut last = 0;
    for i in 0..3 {
        let (_, position) = create_team(&app, &format!("team_d{i}")).await;
        last = position;
    }
    // 3 creations + 196 credit additions + 1 suspension = 200 commands while LiteLLM is down.
    for _ in 0..196 {
        let (status, body) = app
            .post_json("/api/teams/team_d0/credits/add", json!({"amount": 6}))
            .await;
        assert_eq!(status, 200);
        last = body["position"].as_i64().unwrap();
    }
    app.post_json("/api/teams/team_d1/suspend", json!({})).await;
    // While down: failing, with the reason, and a retry planned.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, status) = app.get_json("/api/sync/status", None).await;
        if status["teams"]["failing"].as_i64().unwrap_or(0) > 0 {
            let failing = &status["not_in_sync"][0];
            assert!(
                failing["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("unreachable"),
                "{status}"
            );
            assert!(!status.to_string().contains(LITELLM_MASTER));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failure reported: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    double.resume().await.unwrap();
    for team in ["team_d0", "team_d1", "team_d2"] {
        wait_in_sync(&app, team, if team == "team_d0" { last } else { 0 }).await;
    }
    // 120 + 196 × 6 = 1296 credits at 20% markup = 1080 provider budget.
    assert_eq!(double.team("team_d0").unwrap()["max_budget"], json!(1080.0));
    assert_eq!(double.team("team_d1").unwrap()["blocked"], true);
    assert!(double.team("team_d2").is_some());
}

#[tokio::test]
async fn drift_made_by_hand_is_repaired_by_the_periodic_pass() {
    let (double, _app, key) = synced_team(Duration::from_secs(1), "team_h").await;
    double.tamper_team("team_h", "models", json!(["claude-3-5-sonnet"]));
    double.tamper_team("team_h", "max_budget", json!(1_000_000.0));
    double.delete_key_by_hand(&key);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let team = double.team("team_h").unwrap();
        if team["models"] == json!(["gpt-4o", "gpt-4o-mini"])
            && team["max_budget"] == json!(100.0)
            && double.key(&key).is_some()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drift not repaired: {team}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The team and key calls made to LiteLLM after the first `skip` requests.
fn team_and_key_calls(double: &LitellmDouble, skip: usize) -> Vec<String> {
    double.urls()[skip..]
        .iter()
        .filter(|url| url.starts_with("/team/") || url.starts_with("/key/"))
        .map(|url| url.split('?').next().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_change_to_a_team_in_sync_costs_one_look_and_one_update() {
    let (double, app, _) = synced_team(Duration::from_secs(300), "team_c").await;
    let before = double.urls().len();
    let (_, body) = app
        .post_json("/api/teams/team_c/credits/add", json!({"amount": "12"}))
        .await;
    wait_in_sync(&app, "team_c", body["position"].as_i64().unwrap()).await;
    assert_eq!(double.team("team_c").unwrap()["max_budget"], json!(110.0));
    // The key is seen in the team's own listing: no key call at all.
    assert_eq!(
        team_and_key_calls(&double, before),
        ["/team/info", "/team/update"]
    );
}

#[tokio::test]
async fn a_key_blocked_or_deleted_by_hand_is_put_right_by_the_periodic_pass() {
    let (double, _app, key) = synced_team(Duration::from_secs(1), "team_k").await;
    let hash = litellm::key_hash(&key);
    let blocked = reqwest::Client::new()
        .post(format!("{}/key/block", double.base_url()))
        .bearer_auth(LITELLM_MASTER)
        .json(&json!({"key": hash}))
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), 200);
    assert_eq!(double.key(&key).unwrap()["blocked"], true);
    eventually("a key blocked by hand stayed blocked", || {
        double.key(&key).unwrap()["blocked"] == false
    })
    .await;

    double.delete_key_by_hand(&key);
    eventually("a key deleted by hand was not put back", || {
        double.key(&key).is_some()
    })
    .await;
    assert_eq!(double.key(&key).unwrap()["team_id"], "team_k");
}

#[tokio::test]
async fn two_instances_share_the_work_without_repeating_it() {
    let double = double().await;
    let first = app_with(&double, Duration::from_secs(300)).await;
    let url = double.base_url();
    let second = {
        let database_url = first.database_url.clone();
        crate::helpers::spawn_app_with_database(&database_url, move |c| {
            c.litellm_proxy_url = url;
            c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
        })
        .await
    };
    first.seed_catalog().await;
    let mut positions = Vec::new();
    for i in 0..10 {
        let app = if i % 2 == 0 { &first } else { &second };
        positions.push((
            format!("team_p{i}"),
            create_team(app, &format!("team_p{i}")).await.1,
        ));
    }
    for (team, position) in &positions {
        wait_in_sync(&first, team, *position).await;
    }
    // One team creation and one key per team: nothing was done twice.
    assert_eq!(double.mutations(), 20);
}

#[tokio::test]
async fn errors_from_litellm_are_retried_until_it_recovers() {
    let double = double().await;
    let app = app_with(&double, Duration::from_secs(300)).await;
    app.seed_catalog().await;
    double.set_fault(Fault::ServerError);
    let (_, position) = create_team(&app, "team_e").await;
    let team = app
        .get_until(
            "/api/teams/team_e",
            Duration::from_secs(10),
            "the sync shows as failing",
            |team| team["litellm_sync"]["status"] == "failing",
        )
        .await;
    assert!(team["litellm_sync"]["attempts"].as_i64().unwrap() >= 1);
    double.set_fault(Fault::None);
    wait_in_sync(&app, "team_e", position).await;
    assert!(double.team("team_e").is_some());
}

#[tokio::test]
async fn model_names_are_checked_against_the_litellm_catalog() {
    let double = double().await;
    let app = app_with(&double, Duration::from_secs(300)).await;
    let response = app
        .admin_post("/api/model-groups/create")
        .json(&json!({"group_name": "gpt", "models": ["GPT-4o", "gpt-4o-mini"]}))
        .send()
        .await
        .unwrap();
    let body = crate::helpers::assert_error(response, 422, "unknown_models").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"GPT-4o\" (did you mean \"gpt-4o\"?)"),
        "{message}"
    );
    assert!(
        message.contains("claude-3-5-sonnet"),
        "lists the known names: {message}"
    );
    assert_eq!(app.event_count().await, 0);

    let (status, body) = app
        .post_json(
            "/api/model-groups/create",
            json!({"group_name": "gpt", "models": ["gpt-4o"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, group) = app
        .get_json("/api/model-groups/gpt", body["position"].as_i64())
        .await;
    assert_eq!(group["verified"], true);

    // LiteLLM unreachable: accepted, flagged unverified.
    double.stop();
    let (status, body) = app
        .post_json(
            "/api/model-groups/create",
            json!({"group_name": "later", "models": ["future-model"]}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, group) = app
        .get_json("/api/model-groups/later", body["position"].as_i64())
        .await;
    assert_eq!(group["verified"], false);
}

#[tokio::test]
async fn a_restarted_service_resumes_pending_sync() {
    let double = double().await;
    let first = app_with(&double, Duration::from_secs(300)).await;
    first.seed_catalog().await;
    double.stop();
    let mut positions = Vec::new();
    for i in 0..4 {
        positions.push((
            format!("team_r{i}"),
            create_team(&first, &format!("team_r{i}")).await.1,
        ));
    }
    let database_url = first.database_url.clone();
    first.stop().await;

    double.resume().await.unwrap();
    let url = double.base_url();
    let second = crate::helpers::spawn_app_with_database(&database_url, move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
    })
    .await;
    for (team, position) in &positions {
        wait_in_sync(&second, team, *position).await;
        assert!(double.team(team).is_some());
    }
}

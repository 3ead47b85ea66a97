//! The audit trail: history with actors, filters and cursors, and answers as of an instant that
//! match a fold of the same events done by hand.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{TeamSpec, TestApp, assert_error, dec, spawn_app, spawn_app_with};

async fn team(app: &TestApp, team_id: &str, credits: &str) {
    app.team(TeamSpec::new(team_id, credits).markup("50")).await;
}

/// An instant strictly between what was written before and what is written after.
async fn instant_between() -> DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t
}

fn types(events: &Value) -> Vec<String> {
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn history_shows_every_command_with_its_actor_and_request() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    team(&app, "team_h", "10").await;
    for (path, body) in [
        (
            "/api/teams/team_h/credits/add",
            json!({"amount": 5, "reason": "top-up"}),
        ),
        ("/api/teams/team_h/suspend", json!({"reason": "unpaid"})),
        ("/api/teams/team_h/resume", json!({})),
        ("/api/teams/team_h/rotate-key", json!({})),
    ] {
        let (status, body) = app.post_json(path, body).await;
        assert!(status < 300, "{path}: {body}");
    }
    let (status, history) = app.get_json("/api/teams/team_h/history", None).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(
        types(&history),
        [
            "TeamCreated",
            "CreditsAdded",
            "TeamSuspended",
            "TeamResumed",
            "VirtualKeyRotated"
        ]
    );
    for event in history["events"].as_array().unwrap() {
        assert!(
            event["actor"].as_str().unwrap().starts_with("admin:"),
            "{event}"
        );
        assert!(event["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(event["recorded_at"].is_string());
    }
    assert_eq!(history["events"][1]["payload"]["reason"], "top-up");
    // Readable, and no secret: the key appears only as its fingerprint.
    let text = history.to_string();
    assert!(
        !text.contains("sk-"),
        "a key leaked into the history: {text}"
    );

    let (status, _) = app.get_json("/api/teams/team_nobody/history", None).await;
    assert_eq!(status, 404);
}

/// An organization's audit finds its teams through the teams read model: a team created a
/// moment ago, which that model does not show yet, is not left out of an answer given as
/// complete; the answer waits for it (or says the model is behind).
#[tokio::test]
async fn an_organizations_audit_never_leaves_out_a_team_just_created() {
    let app = spawn_app_with(|config| config.read_wait_timeout = Duration::from_millis(800)).await;
    app.seed_catalog().await;
    // Hold the teams projector's checkpoint row, as a stalled projector would.
    let blocker = app.stall_projector("teams").await;
    team(&app, "team_new", "10").await;

    let response = app
        .admin_get("/api/audit/events?organization_id=org_acme")
        .send()
        .await
        .unwrap();
    assert_error(response, 503, "projection_lag").await;

    blocker.rollback().await.unwrap();
    let (status, org) = app
        .get_json("/api/audit/events?organization_id=org_acme", None)
        .await;
    assert_eq!(status, 200, "{org}");
    assert_eq!(types(&org), ["OrganizationCreated", "TeamCreated"]);
}

#[tokio::test]
async fn audit_events_filter_and_page_by_position() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    team(&app, "team_a1", "10").await;
    team(&app, "team_a2", "10").await;
    app.post_json("/api/teams/team_a1/credits/add", json!({"amount": 1}))
        .await;
    app.post_json("/api/teams/team_a2/credits/add", json!({"amount": 2}))
        .await;

    let (_, credits) = app
        .get_json("/api/audit/events?event_type=CreditsAdded", None)
        .await;
    assert_eq!(types(&credits), ["CreditsAdded", "CreditsAdded"]);
    let (_, one_team) = app
        .get_json("/api/audit/events?team_id=team_a2", None)
        .await;
    assert_eq!(types(&one_team), ["TeamCreated", "CreditsAdded"]);
    let (_, org) = app
        .get_json("/api/audit/events?organization_id=org_acme", None)
        .await;
    assert_eq!(
        types(&org),
        [
            "OrganizationCreated",
            "TeamCreated",
            "TeamCreated",
            "CreditsAdded",
            "CreditsAdded"
        ]
    );

    // Pages of two, in global order, until the cursor runs out.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/audit/events?limit=2&cursor={c}"),
            None => "/api/audit/events?limit=2".to_owned(),
        };
        let (status, page) = app.get_json(&path, None).await;
        assert_eq!(status, 200, "{page}");
        for event in page["events"].as_array().unwrap() {
            seen.push(event["position"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(seen.len() as i64, total);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));

    // Time range and actor: nothing recorded in the future, everything by the admin.
    let (_, future) = app
        .get_json("/api/audit/events?from=2999-01-01T00:00:00Z", None)
        .await;
    assert_eq!(future["events"].as_array().unwrap().len(), 0);
    let actor = org["events"][0]["actor"].as_str().unwrap().to_owned();
    let (_, by_actor) = app
        .get_json(&format!("/api/audit/events?actor={actor}&limit=1000"), None)
        .await;
    assert_eq!(by_actor["events"].as_array().unwrap().len() as i64, total);

    for (path, code) in [
        ("/api/audit/events?from=yesterday", "invalid_time"),
        ("/api/audit/events?cursor=abc", "invalid_cursor"),
        ("/api/audit/events?limit=0", "invalid_query"),
    ] {
        assert_error(app.admin_get(path).send().await.unwrap(), 400, code).await;
    }
    let response = app
        .client
        .get(app.url("/api/audit/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// Credits by hand: the last `credits_total` (or the initial credits) among the team's events
/// recorded up to `as_of`.
async fn credits_by_hand(app: &TestApp, team_id: &str, as_of: DateTime<Utc>) -> Decimal {
    let payloads: Vec<Value> = sqlx::query_scalar(
        "select payload from events where aggregate_type = 'Team' and aggregate_id = $1
            and recorded_at <= $2 order by sequence",
    )
    .bind(team_id)
    .bind(as_of)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut credits = Decimal::ZERO;
    for payload in payloads {
        if let Some(created) = payload.get("TeamCreated") {
            credits = dec(&created["credits"]);
        }
        if let Some(added) = payload.get("CreditsAdded") {
            credits = dec(&added["credits_total"]);
        }
    }
    credits
}

#[tokio::test]
async fn a_team_as_of_an_instant_matches_its_events_up_to_then() {
    let app = spawn_app().await;
    app.seed_catalog().await;
    let before = instant_between().await;
    team(&app, "team_t", "10").await;
    let first = instant_between().await;
    app.post_json("/api/teams/team_t/credits/add", json!({"amount": "2.5"}))
        .await;
    app.post_json(
        "/api/teams/team_t/model-groups/assign",
        json!({"group_name": "claude"}),
    )
    .await;
    let (status, _) = app.post_json("/api/teams/team_t/suspend", json!({})).await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [{"request_id": "req_1", "team_id": "team_t", "model": "gpt-4o",
                "prompt_tokens": 10, "completion_tokens": 5, "provider_cost": "0.2",
                "occurred_at": Utc::now().to_rfc3339()}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let second = instant_between().await;
    app.post_json(
        "/api/usage/records",
        json!({"records": [{"request_id": "req_2", "team_id": "team_t", "model": "gpt-4o-mini",
            "prompt_tokens": 1, "completion_tokens": 1, "provider_cost": "1",
            "occurred_at": Utc::now().to_rfc3339()}]}),
    )
    .await;

    let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (status, then) = app
        .get_json(&format!("/api/teams/team_t?as_of={}", at(first)), None)
        .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(
        dec(&then["credits"]),
        credits_by_hand(&app, "team_t", first).await
    );
    assert_eq!(dec(&then["credits"]), Decimal::from(10));
    assert_eq!(then["status"], "active");
    assert_eq!(then["model_groups"], json!(["gpt"]));
    assert_eq!(then["allowed_models"], json!(["gpt-4o", "gpt-4o-mini"]));
    assert_eq!(dec(&then["spend"]), Decimal::ZERO);
    let changes: Vec<&str> = then["changed_since"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["CreditsAdded", "ModelGroupAssigned", "TeamSuspended"]
    );
    assert!(
        then["changed_since"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("admin:")
    );

    let (_, later) = app
        .get_json(&format!("/api/teams/team_t?as_of={}", at(second)), None)
        .await;
    assert_eq!(
        dec(&later["credits"]),
        credits_by_hand(&app, "team_t", second).await
    );
    assert_eq!(dec(&later["credits"]), Decimal::from_str("12.5").unwrap());
    assert_eq!(later["status"], "suspended");
    assert_eq!(
        later["allowed_models"],
        json!(["claude-3-5-sonnet", "gpt-4o", "gpt-4o-mini"])
    );
    // 0.2 at 50 % markup.
    assert_eq!(dec(&later["spend"]), Decimal::from_str("0.3").unwrap());

    // Usage as of `second` counts req_1 only; now it counts both.
    let (status, usage_then) = app
        .get_json(
            &format!("/api/teams/team_t/usage?as_of={}", at(second)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{usage_then}");
    assert_eq!(usage_then["request_count"], 1);
    assert_eq!(
        dec(&usage_then["total_spend"]),
        Decimal::from_str("0.3").unwrap()
    );
    assert!(usage_then["models_used"].get("gpt-4o-mini").is_none());
    let now = app
        .get_until(
            "/api/teams/team_t/usage",
            Duration::from_secs(10),
            "both records",
            |u| u["request_count"] == 2,
        )
        .await;
    assert_eq!(dec(&now["total_spend"]), Decimal::from_str("1.8").unwrap());

    let (status, _) = app
        .get_json(&format!("/api/teams/team_t?as_of={}", at(before)), None)
        .await;
    assert_eq!(status, 404, "the team did not exist yet");
    assert_error(
        app.admin_get("/api/teams/team_t?as_of=last-week")
            .send()
            .await
            .unwrap(),
        400,
        "invalid_time",
    )
    .await;
}

//! Spend that reaches LiteLLM directly (with a team's key) flows into our ledger: pulled from
//! `/spend/logs/v2` (double), pushed by the `generic_api` callback, counted once either way,
//! across restarts; and reconciled against LiteLLM's own counters.

use std::str::FromStr;
use std::time::Duration;

use chrono::Utc;
use litellm::double::{Fault, LitellmDouble, SpendEntry};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{
    LITELLM_MASTER, TeamSpec, TestApp, assert_error, dec, double, spawn_app, spawn_app_with,
    spawn_app_with_database,
};

const PUSH_TOKEN: &str = "push-token-5f2a9c7e1b3d";

fn configure(c: &mut api::config::Config, double_url: String) {
    c.litellm_proxy_url = double_url;
    c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
    c.spend_ingest.poll_every = Duration::from_millis(100);
    c.spend_ingest.push_token = Some(PUSH_TOKEN.to_owned().into());
}

async fn app_with(double: &LitellmDouble) -> TestApp {
    let url = double.base_url();
    spawn_app_with(move |c| configure(c, url)).await
}

/// A team in sync with LiteLLM; returns its plaintext key.
async fn synced_team(app: &TestApp, team_id: &str) -> String {
    let spec = TeamSpec::new(team_id, "0")
        .set("credits", 100)
        .set("markup_percent", 25);
    app.team_in_sync(spec).await.key
}

/// The team's key as LiteLLM names it in what it logs: SHA-256 in hex.
async fn key_hash(app: &TestApp, team_id: &str) -> String {
    sqlx::query_scalar("select encode(key_hash, 'hex') from virtual_keys where team_id = $1")
        .bind(team_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn minutes_ago(minutes: i64) -> String {
    (Utc::now() - chrono::Duration::minutes(minutes))
        .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        .to_string()
}

/// Polls the team's usage until it counts `requests`.
async fn usage_with(app: &TestApp, team_id: &str, requests: i64) -> Value {
    app.get_until(
        &format!("/api/teams/{team_id}/usage"),
        Duration::from_secs(15),
        &format!("usage never reached {requests} requests"),
        |usage| usage["request_count"] == requests,
    )
    .await
}

#[tokio::test]
async fn direct_traffic_is_ingested_once_across_restarts() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = synced_team(&app, "team_d").await;

    double.record_spend([
        SpendEntry::success("chatcmpl-1", &key, "gpt-4o", "0.000123", &minutes_ago(1)),
        SpendEntry::success("chatcmpl-2", &key, "gpt-4o-mini", "2", &minutes_ago(1)),
        SpendEntry::success("chatcmpl-3", &key, "gpt-4o", "1.5e-05", &minutes_ago(0)),
        SpendEntry::success(
            "chatcmpl-x",
            "sk-somebody-elses-key-123456",
            "gpt-4o",
            "9",
            &minutes_ago(0),
        ),
    ]);
    let usage = usage_with(&app, "team_d", 3).await;
    let cost = Decimal::from_str("2.000138").unwrap();
    assert_eq!(
        dec(&usage["provider_cost"]),
        cost,
        "LiteLLM's cost, digit for digit"
    );
    assert_eq!(
        dec(&usage["total_spend"]),
        cost * Decimal::from_str("1.25").unwrap()
    );
    assert_eq!(usage["models_used"]["gpt-4o"]["requests"], 2);
    // The pass counts what it read once its records are appended, so the usage above can
    // show before the cursor does.
    let status = app
        .get_until(
            "/api/usage/ingestion",
            Duration::from_secs(10),
            "the pass never counted the row that is not ours",
            |status| status["cursors"][0]["not_ours"].as_i64() >= Some(1),
        )
        .await;
    assert!(status["cursors"][0]["last_error"].is_null(), "{status}");

    // A restart re-reads the overlapping window: the old rows count once, the new ones once.
    let database = app.database_url.clone();
    app.stop().await;
    double.record_spend([
        SpendEntry::success("chatcmpl-4", &key, "gpt-4o", "0.5", &minutes_ago(0)),
        SpendEntry::success("chatcmpl-5", &key, "gpt-4o", "0.25", &minutes_ago(0)),
    ]);
    let url = double.base_url();
    let app = spawn_app_with_database(&database, move |c| configure(c, url)).await;
    usage_with(&app, "team_d", 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let usage = usage_with(&app, "team_d", 5).await;
    assert_eq!(
        dec(&usage["provider_cost"]),
        Decimal::from_str("2.750138").unwrap()
    );
    assert_eq!(app.events_of("Usage").await, 5);
}

#[tokio::test]
async fn pushed_and_pulled_usage_count_once() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = synced_team(&app, "team_p").await;
    let hash = key_hash(&app, "team_p").await;
    // Started now, as the double's rows of the same calls below (after the database's identity
    // cutover, so both are known by request id and call id).
    let start = Utc::now().timestamp_millis() as f64 / 1000.0;
    let item = |id: &str, cost: &str| {
        // The call id LiteLLM gave the call (the double's rows: `call-<request id>`).
        json!({"id": id, "litellm_call_id": format!("call-{id}"), "status": "success",
               "response_cost": cost.parse::<serde_json::Number>().unwrap(),
               "prompt_tokens": 10, "completion_tokens": 5, "model": "openai/gpt-4o", "model_group": "gpt-4o",
               "startTime": start, "endTime": start + 0.2,
               "metadata": {"user_api_key_hash": hash, "user_api_key_team_id": "team_p"}})
    };
    let body = json!([item("chatcmpl-p1", "0.01"), item("chatcmpl-p2", "0.02")]);

    let push = |token: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/litellm/spend-push"))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_error(push(None).await.unwrap(), 401, "unauthorized").await;
    assert_error(
        push(Some("push-token-wrong-guess")).await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let response = push(Some(PUSH_TOKEN)).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["recorded"], 2, "{answer}");
    // LiteLLM retries a batch: nothing new.
    let again: Value = push(Some(PUSH_TOKEN)).await.unwrap().json().await.unwrap();
    assert_eq!(again["recorded"], 0);
    assert_eq!(again["duplicates"], 2);

    // The same request later shows up in the spend logs too; it still counts once.
    double.record_spend([
        SpendEntry::success("chatcmpl-p1", &key, "gpt-4o", "0.01", &minutes_ago(0)),
        SpendEntry::success("chatcmpl-p3", &key, "gpt-4o", "0.03", &minutes_ago(0)),
    ]);
    let usage = usage_with(&app, "team_p", 3).await;
    assert_eq!(
        dec(&usage["provider_cost"]),
        Decimal::from_str("0.06").unwrap()
    );

    let garbage = app
        .client
        .post(app.url("/api/litellm/spend-push"))
        .bearer_auth(PUSH_TOKEN)
        .body("not json at all")
        .send()
        .await
        .unwrap();
    assert_error(garbage, 400, "invalid_json").await;

    let plain = spawn_app().await;
    let response = plain
        .client
        .post(plain.url("/api/litellm/spend-push"))
        .bearer_auth(PUSH_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "push_disabled").await;
}

#[tokio::test]
async fn reconciliation_shows_drift_from_litellm() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = synced_team(&app, "team_r").await;
    double.record_spend([
        SpendEntry::success("chatcmpl-r1", &key, "gpt-4o", "0.125", &minutes_ago(0)),
        SpendEntry::success("chatcmpl-r2", &key, "gpt-4o", "0.375", &minutes_ago(0)),
    ]);
    usage_with(&app, "team_r", 2).await;
    let (status, report) = app.get_json("/api/teams/team_r/reconciliation", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["in_agreement"], true, "{report}");
    assert_eq!(
        dec(&report["team"]["recorded"]),
        Decimal::from_str("0.5").unwrap()
    );
    assert_eq!(
        dec(&report["key"]["litellm"]),
        Decimal::from_str("0.5").unwrap()
    );

    // Someone edits LiteLLM's counter by hand: the drift shows, with its sign.
    double.tamper_team("team_r", "spend", json!(2.5));
    let (_, report) = app.get_json("/api/teams/team_r/reconciliation", None).await;
    assert_eq!(report["in_agreement"], false);
    assert_eq!(report["team"]["status"], "litellm_higher");
    assert_eq!(dec(&report["team"]["drift"]), Decimal::from(2));
    assert_eq!(report["key"]["status"], "in_agreement");

    double.set_fault(Fault::ServerError);
    let response = app
        .admin_get("/api/teams/team_r/reconciliation")
        .send()
        .await
        .unwrap();
    assert_error(response, 503, "litellm_unavailable").await;
    double.set_fault(Fault::None);

    let response = app
        .admin_get("/api/teams/nope/reconciliation")
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "team_not_found").await;
    let plain = spawn_app().await;
    plain.seed_catalog().await;
    let (status, created) = plain
        .post_json(
            "/api/teams/create",
            json!({"organization_id": "org_acme", "team_id": "team_q", "team_alias": "q"}),
        )
        .await;
    assert_eq!(status, 201);
    let position = created["position"].as_i64().unwrap();
    let response = plain
        .get_after("/api/teams/team_q/reconciliation", position)
        .await;
    assert_error(response, 409, "litellm_not_configured").await;
}

#[tokio::test]
async fn ingestion_survives_litellm_outages() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = synced_team(&app, "team_o").await;
    double.set_fault(Fault::ServerError);
    double.record_spend([SpendEntry::success(
        "chatcmpl-o1",
        &key,
        "gpt-4o",
        "1",
        &minutes_ago(0),
    )]);
    app.get_until(
        "/api/usage/ingestion",
        Duration::from_secs(10),
        "no error shown",
        |status| status["cursors"][0]["last_error"].as_str().is_some(),
    )
    .await;
    double.set_fault(Fault::None);
    usage_with(&app, "team_o", 1).await;
    // A poll that began during the outage may still end with its error after the usage came
    // (pushed); the next good poll clears it.
    app.get_until(
        "/api/usage/ingestion",
        Duration::from_secs(10),
        "the error never cleared after LiteLLM came back",
        |status| status["cursors"][0]["last_error"].is_null(),
    )
    .await;
}

/// A client calling LiteLLM directly can set `x-litellm-call-id` to anything, the same value
/// every time or one shaped like ours. Each of its calls is still billed, pulled or pushed.
#[tokio::test]
async fn direct_calls_reusing_a_call_id_are_each_billed() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = synced_team(&app, "team_x").await;
    let shaped_like_ours = format!(
        "saas1-{:x}-{}-{}",
        Utc::now().timestamp(),
        "0".repeat(32),
        "0".repeat(32)
    );
    let direct = |call_id: String| {
        let request = app
            .client
            .post(format!("{}/v1/chat/completions", double.base_url()))
            .bearer_auth(&key)
            .header("x-litellm-call-id", call_id)
            .json(&json!({"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}));
        async move { request.send().await.unwrap() }
    };
    for call_id in ["mine", "mine", &shaped_like_ours, &shaped_like_ours] {
        let response = direct(call_id.to_owned()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-litellm-call-id"], call_id);
    }
    usage_with(&app, "team_x", 4).await;

    // The push of another two such calls: still two more.
    let start = (Utc::now() - chrono::Duration::seconds(5)).timestamp() as f64;
    let item = |id: &str| {
        json!({"id": id, "litellm_call_id": shaped_like_ours, "status": "success", "response_cost": 0.5,
               "prompt_tokens": 10, "completion_tokens": 5, "model": "openai/gpt-4o", "model_group": "gpt-4o",
               "startTime": start, "endTime": start + 0.2,
               "metadata": {"user_api_key_team_id": "team_x"}})
    };
    let response = app
        .client
        .post(app.url("/api/litellm/spend-push"))
        .bearer_auth(PUSH_TOKEN)
        .json(&json!([item("chatcmpl-x1"), item("chatcmpl-x2")]))
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["recorded"], 2, "{answer}");
    usage_with(&app, "team_x", 6).await;
}

/// Two direct calls a provider gave the same response id: LiteLLM's spend log keeps one row,
/// its push carries both, and both are billed. A row of a call from before the upgrade that
/// made call ids part of the identity is still known by its response id alone, so re-reading
/// it across the upgrade bills nothing twice.
#[tokio::test]
async fn direct_calls_a_provider_gave_one_id_are_both_billed_and_old_rows_stay_known() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = synced_team(&app, "team_d").await;
    let hash = key_hash(&app, "team_d").await;
    for call_id in ["call-1", "call-2"] {
        let response = app
            .client
            .post(format!("{}/v1/chat/completions", double.base_url()))
            .bearer_auth(&key)
            .header("x-litellm-call-id", call_id)
            .json(&json!({"model": "gpt-4o", "max_tokens": 5,
                          "messages": [{"role": "user", "content": "[id:chatcmpl-twice]"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    usage_with(&app, "team_d", 1).await;
    assert_eq!(double.spend_log_count(), 1, "LiteLLM logs one row");
    let item = |id: &str, call_id: &str, start: f64| {
        json!({"id": id, "litellm_call_id": call_id, "status": "success", "response_cost": 0.25,
               "prompt_tokens": 10, "completion_tokens": 5, "model": "openai/gpt-4o", "model_group": "gpt-4o",
               "startTime": start, "endTime": start + 0.2,
               "metadata": {"user_api_key_hash": hash, "user_api_key_team_id": "team_d"}})
    };
    let now = Utc::now().timestamp() as f64;
    let push = |items: Value| {
        let request = app
            .client
            .post(app.url("/api/litellm/spend-push"))
            .bearer_auth(PUSH_TOKEN)
            .json(&items);
        async move {
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            answer
        }
    };
    let answer = push(json!([
        item("chatcmpl-twice", "call-1", now),
        item("chatcmpl-twice", "call-2", now)
    ]))
    .await;
    assert_eq!(
        (answer["recorded"].as_i64(), answer["duplicates"].as_i64()),
        (Some(1), Some(1)),
        "{answer}"
    );
    usage_with(&app, "team_d", 2).await;

    // Recorded before the upgrade under the response id alone (as our API still records).
    let start = Utc::now() - chrono::Duration::hours(1);
    let (status, body) = app
        .post_json(
            "/api/usage/records",
            json!({"records": [{"request_id": "chatcmpl-old", "team_id": "team_d", "model": "gpt-4o",
                                "provider_cost": "0.25", "prompt_tokens": 10, "completion_tokens": 5,
                                "occurred_at": start.to_rfc3339()}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let answer = push(json!([item(
        "chatcmpl-old",
        "call-old",
        start.timestamp() as f64
    )]))
    .await;
    assert_eq!(
        (answer["recorded"].as_i64(), answer["duplicates"].as_i64()),
        (Some(0), Some(1)),
        "{answer}"
    );
    usage_with(&app, "team_d", 3).await;
}

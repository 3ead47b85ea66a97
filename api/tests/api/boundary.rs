//! The money and access boundary tried as an adversarial customer would, against the double
//! (each LiteLLM behaviour it models is checked against the real proxy by the contract suite):
//! odd but valid bodies never spend past a hard budget, bodies whose cost cannot be bounded
//! are refused, a team without groups reaches nothing, a stream the client walks away from is
//! billed, and no key travels in a URL.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{
    TeamSpec, TestApp, assert_error, dec, double, spawn_app_with_double, wait_in_sync,
};

async fn team(app: &TestApp, team_id: &str, credits: &str, mode: &str, groups: Value) -> String {
    let spec = TeamSpec::new(team_id, credits).mode(mode).groups(groups);
    app.team_in_sync(spec).await.key
}

async fn chat(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn hello(extra: Value) -> Value {
    let mut body =
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// Source and completion tokens of the one usage record of a test.
async fn the_record(app: &TestApp) -> (String, i64) {
    sqlx::query_as("select source, completion_tokens from usage_records")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Spend recorded for the team once `want` calls are in.
async fn spent(app: &TestApp, team_id: &str, want: i64) -> Decimal {
    let usage = app
        .get_until(
            &format!("/api/teams/{team_id}/usage"),
            Duration::from_secs(15),
            &format!("usage never counted {want}"),
            |usage| usage["request_count"] == want,
        )
        .await;
    dec(&usage["total_spend"])
}

#[tokio::test]
async fn odd_but_valid_bodies_never_spend_past_a_hard_budget() {
    let double = double().await;
    double.set_prices("gpt-4o", "0.00001", "0.00002");
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let key = team(&app, "team_adv", "1", "hard", json!(["gpt"])).await;
    // Each shape bills far more than `max_tokens` alone says: n choices, the larger of two
    // limits, no limit at all (the default), a limit of null.
    let shapes = [
        hello(json!({"n": 8, "max_tokens": 500})),
        hello(json!({"max_tokens": 10, "max_completion_tokens": 3000})),
        hello(json!({})),
        hello(json!({"max_tokens": null, "max_completion_tokens": 2000, "n": 3})),
        hello(json!({"stream": true, "n": 4, "max_tokens": 1000})),
        hello(
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                     "max_completion_tokens": 4000}),
        ),
    ];
    let mut served = 0;
    for wave in 0..4 {
        let calls = (0..32).map(|i| chat(&app, &key, &shapes[(i + wave) % shapes.len()]));
        for response in futures::future::join_all(calls).await {
            match response.status().as_u16() {
                200 => {
                    served += 1;
                    // Read streams to the end so they settle.
                    let _ = response.bytes().await;
                }
                429 => assert_eq!(
                    response.json::<Value>().await.unwrap()["error"]["code"],
                    "budget_exceeded"
                ),
                other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
            }
        }
    }
    assert!(served > 0, "nothing was served");
    let spend = spent(&app, "team_adv", served).await;
    assert!(
        spend <= Decimal::ONE,
        "spent {spend} of 1 over {served} calls"
    );
    assert_eq!(double.spend_log_count() as i64, served);
}

#[tokio::test]
async fn bodies_whose_cost_cannot_be_bounded_are_refused_in_hard_mode_only() {
    let double = double().await;
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let hard = team(&app, "team_hard", "100", "hard", json!(["gpt"])).await;
    let soft = team(&app, "team_soft", "100", "soft", json!(["gpt"])).await;
    let image = json!({"model": "gpt-4o", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/huge.png"}}]}]});
    let audio = hello(
        json!({"modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}),
    );
    let logged = double.spend_log_count();
    for body in [&image, &audio] {
        let refused = assert_error(chat(&app, &hard, body).await, 400, "unbounded_request").await;
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be bounded"),
            "{refused}"
        );
    }
    assert_eq!(
        double.spend_log_count(),
        logged,
        "a refused body reached LiteLLM"
    );
    assert_eq!(chat(&app, &soft, &image).await.status(), 200);
    // Out-of-range values are bad input in either mode, and change nothing.
    for body in [
        hello(json!({"n": 0})),
        hello(json!({"n": 129})),
        hello(json!({"max_completion_tokens": 0})),
        hello(json!({"max_tokens": 10, "max_completion_tokens": "many"})),
        // LiteLLM would stream for "true"; we would wait for JSON and release the hold.
        hello(json!({"stream": "true"})),
        hello(json!({"stream": true, "stream_options": "include_usage"})),
    ] {
        assert_error(chat(&app, &hard, &body).await, 400, "invalid_request").await;
        assert_error(chat(&app, &soft, &body).await, 400, "invalid_request").await;
    }
    let (_, budget) = app.get_json("/api/teams/team_hard/budget", None).await;
    assert!(dec(&budget["spend"]).is_zero(), "{budget}");
}

#[tokio::test]
async fn an_unpriced_model_is_refused_in_hard_mode_never_held_at_zero() {
    let double = double().await;
    double.unprice("gpt-4o-mini");
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let hard = team(&app, "team_h", "100", "hard", json!(["gpt"])).await;
    let soft = team(&app, "team_s", "100", "soft", json!(["gpt"])).await;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let logged = double.spend_log_count();
    assert_error(chat(&app, &hard, &body).await, 400, "model_unpriced").await;
    assert_eq!(double.spend_log_count(), logged);
    assert_eq!(chat(&app, &soft, &body).await.status(), 200);
    assert_eq!(
        chat(&app, &hard, &hello(json!({"max_tokens": 5})))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn prices_past_their_age_bound_refuse_hard_mode_and_no_request_waits_for_them() {
    let double = double().await;
    // Prices are never young enough: as if LiteLLM had been unreachable for too long.
    let app = spawn_app_with_double(&double, |c| c.prices_max_age = Duration::ZERO).await;
    app.seed_catalog().await;
    let hard = team(&app, "team_h", "100", "hard", json!(["gpt"])).await;
    let soft = team(&app, "team_s", "100", "soft", json!(["gpt"])).await;
    let response = chat(&app, &hard, &hello(json!({"max_tokens": 5}))).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, 503, "prices_unavailable").await;
    assert_eq!(
        chat(&app, &soft, &hello(json!({"max_tokens": 5})))
            .await
            .status(),
        200
    );
    // LiteLLM's model list down: the request path never asks it, so soft calls keep working
    // only as far as LiteLLM does; what matters is that no hard call is admitted unpriced.
    double.set_fault(litellm::double::Fault::Slow(Duration::from_secs(30)));
    let started = std::time::Instant::now();
    let response = chat(&app, &hard, &hello(json!({"max_tokens": 5}))).await;
    assert_error(response, 503, "prices_unavailable").await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a hard request waited on LiteLLM's model list"
    );
}

#[tokio::test]
async fn a_team_without_groups_reaches_no_model_at_litellm() {
    let double = double().await;
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let key = team(&app, "team_none", "100", "soft", json!([])).await;
    // Straight at LiteLLM with the team's key: every model refused.
    let direct = |model: &'static str| {
        let (client, url, key) = (app.client.clone(), double.base_url(), key.clone());
        async move {
            client
                .post(format!("{url}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap()
        }
    };
    for model in ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"] {
        let response = direct(model).await;
        assert_eq!(response.status(), 403, "{model} was served directly");
    }
    // Unassigning the last group takes every model away again.
    let (status, body) = app
        .post_json(
            "/api/teams/team_none/model-groups/assign",
            json!({"group_name": "gpt"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_in_sync(&app, "team_none", body["position"].as_i64().unwrap()).await;
    assert_eq!(direct("gpt-4o").await.status(), 200);
    let (status, body) = app
        .post_json(
            "/api/teams/team_none/model-groups/unassign",
            json!({"group_name": "gpt"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_in_sync(&app, "team_none", body["position"].as_i64().unwrap()).await;
    assert_eq!(direct("gpt-4o").await.status(), 403);
    assert_eq!(direct("claude-3-5-sonnet").await.status(), 403);
}

#[tokio::test]
async fn a_stream_the_client_walks_away_from_is_billed_in_full() {
    let double = double().await;
    double.set_chunk_delay(Duration::from_millis(20));
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let key = team(&app, "team_w", "100", "hard", json!(["gpt"])).await;
    // 640 tokens = ten chunks; the client reads one and leaves.
    let mut response = chat(
        &app,
        &key,
        &hello(json!({"stream": true, "max_tokens": 640})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap();
    assert!(first.is_some());
    drop(response);
    let usage = app
        .get_until(
            "/api/teams/team_w/usage",
            Duration::from_secs(15),
            "the abandoned stream was never recorded",
            |usage| usage["request_count"] == 1,
        )
        .await;
    let source: String = sqlx::query_scalar("select source from usage_records")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        source, "gateway",
        "the provider's usage was read to the end"
    );
    assert_eq!(usage["models_used"]["gpt-4o"]["tokens"], 41 + 640);
}

#[tokio::test]
async fn a_stream_that_ends_without_usage_is_recorded_at_an_estimate() {
    let double = double().await;
    double.set_usage_omitted(true);
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let key = team(&app, "team_e", "100", "hard", json!(["gpt"])).await;
    let response = chat(
        &app,
        &key,
        &hello(json!({"stream": true, "max_tokens": 128})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(!text.contains("\"usage\""));
    spent(&app, "team_e", 1).await;
    let (source, completion) = the_record(&app).await;
    assert_eq!(source, "gateway_estimate");
    // 128 tokens of "x " went by: 256 bytes, about 64 tokens, at least one per chunk.
    assert!(completion >= 64, "estimated {completion} completion tokens");
    // The hold is settled like any other call: nothing stays held.
    app.get_until(
        "/api/teams/team_e/budget",
        Duration::from_secs(10),
        "credits stay held",
        |budget| dec(&budget["held"]).is_zero(),
    )
    .await;
}

#[tokio::test]
async fn an_answer_without_usage_is_recorded_at_an_estimate() {
    let double = double().await;
    double.set_usage_omitted(true);
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let key = team(&app, "team_n", "100", "hard", json!(["gpt"])).await;
    let response = chat(&app, &key, &hello(json!({"max_tokens": 100, "n": 2}))).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["usage"].is_null());
    spent(&app, "team_n", 1).await;
    let (source, completion) = the_record(&app).await;
    assert_eq!(source, "gateway_estimate");
    // Two choices of 100 tokens of "x ": 400 bytes, about 100 tokens.
    assert!(
        completion >= 100,
        "estimated {completion} completion tokens"
    );
}

#[tokio::test]
async fn litellms_own_row_of_a_stream_without_usage_is_recorded_instead_of_the_estimate() {
    let double = double().await;
    double.set_usage_omitted(true);
    // LiteLLM logs the request in full; spend ingestion pulls it while the estimate waits.
    let app = spawn_app_with_double(&double, |c| {
        c.estimate_grace = Duration::from_secs(3);
        c.spend_ingest.poll_every = Duration::from_millis(200);
    })
    .await;
    app.seed_catalog().await;
    let key = team(&app, "team_g", "100", "hard", json!(["gpt"])).await;
    let response = chat(
        &app,
        &key,
        &hello(json!({"stream": true, "max_tokens": 128})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let _ = response.text().await.unwrap();
    spent(&app, "team_g", 1).await;
    let (source, completion) = the_record(&app).await;
    assert_eq!(source, "spend_logs");
    assert_eq!(completion, 128);
    // Once the grace is over the estimate is a duplicate: its hold goes back, nothing is added.
    app.get_until(
        "/api/teams/team_g/budget",
        Duration::from_secs(15),
        "the estimate's hold stays",
        |budget| dec(&budget["held"]).is_zero(),
    )
    .await;
    assert_eq!(app.events_of("Usage").await, 1);
}

#[tokio::test]
async fn rate_limit_refusals_pass_on_retry_after() {
    let double = double().await;
    let app = spawn_app_with_double(&double, |_| {}).await;
    app.seed_catalog().await;
    let key = team(&app, "team_rl", "100", "soft", json!(["gpt"])).await;
    let (status, body) = app
        .post_json("/api/teams/team_rl/rate-limits", json!({"rpm_limit": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_in_sync(&app, "team_rl", body["position"].as_i64().unwrap()).await;
    let body = hello(json!({"max_tokens": 5}));
    assert_eq!(chat(&app, &key, &body).await.status(), 200);
    let refused = chat(&app, &key, &body).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "throttling_error");
}

#[tokio::test]
async fn keys_never_travel_in_a_url_to_litellm() {
    let double = double().await;
    let app = spawn_app_with_double(&double, |c| {
        c.litellm_resync_every = Duration::from_millis(300)
    })
    .await;
    app.seed_catalog().await;
    let key = team(&app, "team_url", "100", "hard", json!(["gpt"])).await;
    let (status, body) = app
        .post_json("/api/teams/team_url/suspend", json!({"reason": "x"}))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_in_sync(&app, "team_url", body["position"].as_i64().unwrap()).await;
    let (status, body) = app
        .post_json("/api/teams/team_url/rotate-key", json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["virtual_key"].as_str().unwrap().to_owned();
    wait_in_sync(&app, "team_url", body["position"].as_i64().unwrap()).await;
    // And a few full resyncs, each of which reads the team and its keys back (a new key is
    // also looked up on its own, by hash).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let urls = loop {
        let urls = double.urls();
        if urls.iter().filter(|u| u.starts_with("/team/info")).count() >= 5
            && urls.iter().any(|u| u.starts_with("/key/info"))
        {
            break urls;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no resync read the key: {urls:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for url in &urls {
        assert!(
            !url.contains(&key) && !url.contains(&rotated) && !url.contains("sk-"),
            "a key went to LiteLLM in a URL: {url}"
        );
    }
}

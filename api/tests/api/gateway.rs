//! The request path against the LiteLLM double: team keys, the OpenAI-compatible `/v1`,
//! streaming, budget holds under concurrency, and jobs.

use std::str::FromStr;
use std::time::{Duration, Instant};

use litellm::double::LitellmDouble;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{
    LITELLM_MASTER, TeamSpec, TestApp, assert_error, dec, double, sample, spawn_app_with_database,
    spawn_app_with_double,
};

/// Only the gateway records usage here; ingestion is tested on its own.
async fn app_with(double: &LitellmDouble) -> TestApp {
    spawn_app_with_double(double, |_| {}).await
}

/// A team in sync with LiteLLM at a 25 % markup; returns its key.
async fn team(app: &TestApp, team_id: &str, credits: &str, mode: &str) -> String {
    let spec = TeamSpec::new(team_id, credits).mode(mode).markup("25");
    app.team_in_sync(spec).await.key
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hello there"}]})
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

async fn usage_count(app: &TestApp, team_id: &str, want: i64) -> Value {
    app.get_until(
        &format!("/api/teams/{team_id}/usage"),
        Duration::from_secs(10),
        &format!("usage never counted {want}"),
        |usage| usage["request_count"] == want,
    )
    .await
}

#[tokio::test]
async fn team_keys_are_checked_and_changes_apply_at_once() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_k", "100", "hard").await;

    let models = |key: String| {
        let request = app.client.get(app.url("/v1/models")).bearer_auth(key);
        async move { request.send().await.unwrap() }
    };
    let response = models(key.clone()).await;
    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt-4o", "gpt-4o-mini"]);

    let response = app.client.get(app.url("/v1/models")).send().await.unwrap();
    assert_error(response, 401, "unauthorized").await;
    let body = assert_error(
        models("sk-not-a-key-of-ours-at-all".into()).await,
        401,
        "unauthorized",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown")
    );

    // Suspension: refused on the very next request.
    let (status, _) = app.post_json("/api/teams/team_k/suspend", json!({})).await;
    assert_eq!(status, 200);
    let body = assert_error(models(key.clone()).await, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{body}"
    );
    let (status, _) = app.post_json("/api/teams/team_k/resume", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(models(key.clone()).await.status(), 200);

    // Rotation: the old key is out at once, the new one works.
    let (status, rotated) = app
        .post_json("/api/teams/team_k/rotate-key", json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let body = assert_error(models(key.clone()).await, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rotated"),
        "{body}"
    );
    let new_key = rotated["virtual_key"].as_str().unwrap().to_owned();
    assert_eq!(models(new_key.clone()).await.status(), 200);

    let (status, _) = app.post_json("/api/teams/team_k/delete", json!({})).await;
    assert_eq!(status, 200);
    let body = assert_error(models(new_key).await, 401, "unauthorized").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deleted"),
        "{body}"
    );
}

#[tokio::test]
async fn a_chat_call_is_forwarded_and_recorded_once() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_c", "100", "hard").await;

    let response = chat(&app, &key, &chat_body("gpt-4o")).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "chat.completion");
    let usage = usage_count(&app, "team_c", 1).await;
    // The double bills like a worst-case provider: a prompt token per byte of the messages
    // (41) at 0.000001, and all of max_tokens (50) at 0.000002.
    let cost = Decimal::from_str("0.000141").unwrap();
    assert_eq!(dec(&usage["provider_cost"]), cost);
    assert_eq!(
        dec(&usage["total_spend"]),
        cost * Decimal::from_str("1.25").unwrap()
    );
    assert_eq!(usage["models_used"]["gpt-4o"]["tokens"], 91);
    assert_eq!(app.events_of("Usage").await, 1);
    let source: String =
        sqlx::query_scalar("select source from usage_records where team_id = 'team_c'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(source, "gateway");

    // A model outside the team's groups never reaches LiteLLM.
    let logged = double.spend_log_count();
    let response = chat(&app, &key, &chat_body("claude-3-5-sonnet")).await;
    let body = assert_error(response, 403, "model_not_allowed").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-4o")
    );
    assert_eq!(double.spend_log_count(), logged);
    let response = chat(&app, &key, &json!({"messages": []})).await;
    assert_error(response, 400, "invalid_request").await;
    let response = chat(
        &app,
        &key,
        &json!({"model": "gpt-4o", "messages": [], "max_tokens": 0}),
    )
    .await;
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn streams_pass_through_as_they_come_and_are_never_free() {
    let double = double().await;
    double.set_chunk_delay(Duration::from_millis(150));
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_s", "100", "hard").await;

    let mut body = chat_body("gpt-4o");
    body["stream"] = json!(true);
    // Five chunks of completion text, then the usage chunk.
    body["max_tokens"] = json!(320);
    let started = Instant::now();
    let mut response = chat(&app, &key, &body).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let first = response.chunk().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let mut text = String::from_utf8_lossy(&first).to_string();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let total = started.elapsed();
    assert!(
        text.contains("\"usage\""),
        "the usage chunk is passed on: {text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
    assert!(
        first_at + Duration::from_millis(400) < total,
        "the first chunk came at {first_at:?}, the stream ended at {total:?}: not buffered"
    );
    let usage = usage_count(&app, "team_s", 1).await;
    assert_eq!(
        dec(&usage["provider_cost"]),
        Decimal::from_str("0.000681").unwrap()
    );
}

/// Four waves of 64 concurrent calls, spread over `apps`; returns (served, refused). Every
/// refusal must be a `budget_exceeded` 429.
async fn spend_in_waves(apps: &[&TestApp], key: &str, body: &Value) -> (i64, i64) {
    let mut served = 0;
    let mut refused = 0;
    for _ in 0..4 {
        let calls = (0..64).map(|i| chat(apps[i % apps.len()], key, body));
        for response in futures::future::join_all(calls).await {
            match response.status().as_u16() {
                200 => served += 1,
                429 => {
                    let error: Value = response.json().await.unwrap();
                    assert_eq!(error["error"]["code"], "budget_exceeded");
                    refused += 1;
                }
                other => panic!("unexpected status {other}"),
            }
        }
    }
    (served, refused)
}

#[tokio::test]
async fn concurrent_requests_never_spend_past_the_credits() {
    let double = double().await;
    // Prices are read when the service starts (then every minute), so they are set first.
    // Each call, billed in full by the double: 41 prompt + 20 completion tokens at
    // 0.0001/0.0002 = 0.0081 provider cost, 0.010125 at 25% markup; the hold (every body
    // byte a token) is larger, so at most a few fit at a time. Credits 0.05 fit 4 real calls.
    double.set_prices("gpt-4o", "0.0001", "0.0002");
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_b", "0.05", "hard").await;
    let body = json!({"model": "gpt-4o", "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]});
    // Waves of 64 at once, until the credits are gone.
    let (served, refused) = spend_in_waves(&[&app], &key, &body).await;
    assert!(
        served > 0 && refused > 0,
        "served {served}, refused {refused}"
    );
    let usage = usage_count(&app, "team_b", served).await;
    let spend = dec(&usage["total_spend"]);
    assert!(
        spend <= Decimal::from_str("0.05").unwrap(),
        "spent {spend} of 0.05 credits over {served} calls"
    );
    // And LiteLLM saw exactly the calls we let through.
    assert_eq!(double.spend_log_count() as i64, served);
    // Every hold was settled and then moved into the spend: nothing stays held.
    let budget = app
        .get_until(
            "/api/teams/team_b/budget",
            Duration::from_secs(10),
            "credits stay held",
            |budget| dec(&budget["held"]).is_zero(),
        )
        .await;
    assert_eq!(dec(&budget["spend"]), spend);
}

#[tokio::test]
async fn two_replicas_together_never_spend_past_the_credits() {
    // Each replica admits from its own lease of the team's credit; the leases together never
    // exceed what the team has, so two replicas at once overshoot no more than one.
    let double = double().await;
    double.set_prices("gpt-4o", "0.0001", "0.0002");
    let first = app_with(&double).await;
    first.seed_catalog().await;
    let url = double.base_url();
    let second = spawn_app_with_database(&first.database_url, move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
        c.spend_ingest.poll_every = Duration::ZERO;
    })
    .await;
    let key = team(&first, "team_r", "0.05", "hard").await;
    let body = json!({"model": "gpt-4o", "max_tokens": 20, "messages": [{"role": "user", "content": "hello there"}]});
    let (served, _) = spend_in_waves(&[&first, &second], &key, &body).await;
    assert!(served > 0, "nothing was served");
    let usage = usage_count(&first, "team_r", served).await;
    let spend = dec(&usage["total_spend"]);
    assert!(
        spend <= Decimal::from_str("0.05").unwrap(),
        "spent {spend} of 0.05 credits over {served} calls"
    );
    assert_eq!(double.spend_log_count() as i64, served);
    // Both replicas hand their leases back once idle: nothing stays held.
    first
        .get_until(
            "/api/teams/team_r/budget",
            Duration::from_secs(10),
            "credits stay held",
            |budget| dec(&budget["held"]).is_zero(),
        )
        .await;
}

#[tokio::test]
async fn a_busy_hard_budget_team_is_admitted_from_leases_fetched_ahead() {
    // A hard-budget request is admitted from the team's lease in memory; when the lease runs
    // out, the request waits for the database to grant the next one. A busy team's leases
    // grow with its pace and the next one is fetched well before the current one ends, so
    // after the first request almost none waits, and the team's row is not written for every
    // few dozen requests.
    let double = double().await;
    double.set_prices("gpt-4o", "0.0001", "0.0002");
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_busy", "1000", "hard").await;
    let body = chat_body("gpt-4o");
    let (clients, each) = (8, 60);
    let workers = (0..clients).map(|_| async {
        for _ in 0..each {
            assert_eq!(chat(&app, &key, &body).await.status(), 200);
        }
    });
    futures::future::join_all(workers).await;
    usage_count(&app, "team_busy", clients * each).await;
    let metrics = app.scrape().await;
    let grants = |when| {
        sample(
            &metrics,
            "saas_gateway_lease_grants_total",
            &[("when", when)],
        )
        .unwrap_or(0.0) as u64
    };
    let (on_demand, ahead) = (grants("on_demand"), grants("ahead"));
    assert!(
        on_demand >= 1,
        "the first request found no lease and waited for one"
    );
    assert!(
        on_demand <= 4,
        "{on_demand} requests waited for a lease ({ahead} fetched ahead)"
    );
    // Leases of a fixed 32 requests take 15-16 grants for 480 requests; doubling ones 4-5 at
    // this test's pace (leases grow while they last under a quarter of a second).
    assert!(
        on_demand + ahead < 10,
        "{} grants for {} requests",
        on_demand + ahead,
        clients * each
    );
}

#[tokio::test]
async fn soft_mode_keeps_serving_and_warns() {
    let double = double().await;
    double.set_prices("gpt-4o", "0.0001", "0.0002");
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_soft", "0.01", "soft").await;
    for _ in 0..3 {
        assert_eq!(chat(&app, &key, &chat_body("gpt-4o")).await.status(), 200);
    }
    usage_count(&app, "team_soft", 3).await;
    let budget = app
        .get_until(
            "/api/teams/team_soft/budget",
            Duration::from_secs(10),
            "alerts never fired",
            |budget| budget["alerts"].as_array().map(Vec::len) == Some(2),
        )
        .await;
    assert!(dec(&budget["remaining"]) < Decimal::ZERO, "{budget}");
}

#[tokio::test]
async fn jobs_group_calls_and_end_once() {
    let double = double().await;
    let app = app_with(&double).await;
    app.seed_catalog().await;
    let key = team(&app, "team_j", "100", "hard").await;
    let other = team(&app, "team_other", "100", "hard").await;
    let post = |key: &str, path: &str, body: Value| {
        let request = app.client.post(app.url(path)).bearer_auth(key).json(&body);
        async move { request.send().await.unwrap() }
    };

    let created: Value = post(
        &key,
        "/api/jobs/create",
        json!({"job_type": "summarize", "metadata": {"doc": 7}}),
    )
    .await
    .json()
    .await
    .unwrap();
    let job = created["job_id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        let response = post(
            &key,
            &format!("/api/jobs/{job}/llm-call"),
            chat_body("gpt-4o"),
        )
        .await;
        assert_eq!(response.status(), 200);
    }
    // Another team can neither see nor use the job.
    assert_error(
        post(
            &other,
            &format!("/api/jobs/{job}/llm-call"),
            chat_body("gpt-4o"),
        )
        .await,
        404,
        "job_not_found",
    )
    .await;
    let response = app
        .client
        .get(app.url(&format!("/api/jobs/{job}")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "job_not_found").await;
    assert_error(
        post(&other, &format!("/api/jobs/{job}/complete"), json!({})).await,
        404,
        "job_not_found",
    )
    .await;

    let done = post(
        &key,
        &format!("/api/jobs/{job}/complete"),
        json!({"result": {"ok": true}}),
    )
    .await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_error(
        post(&key, &format!("/api/jobs/{job}/complete"), json!({})).await,
        409,
        "job_ended",
    )
    .await;
    assert_error(
        post(
            &key,
            &format!("/api/jobs/{job}/fail"),
            json!({"error": "late"}),
        )
        .await,
        409,
        "job_ended",
    )
    .await;
    assert_error(
        post(
            &key,
            &format!("/api/jobs/{job}/llm-call"),
            chat_body("gpt-4o"),
        )
        .await,
        409,
        "job_ended",
    )
    .await;

    let shown: Value = app
        .client
        .get(app.url(&format!("/api/jobs/{job}")))
        .bearer_auth(&key)
        .header("x-wait-for-position", done["position"].to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut shown = shown;
    while shown["calls"] != 2 {
        assert!(Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(30)).await;
        shown = app
            .client
            .get(app.url(&format!("/api/jobs/{job}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert_eq!(shown["status"], "completed");
    assert_eq!(shown["total_tokens"], 182);
    assert_eq!(
        dec(&shown["provider_cost"]),
        Decimal::from_str("0.000282").unwrap()
    );
    assert_eq!(shown["result"], json!({"ok": true}));
    assert!(shown["duration_ms"].as_i64().unwrap() >= 0);

    let (status, listed) = app.get_json("/api/teams/team_j/jobs", None).await;
    assert_eq!(status, 200);
    assert_eq!(listed["jobs"][0]["job_id"], job.as_str());
    assert_error(
        post(&key, "/api/jobs/nope/complete", json!({})).await,
        404,
        "job_not_found",
    )
    .await;
    assert_error(
        post(&key, "/api/jobs/create", json!({"job_type": ""})).await,
        422,
        "validation_failed",
    )
    .await;
}

/// A provider may hand two calls the same response id. Each call is still its own record,
/// whether the gateway or LiteLLM's spend logs report it first, and the id it is recorded
/// under (the call id sent to LiteLLM) never reaches the client: with it, a client could make
/// its direct calls to LiteLLM look like this one.
#[tokio::test]
async fn calls_a_provider_gives_the_same_id_are_each_billed_once() {
    let double = double().await;
    let url = double.base_url();
    let app = crate::helpers::spawn_app_with(move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
        c.spend_ingest.poll_every = Duration::from_millis(100);
    })
    .await;
    app.seed_catalog().await;
    let key = team(&app, "team_r", "100", "hard").await;
    let same_id = json!({"model": "gpt-4o", "max_tokens": 50,
                         "messages": [{"role": "user", "content": "[id:chatcmpl-same-every-time]"}]});

    let response = chat(&app, &key, &same_id).await;
    assert_eq!(response.status(), 200);
    let headers = format!("{:?}", response.headers());
    let plain = response.text().await.unwrap();
    let mut body = same_id.clone();
    body["stream"] = json!(true);
    let streamed = chat(&app, &key, &body).await.text().await.unwrap();
    assert!(plain.contains("chatcmpl-same-every-time"));
    assert!(streamed.contains("chatcmpl-same-every-time"));

    let usage = usage_count(&app, "team_r", 2).await;
    // LiteLLM keeps one spend row per response id, yet counts both calls' spend: so do we.
    let logged = double.spend_logs();
    assert_eq!(logged.len(), 1);
    let litellm_spend = double.team("team_r").unwrap()["spend"].clone();
    assert_eq!(dec(&usage["provider_cost"]), dec(&litellm_spend));
    app.wait_rows_pulled(1).await;
    assert_eq!(
        app.events_of("Usage").await,
        2,
        "the pulled row is one of the two"
    );
    let recorded: Vec<String> = sqlx::query_scalar("select request_id from usage_records")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let call_ids: Vec<String> = logged
        .iter()
        .map(|row| row["litellm_call_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        recorded.contains(&call_ids[0]),
        "{recorded:?} holds LiteLLM's row under its call id"
    );
    for id in &recorded {
        for (what, text) in [
            ("headers", &headers),
            ("answer", &plain),
            ("stream", &streamed),
        ] {
            assert!(
                !text.contains(id.as_str()),
                "the call id reached the client's {what}"
            );
        }
    }
}

//! The gateway's other LLM APIs (OpenAI's legacy completions and embeddings, Anthropic's
//! messages) tried as an adversarial customer would, against the double (its behaviour for each
//! is checked against the real proxy by `litellm/tests/contract.rs`): odd but valid bodies of
//! every API never spend past a hard budget, each API checks its body and model before anything
//! is sent, and streams are billed from their own usage, recorded once.

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::{LITELLM_MASTER, TeamSpec, TestApp, assert_error, dec, double};

async fn team(app: &TestApp, team_id: &str, credits: &str, mode: &str) -> String {
    let spec = TeamSpec::new(team_id, credits)
        .mode(mode)
        .groups(json!(["gpt"]));
    app.team_in_sync(spec).await.key
}

/// POSTs `body` to `path` with the team's key, as OpenAI's SDKs send it (Anthropic's as
/// `x-api-key`).
async fn call(app: &TestApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    let request = app.client.post(app.url(path)).json(body);
    let request = if path == "/v1/messages" {
        request.header("x-api-key", key)
    } else {
        request.bearer_auth(key)
    };
    request.send().await.unwrap()
}

async fn usage_count(app: &TestApp, team_id: &str, want: i64) -> Value {
    app.get_until(
        &format!("/api/teams/{team_id}/usage"),
        Duration::from_secs(15),
        &format!("usage never counted {want}"),
        |usage| usage["request_count"] == want,
    )
    .await
}

async fn spawn(double: &litellm::double::LitellmDouble, poll: bool) -> TestApp {
    let url = double.base_url();
    let app = crate::helpers::spawn_app_with(move |c| {
        c.litellm_proxy_url = url;
        c.litellm_master_key = Some(LITELLM_MASTER.to_owned().into());
        if poll {
            c.spend_ingest.poll_every = Duration::from_millis(100);
        }
    })
    .await;
    app.seed_catalog().await;
    app
}

#[tokio::test]
async fn odd_but_valid_bodies_of_every_api_never_spend_past_a_hard_budget() {
    let double = double().await;
    double.set_prices("gpt-4o", "0.00001", "0.00002");
    let app = spawn(&double, false).await;
    let key = team(&app, "team_apis", "1", "hard").await;
    let long = "lorem ipsum ".repeat(400);
    // Each bills more than its `max_tokens` alone says: every prompt's best_of, the default
    // limit, token arrays, big inputs, a stream, tools.
    let shapes = [
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": ["a", "b", "c", "d"], "n": 2, "best_of": 5, "max_tokens": 400}),
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": [[1, 2, 3], [4, 5, 6]]}),
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": long, "max_tokens": 2000, "stream": true}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "gpt-4o", "input": [long, long, long]}),
        ),
        (
            "/v1/messages",
            json!({"model": "gpt-4o", "max_tokens": 3000, "messages": [{"role": "user", "content": long}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "gpt-4o", "max_tokens": 2500, "stream": true,
                                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
        ),
    ];
    let mut served = 0;
    for wave in 0..4 {
        let calls = (0..30).map(|i| {
            let (path, body) = &shapes[(i + wave) % shapes.len()];
            call(&app, &key, path, body)
        });
        for response in futures::future::join_all(calls).await {
            match response.status().as_u16() {
                200 => {
                    served += 1;
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
    assert!(served > 6, "only {served} served");
    let usage = usage_count(&app, "team_apis", served).await;
    let spend = dec(&usage["total_spend"]);
    assert!(
        spend <= Decimal::ONE,
        "spent {spend} of 1 over {served} calls"
    );
    assert_eq!(double.spend_log_count() as i64, served);
    // What we recorded is what LiteLLM counted (in floating point, there).
    let litellm_spend = double.team("team_apis").unwrap()["spend"].clone();
    let drift = (dec(&usage["provider_cost"]) - dec(&litellm_spend)).abs();
    assert!(
        drift < Decimal::new(1, 9),
        "{usage} against {litellm_spend}"
    );
}

#[tokio::test]
async fn each_api_checks_its_body_and_the_model_before_anything_is_sent() {
    let double = double().await;
    let app = spawn(&double, false).await;
    let hard = team(&app, "team_hard", "100", "hard").await;
    let soft = team(&app, "team_soft", "100", "soft").await;
    let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}});
    for (path, body) in [
        (
            "/v1/completions",
            json!({"model": "claude-3-5-sonnet", "prompt": "hi"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "claude-3-5-sonnet", "input": "hi"}),
        ),
        (
            "/v1/messages",
            json!({"model": "claude-3-5-sonnet", "max_tokens": 5, "messages": []}),
        ),
    ] {
        assert_error(
            call(&app, &hard, path, &body).await,
            403,
            "model_not_allowed",
        )
        .await;
    }
    for (path, body) in [
        ("/v1/completions", json!({"model": "gpt-4o"})),
        ("/v1/completions", json!({"model": "gpt-4o", "prompt": []})),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": ["a", 7]}),
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": "a", "n": 4, "best_of": 2}),
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": "a", "best_of": 21}),
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": "a", "stream": "yes"}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "gpt-4o", "input": "a", "stream": true}),
        ),
        ("/v1/embeddings", json!({"model": "gpt-4o", "input": [0.5]})),
        (
            "/v1/messages",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "gpt-4o", "max_tokens": 0, "messages": []}),
        ),
    ] {
        for key in [&hard, &soft] {
            let refused = call(&app, key, path, &body).await;
            assert_error(refused, 400, "invalid_request").await;
        }
    }
    // What a hard budget cannot bound is refused there only.
    for (path, body) in [
        (
            "/v1/messages",
            json!({"model": "gpt-4o", "max_tokens": 5,
                                "messages": [{"role": "user", "content": [image]}]}),
        ),
        (
            "/v1/messages",
            json!({"model": "gpt-4o", "max_tokens": 5, "messages": [],
                                "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
        ),
        (
            "/v1/completions",
            json!({"model": "gpt-4o", "prompt": "a", "fallbacks": ["gpt-4o-mini"]}),
        ),
    ] {
        assert_error(
            call(&app, &hard, path, &body).await,
            400,
            "unbounded_request",
        )
        .await;
    }
    assert_eq!(
        double.spend_log_count(),
        0,
        "a refused body reached LiteLLM"
    );
    let (_, budget) = app.get_json("/api/teams/team_hard/budget", None).await;
    assert!(dec(&budget["spend"]).is_zero(), "{budget}");
    // An unknown key is refused on every API, whichever header carries it.
    for path in ["/v1/completions", "/v1/embeddings", "/v1/messages"] {
        let response = call(&app, "sk-not-a-key", path, &json!({})).await;
        assert_eq!(response.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn a_messages_stream_walked_away_from_is_billed_from_its_message_delta_once() {
    let double = double().await;
    double.set_chunk_delay(Duration::from_millis(20));
    // LiteLLM's row comes after the stream is drained, as on the real proxy.
    double.set_spend_delay(Duration::from_secs(1));
    let app = spawn(&double, true).await;
    let key = team(&app, "team_w", "100", "hard").await;
    let body = json!({"model": "gpt-4o", "max_tokens": 640, "stream": true,
                      "messages": [{"role": "user", "content": "hello there"}]});
    let mut response = call(&app, &key, "/v1/messages", &body).await;
    assert_eq!(response.status(), 200);
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);
    let usage = usage_count(&app, "team_w", 1).await;
    let sent = json!([{"role": "user", "content": "hello there"}])
        .to_string()
        .len() as i64;
    assert_eq!(usage["completion_tokens"], 640, "{usage}");
    assert_eq!(usage["prompt_tokens"], sent, "{usage}");
    let source: String = sqlx::query_scalar("select source from usage_records")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(source, "gateway", "read from the stream's message_delta");
    // LiteLLM's own row of the call, once pulled, is the same record.
    app.wait_rows_pulled(1).await;
    assert_eq!(app.events_of("Usage").await, 1);
}

#[tokio::test]
async fn a_completions_stream_is_billed_from_its_usage_chunk_and_embeddings_from_their_input() {
    let double = double().await;
    let app = spawn(&double, false).await;
    let key = team(&app, "team_s", "100", "hard").await;
    let body = json!({"model": "gpt-4o", "prompt": ["ab", "cd"], "best_of": 2, "max_tokens": 64,
                      "stream": true});
    let text = call(&app, &key, "/v1/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("\"usage\""),
        "saas-api asked for the usage chunk: {text}"
    );
    let body = json!({"model": "gpt-4o", "input": ["abcd", "efghij"]});
    let answer: Value = call(&app, &key, "/v1/embeddings", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2), "{answer}");
    let usage = usage_count(&app, "team_s", 2).await;
    // Two prompts × best_of 2 × 64 tokens; four bytes of prompt, then ten of input.
    assert_eq!(usage["completion_tokens"], 256, "{usage}");
    assert_eq!(usage["prompt_tokens"], 4 + 10, "{usage}");
}

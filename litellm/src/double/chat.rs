//! `/v1/chat/completions` in the double: a virtual key is checked like the real proxy checks it
//! (unknown or blocked: 401; model outside the key's or team's list: 403), the answer carries
//! `usage` and `x-litellm-response-cost`, the request is logged as spend, and `stream: true`
//! answers server-sent events chunk by chunk, with a usage chunk last when asked for.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::spend::{self, SpendEntry};
use super::{Shared, error, find_key, strings};

/// Per-token prices of a model, as `/model/info` reports them.
pub const DEFAULT_INPUT_PRICE: &str = "0.000001";
pub const DEFAULT_OUTPUT_PRICE: &str = "0.000002";

fn price(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

pub(super) async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    let key = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024).await else {
        return error(400, "bad_request_error", "unreadable body");
    };
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return error(400, "bad_request_error", "body is not JSON");
    };
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let max_tokens = body["max_tokens"].as_u64().unwrap_or(16);
    let stream = body["stream"].as_bool().unwrap_or(false);
    let include_usage = body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let prompt_chars: usize = body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["content"].as_str().map(str::len).unwrap_or(0))
        .sum();

    let (id, cost, prompt_tokens, completion_tokens, delay) = {
        let mut world = shared.world.lock().unwrap();
        let Some(row) = find_key(&mut world, &key).cloned() else {
            return error(
                401,
                "token_not_found_in_db",
                "Authentication Error, Invalid proxy server token passed.",
            );
        };
        if row["blocked"] == true {
            return error(401, "auth_error", "Authentication Error, Key is blocked.");
        }
        let team = row["team_id"]
            .as_str()
            .and_then(|t| world.teams.get(t))
            .cloned();
        if team.as_ref().is_some_and(|t| t["blocked"] == true) {
            return error(401, "auth_error", "Authentication Error, Team is blocked.");
        }
        let mut allowed = strings(&row["models"]);
        if allowed.is_empty() {
            allowed = team.map(|t| strings(&t["models"])).unwrap_or_default();
        }
        if !world.models.contains(&model) {
            return error(
                400,
                "bad_request_error",
                &format!("Invalid model name passed in model={model}"),
            );
        }
        if !allowed.is_empty() && !allowed.contains(&model) {
            return error(
                403,
                "team_model_access_denied",
                &format!(
                    "team not allowed to access model. This team can only access models={allowed:?}. Tried to access {model}"
                ),
            );
        }
        world.chat_counter += 1;
        let id = format!("chatcmpl-double-{}", world.chat_counter);
        let prompt_tokens = 10 + (prompt_chars as u64) / 4;
        let completion_tokens = max_tokens.min(world.completion_tokens);
        let (input, output) = world.prices.get(&model).cloned().unwrap_or((
            DEFAULT_INPUT_PRICE.to_owned(),
            DEFAULT_OUTPUT_PRICE.to_owned(),
        ));
        let cost = prompt_tokens as f64 * price(&input) + completion_tokens as f64 * price(&output);
        let token = row["token"].as_str().unwrap_or_default().to_owned();
        let now = super::now_rfc3339();
        spend::record(
            &mut world,
            SpendEntry {
                request_id: id.clone(),
                key: token,
                model_group: model.clone(),
                spend: format!("{cost}"),
                prompt_tokens,
                completion_tokens,
                start_time: now,
                status: "success".to_owned(),
            },
        );
        (
            id,
            cost,
            prompt_tokens,
            completion_tokens,
            world.chunk_delay,
        )
    };
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens});
    let cost_header =
        HeaderValue::from_str(&format!("{cost}")).unwrap_or(HeaderValue::from_static("0"));
    if !stream {
        let answer = json!({
            "id": id, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hello from the double"}}],
            "usage": usage,
        });
        let mut response = (StatusCode::OK, Json(answer)).into_response();
        response
            .headers_mut()
            .insert("x-litellm-response-cost", cost_header);
        return response;
    }
    let words = ["hello", " from", " the", " double"];
    let chunks: Vec<String> = words
        .iter()
        .map(|w| {
            let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                               "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": null}]});
            format!("data: {chunk}\n\n")
        })
        .chain(include_usage.then(|| {
            let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                               "choices": [], "usage": usage});
            format!("data: {chunk}\n\n")
        }))
        .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
        .collect();
    let stream = futures::stream::unfold(
        (chunks.into_iter(), true),
        move |(mut rest, first)| async move {
            let next = rest.next()?;
            if !first && delay > Duration::ZERO {
                tokio::time::sleep(delay).await;
            }
            Some((
                Ok::<_, std::convert::Infallible>(Bytes::from(next)),
                (rest, false),
            ))
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    response
        .headers_mut()
        .insert("x-litellm-response-cost", cost_header);
    response
}

//! The LLM routes of the double: `/v1/chat/completions`, `/v1/completions` (legacy, every
//! prompt's `best_of` billed) and `/v1/messages` (Anthropic's shape), refusing as the real proxy
//! does (each checked against it by `litellm/tests/client.rs` and `contract.rs`): unknown,
//! blocked or expired key 401; key or team model denial 403 (`no-default-models` denies all);
//! team budget spent or reserved 422 `budget_exceeded` (each admitted call reserves its
//! estimated cost until its spend is written); team RPM/TPM 429 `throttling_error` with
//! `retry-after: 60`, TPM counting the estimated prompt plus every choice's output limit.
//! Refusals log a failure row at zero spend. An answer bills like an honest worst-case
//! provider: every choice uses its whole output limit (unless `set_completion_tokens` caps it)
//! and the prompt is one token per byte sent; a message with `[id:X]` is answered with the id
//! X. Spend rows and counters are written `spend_delay` after the call. A caller's
//! `x-litellm-call-id` (1 to 256 characters) is a served call's `litellm_call_id` and is
//! answered; a refusal ignores it. `/v1/embeddings` is at the end.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::spend::{self, SpendEntry};
use super::{Shared, World, error, find_key, strings};

/// Per-token prices of a model, as `/model/info` reports them.
pub const DEFAULT_INPUT_PRICE: &str = "0.000001";
pub const DEFAULT_OUTPUT_PRICE: &str = "0.000002";
/// LiteLLM's output limit when a request names none.
const LITELLM_DEFAULT_OUTPUT: u64 = 16_384;
/// Streamed completion text is cut into chunks of this many tokens.
const TOKENS_PER_CHUNK: u64 = 64;

fn price(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

/// A team's requests and estimated tokens in the current minute.
#[derive(Debug, Clone)]
pub(super) struct Window {
    started: Instant,
    requests: u64,
    tokens: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            requests: 0,
            tokens: 0,
        }
    }
}

/// The id a message asks for with `[id:X]`, as `scripts/litellm/honest_upstream.py` answers it
/// (a provider that hands out the same id twice).
fn fixed_id(messages: &str) -> Option<String> {
    let (_, rest) = messages.split_once("[id:")?;
    let (id, _) = rest.split_once(']')?;
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then(|| id.to_owned())
}

/// The caller's `x-litellm-call-id`, if LiteLLM would take it as given.
fn given_call_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get("x-litellm-call-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| (1..=MAX_CALL_ID).contains(&id.len()))
        .map(str::to_owned)
}

/// The virtual key of an LLM call (`Authorization: Bearer …`), empty if none.
pub(super) fn bearer(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

/// An LLM call's JSON body, or LiteLLM's 400.
async fn json_body(request: Request) -> Result<Value, Response> {
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024).await else {
        return Err(error(400, "bad_request_error", "unreadable body"));
    };
    serde_json::from_slice::<Value>(&bytes)
        .map_err(|_| error(400, "bad_request_error", "body is not JSON"))
}

/// The longest `x-litellm-call-id` LiteLLM takes as given (`MAX_LITELLM_CALL_ID_LENGTH`).
const MAX_CALL_ID: usize = 256;

fn refuse(
    world: &mut World,
    status: u16,
    kind: &str,
    message: &str,
    log: Option<(&str, &str)>,
) -> Response {
    if let Some((token, model)) = log {
        world.chat_counter += 1;
        // A refusal's row is filed under a call id of LiteLLM's own, the caller's ignored.
        let call_id = format!("double-call-{}", world.chat_counter);
        let entry = SpendEntry {
            request_id: call_id.clone(),
            call_id,
            call_type: "acompletion",
            key: token.to_owned(),
            model_group: model.to_owned(),
            spend: "0".to_owned(),
            prompt_tokens: 0,
            completion_tokens: 0,
            start_time: super::now_rfc3339(),
            status: "failure".to_owned(),
        };
        spend::record(world, entry);
    }
    error(status, kind, message)
}

fn throttled(team_id: &str, kind: &str, limit: u64, remaining: u64) -> String {
    format!(
        "Rate limit exceeded for team: {team_id}. Limit type: {kind}. Current limit: {limit}, Remaining: {remaining}."
    )
}

/// The LLM APIs the double answers with its worst-case billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    Chat,
    /// Legacy completions: `prompt`, `best_of`, OpenAI's default of 16 output tokens.
    Completions,
    /// Anthropic's messages, as LiteLLM translates them for an OpenAI-compatible model.
    Messages,
}

/// What a call asks for, read as the honest upstream reads it.
struct Ask {
    model: String,
    output_limit: u64,
    /// Completions generated and billed (every prompt's `best_of`).
    billed_choices: u64,
    /// Completions returned (every prompt's `n`).
    shown_choices: u64,
    stream: bool,
    include_usage: bool,
    sent: u64,
    fixed_id: Option<String>,
}

impl Ask {
    fn of(api: Api, body: &Value) -> Self {
        let named = body["max_completion_tokens"]
            .as_u64()
            .or_else(|| body["max_tokens"].as_u64());
        let n = body["n"].as_u64().unwrap_or(1).max(1);
        let (output_limit, billed_choices, shown_choices, sent, text) = match api {
            Api::Chat => {
                let text = body["messages"].to_string();
                (
                    named.unwrap_or(LITELLM_DEFAULT_OUTPUT),
                    n,
                    n,
                    text.len() as u64,
                    text,
                )
            }
            Api::Completions => {
                let prompts: Vec<&Value> = match &body["prompt"] {
                    Value::Array(list) if list.first().is_some_and(Value::is_number) => {
                        vec![&body["prompt"]]
                    }
                    Value::Array(list) => list.iter().collect(),
                    other => vec![other],
                };
                let sent = prompts
                    .iter()
                    .map(|p| match p {
                        Value::String(text) => text.len() as u64,
                        Value::Array(list) => list.len() as u64,
                        _ => 0,
                    })
                    .sum::<u64>()
                    .max(1);
                let count = prompts.len() as u64;
                let best_of = body["best_of"].as_u64().unwrap_or(1).max(n);
                let text = body["prompt"].to_string();
                (named.unwrap_or(16), count * best_of, count * n, sent, text)
            }
            Api::Messages => {
                let text = body["messages"].to_string();
                (
                    named.unwrap_or(LITELLM_DEFAULT_OUTPUT),
                    1,
                    1,
                    text.len() as u64,
                    text,
                )
            }
        };
        Self {
            model: body["model"].as_str().unwrap_or_default().to_owned(),
            output_limit,
            billed_choices,
            shown_choices,
            stream: body["stream"].as_bool().unwrap_or(false),
            include_usage: api == Api::Messages
                || body["stream_options"]["include_usage"]
                    .as_bool()
                    .unwrap_or(false),
            sent,
            fixed_id: fixed_id(&text),
        }
    }
}

pub(super) async fn chat_completions(shared: State<Arc<Shared>>, request: Request) -> Response {
    llm_call(shared, request, Api::Chat).await
}

pub(super) async fn completions(shared: State<Arc<Shared>>, request: Request) -> Response {
    llm_call(shared, request, Api::Completions).await
}

pub(super) async fn messages(shared: State<Arc<Shared>>, request: Request) -> Response {
    llm_call(shared, request, Api::Messages).await
}

async fn llm_call(State(shared): State<Arc<Shared>>, request: Request, api: Api) -> Response {
    let given = given_call_id(request.headers());
    let call_id = given.unwrap_or_else(|| {
        let mut world = shared.world.lock().unwrap();
        world.chat_counter += 1;
        format!("double-call-{}", world.chat_counter)
    });
    let mut response = answer(shared, request, &call_id, api).await;
    // Answered on calls that are served; a refusal names none (seen on the real proxy).
    if response.status() == StatusCode::OK
        && let Ok(value) = HeaderValue::from_str(&call_id)
    {
        response.headers_mut().insert("x-litellm-call-id", value);
    }
    response
}

async fn answer(shared: Arc<Shared>, request: Request, call_id: &str, api: Api) -> Response {
    let key = bearer(request.headers());
    let body = match json_body(request).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let Ask {
        model,
        output_limit,
        billed_choices: choices,
        shown_choices,
        stream,
        include_usage,
        sent,
        fixed_id,
    } = Ask::of(api, &body);
    // LiteLLM estimates the prompt with a tokenizer: about four bytes a token.
    let prompt_estimate = sent.div_ceil(4).max(1);

    let (id, cost, prompt_tokens, completion_tokens, delay, without_usage) = {
        let mut world = shared.world.lock().unwrap();
        let world = &mut *world;
        let Some(row) = find_key(world, &key).cloned() else {
            return refuse(
                world,
                401,
                "token_not_found_in_db",
                "Authentication Error, Invalid API key provided.",
                Some(("", &model)),
            );
        };
        let token = row["token"].as_str().unwrap_or_default().to_owned();
        let log = Some((token.as_str(), model.as_str()));
        if row["blocked"] == true {
            return refuse(
                world,
                401,
                "auth_error",
                "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
                log,
            );
        }
        if row["expires_at_epoch"]
            .as_f64()
            .is_some_and(|at| at <= now_epoch())
        {
            return refuse(
                world,
                401,
                "expired_key",
                "Authentication Error - Expired Key.",
                log,
            );
        }
        let team_id = row["team_id"].as_str().unwrap_or_default().to_owned();
        let team = world.teams.get(&team_id).cloned();
        if team.as_ref().is_some_and(|t| t["blocked"] == true) {
            let message = format!("Authentication Error, Team={team_id} is blocked.");
            return refuse(world, 401, "auth_error", &message, log);
        }
        if !world.models.contains(&model) {
            let message = format!("/chat/completions: Invalid model name passed in model={model}");
            return refuse(world, 400, "invalid_request_error", &message, log);
        }
        let denied = format!(
            "The requested model '{model}' is not available for this API key, or the model name is invalid."
        );
        let key_models = strings(&row["models"]);
        if !key_models.is_empty() && !key_models.contains(&model) {
            return refuse(world, 403, "key_model_access_denied", &denied, log);
        }
        let team_models = team
            .as_ref()
            .map(|t| strings(&t["models"]))
            .unwrap_or_default();
        if !team_models.is_empty() && !team_models.contains(&model) {
            return refuse(world, 403, "team_model_access_denied", &denied, log);
        }
        let (input, output) = world.prices.get(&model).cloned().unwrap_or((
            DEFAULT_INPUT_PRICE.to_owned(),
            DEFAULT_OUTPUT_PRICE.to_owned(),
        ));
        let (input, output) = (price(&input), price(&output));
        // Rate limits, per team and minute.
        let rpm = team.as_ref().and_then(|t| t["rpm_limit"].as_u64());
        let tpm = team.as_ref().and_then(|t| t["tpm_limit"].as_u64());
        let estimate_tokens = prompt_estimate + output_limit * choices;
        let window = world
            .windows
            .entry(team_id.clone())
            .or_insert_with(Window::new);
        if window.started.elapsed() >= Duration::from_secs(60) {
            *window = Window::new();
        }
        if let Some(limit) = rpm
            && window.requests >= limit
        {
            let message = throttled(&team_id, "requests", limit, 0);
            return refuse(world, 429, "throttling_error", &message, log).retry_after();
        }
        if let Some(limit) = tpm {
            let remaining = limit.saturating_sub(window.tokens);
            if estimate_tokens > remaining {
                let message = throttled(&team_id, "tokens", limit, remaining);
                return refuse(world, 429, "throttling_error", &message, log).retry_after();
            }
        }
        // Budget: spend written so far plus what admitted calls reserved.
        let reservation_estimate = prompt_estimate as f64 * input
            + (output_limit.min(LITELLM_DEFAULT_OUTPUT) * choices) as f64 * output;
        let mut reservation = 0.0;
        if let Some(max_budget) = team.as_ref().and_then(|t| t["max_budget"].as_f64()) {
            let spent = team
                .as_ref()
                .and_then(|t| t["spend"].as_f64())
                .unwrap_or(0.0);
            let reserved = world.reserved.get(&team_id).copied().unwrap_or(0.0);
            let remaining = max_budget - spent - reserved;
            if remaining <= 0.0 {
                let message = format!(
                    "Budget has been exceeded! Team={team_id} Current cost: {}, Max budget: {max_budget}",
                    spent + reserved
                );
                return refuse(world, 422, "budget_exceeded", &message, log);
            }
            reservation = reservation_estimate.min(remaining);
            *world.reserved.entry(team_id.clone()).or_insert(0.0) += reservation;
        }
        if let Some(window) = world.windows.get_mut(&team_id) {
            window.requests += 1;
            window.tokens += estimate_tokens;
        }
        world.chat_counter += 1;
        let id = fixed_id
            .clone()
            .unwrap_or_else(|| format!("chatcmpl-double-{}", world.chat_counter));
        let per_choice = match world.completion_tokens {
            Some(cap) => output_limit.min(cap),
            None => output_limit,
        };
        let prompt_tokens = sent;
        let completion_tokens = per_choice * choices;
        let cost = prompt_tokens as f64 * input + completion_tokens as f64 * output;
        let entry = SpendEntry {
            request_id: id.clone(),
            call_id: call_id.to_owned(),
            call_type: match api {
                Api::Chat => "acompletion",
                Api::Completions => "atext_completion",
                Api::Messages => "anthropic_messages",
            },
            key: token.clone(),
            model_group: model.clone(),
            spend: format!("{cost}"),
            prompt_tokens,
            completion_tokens,
            start_time: super::now_rfc3339(),
            status: "success".to_owned(),
        };
        if world.spend_delay.is_zero() {
            spend::record(world, entry);
            release(world, &team_id, reservation);
        } else {
            let (shared, delay) = (shared.clone(), world.spend_delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut world = shared.world.lock().unwrap();
                spend::record(&mut world, entry);
                release(&mut world, &team_id, reservation);
            });
        }
        (
            id,
            cost,
            prompt_tokens,
            completion_tokens,
            world.chunk_delay,
            world.usage_omitted,
        )
    };
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens});
    let cost_header =
        HeaderValue::from_str(&format!("{cost}")).unwrap_or(HeaderValue::from_static("0"));
    let per_choice = completion_tokens / choices;
    let shape = Shape {
        api,
        id,
        model,
        usage: (!without_usage).then_some(usage),
        prompt_tokens,
        completion_tokens,
    };
    let mut response = if stream {
        let chunks = shape.stream(shown_choices, per_choice, include_usage);
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
    } else {
        (
            StatusCode::OK,
            Json(shape.answer(shown_choices, per_choice)),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert("x-litellm-response-cost", cost_header);
    response
}

/// An answer in the shape of its API.
struct Shape {
    api: Api,
    id: String,
    model: String,
    /// The usage, unless the double is told to leave it out.
    usage: Option<Value>,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl Shape {
    fn text(tokens: u64) -> String {
        "x ".repeat(tokens.min(2000) as usize)
    }

    fn answer(&self, shown: u64, per_choice: u64) -> Value {
        let (id, model, text) = (&self.id, &self.model, Self::text(per_choice));
        let usage = self.usage.clone().unwrap_or(Value::Null);
        match self.api {
            Api::Chat => json!({
                "id": id, "object": "chat.completion", "created": 0, "model": model, "usage": usage,
                "choices": (0..shown).map(|i| json!({"index": i, "finish_reason": "length",
                    "message": {"role": "assistant", "content": text}})).collect::<Vec<_>>(),
            }),
            Api::Completions => json!({
                "id": id, "object": "text_completion", "created": 0, "model": model, "usage": usage,
                "choices": (0..shown).map(|i| json!({"index": i, "finish_reason": "length",
                    "text": text, "logprobs": null})).collect::<Vec<_>>(),
            }),
            Api::Messages => json!({
                "id": id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "max_tokens",
                "usage": self.usage.as_ref().map(|_| self.anthropic_usage()),
            }),
        }
    }

    fn anthropic_usage(&self) -> Value {
        json!({"input_tokens": self.prompt_tokens, "output_tokens": self.completion_tokens})
    }

    /// The stream's events; OpenAI's usage chunk only when asked for.
    fn stream(&self, shown: u64, per_choice: u64, include_usage: bool) -> Vec<String> {
        let (id, model) = (&self.id, &self.model);
        let data = |value: Value| format!("data: {value}\n\n");
        let event = |name: &str, value: Value| format!("event: {name}\ndata: {value}\n\n");
        let mut pieces = Vec::new();
        let mut left = per_choice;
        while left > 0 {
            let step = left.min(TOKENS_PER_CHUNK);
            left -= step;
            pieces.push(Self::text(step));
        }
        let mut chunks = Vec::new();
        match self.api {
            Api::Chat | Api::Completions => {
                let object = if self.api == Api::Chat {
                    "chat.completion.chunk"
                } else {
                    "text_completion"
                };
                for index in 0..shown {
                    for piece in &pieces {
                        let choice = if self.api == Api::Chat {
                            json!({"index": index, "delta": {"content": piece}, "finish_reason": null})
                        } else {
                            json!({"index": index, "text": piece, "finish_reason": null})
                        };
                        chunks.push(data(json!({"id": id, "object": object, "created": 0,
                                                "model": model, "choices": [choice]})));
                    }
                }
                if let Some(usage) = self.usage.as_ref().filter(|_| include_usage) {
                    chunks.push(data(json!({"id": id, "object": object, "created": 0,
                                            "model": model, "choices": [], "usage": usage})));
                }
                chunks.push("data: [DONE]\n\n".to_owned());
            }
            Api::Messages => {
                chunks.push(event(
                    "message_start",
                    json!({"type": "message_start", "message": {
                    "id": id, "type": "message", "role": "assistant", "content": [], "model": model,
                    "usage": {"input_tokens": 0, "output_tokens": 0}}}),
                ));
                chunks.push(event(
                    "content_block_start",
                    json!({"type": "content_block_start",
                    "index": 0, "content_block": {"type": "text", "text": ""}}),
                ));
                for piece in &pieces {
                    chunks.push(event(
                        "content_block_delta",
                        json!({"type": "content_block_delta",
                        "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                    ));
                }
                chunks.push(event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ));
                let mut delta =
                    json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}});
                if self.usage.is_some() {
                    delta["usage"] = self.anthropic_usage();
                }
                chunks.push(event("message_delta", delta));
                chunks.push(event("message_stop", json!({"type": "message_stop"})));
            }
        }
        chunks
    }
}

/// A call's reservation ends when its spend is written.
fn release(world: &mut World, team_id: &str, reservation: f64) {
    if let Some(reserved) = world.reserved.get_mut(team_id) {
        *reserved = (*reserved - reservation).max(0.0);
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

trait RetryAfter {
    fn retry_after(self) -> Self;
}

impl RetryAfter for Response {
    /// LiteLLM's rate-limit refusals say when to come back.
    fn retry_after(mut self) -> Self {
        self.headers_mut()
            .insert("retry-after", HeaderValue::from_static("60"));
        self
    }
}

/// `/v1/embeddings`, as the real proxy answers it with `scripts/litellm/honest_upstream.py`
/// behind it (checked by `litellm/tests/contract.rs`): one embedding per input, the input billed
/// a token per byte of each string or per entry of each token array, the call id answered, and a
/// spend row filed under the call id (embeddings carry no response id). Unknown keys get 401 and
/// models outside the key's or team's lists 403, as chat does; other refusals are not modelled.
pub(super) async fn embeddings(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let call_id = given_call_id(request.headers());
    let key = bearer(request.headers());
    let body = match json_body(request).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let items: Vec<&Value> = match &body["input"] {
        Value::Array(list) if list.first().is_some_and(Value::is_number) => vec![&body["input"]],
        Value::Array(list) => list.iter().collect(),
        other => vec![other],
    };
    let tokens: u64 = items
        .iter()
        .map(|item| match item {
            Value::String(text) => (text.len() as u64).max(1),
            Value::Array(list) => list.len() as u64,
            _ => 0,
        })
        .sum();
    let mut world = shared.world.lock().unwrap();
    let world = &mut *world;
    let Some(row) = find_key(world, &key).cloned() else {
        return error(
            401,
            "token_not_found_in_db",
            "Authentication Error, Invalid API key provided.",
        );
    };
    let team = world
        .teams
        .get(row["team_id"].as_str().unwrap_or_default())
        .cloned();
    let allowed = |models: Vec<String>| models.is_empty() || models.contains(&model);
    if !allowed(strings(&row["models"]))
        || !allowed(team.map(|t| strings(&t["models"])).unwrap_or_default())
    {
        let message = format!(
            "The requested model '{model}' is not available for this API key, or the model name is invalid."
        );
        return error(403, "team_model_access_denied", &message);
    }
    world.chat_counter += 1;
    let call_id = call_id.unwrap_or_else(|| format!("double-call-{}", world.chat_counter));
    let input = world
        .prices
        .get(&model)
        .map(|(input, _)| price(input))
        .unwrap_or_else(|| price(DEFAULT_INPUT_PRICE));
    let cost = tokens as f64 * input;
    let entry = SpendEntry {
        request_id: call_id.clone(),
        call_id: call_id.clone(),
        call_type: "aembedding",
        key: row["token"].as_str().unwrap_or_default().to_owned(),
        model_group: model.clone(),
        spend: format!("{cost}"),
        prompt_tokens: tokens,
        completion_tokens: 0,
        start_time: super::now_rfc3339(),
        status: "success".to_owned(),
    };
    spend::record(world, entry);
    let data: Vec<Value> = (0..items.len())
        .map(|index| json!({"object": "embedding", "index": index, "embedding": vec![0.5; 8]}))
        .collect();
    let answer = json!({"object": "list", "model": model, "data": data,
                        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}});
    let mut response = (StatusCode::OK, Json(answer)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&format!("{cost}")) {
        headers.insert("x-litellm-response-cost", value);
    }
    if let Ok(value) = HeaderValue::from_str(&call_id) {
        headers.insert("x-litellm-call-id", value);
    }
    response
}

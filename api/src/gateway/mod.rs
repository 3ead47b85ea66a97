//! The request path to LiteLLM: an OpenAI-compatible chat call made with a team's virtual key,
//! checked against the team's models and (hard mode) its budget before it is forwarded, passed
//! through as it arrives (streams chunk by chunk), and recorded in the usage ledger once its
//! usage is known.

pub mod holds;
pub mod leases;
pub mod prices;
pub mod recorder;
pub mod sse;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::organization::OrganizationId;
use domain::team::{KeyFingerprint, TeamId};
use domain::usage::{HoldPart, UsageInput, UsageRecord, UsageSource, UsageStatus};
use domain::{Money, Percent};
use futures::Stream;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;
use crate::team_auth::TeamCaller;
use crate::usage::litellm_rows::decimal;
use leases::{Admission, Ticket};
use prices::Prices;
use sse::SseTap;

/// `max_tokens` sent when a request names none: LiteLLM would otherwise reserve (and a model
/// may produce) up to 16,384 tokens, and the hold must be bounded.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
const MAX_TOKENS_LIMIT: u64 = 1_000_000;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// What settling a request needs once the answer is in.
struct Settlement {
    state: AppState,
    caller: TeamCaller,
    markup: Percent,
    model: String,
    prices: Option<Prices>,
    cost_header: Option<Decimal>,
    started_at: DateTime<Utc>,
    started: Instant,
    job_id: Option<String>,
    request_key: String,
    ticket: Option<Ticket>,
}

impl Settlement {
    /// Records the call's usage and turns its hold into the real price.
    async fn finish(self, id: Option<String>, model: Option<String>, usage: Option<Value>) {
        let Some(usage) = usage else {
            // No usage seen (client went away mid-stream): the hold stays until it lapses, and
            // LiteLLM's spend log, pulled later, records the request.
            tracing::warn!(team_id = %self.caller.team_id, "LLM call ended without usage; left to spend ingestion");
            return;
        };
        let prompt_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0);
        let completion_tokens = usage["completion_tokens"].as_u64().unwrap_or(0);
        let cached_tokens = usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0)
            .min(prompt_tokens);
        let computed = self.prices.map(|p| {
            p.input * Decimal::from(prompt_tokens) + p.output * Decimal::from(completion_tokens)
        });
        let cost = self
            .cost_header
            .filter(|c| !c.is_zero())
            .or(computed)
            .unwrap_or_default();
        let input = UsageInput {
            request_id: id.unwrap_or_else(|| self.request_key.clone()),
            model: self.model.clone(),
            provider_model: model,
            prompt_tokens,
            completion_tokens,
            cached_tokens,
            provider_cost: cost,
            status: UsageStatus::Success,
            latency_ms: Some(self.started.elapsed().as_millis() as u64),
            occurred_at: self.started_at,
            job_id: self.job_id.clone(),
            source: UsageSource::Gateway,
        };
        let team_id = self.caller.team_id.clone();
        if let Err(error) = self.record(input) {
            tracing::error!(%error, %team_id, "usage of an LLM call could not be recorded; spend ingestion will");
        }
    }

    fn record(self, input: UsageInput) -> anyhow::Result<()> {
        let record = UsageRecord::new(
            input,
            TeamId::parse(&self.caller.team_id)?,
            OrganizationId::parse(&self.caller.organization_id)?,
            Some(KeyFingerprint::new(self.caller.key_fingerprint.clone())),
            self.markup,
            Utc::now(),
        )?;
        let record = UsageRecord {
            hold: self.ticket.as_ref().map(|t| HoldPart {
                key: t.hold_key.clone(),
                amount: Some(Money::from_decimal(t.amount)),
            }),
            ..record
        };
        self.state.usage_recorder.record(record, self.ticket);
        Ok(())
    }

    async fn abandon(&self) {
        if let Some(ticket) = &self.ticket {
            self.state
                .leases
                .give_back(&self.caller.team_id, ticket)
                .await;
        }
    }
}

/// Forwards one chat completion for `caller`; `job_id` ties it to a job.
pub async fn chat(
    state: &AppState,
    caller: TeamCaller,
    raw: Bytes,
    job_id: Option<String>,
) -> Result<Response, ApiError> {
    let Some(client) = state.litellm.clone() else {
        return Err(ApiError::unavailable(
            "litellm_not_configured",
            "LITELLM_MASTER_KEY is not set, so no LLM calls can be forwarded",
            30,
        ));
    };
    let mut body: Value = serde_json::from_slice(&raw)
        .map_err(|e| invalid(format!("the body is not valid JSON: {e}")))?;
    let Some(object) = body.as_object_mut() else {
        return Err(invalid("the body must be a JSON object"));
    };
    let model = object
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("`model` is required"))?
        .to_owned();
    if !object.get("messages").is_some_and(Value::is_array) {
        return Err(invalid("`messages` must be an array"));
    }
    let stream = object
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max_tokens = match object
        .get("max_tokens")
        .or_else(|| object.get("max_completion_tokens"))
    {
        None | Some(Value::Null) => {
            object.insert("max_tokens".into(), json!(DEFAULT_MAX_TOKENS));
            DEFAULT_MAX_TOKENS
        }
        Some(value) => value
            .as_u64()
            .filter(|n| (1..=MAX_TOKENS_LIMIT).contains(n))
            .ok_or_else(|| {
                invalid(format!(
                    "max_tokens must be between 1 and {MAX_TOKENS_LIMIT}"
                ))
            })?,
    };
    if stream {
        // Usage arrives in a final chunk only when asked for: streamed calls are never free.
        let options = object.entry("stream_options").or_insert_with(|| json!({}));
        if let Some(options) = options.as_object_mut() {
            options.insert("include_usage".into(), json!(true));
        }
    }
    if let Some(job) = &job_id {
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("job_id".into(), json!(job));
        }
    }

    if !caller.allowed_models.iter().any(|m| m == &model) {
        crate::metrics::gateway("model_not_allowed");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "model_not_allowed",
            format!(
                "model {model:?} is not in this team's model groups; allowed: {}",
                caller.allowed_models.join(", ")
            ),
        ));
    }
    let markup = Percent::parse_markup("markup_percent", &caller.markup_percent.to_string())
        .map_err(ApiError::internal)?;
    let prices = match &state.prices {
        Some(book) => book.of(&model).await,
        None => None,
    };
    let body_bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let request_key = uuid::Uuid::new_v4().to_string();
    let mut ticket = None;
    if caller.budget_mode == "hard" {
        // Tokens never outnumber the bytes they are made of, so this bounds the real cost.
        let p = prices.unwrap_or_default();
        let worst = (p.input * Decimal::from(body_bytes.len())
            + p.output * Decimal::from(max_tokens))
            * (Decimal::ONE + markup.as_decimal() / Decimal::ONE_HUNDRED);
        match state.leases.admit(&caller.team_id, worst).await? {
            Admission::Held(held) => ticket = Some(held),
            Admission::Refused { available } => {
                crate::metrics::gateway("budget_exceeded");
                return Err(budget_exceeded(format!(
                    "the team's credits do not cover this request: {} available, up to {} needed (lower max_tokens or add credits)",
                    available.max(Decimal::ZERO).normalize(),
                    worst.round_dp(6).normalize()
                )));
            }
        }
    }
    let settlement = Settlement {
        state: state.clone(),
        caller: caller.clone(),
        markup,
        model,
        prices,
        cost_header: None,
        started_at: Utc::now(),
        started: Instant::now(),
        job_id,
        request_key,
        ticket,
    };
    let response = match client
        .forward("/v1/chat/completions", caller.expose_key(), body_bytes)
        .await
    {
        Ok(response) => response,
        Err(error) => {
            settlement.abandon().await;
            crate::metrics::gateway("unreachable");
            // Nothing was forwarded: a retry is safe and will work once LiteLLM is back.
            return Err(ApiError::unavailable(
                "litellm_unreachable",
                format!("{error}"),
                RETRY_UNREACHABLE_SECS,
            ));
        }
    };
    let status = response.status();
    let cost_header = response
        .headers()
        .get("x-litellm-response-cost")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| decimal(&Value::String(v.to_owned())));
    let settlement = Settlement {
        cost_header,
        ..settlement
    };
    if !status.is_success() {
        settlement.abandon().await;
        crate::metrics::gateway("upstream_error");
        let text = response.text().await.unwrap_or_default();
        return Ok(upstream_error(status.as_u16(), &text));
    }
    if !stream {
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                settlement.abandon().await;
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "litellm_unreachable",
                    format!("LiteLLM's answer was cut off: {}", error.without_url()),
                ));
            }
        };
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            // Not an answer a client could use; whatever LiteLLM logged is ingested later.
            settlement.abandon().await;
            crate::metrics::gateway("upstream_error");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "litellm_bad_answer",
                "LiteLLM answered with something that is not JSON",
            ));
        };
        let id = answer["id"].as_str().map(str::to_owned);
        let model = answer["model"].as_str().map(str::to_owned);
        let usage = answer.get("usage").filter(|u| u.is_object()).cloned();
        crate::metrics::gateway("served");
        // Recorded after the answer leaves: a crash in between loses nothing, since LiteLLM's
        // spend log of the same request id is ingested later (and the hold lapses).
        tokio::spawn(settlement.finish(id, model, usage));
        return Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response());
    }
    crate::metrics::gateway("served");
    let tapped = TappedStream {
        inner: Box::pin(response.bytes_stream()),
        tap: SseTap::default(),
        settlement: Some(settlement),
    };
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(tapped),
    )
        .into_response())
}

/// Retry-After when LiteLLM cannot be reached.
const RETRY_UNREACHABLE_SECS: u64 = 5;

fn budget_exceeded(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "budget_exceeded", message)
}

/// LiteLLM's refusal, passed on; its budget refusal becomes ours (429 `budget_exceeded`).
fn upstream_error(status: u16, text: &str) -> Response {
    let parsed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    if parsed["error"]["type"] == "budget_exceeded" {
        return budget_exceeded("LiteLLM refused the request: the team's budget is spent".into())
            .into_response();
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = if parsed.is_object() {
        parsed
    } else {
        json!({"error": {"code": "litellm_error", "message": text.chars().take(500).collect::<String>()}})
    };
    (status, axum::Json(body)).into_response()
}

/// LiteLLM's stream, passed on chunk by chunk while the tap watches for the usage; when the
/// stream ends (or the client goes away) the call is settled in the background.
struct TappedStream {
    inner: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    tap: SseTap,
    settlement: Option<Settlement>,
}

impl TappedStream {
    fn settle(&mut self) {
        if let Some(settlement) = self.settlement.take() {
            let id = self.tap.id.take();
            let model = self.tap.model.take();
            let usage = self.tap.usage.take();
            tokio::spawn(settlement.finish(id, model, usage));
        }
    }
}

impl Stream for TappedStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                self.tap.feed(&bytes);
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.settle();
                Poll::Ready(Some(Err(std::io::Error::other(error.without_url()))))
            }
            Poll::Ready(None) => {
                self.settle();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for TappedStream {
    fn drop(&mut self) {
        self.settle();
    }
}

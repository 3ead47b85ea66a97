//! The request path to LiteLLM: an LLM call (OpenAI's chat, completions or embeddings, or
//! Anthropic's messages) made with a team's virtual key, checked against the team's models and
//! (hard mode) its budget before it is forwarded, passed through as it arrives (streams chunk by
//! chunk), and recorded in the usage ledger once its usage is known.

use app::error::ErrorCode;
use std::pin::Pin;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use domain::organization::OrganizationId;
use domain::team::{KeyFingerprint, TeamId};
use domain::usage::{
    Endpoint, HoldPart, TokenPrices, UsageInput, UsageRecord, UsageSource, UsageStatus,
};
use domain::{Money, Percent};
use futures::{Stream, StreamExt};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::state::AppState;
use app::gateway::admission::{self, Admitted, RETRY_UNREACHABLE_SECS};
use app::gateway::leases::Ticket;
use app::gateway::sse::{SseTap, openai_usage};
use app::team_keys::TeamCaller;
use app::usage::litellm_rows::decimal;

pub use domain::usage::DEFAULT_MAX_TOKENS;

/// What settling a request needs once the answer is in.
struct Settlement {
    state: AppState,
    caller: TeamCaller,
    markup: Percent,
    model: String,
    prices: Option<TokenPrices>,
    cost_header: Option<Decimal>,
    started_at: DateTime<Utc>,
    started: Instant,
    job_id: Option<String>,
    /// Sent to LiteLLM and the record's identity (see `app::usage::call_ids`).
    call_id: String,
    ticket: Option<Ticket>,
    /// Bytes of the body sent, for a prompt estimate.
    sent_bytes: usize,
}

impl Settlement {
    /// Records the call's usage and turns its hold into the real price.
    /// A non-streaming answer: recorded from its usage, or at an estimate of what it holds.
    fn finish(self, answer: &Value) {
        match answer.get("usage").filter(|u| u.is_object()) {
            Some(usage) => {
                let model = answer["model"].as_str().map(str::to_owned);
                self.settle(model, openai_usage(usage), UsageSource::Gateway);
            }
            None => self.estimate(&SseTap::of_answer(answer)),
        }
    }

    /// A call that ended without the provider's usage: the prompt (about four bytes a
    /// token) and the completion forwarded, at the model's price, so no output is free. It is
    /// recorded after a grace, under the call's id: if LiteLLM's own row of the call was pushed
    /// or pulled meanwhile, that one is the record and the estimate changes nothing.
    fn estimate(self, tap: &SseTap) {
        let usage = json!({
            "prompt_tokens": (self.sent_bytes as u64).div_ceil(4),
            "completion_tokens": tap.estimated_completion_tokens(),
        });
        tracing::warn!(team_id = %self.caller.team_id, "stream ended without usage; an estimate follows unless LiteLLM reports it");
        let model = tap.model.clone();
        let grace = self.state.estimate_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            self.settle(model, usage, UsageSource::GatewayEstimate);
        });
    }

    /// Records under the call id, never the provider's response id: a provider may hand two
    /// calls the same one.
    fn settle(self, model: Option<String>, usage: Value, source: UsageSource) {
        let prompt_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0);
        let completion_tokens = usage["completion_tokens"].as_u64().unwrap_or(0);
        let cached_tokens = usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0)
            .min(prompt_tokens);
        let computed = self
            .prices
            .map(|p| p.cost(prompt_tokens, completion_tokens));
        let cost = self
            .cost_header
            .filter(|c| !c.is_zero())
            .or(computed)
            .unwrap_or_default();
        let input = UsageInput {
            request_id: self.call_id.clone(),
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
            source,
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

/// Forwards one call of `caller` to `endpoint`; `job_id` ties it to a job.
pub async fn forward(
    state: &AppState,
    caller: TeamCaller,
    endpoint: Endpoint,
    raw: Bytes,
    job_id: Option<String>,
) -> Result<Response, ApiError> {
    let Some(client) = state.litellm.clone() else {
        return Err(ApiError::unavailable(
            ErrorCode::LitellmNotConfigured,
            "LITELLM_MASTER_KEY is not set, so no LLM calls can be forwarded",
            30,
        ));
    };
    let Admitted {
        body,
        model,
        stream,
        markup,
        prices,
        ticket,
        call_id,
    } = admission::admit(
        &caller,
        endpoint,
        &raw,
        job_id.as_deref(),
        state.prices.as_ref(),
        &state.leases,
        &state.call_ids,
    )
    .await?;
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
        call_id: call_id.clone(),
        ticket,
        sent_bytes: body.len(),
    };
    let response = match client
        .forward(endpoint.path(), caller.expose_key(), &call_id, body)
        .await
    {
        Ok(response) => response,
        Err(error) => {
            settlement.abandon().await;
            app::metrics::gateway("unreachable");
            // Nothing was forwarded: a retry is safe and will work once LiteLLM is back.
            return Err(ApiError::unavailable(
                ErrorCode::LitellmUnreachable,
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
        app::metrics::gateway("upstream_error");
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let text = response.text().await.unwrap_or_default();
        let mut refusal = upstream_error(status.as_u16(), &text);
        // A rate-limit refusal says when to come back; the client needs that as much as we do.
        if let Some(value) = retry_after {
            refusal.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(refusal);
    }
    if !stream {
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(error) => {
                settlement.abandon().await;
                return Err(ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::LitellmUnreachable,
                    format!("LiteLLM's answer was cut off: {}", error.without_url()),
                ));
            }
        };
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            // Not an answer a client could use; whatever LiteLLM logged is ingested later.
            settlement.abandon().await;
            app::metrics::gateway("upstream_error");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                ErrorCode::LitellmBadAnswer,
                "LiteLLM answered with something that is not JSON",
            ));
        };
        app::metrics::gateway("served");
        // Recorded after the answer leaves: a crash in between loses nothing, since LiteLLM's
        // spend log of the same request id is ingested later (and the hold lapses).
        tokio::spawn(async move { settlement.finish(&answer) });
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
    app::metrics::gateway("served");
    let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_BUFFER);
    tokio::spawn(pump(Box::pin(response.bytes_stream()), sender, settlement));
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Chunks of a stream waiting for a slow client.
const STREAM_BUFFER: usize = 16;
/// Once the client has gone, how long and how much more of the stream is read for its usage.
const DRAIN_FOR: Duration = Duration::from_secs(120);
const DRAIN_BYTES: usize = 64 << 20;

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Passes LiteLLM's stream on as it comes while the tap watches for the usage. When the client
/// goes away the stream is still read (up to `DRAIN_FOR` and `DRAIN_BYTES`) for the provider's
/// usage; without it, the call is recorded at an estimate. Either way it is settled once.
async fn pump(
    mut upstream: Upstream,
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
    settlement: Settlement,
) {
    let mut tap = SseTap::default();
    let mut client_gone: Option<(tokio::time::Instant, usize)> = None;
    loop {
        let next = match client_gone {
            None => upstream.next().await,
            Some((since, _)) => {
                match tokio::time::timeout_at(since + DRAIN_FOR, upstream.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                }
            }
        };
        match next {
            Some(Ok(bytes)) => {
                tap.feed(&bytes);
                if tap.usage.is_some() && client_gone.is_some() {
                    break;
                }
                match &mut client_gone {
                    None => {
                        if sender.send(Ok(bytes)).await.is_err() {
                            client_gone = Some((tokio::time::Instant::now(), 0));
                        }
                    }
                    Some((_, drained)) => {
                        *drained += bytes.len();
                        if *drained > DRAIN_BYTES {
                            break;
                        }
                    }
                }
            }
            Some(Err(error)) => {
                let _ = sender
                    .send(Err(std::io::Error::other(error.without_url())))
                    .await;
                break;
            }
            None => break,
        }
    }
    match tap.usage.take() {
        Some(usage) => {
            let model = tap.model.take();
            settlement.settle(model, usage, UsageSource::Gateway);
        }
        None => settlement.estimate(&tap),
    }
}

fn budget_exceeded(message: String) -> ApiError {
    admission::budget_exceeded(message).into()
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
        json!({"error": {"code": ErrorCode::LitellmError.as_str(), "message": text.chars().take(500).collect::<String>()}})
    };
    (status, axum::Json(body)).into_response()
}

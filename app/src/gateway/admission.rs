//! Admission of an LLM call (chat, completions, embeddings or messages), before anything is
//! sent: the body is checked and normalised (a boolean `stream`, usage asked for in streams, an
//! output limit every provider honours), the
//! model checked against the team's, and for a hard-budget team the body's worst case priced and
//! held from the team's lease. What is admitted is forwarded as is; what is refused changed
//! nothing.

use crate::error::ErrorCode;
use domain::Percent;
use domain::team::BudgetMode;
use domain::usage::{BodyError, Endpoint, TokenPrices};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::leases::{Admission, Leases, Ticket};
use super::prices::{PriceBook, PriceLookup};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::team_keys::TeamCaller;
use crate::usage::CallIds;

/// Retry-After when LiteLLM cannot be reached or its prices are stale.
pub const RETRY_UNREACHABLE_SECS: u64 = 5;

/// A call that may go ahead.
pub struct Admitted {
    /// The body to forward, as normalised.
    pub body: Vec<u8>,
    pub model: String,
    pub stream: bool,
    pub markup: Percent,
    /// The model's prices, if known (to price usage LiteLLM does not price).
    pub prices: Option<TokenPrices>,
    /// The worst case held from the team's lease (hard mode).
    pub ticket: Option<Ticket>,
    /// The id this call is sent to LiteLLM with (`x-litellm-call-id`) and recorded under, so
    /// LiteLLM's row of it and ours are one record.
    pub call_id: String,
}

fn invalid(message: impl Into<String>) -> AppError {
    AppError::invalid(ErrorCode::InvalidRequest, message)
}

/// The team's budget does not cover the call (429).
pub fn budget_exceeded(message: String) -> AppError {
    AppError::new(ErrorKind::Exhausted, ErrorCode::BudgetExceeded, message)
}

/// Checks, normalises and (hard mode) holds for one call of `caller` to `endpoint`; `job_id`
/// ties it to a job. `prices` is absent without LiteLLM.
pub async fn admit(
    caller: &TeamCaller,
    endpoint: Endpoint,
    raw: &[u8],
    job_id: Option<&str>,
    prices: Option<&PriceBook>,
    leases: &Leases,
    call_ids: &CallIds,
) -> AppResult<Admitted> {
    let mut body: Value = serde_json::from_slice(raw)
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
    // Only a boolean: LiteLLM would read "true" as true and stream an answer we took for JSON.
    let stream = match object.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(invalid("`stream` must be true or false")),
    };
    if stream && !endpoint.streams() {
        return Err(invalid("this API does not stream: leave `stream` out"));
    }
    if object
        .get("stream_options")
        .is_some_and(|o| !o.is_object() && !o.is_null())
    {
        return Err(invalid("`stream_options` must be an object"));
    }
    let hard = caller.budget_mode == BudgetMode::Hard;
    let limits = endpoint.normalize(object).map_err(body_refusal)?;
    if hard {
        endpoint.check_bounded(object).map_err(body_refusal)?;
    }
    if stream && endpoint.usage_on_request() {
        // Usage arrives in a final chunk only when asked for: streamed calls are never free.
        let options = object.entry("stream_options").or_insert_with(|| json!({}));
        if options.is_null() {
            *options = json!({});
        }
        if let Some(options) = options.as_object_mut() {
            options.insert("include_usage".into(), json!(true));
        }
    }
    if let Some(job) = job_id {
        let metadata = object.entry("metadata").or_insert_with(|| json!({}));
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert("job_id".into(), json!(job));
        }
    }

    if !caller.allowed_models.iter().any(|m| m == &model) {
        crate::metrics::gateway("model_not_allowed");
        return Err(AppError::new(
            ErrorKind::Forbidden,
            ErrorCode::ModelNotAllowed,
            format!(
                "model {model:?} is not in this team's model groups; allowed: {}",
                caller.allowed_models.join(", ")
            ),
        ));
    }
    let markup = caller.markup;
    let lookup = prices.map(|book| book.lookup(&model));
    let body_bytes = serde_json::to_vec(&body).map_err(AppError::internal)?;
    let call_id = call_ids.issue(chrono::Utc::now());
    let mut ticket = None;
    if hard {
        let at = hard_mode_prices(lookup, &model)?;
        let worst = limits.worst_case(body_bytes.len()).price(at, markup);
        match leases.admit(&caller.team_id, worst).await? {
            Admission::Held(held) => ticket = Some(held),
            Admission::Refused { available } => {
                crate::metrics::gateway("budget_exceeded");
                return Err(budget_exceeded(format!(
                    "the team's credits do not cover this request: {} available, up to {} needed (lower max_tokens, n or best_of, or add credits)",
                    available.max(Decimal::ZERO).normalize(),
                    worst.round_dp(6).normalize()
                )));
            }
        }
    }
    let known = match lookup {
        Some(PriceLookup::Priced(known)) => Some(known),
        _ => prices.and_then(|book| book.last_known(&model)),
    };
    Ok(Admitted {
        body: body_bytes,
        model,
        stream,
        markup,
        prices: known,
        ticket,
        call_id,
    })
}

/// A body refused before anything is held or sent.
fn body_refusal(error: BodyError) -> AppError {
    match error {
        BodyError::Invalid(message) => invalid(message),
        BodyError::Unbounded(message) => {
            crate::metrics::gateway("unbounded_request");
            AppError::invalid(ErrorCode::UnboundedRequest, message)
        }
    }
}

/// Hard mode holds the worst case at known, fresh prices, or refuses: never at zero.
fn hard_mode_prices(lookup: Option<PriceLookup>, model: &str) -> AppResult<TokenPrices> {
    match lookup {
        Some(PriceLookup::Priced(prices)) => Ok(prices),
        Some(PriceLookup::Unpriced) => {
            crate::metrics::gateway("model_unpriced");
            Err(AppError::invalid(
                ErrorCode::ModelUnpriced,
                format!(
                    "LiteLLM has no input and output price for {model:?}, so a hard-budget team cannot call it (set input_cost_per_token and output_cost_per_token in LiteLLM's model_info)"
                ),
            ))
        }
        Some(PriceLookup::Unavailable { age }) => {
            crate::metrics::gateway("prices_unavailable");
            let since = age.map_or("never been read".to_owned(), |age| {
                format!("not been read for {} s", age.as_secs())
            });
            Err(AppError::unavailable(
                ErrorCode::PricesUnavailable,
                format!(
                    "LiteLLM's model prices have {since}, so a hard-budget request cannot be bounded; retry shortly"
                ),
                RETRY_UNREACHABLE_SECS,
            ))
        }
        None => Err(AppError::internal("hard mode without a price book")),
    }
}

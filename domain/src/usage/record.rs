//! A usage record: one LLM call, validated and priced at the team's markup, as stored.

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::money::{Money, Percent};
use crate::organization::OrganizationId;
use crate::team::{KeyFingerprint, TeamId};

/// The aggregate type of usage streams in the event store.
pub const USAGE_AGGREGATE: &str = "Usage";
/// The current shape of `UsageRecorded`.
pub const USAGE_RECORDED_VERSION: &str = "2.0";

/// Costs and prices are kept to a millionth of a micro-dollar; finer digits from LiteLLM's
/// floats are noise, and a bounded scale keeps sums of millions of records exact.
const COST_SCALE: u32 = 12;
/// No single request costs a million dollars; a larger figure is a unit mix-up upstream.
const MAX_REQUEST_COST: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
const MAX_TOKENS: u64 = 1_000_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UsageError {
    #[error("request_id must be 1 to 200 printable characters")]
    BadRequestId,
    #[error("model must be 1 to 200 printable characters")]
    BadModel,
    #[error("{field} must be a non-negative decimal of at most 1000000 (USD)")]
    BadCost { field: &'static str },
    #[error("{field} must be at most {MAX_TOKENS}")]
    TooManyTokens { field: &'static str },
    #[error("cached_tokens cannot exceed prompt_tokens")]
    CachedAbovePrompt,
    #[error("occurred_at must be between 2000-01-01 and one hour from now")]
    BadTime,
    #[error("job_id must be 1 to 200 printable characters")]
    BadJobId,
}

/// LiteLLM's id of a request (the upstream `chatcmpl-…` id on success, its call id otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(String);

impl RequestId {
    pub fn parse(raw: &str) -> Result<Self, UsageError> {
        printable(raw)
            .map(|s| Self(s.to_owned()))
            .ok_or(UsageError::BadRequestId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn printable(raw: &str) -> Option<&str> {
    let ok = !raw.is_empty() && raw.chars().count() <= 200 && !raw.chars().any(char::is_control);
    ok.then_some(raw)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageStatus {
    Success,
    Failure,
}

impl UsageStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Which path reported the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageSource {
    /// Our own pass-through or job API saw the response.
    Gateway,
    /// The gateway's estimate of a stream that ended without usage (the client left and the
    /// provider's usage did not come in time): the prompt and the completion forwarded, at
    /// the model's price.
    GatewayEstimate,
    /// Pulled from LiteLLM's `/spend/logs/v2`.
    SpendLogs,
    /// Pushed by LiteLLM's `generic_api` callback.
    Push,
    /// Posted by an admin or integration to `/api/usage/records`.
    Api,
}

impl UsageSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::GatewayEstimate => "gateway_estimate",
            Self::SpendLogs => "spend_logs",
            Self::Push => "push",
            Self::Api => "api",
        }
    }
}

/// A request's usage as reported, before it is tied to a team and priced.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageInput {
    pub request_id: String,
    /// The model name the client asked for (LiteLLM's `model_group`).
    pub model: String,
    /// The provider's model, when known (`openai/gpt-4o`).
    pub provider_model: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub provider_cost: Decimal,
    pub status: UsageStatus,
    pub latency_ms: Option<u64>,
    pub occurred_at: DateTime<Utc>,
    pub job_id: Option<String>,
    pub source: UsageSource,
}

/// The stream of the usage of `request_id` by `team_id` (see `UsageRecord::stream_id`).
pub fn stream_id(team_id: &str, request_id: &str) -> String {
    format!("{team_id}:{request_id}")
}

/// One recorded request, priced for the team. The price is fixed when recorded, so a later
/// markup change never rewrites history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    pub request_id: RequestId,
    pub team_id: TeamId,
    pub organization_id: OrganizationId,
    pub key_fingerprint: Option<KeyFingerprint>,
    pub model: String,
    pub provider_model: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
    pub provider_cost: Money,
    pub markup_percent: Percent,
    pub price: Money,
    pub status: UsageStatus,
    pub latency_ms: Option<u64>,
    pub occurred_at: DateTime<Utc>,
    pub job_id: Option<String>,
    pub source: UsageSource,
    /// The gateway's budget hold this request took its worst case from (hard mode); the
    /// budgets projector releases that part in the transaction that adds the price to the
    /// team's spend. Version 1.0 of the event had `hold_key` alone (one hold per request);
    /// `crate::upcast` turns it into this shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<HoldPart>,
}

/// A request's part of a budget hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldPart {
    pub key: String,
    /// The part taken; `None`: the whole hold was this request's (events of version 1.0).
    pub amount: Option<Money>,
}

/// `cost x (1 + markup / 100)`, to the kept scale.
pub fn price_of(provider_cost: Money, markup: Percent) -> Money {
    Money::from_decimal(
        (provider_cost.as_decimal() * markup.factor())
            .round_dp_with_strategy(COST_SCALE, RoundingStrategy::MidpointAwayFromZero),
    )
}

impl UsageRecord {
    /// The record's identity, its stream in the log: the team and the request id together.
    /// Providers' ids are unique per provider account at best (some servers reuse them), so the
    /// request id alone would let one team's call hide another's. Team ids hold no `:`, so the
    /// first `:` ends the team.
    pub fn stream_id(&self) -> String {
        stream_id(self.team_id.as_str(), self.request_id.as_str())
    }

    /// Validates `input` and prices it for the team it belongs to. `now` bounds future times.
    pub fn new(
        input: UsageInput,
        team_id: TeamId,
        organization_id: OrganizationId,
        key_fingerprint: Option<KeyFingerprint>,
        markup_percent: Percent,
        now: DateTime<Utc>,
    ) -> Result<Self, UsageError> {
        let request_id = RequestId::parse(&input.request_id)?;
        let model = printable(input.model.trim())
            .ok_or(UsageError::BadModel)?
            .to_owned();
        let provider_model = input
            .provider_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| printable(m).map(str::to_owned).ok_or(UsageError::BadModel))
            .transpose()?;
        for (field, value) in [
            ("prompt_tokens", input.prompt_tokens),
            ("completion_tokens", input.completion_tokens),
            ("cached_tokens", input.cached_tokens),
        ] {
            if value > MAX_TOKENS {
                return Err(UsageError::TooManyTokens { field });
            }
        }
        if input.cached_tokens > input.prompt_tokens {
            return Err(UsageError::CachedAbovePrompt);
        }
        let cost = input.provider_cost;
        if cost.is_sign_negative() && !cost.is_zero() || cost > MAX_REQUEST_COST {
            return Err(UsageError::BadCost {
                field: "provider_cost",
            });
        }
        let earliest = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single();
        if Some(input.occurred_at) < earliest || input.occurred_at > now + Duration::hours(1) {
            return Err(UsageError::BadTime);
        }
        let job_id = input
            .job_id
            .map(|j| printable(&j).map(str::to_owned).ok_or(UsageError::BadJobId))
            .transpose()?;
        let provider_cost = Money::from_decimal(
            cost.abs()
                .round_dp_with_strategy(COST_SCALE, RoundingStrategy::MidpointAwayFromZero),
        );
        Ok(Self {
            request_id,
            team_id,
            organization_id,
            key_fingerprint,
            model,
            provider_model,
            prompt_tokens: input.prompt_tokens,
            completion_tokens: input.completion_tokens,
            cached_tokens: input.cached_tokens,
            price: price_of(provider_cost, markup_percent),
            provider_cost,
            markup_percent,
            status: input.status,
            latency_ms: input.latency_ms,
            occurred_at: input.occurred_at,
            job_id,
            source: input.source,
            hold: None,
        })
    }

    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The only event of a usage stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum UsageEvent {
    UsageRecorded(UsageRecord),
}

impl DomainEvent for UsageEvent {
    fn event_type(&self) -> String {
        match self {
            Self::UsageRecorded(_) => "UsageRecorded",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        // 2.0: the hold became `hold: {key, amount}` (see `crate::upcast`).
        USAGE_RECORDED_VERSION.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn input(cost: &str) -> UsageInput {
        UsageInput {
            request_id: "chatcmpl-1".into(),
            model: "gpt-4o".into(),
            provider_model: Some("openai/gpt-4o".into()),
            prompt_tokens: 100,
            completion_tokens: 50,
            cached_tokens: 10,
            provider_cost: Decimal::from_str(cost).unwrap(),
            status: UsageStatus::Success,
            latency_ms: Some(120),
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap(),
            job_id: None,
            source: UsageSource::Api,
        }
    }

    fn record(input: UsageInput, markup: &str) -> Result<UsageRecord, UsageError> {
        UsageRecord::new(
            input,
            TeamId::parse("team-1").unwrap(),
            OrganizationId::parse("acme").unwrap(),
            None,
            Percent::parse_markup("markup", markup).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap(),
        )
    }

    #[test]
    fn price_applies_the_markup_exactly() {
        let r = record(input("0.000123"), "20").unwrap();
        assert_eq!(r.price.to_string(), "0.0001476");
        assert_eq!(r.provider_cost.to_string(), "0.000123");
        let r = record(input("2"), "0").unwrap();
        assert_eq!(r.price, r.provider_cost);
        assert_eq!(r.total_tokens(), 150);
    }

    #[test]
    fn float_noise_below_the_kept_scale_is_rounded_away() {
        let r = record(input("0.00001234567890123456"), "0").unwrap();
        assert_eq!(r.provider_cost.to_string(), "0.000012345679");
    }

    #[test]
    fn bad_inputs_are_refused() {
        let mut i = input("1");
        i.request_id = String::new();
        assert_eq!(record(i, "0"), Err(UsageError::BadRequestId));
        assert!(matches!(
            record(input("-1"), "0"),
            Err(UsageError::BadCost { .. })
        ));
        assert!(matches!(
            record(input("1000001"), "0"),
            Err(UsageError::BadCost { .. })
        ));
        let mut i = input("1");
        i.cached_tokens = 101;
        assert_eq!(record(i, "0"), Err(UsageError::CachedAbovePrompt));
        let mut i = input("1");
        i.occurred_at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 0, 0).unwrap();
        assert_eq!(record(i, "0"), Err(UsageError::BadTime));
        let mut i = input("1");
        i.model = " \n".into();
        assert_eq!(record(i, "0"), Err(UsageError::BadModel));
    }
}

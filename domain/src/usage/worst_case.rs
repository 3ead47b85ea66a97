//! The most a chat completion can cost, read from its body before it is sent, so that a hard
//! budget holds for every request the OpenAI API accepts; a body whose cost cannot be bounded
//! is named, never guessed.

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::Percent;

/// `max_tokens` sent when a request names no output limit: a model would otherwise produce (and
/// LiteLLM reserve) up to 16,384 tokens or the model's maximum.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// The largest output limit accepted, per choice.
pub const MAX_TOKENS_LIMIT: u64 = 1_000_000;
/// OpenAI's own bound on `n`.
pub const MAX_CHOICES: u64 = 128;

/// Per-token prices of a model, provider cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenPrices {
    pub input: Decimal,
    pub output: Decimal,
}

impl TokenPrices {
    /// Provider cost of a call that used these tokens.
    pub fn cost(&self, prompt_tokens: u64, completion_tokens: u64) -> Decimal {
        self.input * Decimal::from(prompt_tokens) + self.output * Decimal::from(completion_tokens)
    }
}

/// Why a body is refused before anything is held or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not a request the API accepts (400 `invalid_request`).
    #[error("{0}")]
    Invalid(String),
    /// Valid, but its worst case cannot be known before it runs (hard mode only).
    #[error("{0}")]
    Unbounded(String),
}

/// What bounds a request's tokens: the prompt (at most one token per byte of the body sent, as
/// byte-level tokenizers never make a token of less than a byte), the output limit of one
/// choice, and the number of choices, each billed in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorstCase {
    pub prompt_tokens: u64,
    pub completion_tokens_per_choice: u64,
    pub choices: u64,
}

impl WorstCase {
    pub fn completion_tokens(&self) -> u64 {
        self.completion_tokens_per_choice * self.choices
    }

    /// The team's price of the worst case (provider cost × (1 + markup)).
    pub fn price(&self, prices: TokenPrices, markup: Percent) -> Decimal {
        prices.cost(self.prompt_tokens, self.completion_tokens()) * markup.factor()
    }
}

pub(super) fn limit(object: &Map<String, Value>, field: &str) -> Result<Option<u64>, BodyError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .filter(|n| (1..=MAX_TOKENS_LIMIT).contains(n))
            .map(Some)
            .ok_or_else(|| {
                BodyError::Invalid(format!("{field} must be between 1 and {MAX_TOKENS_LIMIT}"))
            }),
    }
}

/// Makes the body's output limit explicit (adding `max_tokens` when it names none) and checks
/// `n`; returns the output limit per choice and the number of choices. When both `max_tokens`
/// and `max_completion_tokens` are given the provider may honour either, so the larger counts.
pub fn normalize(object: &mut Map<String, Value>) -> Result<(u64, u64), BodyError> {
    let per_choice = match (
        limit(object, "max_tokens")?,
        limit(object, "max_completion_tokens")?,
    ) {
        (None, None) => {
            object.insert("max_tokens".into(), Value::from(DEFAULT_MAX_TOKENS));
            DEFAULT_MAX_TOKENS
        }
        (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)),
    };
    let choices = match object.get("n") {
        None | Some(Value::Null) => 1,
        Some(value) => value
            .as_u64()
            .filter(|n| (1..=MAX_CHOICES).contains(n))
            .ok_or_else(|| BodyError::Invalid(format!("n must be between 1 and {MAX_CHOICES}")))?,
    };
    Ok((per_choice, choices))
}

/// Refuses what makes a body's cost unknowable before it runs: content that is not text
/// (images, audio, files are billed by what they hold, not by their bytes here), audio output,
/// predicted outputs, built-in tools billed per call, and LiteLLM's per-request fallbacks.
pub fn check_bounded(object: &Map<String, Value>) -> Result<(), BodyError> {
    let unbounded = |what: String| {
        Err(BodyError::Unbounded(format!(
            "{what}: its cost cannot be bounded before the call, so hard-budget teams cannot send it"
        )))
    };
    for (index, message) in object
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let parts = match message.get("content") {
            Some(Value::Array(parts)) => parts,
            _ => continue,
        };
        for part in parts {
            let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
            if !matches!(kind, "text" | "refusal") {
                return unbounded(format!(
                    "messages[{index}] has a content part of type {kind:?}"
                ));
            }
        }
    }
    if object
        .get("modalities")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|m| m != "text"))
        || object.get("audio").is_some_and(|a| !a.is_null())
    {
        return unbounded("audio output was asked for".into());
    }
    check_litellm_fields(object)?;
    if object.get("prediction").is_some_and(|p| !p.is_null()) {
        return unbounded("`prediction` (rejected predicted tokens are billed too)".into());
    }
    if object
        .get("web_search_options")
        .is_some_and(|w| !w.is_null())
    {
        return unbounded("`web_search_options` (searches are billed per call)".into());
    }
    for tool in object
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "function" {
            return unbounded(format!("a tool of type {kind:?}"));
        }
    }
    Ok(())
}

/// Refuses LiteLLM's own request fields that let another model (at another price) serve the
/// call, whatever the API.
pub fn check_litellm_fields(object: &Map<String, Value>) -> Result<(), BodyError> {
    for field in ["fallbacks", "context_window_fallbacks"] {
        if object.get(field).is_some_and(|f| !f.is_null()) {
            return Err(BodyError::Unbounded(format!(
                "`{field}` (another model, at another price, may answer): its cost cannot be bounded before the call, so hard-budget teams cannot send it"
            )));
        }
    }
    Ok(())
}

/// The worst case of a normalized body that will be sent as `sent_bytes` bytes.
pub fn worst_case(per_choice: u64, choices: u64, sent_bytes: usize) -> WorstCase {
    WorstCase {
        prompt_tokens: sent_bytes as u64,
        completion_tokens_per_choice: per_choice,
        choices,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_body_without_a_limit_gets_the_default_and_n_multiplies_it() {
        let mut body = obj(json!({"model": "m", "messages": [], "n": 8}));
        assert_eq!(normalize(&mut body), Ok((DEFAULT_MAX_TOKENS, 8)));
        assert_eq!(body["max_tokens"], json!(DEFAULT_MAX_TOKENS));
        let case = worst_case(DEFAULT_MAX_TOKENS, 8, 100);
        assert_eq!(case.completion_tokens(), 8 * DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn both_limits_count_the_larger_and_null_is_absent() {
        let mut body = obj(json!({"max_tokens": 10, "max_completion_tokens": 500}));
        assert_eq!(normalize(&mut body), Ok((500, 1)));
        let mut body = obj(json!({"max_tokens": null, "max_completion_tokens": 7}));
        assert_eq!(normalize(&mut body), Ok((7, 1)));
        assert!(!body.contains_key("max_tokens") || body["max_tokens"].is_null());
        let mut body = obj(json!({"max_tokens": null, "max_completion_tokens": null}));
        assert_eq!(normalize(&mut body), Ok((DEFAULT_MAX_TOKENS, 1)));
    }

    #[test]
    fn out_of_range_limits_and_choices_are_invalid() {
        for body in [
            json!({"max_tokens": 0}),
            json!({"max_completion_tokens": MAX_TOKENS_LIMIT + 1}),
            json!({"max_tokens": -1}),
            json!({"max_tokens": 1.5}),
            json!({"max_tokens": "10"}),
            json!({"n": 0}),
            json!({"n": 129}),
            json!({"n": "2"}),
        ] {
            assert!(
                matches!(
                    normalize(&mut obj(body.clone())),
                    Err(BodyError::Invalid(_))
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn non_text_content_audio_predictions_and_builtin_tools_are_unbounded() {
        let image = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]});
        for body in [
            image,
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "file"}]}]}),
            json!({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}),
            json!({"messages": [], "modalities": ["text", "audio"]}),
            json!({"messages": [], "audio": {"voice": "alloy"}}),
            json!({"messages": [], "prediction": {"type": "content", "content": "x"}}),
            json!({"messages": [], "web_search_options": {}}),
            json!({"messages": [], "tools": [{"type": "web_search"}]}),
            json!({"messages": [], "fallbacks": ["gpt-4-32k"]}),
            json!({"messages": [], "context_window_fallbacks": [{"m": ["n"]}]}),
        ] {
            assert!(
                matches!(
                    check_bounded(&obj(body.clone())),
                    Err(BodyError::Unbounded(_))
                ),
                "{body}"
            );
        }
        let text = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                       {"role": "user", "content": "plain"}],
                          "tools": [{"type": "function", "function": {"name": "f"}}], "modalities": ["text"]});
        assert_eq!(check_bounded(&obj(text)), Ok(()));
    }

    #[test]
    fn the_price_counts_every_choice_and_the_markup() {
        let prices = TokenPrices {
            input: Decimal::new(1, 3),
            output: Decimal::new(2, 3),
        };
        let case = worst_case(10, 3, 100);
        // (100 × 0.001 + 30 × 0.002) × 1.25 = 0.2
        let markup = Percent::parse_markup("m", "25").unwrap();
        assert_eq!(case.price(prices, markup), Decimal::new(2, 1));
    }
}

//! The LLM APIs the gateway forwards (OpenAI's chat, legacy completions and embeddings, and
//! Anthropic's messages), each with the body it accepts and the worst case that body can cost.

use serde_json::{Map, Value};

use super::worst_case::{
    BodyError, MAX_CHOICES, WorstCase, check_bounded, check_litellm_fields, limit, normalize,
};

/// OpenAI's default output limit for legacy completions, sent explicitly when a body names none
/// (a client relying on the documented default must not be billed for more).
pub const COMPLETIONS_DEFAULT_MAX_TOKENS: u64 = 16;
/// OpenAI's bound on `best_of`.
pub const MAX_BEST_OF: u64 = 20;
/// Prompt tokens Anthropic adds (its tool-use system prompt, a few hundred tokens per model)
/// when a request names tools: not in the body's bytes, so held on top of them.
pub const TOOL_PROMPT_TOKENS: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
    Messages,
}

/// What bounds a normalized body's output, before its size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_choice: u64,
    pub choices: u64,
    /// Prompt tokens the provider adds beyond the body's bytes.
    pub extra_prompt_tokens: u64,
}

impl Limits {
    /// The worst case of the body once it is `sent_bytes` long.
    pub fn worst_case(&self, sent_bytes: usize) -> WorstCase {
        WorstCase {
            prompt_tokens: sent_bytes as u64 + self.extra_prompt_tokens,
            completion_tokens_per_choice: self.per_choice,
            choices: self.choices,
        }
    }
}

fn invalid(message: impl Into<String>) -> BodyError {
    BodyError::Invalid(message.into())
}

impl Endpoint {
    /// The path LiteLLM serves it at (and saas-api under the same name).
    pub fn path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Completions => "/v1/completions",
            Self::Embeddings => "/v1/embeddings",
            Self::Messages => "/v1/messages",
        }
    }

    /// Whether the API has `stream: true`.
    pub fn streams(self) -> bool {
        self != Self::Embeddings
    }

    /// Whether a stream carries usage only when `stream_options.include_usage` asks (OpenAI's);
    /// Anthropic's streams always end with it.
    pub fn usage_on_request(self) -> bool {
        matches!(self, Self::ChatCompletions | Self::Completions)
    }

    /// Checks the body this API accepts and makes its output limit explicit.
    pub fn normalize(self, object: &mut Map<String, Value>) -> Result<Limits, BodyError> {
        let plain = |(per_choice, choices)| Limits {
            per_choice,
            choices,
            extra_prompt_tokens: 0,
        };
        match self {
            Self::ChatCompletions => {
                if !object.get("messages").is_some_and(Value::is_array) {
                    return Err(invalid("`messages` must be an array"));
                }
                normalize(object).map(plain)
            }
            Self::Completions => completions(object).map(plain),
            Self::Embeddings => {
                inputs(object.get("input"), "input")?;
                Ok(plain((0, 1)))
            }
            Self::Messages => messages(object),
        }
    }

    /// Refuses (hard mode) what makes this body's cost unknowable before it runs.
    pub fn check_bounded(self, object: &Map<String, Value>) -> Result<(), BodyError> {
        match self {
            Self::ChatCompletions => check_bounded(object),
            Self::Completions | Self::Embeddings => check_litellm_fields(object),
            Self::Messages => {
                check_litellm_fields(object)?;
                check_messages_bounded(object)
            }
        }
    }
}

/// How many prompts a completions `prompt` or embeddings `input` holds: a string, a token
/// array, or a non-empty list of either.
fn inputs(value: Option<&Value>, field: &str) -> Result<u64, BodyError> {
    let bad = || {
        invalid(format!(
            "`{field}` must be a string, an array of strings, an array of token ids, or an array of token-id arrays"
        ))
    };
    let tokens = |list: &[Value]| !list.is_empty() && list.iter().all(Value::is_u64);
    match value {
        Some(Value::String(_)) => Ok(1),
        Some(Value::Array(list)) if list.is_empty() => Err(bad()),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => Ok(list.len() as u64),
        Some(Value::Array(list)) if tokens(list) => Ok(1),
        Some(Value::Array(list))
            if list
                .iter()
                .all(|item| item.as_array().is_some_and(|l| tokens(l))) =>
        {
            Ok(list.len() as u64)
        }
        _ => Err(bad()),
    }
}

fn count(object: &Map<String, Value>, field: &str, max: u64) -> Result<u64, BodyError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(1),
        Some(value) => value
            .as_u64()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| invalid(format!("{field} must be between 1 and {max}"))),
    }
}

/// Legacy completions: every prompt gets `best_of` completions generated (and billed), of which
/// `n` are returned; each may use the whole `max_tokens`.
fn completions(object: &mut Map<String, Value>) -> Result<(u64, u64), BodyError> {
    let prompts = inputs(object.get("prompt"), "prompt")?;
    let per_choice = match (
        limit(object, "max_tokens")?,
        limit(object, "max_completion_tokens")?,
    ) {
        (None, None) => {
            object.insert(
                "max_tokens".into(),
                Value::from(COMPLETIONS_DEFAULT_MAX_TOKENS),
            );
            COMPLETIONS_DEFAULT_MAX_TOKENS
        }
        (a, b) => a.unwrap_or(0).max(b.unwrap_or(0)),
    };
    let n = count(object, "n", MAX_CHOICES)?;
    let best_of = count(object, "best_of", MAX_BEST_OF)?;
    if object.get("best_of").is_some_and(|b| !b.is_null()) && best_of < n {
        return Err(invalid("best_of must be at least n"));
    }
    Ok((per_choice, prompts * n.max(best_of)))
}

/// Anthropic's messages: `max_tokens` is required there, so it is here; one answer per call.
fn messages(object: &mut Map<String, Value>) -> Result<Limits, BodyError> {
    if !object.get("messages").is_some_and(Value::is_array) {
        return Err(invalid("`messages` must be an array"));
    }
    let per_choice = limit(object, "max_tokens")?
        .ok_or_else(|| invalid("`max_tokens` is required (Anthropic's messages API needs it)"))?;
    let tools = object
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    Ok(Limits {
        per_choice,
        choices: 1,
        extra_prompt_tokens: if tools { TOOL_PROMPT_TOKENS } else { 0 },
    })
}

fn unbounded(what: String) -> Result<(), BodyError> {
    Err(BodyError::Unbounded(format!(
        "{what}: its cost cannot be bounded before the call, so hard-budget teams cannot send it"
    )))
}

/// Text, tool calls and their text results, and earlier thinking are billed by their bytes;
/// images and documents by what they hold; server tools (search, code execution, MCP) per use.
fn check_messages_bounded(object: &Map<String, Value>) -> Result<(), BodyError> {
    fn check_blocks(blocks: &[Value], at: &str) -> Result<(), BodyError> {
        for block in blocks {
            let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "text" | "tool_use" | "thinking" | "redacted_thinking" => {}
                "tool_result" => {
                    if let Some(Value::Array(inner)) = block.get("content") {
                        check_blocks(inner, at)?;
                    }
                }
                _ => return unbounded(format!("{at} has a content block of type {kind:?}")),
            }
        }
        Ok(())
    }
    if let Some(Value::Array(blocks)) = object.get("system") {
        check_blocks(blocks, "system")?;
    }
    for (index, message) in object
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(Value::Array(blocks)) = message.get("content") {
            check_blocks(blocks, &format!("messages[{index}]"))?;
        }
    }
    for tool in object
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(kind) => return unbounded(format!("a tool of type {kind:?}")),
        }
    }
    for field in ["mcp_servers", "container"] {
        if object.get(field).is_some_and(|f| !f.is_null()) {
            return unbounded(format!("`{field}` (billed by use)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn completions_bill_best_of_for_every_prompt_and_default_to_sixteen_tokens() {
        let mut body = obj(json!({"prompt": ["a", "b", "c"], "n": 2, "best_of": 5}));
        let limits = Endpoint::Completions.normalize(&mut body).unwrap();
        assert_eq!((limits.per_choice, limits.choices), (16, 15));
        assert_eq!(body["max_tokens"], json!(16));
        let mut body = obj(json!({"prompt": [[1, 2], [3]], "max_tokens": 7, "n": 3}));
        let limits = Endpoint::Completions.normalize(&mut body).unwrap();
        assert_eq!((limits.per_choice, limits.choices), (7, 6));
        let mut body = obj(json!({"prompt": [1, 2, 3], "max_tokens": 7}));
        assert_eq!(
            Endpoint::Completions.normalize(&mut body).unwrap().choices,
            1
        );
    }

    #[test]
    fn odd_prompts_and_inputs_are_invalid() {
        for (endpoint, body) in [
            (Endpoint::Completions, json!({})),
            (Endpoint::Completions, json!({"prompt": []})),
            (Endpoint::Completions, json!({"prompt": ["a", 1]})),
            (Endpoint::Completions, json!({"prompt": [[1], "a"]})),
            (Endpoint::Completions, json!({"prompt": [[]]})),
            (Endpoint::Completions, json!({"prompt": [-1]})),
            (Endpoint::Completions, json!({"prompt": {"text": "a"}})),
            (Endpoint::Completions, json!({"prompt": "a", "best_of": 21})),
            (
                Endpoint::Completions,
                json!({"prompt": "a", "n": 3, "best_of": 2}),
            ),
            (
                Endpoint::Completions,
                json!({"prompt": "a", "max_tokens": 0}),
            ),
            (Endpoint::Embeddings, json!({"input": null})),
            (Endpoint::Embeddings, json!({"input": [1.5]})),
            (Endpoint::Messages, json!({"messages": []})),
            (
                Endpoint::Messages,
                json!({"messages": [], "max_tokens": "5"}),
            ),
            (Endpoint::Messages, json!({"max_tokens": 5})),
            (Endpoint::ChatCompletions, json!({"messages": "hi"})),
        ] {
            assert!(
                matches!(
                    endpoint.normalize(&mut obj(body.clone())),
                    Err(BodyError::Invalid(_))
                ),
                "{endpoint:?} {body}"
            );
        }
    }

    #[test]
    fn embeddings_cost_only_their_input_and_messages_their_max_tokens() {
        let mut body = obj(json!({"input": ["a", "b"]}));
        let limits = Endpoint::Embeddings.normalize(&mut body).unwrap();
        assert_eq!(limits.worst_case(100).completion_tokens(), 0);
        assert_eq!(limits.worst_case(100).prompt_tokens, 100);
        let mut body = obj(json!({"messages": [], "max_tokens": 300}));
        let limits = Endpoint::Messages.normalize(&mut body).unwrap();
        assert_eq!(limits.worst_case(50).completion_tokens(), 300);
        assert_eq!(limits.worst_case(50).prompt_tokens, 50);
    }

    #[test]
    fn messages_with_tools_hold_the_providers_tool_prompt_too() {
        let mut body = obj(json!({"messages": [], "max_tokens": 1,
                                  "tools": [{"name": "f", "input_schema": {}}]}));
        let limits = Endpoint::Messages.normalize(&mut body).unwrap();
        assert_eq!(limits.worst_case(60).prompt_tokens, 60 + TOOL_PROMPT_TOKENS);
    }

    #[test]
    fn images_documents_and_server_tools_in_messages_are_unbounded() {
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}});
        for body in [
            json!({"messages": [{"role": "user", "content": [image.clone()]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [image]}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "document"}]}]}),
            json!({"system": [{"type": "image"}], "messages": []}),
            json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
            json!({"messages": [], "mcp_servers": [{"url": "https://example.com"}]}),
            json!({"messages": [], "fallbacks": ["other"]}),
        ] {
            assert!(
                matches!(
                    Endpoint::Messages.check_bounded(&obj(body.clone())),
                    Err(BodyError::Unbounded(_))
                ),
                "{body}"
            );
        }
        let text = json!({"system": [{"type": "text", "text": "be brief"}], "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "42"}]}],
            "tools": [{"name": "f", "input_schema": {}}, {"type": "custom", "name": "g", "input_schema": {}}]});
        assert_eq!(Endpoint::Messages.check_bounded(&obj(text)), Ok(()));
        assert!(matches!(
            Endpoint::Completions.check_bounded(&obj(json!({"prompt": "a", "fallbacks": ["b"]}))),
            Err(BodyError::Unbounded(_))
        ));
    }
}

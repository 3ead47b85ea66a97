//! Watching a server-sent-events stream go by: the completion's model and the usage of its
//! final chunk (OpenAI's) or its `message_delta` event (Anthropic's), without holding the
//! stream back; and both APIs' usage read in one shape.

use serde_json::Value;

#[derive(Debug, Default)]
pub struct SseTap {
    line: Vec<u8>,
    pub model: Option<String>,
    pub usage: Option<Value>,
    /// Chunks that carried completion text, and the bytes of that text (to estimate the
    /// completion when no usage comes).
    pub content_chunks: u64,
    pub content_bytes: u64,
    /// An Anthropic stream's usage as its `message_start` told it, completed by `message_delta`.
    started_usage: Option<Value>,
}

/// Usage in OpenAI's shape (`prompt_tokens`, `completion_tokens`, cached prompt tokens in
/// `prompt_tokens_details`), from OpenAI's or Anthropic's (whose `input_tokens` leaves out the
/// cache reads and writes, which are prompt tokens too).
pub fn openai_usage(usage: &Value) -> Value {
    if usage.get("prompt_tokens").is_some() || usage.get("input_tokens").is_none() {
        return usage.clone();
    }
    let n = |field: &str| usage[field].as_u64().unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    serde_json::json!({
        "prompt_tokens": n("input_tokens") + cached + n("cache_creation_input_tokens"),
        "completion_tokens": n("output_tokens"),
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

impl SseTap {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line);
            } else if self.line.len() < 1 << 20 {
                self.line.push(byte);
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        match chunk["type"].as_str() {
            // Anthropic's events: usage starts in `message_start` and is final in
            // `message_delta` (whose counts are cumulative).
            Some("message_start") => {
                self.model = chunk["message"]["model"].as_str().map(str::to_owned);
                self.started_usage = Some(chunk["message"]["usage"].clone());
            }
            Some("message_delta") if chunk["usage"].is_object() => {
                let mut usage = self.started_usage.clone().unwrap_or_default();
                if let (Some(usage), Some(delta)) =
                    (usage.as_object_mut(), chunk["usage"].as_object())
                {
                    for (field, value) in delta {
                        if !value.is_null() {
                            usage.insert(field.clone(), value.clone());
                        }
                    }
                } else {
                    usage = chunk["usage"].clone();
                }
                self.usage = Some(openai_usage(&usage));
            }
            Some("content_block_delta") => self.count(&chunk["delta"]),
            _ => {
                if self.model.is_none() {
                    self.model = chunk["model"].as_str().map(str::to_owned);
                }
                if chunk["usage"].is_object() {
                    self.usage = Some(chunk["usage"].clone());
                }
                // A chat chunk's text is in its delta, a legacy completion's in the choice.
                for choice in chunk["choices"].as_array().into_iter().flatten() {
                    self.count(choice.get("delta").unwrap_or(choice));
                }
            }
        }
    }

    /// What a non-streaming answer holds, counted as if it had been streamed.
    pub fn of_answer(answer: &Value) -> Self {
        let mut tap = Self {
            model: answer["model"].as_str().map(str::to_owned),
            ..Self::default()
        };
        for choice in answer["choices"].as_array().into_iter().flatten() {
            tap.count(choice.get("message").unwrap_or(choice));
        }
        for block in answer["content"].as_array().into_iter().flatten() {
            tap.count(block);
        }
        tap
    }

    /// Counts the completion text of a delta or message.
    fn count(&mut self, part: &Value) {
        let text = part["content"].as_str().map_or(0, str::len)
            + part["reasoning_content"].as_str().map_or(0, str::len)
            // Legacy completions and Anthropic's text, tool input and thinking.
            + ["text", "partial_json", "thinking"]
                .iter()
                .map(|field| part[*field].as_str().map_or(0, str::len))
                .sum::<usize>()
            + part["input"].as_object().map_or(0, |input| {
                Value::Object(input.clone()).to_string().len()
            })
            + part["tool_calls"]
                .as_array()
                .map_or(0, |calls| Value::Array(calls.clone()).to_string().len());
        if text > 0 {
            self.content_chunks += 1;
            self.content_bytes += text as u64;
        }
    }

    /// Completion tokens of what went by: at least one a chunk, about four bytes a token.
    pub fn estimated_completion_tokens(&self) -> u64 {
        self.content_chunks.max(self.content_bytes.div_ceil(4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_found_across_chunk_boundaries() {
        let mut tap = SseTap::default();
        let stream = "data: {\"id\":\"c-1\",\"model\":\"m\",\"choices\":[]}\n\ndata: {\"id\":\"c-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n";
        for piece in stream.as_bytes().chunks(7) {
            tap.feed(piece);
        }
        assert_eq!(tap.model.as_deref(), Some("m"));
        assert_eq!(tap.usage.unwrap()["completion_tokens"], 7);
    }

    #[test]
    fn forwarded_text_is_counted_for_an_estimate() {
        let mut tap = SseTap::default();
        tap.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abcdefghij\"}}]}\n\n");
        tap.feed(b"data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"a\"}}]}\n\n");
        tap.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{}}]}\n\n");
        assert_eq!(tap.content_chunks, 2);
        assert_eq!(tap.content_bytes, 11);
        assert_eq!(tap.estimated_completion_tokens(), 3);
    }

    #[test]
    fn anthropic_streams_end_with_their_usage_in_message_delta() {
        let mut tap = SseTap::default();
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"m\",\"usage\":{\"input_tokens\":0,\"output_tokens\":0,\"cache_read_input_tokens\":4}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"abcdefgh\"}}\n\n",
        );
        tap.feed(stream.as_bytes());
        assert!(tap.usage.is_none(), "no usage before message_delta");
        assert_eq!(tap.estimated_completion_tokens(), 2);
        tap.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"input_tokens\":38,\"output_tokens\":5}}\n\n");
        let usage = tap.usage.unwrap();
        assert_eq!(usage["prompt_tokens"], 42);
        assert_eq!(usage["completion_tokens"], 5);
        assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 4);
        assert_eq!(tap.model.as_deref(), Some("m"));
    }

    #[test]
    fn legacy_completion_text_is_counted() {
        let mut tap = SseTap::default();
        tap.feed(b"data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"abcd\"}]}\n\n");
        assert_eq!(tap.content_bytes, 4);
        let answer = serde_json::json!({"content": [{"type": "text", "text": "abcdefgh"}]});
        assert_eq!(SseTap::of_answer(&answer).content_bytes, 8);
    }
}

//! Watching a server-sent-events stream go by: the completion's model and the usage of its
//! final chunk, without holding the stream back.

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
        if self.model.is_none() {
            self.model = chunk["model"].as_str().map(str::to_owned);
        }
        if chunk["usage"].is_object() {
            self.usage = Some(chunk["usage"].clone());
        }
        for choice in chunk["choices"].as_array().into_iter().flatten() {
            self.count(&choice["delta"]);
        }
    }

    /// What a non-streaming answer holds, counted as if it had been streamed.
    pub fn of_answer(answer: &Value) -> Self {
        let mut tap = Self {
            model: answer["model"].as_str().map(str::to_owned),
            ..Self::default()
        };
        for choice in answer["choices"].as_array().into_iter().flatten() {
            tap.count(&choice["message"]);
        }
        tap
    }

    /// Counts the completion text of a delta or message.
    fn count(&mut self, part: &Value) {
        let text = part["content"].as_str().map_or(0, str::len)
            + part["reasoning_content"].as_str().map_or(0, str::len)
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
}

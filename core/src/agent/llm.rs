//! LLM wire formats as pure functions: chat requests for OpenAI-compatible servers (OpenAI,
//! OpenRouter, vLLM, llama.cpp, Ollama) and Anthropic, and a decoder for their SSE streams.
//! The room does the HTTP; it feeds response bytes in whatever chunks arrive.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Any server speaking OpenAI's `/chat/completions`.
    Openai,
    Anthropic,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn system(c: impl Into<String>) -> Self {
        ChatMessage {
            role: "system".into(),
            content: c.into(),
        }
    }
    pub fn user(c: impl Into<String>) -> Self {
        ChatMessage {
            role: "user".into(),
            content: c.into(),
        }
    }
    pub fn assistant(c: impl Into<String>) -> Self {
        ChatMessage {
            role: "assistant".into(),
            content: c.into(),
        }
    }
}

/// What a call asks for, independent of the provider.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    pub temperature: f32,
    /// A JSON schema the answer must follow, where the provider supports it.
    pub json_schema: Option<(String, Value)>,
}

impl ChatRequest {
    /// The request body (always streaming).
    pub fn body(&self, provider: Provider) -> Value {
        match provider {
            Provider::Openai => {
                let mut body = json!({
                    "model": self.model,
                    "messages": self.messages,
                    "stream": true,
                    "stream_options": { "include_usage": true },
                    "max_tokens": self.max_tokens,
                    "temperature": self.temperature,
                });
                if let Some((name, schema)) = &self.json_schema {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": { "name": name, "schema": schema, "strict": true }
                    });
                }
                body
            }
            Provider::Anthropic => {
                // Anthropic takes the system prompt apart from the turns.
                let system: Vec<&str> = self
                    .messages
                    .iter()
                    .filter(|m| m.role == "system")
                    .map(|m| m.content.as_str())
                    .collect();
                let turns: Vec<&ChatMessage> = self
                    .messages
                    .iter()
                    .filter(|m| m.role != "system")
                    .collect();
                json!({
                    "model": self.model,
                    "system": system.join("\n\n"),
                    "messages": turns,
                    "stream": true,
                    "max_tokens": self.max_tokens,
                    "temperature": self.temperature,
                })
            }
        }
    }

    /// The path under the base URL.
    pub fn path(provider: Provider) -> &'static str {
        match provider {
            Provider::Openai => "/chat/completions",
            Provider::Anthropic => "/messages",
        }
    }
}

/// A finished call.
#[derive(Debug, Clone)]
pub struct CallResult {
    pub text: String,
    pub usage: Usage,
    pub latency_ms: u64,
    pub model: String,
}

/// A failed call; `retryable` for rate limits, 5xx, timeouts and cut streams.
#[derive(Debug, Clone)]
pub struct CallError {
    pub reason: String,
    pub retryable: bool,
    pub retry_after_secs: Option<u64>,
    pub status: Option<u16>,
    pub latency_ms: u64,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What one SSE event contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
    Usage(Usage),
    /// The model finished (`stop`, `length`, …).
    Finish(String),
    /// The stream's explicit end (`[DONE]`, `message_stop`).
    Done,
    /// The provider reported an error inside the stream.
    Error(String),
}

/// Splits an SSE byte stream into events' `data` payloads. Chunk boundaries from the network
/// do not follow events (they split mid-JSON), so bytes are buffered up to the blank line.
#[derive(Default)]
pub struct SseDecoder {
    buf: Vec<u8>,
}

impl SseDecoder {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, sep)) = find_event_end(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + sep).collect();
            let text = String::from_utf8_lossy(&event[..end]);
            let data: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

fn find_event_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Interprets one SSE `data` payload of the given provider.
pub fn parse_event(provider: Provider, data: &str) -> Result<Vec<Delta>, String> {
    if data.trim() == "[DONE]" {
        return Ok(vec![Delta::Done]);
    }
    let v: Value =
        serde_json::from_str(data).map_err(|e| format!("malformed stream event: {e}"))?;
    let mut out = Vec::new();
    match provider {
        Provider::Openai => {
            if let Some(err) = v.get("error") {
                return Ok(vec![Delta::Error(err.to_string())]);
            }
            if let Some(choice) = v["choices"].get(0) {
                if let Some(t) = choice["delta"]["content"].as_str() {
                    if !t.is_empty() {
                        out.push(Delta::Text(t.to_owned()));
                    }
                }
                if let Some(r) = choice["finish_reason"].as_str() {
                    out.push(Delta::Finish(r.to_owned()));
                }
            }
            if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                out.push(Delta::Usage(Usage {
                    input_tokens: u["prompt_tokens"].as_u64().unwrap_or(0),
                    output_tokens: u["completion_tokens"].as_u64().unwrap_or(0),
                }));
            }
        }
        Provider::Anthropic => match v["type"].as_str().unwrap_or("") {
            "content_block_delta" => {
                if let Some(t) = v["delta"]["text"].as_str() {
                    out.push(Delta::Text(t.to_owned()));
                }
            }
            "message_start" => out.push(Delta::Usage(Usage {
                input_tokens: v["message"]["usage"]["input_tokens"].as_u64().unwrap_or(0),
                output_tokens: 0,
            })),
            "message_delta" => {
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    out.push(Delta::Finish(r.to_owned()));
                }
                out.push(Delta::Usage(Usage {
                    input_tokens: 0,
                    output_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
                }));
            }
            "message_stop" => out.push(Delta::Done),
            "error" => out.push(Delta::Error(v["error"].to_string())),
            _ => {}
        },
    }
    Ok(out)
}

/// Prices in micro-dollars per million tokens (input, output), by model-name prefix. Local
/// models cost nothing; unknown hosted models are logged with cost 0 and their name.
const PRICES: &[(&str, u64, u64)] = &[
    ("gpt-4o-mini", 150_000, 600_000),
    ("gpt-4o", 2_500_000, 10_000_000),
    ("gpt-4.1-mini", 400_000, 1_600_000),
    ("gpt-4.1", 2_000_000, 8_000_000),
    ("claude-3-5-haiku", 800_000, 4_000_000),
    ("claude-3-5-sonnet", 3_000_000, 15_000_000),
    ("claude-sonnet-4", 3_000_000, 15_000_000),
    ("claude-haiku-4", 1_000_000, 5_000_000),
];

/// Cost of a call in micro-dollars.
pub fn cost_micros(model: &str, usage: Usage) -> u64 {
    let model = model.rsplit('/').next().unwrap_or(model);
    PRICES
        .iter()
        .find(|(prefix, _, _)| model.starts_with(prefix))
        .map_or(0, |(_, i, o)| {
            (usage.input_tokens * i + usage.output_tokens * o) / 1_000_000
        })
}

/// Whether a failed call should be retried: rate limits, server errors, timeouts and
/// truncated streams are transient; other 4xx are not.
pub fn retryable_status(status: u16) -> bool {
    status == 408 || status == 409 || status == 429 || status >= 500
}

/// Exponential backoff with a cap: 1 s, 2 s, 4 s, … ≤ 30 s; `retry_after` wins when given.
pub fn backoff_ms(attempt: u32, retry_after_secs: Option<u64>) -> u64 {
    if let Some(s) = retry_after_secs {
        return (s * 1000).min(60_000);
    }
    (1000u64 << attempt.min(5)).min(30_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openai_stream(text: &str) -> String {
        let mut s = String::new();
        for piece in text.as_bytes().chunks(5) {
            let c = String::from_utf8_lossy(piece);
            s += &format!(
                "data: {}\n\n",
                json!({"choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]})
            );
        }
        s += &format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        );
        s += &format!(
            "data: {}\n\n",
            json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 34}})
        );
        s += "data: [DONE]\n\n";
        s
    }

    fn decode(provider: Provider, chunks: &[&[u8]]) -> Vec<Delta> {
        let mut d = SseDecoder::default();
        let mut out = vec![];
        for c in chunks {
            for data in d.feed(c) {
                out.extend(parse_event(provider, &data).unwrap());
            }
        }
        out
    }

    fn text_of(deltas: &[Delta]) -> String {
        deltas
            .iter()
            .filter_map(|d| match d {
                Delta::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_openai_stream_split_anywhere_decodes_the_same() {
        let text = "<file path=\"a.txt\">\nhello\n</file>";
        let stream = openai_stream(text);
        let b = stream.as_bytes();
        let whole = decode(Provider::Openai, &[b]);
        assert_eq!(text_of(&whole), text);
        assert!(whole.contains(&Delta::Usage(Usage {
            input_tokens: 12,
            output_tokens: 34
        })));
        assert!(whole.contains(&Delta::Finish("stop".into())));
        assert_eq!(whole.last(), Some(&Delta::Done));
        for i in 0..b.len() {
            assert_eq!(
                decode(Provider::Openai, &[&b[..i], &b[i..]]),
                whole,
                "split at {i}"
            );
        }
    }

    #[test]
    fn anthropic_events_decode() {
        let events = [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 7}}}),
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi "}}),
            json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "there"}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
            json!({"type": "message_stop"}),
        ];
        let stream: String = events
            .iter()
            .map(|e| format!("event: x\r\ndata: {e}\r\n\r\n"))
            .collect();
        let d = decode(Provider::Anthropic, &[stream.as_bytes()]);
        assert_eq!(text_of(&d), "Hi there");
        assert_eq!(d.last(), Some(&Delta::Done));
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(parse_event(Provider::Openai, "{not json").is_err());
        assert_eq!(
            parse_event(Provider::Openai, r#"{"error":{"message":"overloaded"}}"#).unwrap(),
            vec![Delta::Error(r#"{"message":"overloaded"}"#.into())]
        );
    }

    #[test]
    fn request_bodies_per_provider() {
        let req = ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::system("sys"), ChatMessage::user("hi")],
            max_tokens: 100,
            temperature: 0.2,
            json_schema: Some(("blueprint".into(), json!({"type": "object"}))),
        };
        let o = req.body(Provider::Openai);
        assert_eq!(o["stream"], true);
        assert_eq!(o["messages"].as_array().unwrap().len(), 2);
        assert_eq!(o["response_format"]["type"], "json_schema");
        let a = req.body(Provider::Anthropic);
        assert_eq!(a["system"], "sys");
        assert_eq!(a["messages"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn costs_retries_and_backoff() {
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
        };
        assert_eq!(cost_micros("gpt-4o-mini", u), 750_000);
        assert_eq!(cost_micros("openai/gpt-4o-mini", u), 750_000);
        assert_eq!(cost_micros("qwen2.5-coder-1.5b", u), 0);
        assert!(retryable_status(429) && retryable_status(503) && !retryable_status(400));
        assert_eq!(backoff_ms(0, None), 1000);
        assert_eq!(backoff_ms(10, None), 30_000);
        assert_eq!(backoff_ms(0, Some(2)), 2000);
    }
}

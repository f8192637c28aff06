//! Calls to the configured model, streamed. One code path for every OpenAI-compatible server
//! (OpenAI, OpenRouter, vLLM, llama.cpp, Ollama) and one for Anthropic; the wire formats are
//! in `kiln_core::agent::llm`.
//!
//! Configuration (Worker vars/secrets): `KILN_LLM_PROVIDER` (`openai` | `anthropic`),
//! `KILN_LLM_BASE_URL`, `KILN_LLM_API_KEY`, `KILN_LLM_MODEL` (every role) or
//! `KILN_LLM_MODEL_PLANNER` / `_CODER` / `_FIXER`, `KILN_LLM_FALLBACK_MODELS` (comma list,
//! tried in order when the primary keeps failing), `KILN_LLM_IDLE_TIMEOUT_MS` (a stream
//! silent for this long is abandoned; default 60 s).

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use kiln_core::agent::llm::{
    parse_event, retryable_status, ChatRequest, Delta, Provider, SseDecoder, Usage,
};
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Env, Fetch, Headers, Method, Request, RequestInit};

pub use kiln_core::agent::roles::Role;

#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub provider: Provider,
    pub base_url: String,
    api_key: Option<String>,
    planner: String,
    coder: String,
    fixer: String,
    pub fallbacks: Vec<String>,
    pub idle_timeout: Duration,
}

pub use kiln_core::agent::llm::{CallError, CallResult};

fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

impl LlmConfig {
    /// `None` when no model is configured.
    pub fn from_env(env: &Env) -> Option<LlmConfig> {
        let base_url = var(env, "KILN_LLM_BASE_URL")?;
        let provider = match var(env, "KILN_LLM_PROVIDER").as_deref() {
            Some("anthropic") => Provider::Anthropic,
            _ => Provider::Openai,
        };
        let default = var(env, "KILN_LLM_MODEL").unwrap_or_else(|| "default".to_owned());
        let role = |name: &str| var(env, name).unwrap_or_else(|| default.clone());
        Some(LlmConfig {
            provider,
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key: var(env, "KILN_LLM_API_KEY"),
            planner: role("KILN_LLM_MODEL_PLANNER"),
            coder: role("KILN_LLM_MODEL_CODER"),
            fixer: role("KILN_LLM_MODEL_FIXER"),
            fallbacks: var(env, "KILN_LLM_FALLBACK_MODELS")
                .map(|v| {
                    v.split(',')
                        .map(|m| m.trim().to_owned())
                        .filter(|m| !m.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            idle_timeout: Duration::from_millis(
                var(env, "KILN_LLM_IDLE_TIMEOUT_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(60_000),
            ),
        })
    }

    /// The model for a role on a given attempt: the role's own first, then the fallbacks.
    pub fn model(&self, role: Role, attempt: u32) -> String {
        let primary = match role {
            Role::Planner => &self.planner,
            Role::Coder | Role::Tester => &self.coder,
            Role::Fixer => &self.fixer,
        };
        // Two tries on the primary before moving down the fallback list.
        let idx = (attempt / 2) as usize;
        if idx == 0 || self.fallbacks.is_empty() {
            return primary.clone();
        }
        self.fallbacks[(idx - 1).min(self.fallbacks.len() - 1)].clone()
    }

    /// Streams one chat call, handing every piece of text to `on_text` as it arrives;
    /// `on_text` returning `false` abandons the call (cancel).
    pub async fn stream(
        &self,
        req: &ChatRequest,
        mut on_text: impl FnMut(&str) -> bool,
    ) -> Result<CallResult, CallError> {
        let started = worker::Date::now().as_millis();
        let elapsed = || worker::Date::now().as_millis().saturating_sub(started);
        let fail =
            |reason: String, retryable: bool, status: Option<u16>, after: Option<u64>| CallError {
                reason,
                retryable,
                retry_after_secs: after,
                status,
                latency_ms: elapsed(),
            };
        let transport = |e: worker::Error| fail(format!("request failed: {e}"), true, None, None);

        let headers = Headers::new();
        headers
            .set("content-type", "application/json")
            .map_err(transport)?;
        if self.provider == Provider::Anthropic {
            // Required on every Messages request, with or without a key (a gateway may add it).
            headers
                .set("anthropic-version", "2023-06-01")
                .map_err(transport)?;
        }
        match (self.provider, &self.api_key) {
            (Provider::Openai, Some(key)) => headers.set("authorization", &format!("Bearer {key}")),
            (Provider::Anthropic, Some(key)) => headers.set("x-api-key", key),
            (_, None) => Ok(()),
        }
        .map_err(transport)?;
        let body = req.body(self.provider).to_string();
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&body)));
        let url = format!("{}{}", self.base_url, ChatRequest::path(self.provider));
        let request = Request::new_with_init(&url, &init).map_err(transport)?;
        let abort = AbortController::default();
        let mut resp = Fetch::Request(request)
            .send_with_signal(&abort.signal())
            .await
            .map_err(transport)?;
        let status = resp.status_code();
        if status != 200 {
            let after = resp
                .headers()
                .get("retry-after")
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse().ok());
            let text = resp.text().await.unwrap_or_default();
            return Err(fail(
                format!(
                    "HTTP {status}: {}",
                    text.chars().take(300).collect::<String>()
                ),
                retryable_status(status),
                Some(status),
                after,
            ));
        }
        let mut stream = resp.stream().map_err(transport)?;
        let mut sse = SseDecoder::default();
        let (mut text, mut usage, mut done) = (String::new(), Usage::default(), false);
        while !done {
            let next = stream.next();
            let timeout = Delay::from(self.idle_timeout);
            futures::pin_mut!(next, timeout);
            let chunk = match select(next, timeout).await {
                Either::Left((Some(Ok(bytes)), _)) => bytes,
                Either::Left((Some(Err(e)), _)) => {
                    return Err(fail(format!("stream broke: {e}"), true, None, None))
                }
                Either::Left((None, _)) => break,
                Either::Right(_) => {
                    abort.abort();
                    return Err(fail(
                        "the model stopped sending (stalled stream)".into(),
                        true,
                        None,
                        None,
                    ));
                }
            };
            for data in sse.feed(&chunk) {
                let deltas =
                    parse_event(self.provider, &data).map_err(|e| fail(e, true, None, None))?;
                for d in deltas {
                    match d {
                        Delta::Text(t) => {
                            if !on_text(&t) {
                                abort.abort();
                                return Err(fail("cancelled".into(), false, None, None));
                            }
                            text.push_str(&t);
                        }
                        Delta::Usage(u) => {
                            usage.input_tokens += u.input_tokens;
                            usage.output_tokens += u.output_tokens;
                        }
                        Delta::Finish(_) => {}
                        Delta::Done => done = true,
                        Delta::Error(e) => {
                            return Err(fail(format!("model error: {e}"), true, None, None))
                        }
                    }
                }
            }
        }
        if !done {
            // The connection closed without the provider's end marker: a cut stream.
            return Err(fail("the stream was truncated".into(), true, None, None));
        }
        Ok(CallResult {
            text,
            usage,
            latency_ms: elapsed(),
            model: req.model.clone(),
        })
    }
}

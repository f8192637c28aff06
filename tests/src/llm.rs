//! **Test fixture, never part of the product**: a scripted model server speaking OpenAI-compatible
//! chat completions and Anthropic Messages, which Kiln's end-to-end tests point the room's LLM
//! client at in place of a real model. It replays scripted (or recorded) replies as SSE streams,
//! injects faults (500, 429, 529/503, stall, truncated stream, malformed JSON) and records every
//! request it receives.
//!
//! ```no_run
//! use kiln_e2e::llm::{Fault, Script, ScriptedLlm, Turn};
//!
//! let llm = ScriptedLlm::start(
//!     Script::new()
//!         .turn(Turn::text(r#"{"name":"todo"}"#).matching("You are the planner").usage(812, 40))
//!         .turn(Turn::text("file: src/App.tsx ...").fail(Fault::ServerError)),
//! );
//! let base_url = llm.base_url(); // http://127.0.0.1:PORT/v1 — give it to Kiln (either API)
//! // ... drive Kiln ...
//! assert_eq!(llm.calls_to(1), 2); // one 500, then the reply
//! assert_eq!(llm.completions(0), 1); // the plan was served exactly once
//! ```
//!
//! # Endpoints
//!
//! Loopback only (`127.0.0.1`, a free port), HTTP/1.1 with keep-alive (or `Connection: close`,
//! or HTTP/1.0), request bodies by `Content-Length` or chunked.
//!
//! - `POST /v1/chat/completions`: the body must be a JSON object with `model` (string) and
//!   `messages` (array); `stream`, `stream_options.include_usage`, `response_format`,
//!   `max_tokens`, `temperature` and anything else are accepted and recorded. Otherwise 400.
//!   - `"stream": true`: `200`, `content-type: text/event-stream`, chunked transfer encoding.
//!     Events are `data: {json}\n\n`: first a `chat.completion.chunk` whose delta is
//!     `{"role":"assistant","content":""}`, then one chunk per delta `{"content":"…"}`, then one
//!     with an empty delta and `"finish_reason":"stop"` (or the scripted reason); with
//!     `stream_options.include_usage` every chunk carries `"usage":null` and a last chunk with
//!     `"choices":[]` carries the usage, as OpenAI does; finally `data: [DONE]\n\n`.
//!   - otherwise: a `chat.completion` object with `message`, `finish_reason` and `usage`.
//! - `POST /v1/messages` (Anthropic): refused as Anthropic would — 401 `authentication_error`
//!   without `x-api-key` (or `authorization`); 400 `invalid_request_error` without the
//!   `anthropic-version` header, or unless the body is a JSON object with `model` (string),
//!   `max_tokens` (integer ≥ 1) and a non-empty `messages` array of `user`/`assistant` messages
//!   with non-empty content (a `system` role is refused: the system prompt is the top-level
//!   `system`, a string or an array of text blocks). Everything else is accepted and recorded.
//!   - `"stream": true`: `200`, `content-type: text/event-stream; charset=utf-8`, chunked.
//!     Named events (`event: <type>` then `data: {json}`): `message_start` (a `message` with
//!     `usage.input_tokens` and `output_tokens` ≤ 1), `content_block_start` (a text block at
//!     index 0), `ping`, one `content_block_delta` with a `text_delta` per delta,
//!     `content_block_stop`, `message_delta` with `stop_reason` and the total
//!     `usage.output_tokens`, `message_stop`.
//!   - otherwise: a `message` object with one text block, `stop_reason` and `usage`.
//!   - Finish reasons are scripted in OpenAI's words and translated: `stop` → `end_turn`,
//!     `length` → `max_tokens`; others are passed through. Ids are `msg_…`, in `request-id`.
//! - `GET /v1/models`: `{"object":"list","data":[{"id":<script model>,"object":"model",…}]}`.
//! - Anything else: 404 (unknown path) or 405 (known path, other method).
//!
//! Errors on `/v1/messages` are Anthropic-shaped, `{"type":"error","error":{"type","message"}}`;
//! all others OpenAI-shaped, `{"error":{"message","type","param","code"}}`.
//!
//! # Matching requests to turns
//!
//! A [`Script`] is an ordered list of [`Turn`]s. For each model request (either API) the
//! fixture picks, among the turns that are *free* (not yet served, and not being served right
//! now):
//! 1. the first turn with a `matcher` that occurs (case-sensitively) in the last `user` message,
//!    in a `system`/`developer` message or in Anthropic's top-level `system`; otherwise
//! 2. the first turn without a `matcher`, in script order.
//!
//! A turn's first calls get its `faults`, one per call, in order; the next call gets its reply.
//! A turn is used up once its reply has been sent completely; a reply the client abandons
//! midway (it hangs up, is killed) leaves the turn free, so a repeat of an interrupted call gets
//! the same reply. A `reusable` turn is never used up. When no turn is free for a request the
//! fixture answers 400 with `code: "fixture_script_exhausted"` (Anthropic: a message starting
//! with `fixture_script_exhausted:`) and records
//! [`Outcome::NoTurn`], so a test can see that a call was repeated or unexpected.
//!
//! # Faults
//!
//! - `server_error`: 500 with an OpenAI `server_error` body (Anthropic: `api_error`).
//! - `rate_limited`: 429, `retry-after: 1`, code `rate_limit_exceeded` (Anthropic:
//!   `rate_limit_error`).
//! - `rate_limited_for {retry_after_secs}`: the same 429 with `retry-after: <retry_after_secs>`.
//! - `overloaded`: 503 `server_error` (Anthropic: 529 `overloaded_error`).
//! - `stall {after_chunks}`: headers, the opening events (OpenAI: the role chunk; Anthropic:
//!   `message_start`, `content_block_start`, `ping`) and `after_chunks` content deltas, then
//!   nothing — the connection stays open until the client hangs up or the fixture is dropped.
//! - `truncated {after_chunks}`: headers (close-delimited body, `connection: close`), the
//!   opening events and `after_chunks` deltas, then the connection is closed cleanly: no finish
//!   chunk and no `data: [DONE]` (Anthropic: no `content_block_stop` … `message_stop`).
//! - `malformed_json {after_chunks}`: after `after_chunks` deltas, one `data:` line that is not
//!   JSON (Anthropic: under `event: content_block_delta`); the rest of the stream and its end
//!   follow as usual (a client that skips the bad line would silently accept a reply the
//!   fixture counts as failed).
//!
//! For non-streaming requests, `stall`/`truncated` send the headers (with the full
//! `Content-Length`) and half the body before stalling/closing; `malformed_json` sends a 200
//! whose body is not JSON. `after_chunks` defaults to 1.
//!
//! # Script JSON format
//!
//! Scripts are serde-(de)serialisable ([`Script::from_json`], [`Script::load`],
//! [`Script::fixture`] for `tests/fixtures/llm/<name>.json`, [`Script::to_json`]); unknown
//! fields are errors. Defaults are shown in the comments.
//!
//! ```json
//! {
//!   "model": "kiln-scripted",                 // default; echoed by GET /v1/models
//!   "turns": [
//!     {
//!       "name": "plan",                       // optional, for people reading the file
//!       "matcher": "You are the planner",     // optional; see "Matching" above
//!       "reusable": false,                    // default false
//!       "faults": [                           // default []: one per call, in order
//!         { "kind": "server_error" },
//!         { "kind": "rate_limited" },
//!         { "kind": "overloaded" },
//!         { "kind": "stall", "after_chunks": 2 },
//!         { "kind": "truncated", "after_chunks": 1 },
//!         { "kind": "malformed_json", "after_chunks": 0 }
//!       ],
//!       "reply": {
//!         "content": "the assistant text",    // split into deltas of chunk_size bytes, or
//!         "chunks": ["the ", "deltas"],       //   exactly these deltas (a recorded stream);
//!                                             //   give one of the two
//!         "chunk_size": 24,                   // default 24 (bytes; never splits a UTF-8 char)
//!         "chunk_delay_ms": 0,                // default 0: pause between deltas
//!         "usage": { "prompt_tokens": 812, "completion_tokens": 301 },
//!                                             // default: estimated as bytes / 4
//!         "finish_reason": "stop"             // default "stop" (OpenAI's words)
//!       }
//!     }
//!   ]
//! }
//! ```
//!
//! # Recording
//!
//! Every request (model call or not) is kept as a [`Recorded`]: method, path, headers (e.g.
//! `authorization`, `x-api-key`, `anthropic-version`), parsed JSON body, matched turn, attempt
//! number, status, [`Outcome`] and the time it took to answer (`elapsed`). It is recorded before any byte of
//! the response is written, and a reply is marked [`Outcome::Replied`] (and its turn used up)
//! before its last bytes are written, so whatever a client has seen is already visible through
//! [`ScriptedLlm::requests`].

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The model id a script answers as unless it names another.
pub const DEFAULT_MODEL: &str = "kiln-scripted";
/// The default delta size, in bytes.
pub const DEFAULT_CHUNK_SIZE: usize = 24;

const MAX_LINE: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;
const MAX_BODY: usize = 64 * 1024 * 1024;
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a waiting connection checks whether its client hung up or the fixture stopped.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Script

/// What the fixture answers: an ordered list of turns (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    #[serde(default = "default_model")]
    pub model: String,
    #[serde(default)]
    pub turns: Vec<Turn>,
}

/// One scripted model call: how to recognise it, how it fails first, and what it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A substring of the last user message or of a system message; `None`: next in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matcher: Option<String>,
    /// Never used up: answers every matching request.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reusable: bool,
    /// The first `faults.len()` calls to this turn get these, one each, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    pub reply: Reply,
}

/// The assistant's answer and how it is streamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    /// The text, split into deltas of `chunk_size` bytes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// Exact deltas (a recorded stream); used instead of `content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<String>>,
    #[serde(
        default = "default_chunk_size",
        skip_serializing_if = "is_default_chunk_size"
    )]
    pub chunk_size: usize,
    /// Pause between consecutive deltas (and, for non-streaming requests, their sum before
    /// the answer).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunk_delay_ms: u64,
    /// Token usage reported; `None`: estimated as bytes / 4 (rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default = "default_finish", skip_serializing_if = "is_stop")]
    pub finish_reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// A failure injected into one call (see the module docs for the exact bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// HTTP 500 with an OpenAI `server_error` body.
    ServerError,
    /// HTTP 429 with `retry-after: 1`.
    RateLimited,
    /// HTTP 429 with `retry-after: <retry_after_secs>`.
    RateLimitedFor { retry_after_secs: u64 },
    /// Overloaded: HTTP 529 `overloaded_error` (Anthropic), 503 (chat completions).
    Overloaded,
    /// Some deltas, then silence with the connection open.
    Stall {
        #[serde(default = "one")]
        after_chunks: usize,
    },
    /// Some deltas, then a clean close without the finish chunk or `[DONE]`.
    Truncated {
        #[serde(default = "one")]
        after_chunks: usize,
    },
    /// Some deltas, then a `data:` line that is not JSON, then the rest of the stream.
    MalformedJson {
        #[serde(default = "one")]
        after_chunks: usize,
    },
}

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}
fn default_chunk_size() -> usize {
    DEFAULT_CHUNK_SIZE
}
fn default_finish() -> String {
    "stop".to_owned()
}
fn one() -> usize {
    1
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(n: &u64) -> bool {
    *n == 0
}
fn is_default_chunk_size(n: &usize) -> bool {
    *n == DEFAULT_CHUNK_SIZE
}
fn is_stop(s: &str) -> bool {
    s == "stop"
}

impl Default for Script {
    fn default() -> Self {
        Script {
            model: default_model(),
            turns: vec![],
        }
    }
}

impl Script {
    pub fn new() -> Script {
        Script::default()
    }

    /// Appends a turn.
    pub fn turn(mut self, turn: Turn) -> Script {
        self.turns.push(turn);
        self
    }

    /// The model id `GET /v1/models` reports.
    pub fn model(mut self, model: &str) -> Script {
        self.model = model.to_owned();
        self
    }

    /// Parses and validates a script (the format is in the module docs).
    pub fn from_json(text: &str) -> Result<Script, String> {
        let script: Script =
            serde_json::from_str(text).map_err(|e| format!("invalid LLM script: {e}"))?;
        script.validate()?;
        Ok(script)
    }

    /// Reads a script from a JSON file.
    pub fn load(path: impl AsRef<Path>) -> Result<Script, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Script::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Loads `tests/fixtures/llm/<name>.json`; panics (it is a test fixture) if that fails.
    pub fn fixture(name: &str) -> Script {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/llm")
            .join(format!("{name}.json"));
        Script::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Pretty JSON, e.g. to keep a transcript under `tests/fixtures/llm/`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a script serialises")
    }

    /// Checks what serde cannot: sizes, empty matchers, `content` and `chunks` both given.
    pub fn validate(&self) -> Result<(), String> {
        for (i, turn) in self.turns.iter().enumerate() {
            let at = |what: &str| format!("turn {i}: {what}");
            if turn.matcher.as_deref() == Some("") {
                return Err(at("empty matcher (omit it to match in order)"));
            }
            if turn.reply.chunk_size == 0 {
                return Err(at("chunk_size must be at least 1"));
            }
            if turn.reply.chunks.is_some() && !turn.reply.content.is_empty() {
                return Err(at("give reply.content or reply.chunks, not both"));
            }
        }
        Ok(())
    }
}

impl Turn {
    pub fn new(reply: Reply) -> Turn {
        Turn {
            name: None,
            matcher: None,
            reusable: false,
            faults: vec![],
            reply,
        }
    }

    /// A turn answering `content`.
    pub fn text(content: impl Into<String>) -> Turn {
        Turn::new(Reply::new(content))
    }

    pub fn named(mut self, name: &str) -> Turn {
        self.name = Some(name.to_owned());
        self
    }

    /// Answers requests whose last user message or a system message contains `needle`.
    pub fn matching(mut self, needle: &str) -> Turn {
        self.matcher = Some(needle.to_owned());
        self
    }

    pub fn reusable(mut self) -> Turn {
        self.reusable = true;
        self
    }

    /// Adds one failing call before the reply.
    pub fn fail(mut self, fault: Fault) -> Turn {
        self.faults.push(fault);
        self
    }

    /// Adds `n` failing calls before the reply.
    pub fn fail_times(mut self, n: usize, fault: Fault) -> Turn {
        self.faults.extend(std::iter::repeat_n(fault, n));
        self
    }

    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Turn {
        self.reply.usage = Some(Usage {
            prompt_tokens,
            completion_tokens,
        });
        self
    }

    pub fn chunk_size(mut self, bytes: usize) -> Turn {
        self.reply.chunk_size = bytes;
        self
    }

    pub fn chunk_delay(mut self, delay: Duration) -> Turn {
        self.reply.chunk_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self
    }

    pub fn finish_reason(mut self, reason: &str) -> Turn {
        self.reply.finish_reason = reason.to_owned();
        self
    }
}

impl Reply {
    pub fn new(content: impl Into<String>) -> Reply {
        Reply {
            content: content.into(),
            chunks: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunk_delay_ms: 0,
            usage: None,
            finish_reason: default_finish(),
        }
    }

    /// A reply streamed as exactly these deltas.
    pub fn from_chunks(chunks: Vec<String>) -> Reply {
        Reply {
            chunks: Some(chunks),
            ..Reply::new("")
        }
    }

    /// The whole assistant text.
    pub fn text(&self) -> String {
        match &self.chunks {
            Some(chunks) => chunks.concat(),
            None => self.content.clone(),
        }
    }

    /// The deltas as streamed: `chunks`, or `content` cut into `chunk_size`-byte pieces at
    /// character boundaries.
    pub fn deltas(&self) -> Vec<String> {
        if let Some(chunks) = &self.chunks {
            return chunks.clone();
        }
        let text = self.content.as_str();
        let size = self.chunk_size.max(1);
        let mut out = vec![];
        let mut start = 0;
        while start < text.len() {
            let mut end = (start + size).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            out.push(text[start..end].to_owned());
            start = end;
        }
        out
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.chunk_delay_ms)
    }
}

// ---------------------------------------------------------------------------------------------
// Recording

/// One request the fixture received.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// The request target without its query string.
    pub path: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `None` if it was empty or not JSON.
    pub body: Option<Value>,
    /// The index of the turn it was matched to.
    pub turn: Option<usize>,
    /// How many calls that turn had received before this one (0 for the first).
    pub attempt: usize,
    pub status: u16,
    pub outcome: Outcome,
    /// Time from receiving the request to the end of the response; `None` while it is still
    /// being written.
    pub elapsed: Option<Duration>,
    /// When the request was received (to check how long a client waited between calls).
    pub received: Instant,
}

/// What the fixture did with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A reply is being streamed.
    InProgress,
    /// The reply was sent completely (its turn is used up unless reusable).
    Replied,
    /// The reply was abandoned midway (client hung up or the fixture stopped); the turn stays
    /// free.
    Interrupted,
    /// The turn's scripted fault was served.
    Fault(Fault),
    /// No free turn matched: 400 `fixture_script_exhausted`.
    NoTurn,
    /// Not a valid chat/messages request: 400 with this message.
    BadRequest(String),
    /// A messages request without `x-api-key` (or `authorization`): 401.
    Unauthorized,
    /// `GET /v1/models`.
    Models,
    /// Unknown path (404) or method (405).
    NotFound,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request asked for a stream.
    pub fn stream(&self) -> bool {
        self.body
            .as_ref()
            .and_then(|b| b["stream"].as_bool())
            .unwrap_or(false)
    }

    /// The text of the last `user` message.
    pub fn last_user_message(&self) -> Option<String> {
        self.body.as_ref().and_then(|b| message_texts(b).1)
    }

    /// The system prompts: Anthropic's top-level `system`, then `system`/`developer` messages.
    pub fn system_messages(&self) -> Vec<String> {
        self.body
            .as_ref()
            .map(|b| message_texts(b).0)
            .unwrap_or_default()
    }
}

/// (system prompts, last user text) of a chat-completions or messages request.
fn message_texts(body: &Value) -> (Vec<String>, Option<String>) {
    let mut system = vec![];
    // Anthropic's system prompt is a top-level field: a string or text blocks.
    let top = content_text(&body["system"]);
    if !top.is_empty() {
        system.push(top);
    }
    let mut user = None;
    for m in body["messages"].as_array().into_iter().flatten() {
        let text = content_text(&m["content"]);
        match m["role"].as_str() {
            Some("system" | "developer") => system.push(text),
            Some("user") => user = Some(text),
            _ => {}
        }
    }
    (system, user)
}

/// A message's text: a string, or the `text` of its content parts joined by newlines.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// A running scripted LLM on a loopback port; stops (closing every connection) when dropped.
pub struct ScriptedLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Free,
    InFlight,
    Done,
}

struct State {
    script: Script,
    uses: Vec<Use>,
    calls: Vec<usize>,
    records: Vec<Recorded>,
}

#[derive(Default)]
struct Conns {
    open: HashMap<u64, TcpStream>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    conns: Mutex<Conns>,
    /// Set by `crash_for`: until then every new connection is closed at once.
    down_until: Mutex<Option<std::time::Instant>>,
    stopping: AtomicBool,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the fixture (and the test's asserts) down.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ScriptedLlm {
    /// Binds `127.0.0.1:0` and serves `script` on background threads. Panics if the script is
    /// invalid or no port can be bound.
    pub fn start(script: Script) -> ScriptedLlm {
        if let Err(e) = script.validate() {
            panic!("invalid LLM script: {e}");
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let n = script.turns.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script,
                uses: vec![Use::Free; n],
                calls: vec![0; n],
                records: vec![],
            }),
            conns: Mutex::new(Conns::default()),
            down_until: Mutex::new(None),
            stopping: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        });
        let s = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("llm-fixture-accept".into())
            .spawn(move || accept_loop(listener, s))
            .expect("spawn the fixture's accept thread");
        ScriptedLlm {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL to configure for either API (clients append
    /// `/chat/completions` or `/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The script being served (including turns added with [`ScriptedLlm::add_turn`]).
    pub fn script(&self) -> Script {
        lock(&self.shared.state).script.clone()
    }

    /// Appends a turn while running (e.g. for a follow-up prompt). Returns its index.
    pub fn add_turn(&self, turn: Turn) -> usize {
        let mut st = lock(&self.shared.state);
        st.script.turns.push(turn);
        st.uses.push(Use::Free);
        st.calls.push(0);
        st.script.turns.len() - 1
    }

    /// The server "dies" for `down`, as a killed model server that is restarted: every open
    /// connection is cut mid-answer, and every new one is closed at once until `down` has
    /// passed. A reply cut this way leaves its turn free, so the repeated call gets it again.
    pub fn crash_for(&self, down: Duration) {
        *lock(&self.shared.down_until) = Some(std::time::Instant::now() + down);
        for stream in lock(&self.shared.conns).open.values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.state).records.clone()
    }

    /// The chat-completion requests (`POST /v1/chat/completions`) received so far.
    pub fn chat_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/chat/completions")
            .collect()
    }

    /// The Anthropic Messages requests (`POST /v1/messages`) received so far.
    pub fn messages_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/messages")
            .collect()
    }

    /// The model calls of either API (chat completions and messages) received so far.
    pub fn model_requests(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.method == "POST"
                    && matches!(r.path.as_str(), "/v1/chat/completions" | "/v1/messages")
            })
            .collect()
    }

    /// How many requests were matched to `turn` (faults, interrupted and served replies).
    pub fn calls_to(&self, turn: usize) -> usize {
        lock(&self.shared.state)
            .records
            .iter()
            .filter(|r| r.turn == Some(turn))
            .count()
    }

    /// How many times `turn`'s reply was sent completely (at most 1 unless it is reusable).
    pub fn completions(&self, turn: usize) -> usize {
        lock(&self.shared.state)
            .records
            .iter()
            .filter(|r| r.turn == Some(turn) && r.outcome == Outcome::Replied)
            .count()
    }

    /// Indexes of the non-reusable turns whose reply has not been sent completely.
    pub fn unused_turns(&self) -> Vec<usize> {
        let st = lock(&self.shared.state);
        (0..st.uses.len())
            .filter(|&i| st.uses[i] != Use::Done && !st.script.turns[i].reusable)
            .collect()
    }

    /// Waits until at least `n` requests have been recorded or `timeout` passes; returns them.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.requests();
            if records.len() >= n || Instant::now() >= deadline {
                return records;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until no response is still being written (e.g. a stall whose client left) or
    /// `timeout` passes; returns whether it is idle.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.requests().iter().all(|r| r.elapsed.is_some()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ScriptedLlm {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let threads = {
            let mut conns = lock(&self.shared.conns);
            for stream in conns.open.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
            std::mem::take(&mut conns.threads)
        };
        // Wake the accept loop, which sees `stopping` and returns.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn record(&self, rec: Recorded) -> usize {
        let mut st = lock(&self.state);
        st.records.push(rec);
        st.records.len() - 1
    }

    fn set_elapsed(&self, index: usize, elapsed: Duration) {
        let mut st = lock(&self.state);
        st.records[index].elapsed = Some(elapsed);
    }

    /// Picks the turn for a model request, counts the call and records it. Returns the record
    /// index and what to do.
    fn select(&self, mut rec: Recorded, body: &Value, api: Api) -> (usize, Action) {
        let (system, user) = message_texts(body);
        let mut st = lock(&self.state);
        let found = {
            let matches = |needle: &str| {
                user.as_deref().is_some_and(|u| u.contains(needle))
                    || system.iter().any(|s| s.contains(needle))
            };
            let turns = &st.script.turns;
            let free = |i: usize| st.uses[i] == Use::Free;
            (0..turns.len())
                .find(|&i| free(i) && turns[i].matcher.as_deref().is_some_and(matches))
                .or_else(|| (0..turns.len()).find(|&i| free(i) && turns[i].matcher.is_none()))
        };
        let action = match found {
            None => {
                rec.status = 400;
                rec.outcome = Outcome::NoTurn;
                Action::NoTurn
            }
            Some(i) => {
                let attempt = st.calls[i];
                st.calls[i] += 1;
                rec.turn = Some(i);
                rec.attempt = attempt;
                let turn = &st.script.turns[i];
                match turn.faults.get(attempt) {
                    Some(fault) => {
                        rec.status = fault_status(api, fault);
                        rec.outcome = Outcome::Fault(fault.clone());
                        Action::Fault(fault.clone(), turn.reply.clone())
                    }
                    None => {
                        let reply = turn.reply.clone();
                        if !turn.reusable {
                            st.uses[i] = Use::InFlight;
                        }
                        rec.status = 200;
                        rec.outcome = Outcome::InProgress;
                        Action::Reply(i, reply)
                    }
                }
            }
        };
        st.records.push(rec);
        (st.records.len() - 1, action)
    }

    /// Marks a reply as sent (before its last bytes go out, so clients never see it earlier
    /// than the record says).
    fn replied(&self, index: usize, turn: usize, started: Instant) {
        let mut st = lock(&self.state);
        if st.uses[turn] == Use::InFlight {
            st.uses[turn] = Use::Done;
        }
        let rec = &mut st.records[index];
        rec.outcome = Outcome::Replied;
        rec.elapsed = Some(started.elapsed());
    }

    /// Marks a reply as abandoned: the turn is free again.
    fn interrupted(&self, index: usize, turn: usize, started: Instant) {
        let mut st = lock(&self.state);
        if st.uses[turn] != Use::Free && !st.script.turns[turn].reusable {
            st.uses[turn] = Use::Free;
        }
        let rec = &mut st.records[index];
        rec.outcome = Outcome::Interrupted;
        rec.elapsed = Some(started.elapsed());
    }
}

enum Action {
    NoTurn,
    Fault(Fault, Reply),
    Reply(usize, Reply),
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        if shared.stopping() {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(_) => {
                // e.g. out of file descriptors: do not spin.
                std::thread::sleep(POLL);
                continue;
            }
        };
        let down = lock(&shared.down_until).is_some_and(|t| std::time::Instant::now() < t);
        if down {
            let _ = stream.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(registered) = stream.try_clone() else {
            continue;
        };
        let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let mut conns = lock(&shared.conns);
        // Checked under the lock Drop takes to shut connections down, so no connection is
        // registered after Drop has shut the others.
        if shared.stopping() {
            return;
        }
        conns.threads.retain(|t| !t.is_finished());
        let s = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("llm-fixture-conn".into())
            .spawn(move || {
                serve_connection(&s, stream);
                lock(&s.conns).open.remove(&id);
            });
        if let Ok(handle) = spawned {
            conns.open.insert(id, registered);
            conns.threads.push(handle);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

struct Request {
    method: String,
    target: String,
    http11: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(k, _)| k == "connection")
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn keep_alive(&self) -> bool {
        if self.http11 {
            !self.connection_has("close")
        } else {
            self.connection_has("keep-alive")
        }
    }

    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
}

enum HttpError {
    /// The connection failed or closed midway: nothing to answer.
    Io,
    /// A malformed or oversized request: answer with this status and close.
    Bad(u16, &'static str),
}

impl From<io::Error> for HttpError {
    fn from(_: io::Error) -> Self {
        HttpError::Io
    }
}

/// Reads a line ending in `\n` (without `\r\n`); `None` at a clean end of stream.
fn read_line(r: &mut impl BufRead) -> Result<Option<String>, HttpError> {
    let mut buf = vec![];
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if buf.len() > MAX_LINE {
            HttpError::Bad(431, "line too long")
        } else {
            HttpError::Io
        });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| HttpError::Bad(400, "request line or header is not UTF-8"))
}

fn read_request(r: &mut impl BufRead, w: &mut TcpStream) -> Result<Option<Request>, HttpError> {
    // A client may send an empty line before a request (RFC 9112 §2.2).
    let line = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue,
            Some(l) => break l,
        }
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Bad(400, "malformed request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HttpError::Bad(505, "only HTTP/1.0 and HTTP/1.1")),
    };
    if method.is_empty() || !target.starts_with('/') {
        return Err(HttpError::Bad(400, "malformed request line"));
    }
    let mut headers = vec![];
    loop {
        let Some(line) = read_line(r)? else {
            return Err(HttpError::Io);
        };
        if line.is_empty() {
            break;
        }
        if headers.len() == MAX_HEADERS {
            return Err(HttpError::Bad(431, "too many headers"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Bad(400, "malformed header"));
        };
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(HttpError::Bad(400, "malformed header name"));
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut req = Request {
        method: method.to_owned(),
        target: target.to_owned(),
        http11,
        headers,
        body: vec![],
    };

    let lengths: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v.as_str())
        .collect();
    let chunked = match req.header("transfer-encoding") {
        None => false,
        Some(te) if te.eq_ignore_ascii_case("chunked") => true,
        Some(_) => return Err(HttpError::Bad(501, "unsupported transfer-encoding")),
    };
    if chunked && !lengths.is_empty() {
        return Err(HttpError::Bad(
            400,
            "both content-length and transfer-encoding",
        ));
    }
    let length = match lengths.first() {
        None => None,
        Some(first) => {
            if lengths.iter().any(|l| l != first) {
                return Err(HttpError::Bad(400, "conflicting content-length"));
            }
            match first.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => Some(n),
                Ok(_) => return Err(HttpError::Bad(413, "body too large")),
                Err(_) => return Err(HttpError::Bad(400, "invalid content-length")),
            }
        }
    };
    let has_body = chunked || length.is_some_and(|n| n > 0);
    if has_body
        && http11
        && req
            .header("expect")
            .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
    {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    if chunked {
        req.body = read_chunked(r)?;
    } else if let Some(n) = length {
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        req.body = body;
    }
    Ok(Some(req))
}

fn read_chunked(r: &mut impl BufRead) -> Result<Vec<u8>, HttpError> {
    let mut body = vec![];
    loop {
        let line = read_line(r)?.ok_or(HttpError::Io)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| HttpError::Bad(400, "malformed chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r)?.ok_or(HttpError::Io)?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(HttpError::Bad(413, "body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        if !read_line(r)?.ok_or(HttpError::Io)?.is_empty() {
            return Err(HttpError::Bad(400, "malformed chunk"));
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        529 => "Overloaded",
        _ => "Unknown",
    }
}

fn write_head(w: &mut TcpStream, status: u16, headers: &[(&str, String)]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())
}

fn connection_header(keep_alive: bool) -> (&'static str, String) {
    let value = if keep_alive { "keep-alive" } else { "close" };
    ("connection", value.to_owned())
}

/// A complete JSON response with `Content-Length`.
fn respond_json(
    w: &mut TcpStream,
    status: u16,
    extra: &[(&str, String)],
    body: &Value,
    keep_alive: bool,
) -> io::Result<()> {
    let bytes = body.to_string().into_bytes();
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("content-length", bytes.len().to_string()),
        connection_header(keep_alive),
    ];
    headers.extend(extra.iter().cloned());
    write_head(w, status, &headers)?;
    w.write_all(&bytes)?;
    w.flush()
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// Closes gracefully: no more writes, then drain what the client still sends (so the kernel
/// does not answer it with a reset that could destroy the response in flight).
fn close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 4096];
    let mut reader = stream;
    let mut drained = 0;
    while drained < 1 << 20 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Waits `d`; returns false early if the client hung up or the fixture is stopping.
fn pause(shared: &Shared, stream: &TcpStream, d: Duration) -> bool {
    let deadline = Instant::now().checked_add(d);
    let ok = loop {
        if shared.stopping() {
            break false;
        }
        let now = Instant::now();
        let slice = match deadline {
            Some(dl) if now >= dl => break true,
            Some(dl) => (dl - now).min(POLL),
            None => POLL,
        };
        if stream.set_read_timeout(Some(slice)).is_err() {
            break false;
        }
        let mut probe = [0u8; 1];
        match stream.peek(&mut probe) {
            Ok(0) => break false,
            // The client sent more (a pipelined request): it is still there.
            Ok(_) => std::thread::sleep(slice),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break false,
        }
    };
    let _ = stream.set_read_timeout(None);
    ok
}

fn serve_connection(shared: &Shared, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut w = stream;
    loop {
        if shared.stopping() {
            break;
        }
        match read_request(&mut reader, &mut w) {
            Ok(Some(req)) => {
                if !handle(shared, &mut w, req) {
                    break;
                }
            }
            Ok(None) | Err(HttpError::Io) => break,
            Err(HttpError::Bad(status, message)) => {
                let body = error_body(message, "invalid_request_error", None);
                let _ = respond_json(&mut w, status, &[], &body, false);
                break;
            }
        }
    }
    close(&w);
}

/// Which API a request came in on: it decides every byte of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    /// `POST /v1/chat/completions`.
    OpenAi,
    /// `POST /v1/messages`.
    Anthropic,
}

impl Api {
    /// An error body in this API's shape; `code` is OpenAI's `error.code` (Anthropic has none).
    fn error(self, message: &str, kind: &str, code: Option<&str>) -> Value {
        match self {
            Api::OpenAi => error_body(message, kind, code),
            Api::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
        }
    }

    /// The header that carries the response's id.
    fn request_id_header(self) -> &'static str {
        match self {
            Api::OpenAi => "x-request-id",
            Api::Anthropic => "request-id",
        }
    }
}

/// Answers one request; returns whether the connection may serve another.
fn handle(shared: &Shared, w: &mut TcpStream, req: Request) -> bool {
    let started = Instant::now();
    let keep_alive = req.keep_alive();
    let body = if req.body.is_empty() {
        None
    } else {
        serde_json::from_slice::<Value>(&req.body).ok()
    };
    let rec = Recorded {
        method: req.method.clone(),
        path: req.path().to_owned(),
        headers: req.headers.clone(),
        body,
        turn: None,
        attempt: 0,
        status: 0,
        outcome: Outcome::NotFound,
        elapsed: None,
        received: started,
    };
    let path = req.path();
    // Answers a request that is not a model call with a JSON body, recorded first.
    let answer = |w: &mut TcpStream, rec: Recorded, body: &Value| {
        let index = shared.record(rec.clone());
        let ok = respond_json(w, rec.status, &[], body, keep_alive).is_ok();
        shared.set_elapsed(index, started.elapsed());
        ok && keep_alive
    };
    match (req.method.as_str(), path) {
        ("POST", "/v1/chat/completions") => chat(shared, w, &req, rec, started, Api::OpenAi),
        ("POST", "/v1/messages") => chat(shared, w, &req, rec, started, Api::Anthropic),
        ("GET", "/v1/models") => {
            let model = lock(&shared.state).script.model.clone();
            let body = json!({
                "object": "list",
                "data": [{"id": model, "object": "model", "created": 0, "owned_by": "kiln-fixture"}],
            });
            let rec = Recorded {
                status: 200,
                outcome: Outcome::Models,
                ..rec
            };
            answer(w, rec, &body)
        }
        (_, "/v1/chat/completions" | "/v1/models" | "/v1/messages") => {
            let api = if path == "/v1/messages" {
                Api::Anthropic
            } else {
                Api::OpenAi
            };
            let message = format!("{} is not allowed on {path}", req.method);
            let body = api.error(
                &message,
                "invalid_request_error",
                Some("method_not_allowed"),
            );
            answer(w, Recorded { status: 405, ..rec }, &body)
        }
        _ => {
            let message = format!(
                "unknown URL {path} (the fixture serves /v1/chat/completions, /v1/messages and /v1/models)"
            );
            let body = error_body(&message, "invalid_request_error", Some("unknown_url"));
            answer(w, Recorded { status: 404, ..rec }, &body)
        }
    }
}

/// What makes a chat-completions request invalid, if anything.
fn invalid_chat(body: Option<&Value>) -> Option<String> {
    let Some(body) = body else {
        return Some("We could not parse the JSON body of your request.".to_owned());
    };
    if !body.is_object() {
        return Some("The request body must be a JSON object.".to_owned());
    }
    if !body["model"].is_string() {
        return Some("you must provide a model parameter".to_owned());
    }
    if !body["messages"].is_array() {
        return Some("Missing required parameter: 'messages'.".to_owned());
    }
    None
}

/// Why Anthropic would refuse a Messages request, if it would: (status, error type, message).
fn invalid_messages(req: &Request, body: Option<&Value>) -> Option<(u16, &'static str, String)> {
    let refuse = |message: String| Some((400, "invalid_request_error", message));
    if req.header("x-api-key").is_none() && req.header("authorization").is_none() {
        let message = "x-api-key header is required".to_owned();
        return Some((401, "authentication_error", message));
    }
    if req.header("anthropic-version").is_none() {
        return refuse("anthropic-version: header is required".to_owned());
    }
    let Some(body) = body.filter(|b| b.is_object()) else {
        return refuse("The request body is not a valid JSON object.".to_owned());
    };
    if !body["model"].is_string() {
        return refuse("model: Field required".to_owned());
    }
    match body["max_tokens"].as_u64() {
        Some(n) if n >= 1 => {}
        Some(_) => return refuse("max_tokens: Input should be greater than or equal to 1".into()),
        None => return refuse("max_tokens: Field required".to_owned()),
    }
    let system_ok = match &body["system"] {
        Value::Null | Value::String(_) => true,
        Value::Array(blocks) => blocks
            .iter()
            .all(|b| b["type"] == "text" && b["text"].is_string()),
        _ => false,
    };
    if !system_ok {
        return refuse("system: Input should be a valid string or a list of text blocks".into());
    }
    let Some(messages) = body["messages"].as_array() else {
        return refuse("messages: Field required".to_owned());
    };
    if messages.is_empty() {
        return refuse("messages: at least one message is required".to_owned());
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str();
        match role {
            Some("user" | "assistant") => {}
            // The mistake a client ported from chat completions makes.
            Some("system") => return refuse(
                "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.".to_owned(),
            ),
            _ => return refuse(format!("messages.{i}.role: Input should be 'user' or 'assistant'")),
        }
        let empty = match &m["content"] {
            Value::String(s) => s.is_empty(),
            Value::Array(blocks) => blocks.is_empty(),
            _ => return refuse(format!("messages.{i}.content: Field required")),
        };
        let last_assistant = i + 1 == messages.len() && role == Some("assistant");
        if empty && !last_assistant {
            return refuse(format!(
                "messages.{i}: all messages must have non-empty content except for the optional final assistant message"
            ));
        }
    }
    None
}

/// Anthropic's name for a scripted finish reason (scripts use OpenAI's).
fn stop_reason(finish_reason: &str) -> String {
    match finish_reason {
        "stop" => "end_turn",
        "length" => "max_tokens",
        other => other,
    }
    .to_owned()
}

/// One SSE event: Anthropic names its events, OpenAI sends bare `data:` lines.
struct Event {
    name: Option<&'static str>,
    data: String,
}

impl Event {
    fn data(data: String) -> Event {
        Event { name: None, data }
    }

    /// An Anthropic event: its name is also the payload's `type`.
    fn named(name: &'static str, data: Value) -> Event {
        Event {
            name: Some(name),
            data: data.to_string(),
        }
    }
}

/// Per-response constants shared by every event.
struct Completion {
    api: Api,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    usage: Usage,
    /// In the API's own vocabulary (`stop` / `end_turn`, …).
    finish_reason: String,
}

impl Completion {
    fn new(shared: &Shared, body: &Value, reply: &Reply, api: Api) -> Completion {
        let n = shared.next_id.fetch_add(1, Ordering::SeqCst);
        let prompt_bytes: usize = body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| content_text(&m["content"]).len())
            .sum::<usize>()
            + content_text(&body["system"]).len();
        let (id, finish_reason) = match api {
            Api::OpenAi => (
                format!("chatcmpl-fixture{n:08}"),
                reply.finish_reason.clone(),
            ),
            Api::Anthropic => (
                format!("msg_fixture{n:08}"),
                stop_reason(&reply.finish_reason),
            ),
        };
        Completion {
            api,
            id,
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            model: body["model"].as_str().unwrap_or(DEFAULT_MODEL).to_owned(),
            include_usage: body["stream_options"]["include_usage"].as_bool() == Some(true),
            usage: reply.usage.unwrap_or(Usage {
                prompt_tokens: estimate_tokens(prompt_bytes),
                completion_tokens: estimate_tokens(reply.text().len()),
            }),
            finish_reason,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        c.to_string()
    }

    fn usage_json(&self) -> Value {
        json!({
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "total_tokens": self.usage.prompt_tokens + self.usage.completion_tokens,
        })
    }

    fn usage_chunk(&self) -> String {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": self.usage_json(),
        })
        .to_string()
    }

    /// The events before the first delta.
    fn opening(&self) -> Vec<Event> {
        match self.api {
            Api::OpenAi => vec![Event::data(
                self.chunk(json!({"role": "assistant", "content": ""}), None),
            )],
            Api::Anthropic => vec![
                Event::named(
                    "message_start",
                    json!({"type": "message_start", "message": {
                        "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                        "content": [], "stop_reason": null, "stop_sequence": null,
                        // As Anthropic does: the output count so far; the total comes at the end.
                        "usage": {"input_tokens": self.usage.prompt_tokens,
                                  "output_tokens": self.usage.completion_tokens.min(1)},
                    }}),
                ),
                Event::named(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}}),
                ),
                Event::named("ping", json!({"type": "ping"})),
            ],
        }
    }

    fn delta(&self, text: &str) -> Event {
        match self.api {
            Api::OpenAi => Event::data(self.chunk(json!({"content": text}), None)),
            Api::Anthropic => Event::named(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "text_delta", "text": text}}),
            ),
        }
    }

    /// A delta event whose data is cut off mid-JSON.
    fn malformed(&self) -> Event {
        match self.api {
            Api::OpenAi => Event::data(format!(
                r#"{{"id":"{}","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"unterminated"#,
                self.id
            )),
            Api::Anthropic => Event {
                name: Some("content_block_delta"),
                data: r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"unterminated"#.to_owned(),
            },
        }
    }

    /// The events after the last delta, ending the stream.
    fn closing(&self) -> Vec<Event> {
        match self.api {
            Api::OpenAi => {
                let mut events = vec![Event::data(
                    self.chunk(json!({}), Some(&self.finish_reason)),
                )];
                if self.include_usage {
                    events.push(Event::data(self.usage_chunk()));
                }
                events.push(Event::data("[DONE]".to_owned()));
                events
            }
            Api::Anthropic => vec![
                Event::named(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                Event::named(
                    "message_delta",
                    json!({"type": "message_delta",
                           "delta": {"stop_reason": self.finish_reason, "stop_sequence": null},
                           "usage": {"output_tokens": self.usage.completion_tokens}}),
                ),
                Event::named("message_stop", json!({"type": "message_stop"})),
            ],
        }
    }

    /// The whole answer of a non-streaming request.
    fn full(&self, content: &str) -> Value {
        match self.api {
            Api::OpenAi => json!({
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": null},
                    "logprobs": null,
                    "finish_reason": self.finish_reason,
                }],
                "usage": self.usage_json(),
            }),
            Api::Anthropic => json!({
                "id": self.id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": content}],
                "stop_reason": self.finish_reason,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": self.usage.prompt_tokens,
                    "output_tokens": self.usage.completion_tokens,
                },
            }),
        }
    }

    /// A 200 body for a non-streaming request that is not JSON.
    fn malformed_full(&self) -> String {
        match self.api {
            Api::OpenAi => format!(
                r#"{{"id":"{}","object":"chat.completion","choices":[{{"index":0,"message":not json"#,
                self.id
            ),
            Api::Anthropic => format!(
                r#"{{"id":"{}","type":"message","content":[{{"type":"text","text":not json"#,
                self.id
            ),
        }
    }

    fn id_header(&self) -> (&'static str, String) {
        (self.api.request_id_header(), self.id.clone())
    }
}

fn estimate_tokens(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

/// The status a fault answers with.
fn fault_status(api: Api, fault: &Fault) -> u16 {
    match (fault, api) {
        (Fault::ServerError, _) => 500,
        (Fault::RateLimited | Fault::RateLimitedFor { .. }, _) => 429,
        (Fault::Overloaded, Api::OpenAi) => 503,
        (Fault::Overloaded, Api::Anthropic) => 529,
        _ => 200,
    }
}

fn chat(
    shared: &Shared,
    w: &mut TcpStream,
    req: &Request,
    rec: Recorded,
    started: Instant,
    api: Api,
) -> bool {
    let keep_alive = req.keep_alive();
    let refusal = match api {
        Api::OpenAi => invalid_chat(rec.body.as_ref()).map(|m| (400, "invalid_request_error", m)),
        Api::Anthropic => invalid_messages(req, rec.body.as_ref()),
    };
    if let Some((status, kind, message)) = refusal {
        let outcome = if status == 401 {
            Outcome::Unauthorized
        } else {
            Outcome::BadRequest(message.clone())
        };
        let index = shared.record(Recorded {
            status,
            outcome,
            ..rec
        });
        let body = api.error(&message, kind, None);
        let ok = respond_json(w, status, &[], &body, keep_alive).is_ok();
        shared.set_elapsed(index, started.elapsed());
        return ok && keep_alive;
    }
    let body = rec.body.clone().unwrap_or(Value::Null);
    let stream = body["stream"].as_bool() == Some(true);
    let (index, action) = shared.select(rec, &body, api);
    let keep = match action {
        Action::NoTurn => {
            let (system, user) = message_texts(&body);
            let message = format!(
                "scripted LLM fixture: no free turn matches this request (last user message: {:?}; system: {:?})",
                truncate(user.as_deref().unwrap_or(""), 200),
                system.iter().map(|s| truncate(s, 80)).collect::<Vec<_>>(),
            );
            // Anthropic errors have no `code`: the name goes into the message.
            let message = match api {
                Api::OpenAi => message,
                Api::Anthropic => format!("fixture_script_exhausted: {message}"),
            };
            let body = api.error(
                &message,
                "invalid_request_error",
                Some("fixture_script_exhausted"),
            );
            respond_json(w, 400, &[], &body, keep_alive).is_ok() && keep_alive
        }
        Action::Fault(fault, reply) => {
            let ctx = Completion::new(shared, &body, &reply, api);
            serve_fault(shared, w, req, &ctx, &reply, &fault, stream)
        }
        Action::Reply(turn, reply) => {
            let ctx = Completion::new(shared, &body, &reply, api);
            let done = || shared.replied(index, turn, started);
            let sent = if stream {
                stream_reply(shared, w, req, &ctx, &reply, None, done)
            } else {
                whole_reply(shared, w, &ctx, &reply, keep_alive, done)
            };
            match sent {
                Ok(true) => keep_alive,
                Ok(false) if lock(&shared.state).records[index].outcome == Outcome::Replied => {
                    false
                }
                _ => {
                    shared.interrupted(index, turn, started);
                    false
                }
            }
        }
    };
    if lock(&shared.state).records[index].elapsed.is_none() {
        shared.set_elapsed(index, started.elapsed());
    }
    keep
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// An SSE body: chunked (reusable connection) or close-delimited.
struct Sse<'a> {
    w: &'a mut TcpStream,
    chunked: bool,
}

impl Sse<'_> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let payload = match event.name {
            Some(name) => format!("event: {name}\ndata: {}\n\n", event.data),
            None => format!("data: {}\n\n", event.data),
        };
        if self.chunked {
            let mut framed = format!("{:x}\r\n", payload.len()).into_bytes();
            framed.extend_from_slice(payload.as_bytes());
            framed.extend_from_slice(b"\r\n");
            self.w.write_all(&framed)?;
        } else {
            self.w.write_all(payload.as_bytes())?;
        }
        self.w.flush()
    }

    fn end(&mut self) -> io::Result<()> {
        if self.chunked {
            self.w.write_all(b"0\r\n\r\n")?;
        }
        self.w.flush()
    }
}

/// Streams a reply, or a faulty stream if `fault` is stall/truncated/malformed. For a full
/// reply `done` runs just before the closing events. Ok(true): the stream completed and the
/// connection may be reused.
fn stream_reply(
    shared: &Shared,
    w: &mut TcpStream,
    req: &Request,
    ctx: &Completion,
    reply: &Reply,
    fault: Option<&Fault>,
    done: impl FnOnce(),
) -> io::Result<bool> {
    let deltas = reply.deltas();
    let cut = match fault {
        Some(
            Fault::Stall { after_chunks }
            | Fault::Truncated { after_chunks }
            | Fault::MalformedJson { after_chunks },
        ) => (*after_chunks).min(deltas.len()),
        _ => deltas.len(),
    };
    let truncated = matches!(fault, Some(Fault::Truncated { .. }));
    let chunked = req.http11 && !truncated;
    let keep_alive = chunked && req.keep_alive();
    let content_type = match ctx.api {
        Api::OpenAi => "text/event-stream",
        Api::Anthropic => "text/event-stream; charset=utf-8",
    };
    let mut headers = vec![
        ("content-type", content_type.to_owned()),
        ("cache-control", "no-cache".to_owned()),
        ctx.id_header(),
    ];
    if chunked {
        headers.push(("transfer-encoding", "chunked".to_owned()));
    }
    headers.push(connection_header(keep_alive));
    write_head(w, 200, &headers)?;
    let stream_handle = w.try_clone()?;
    let mut sse = Sse { w, chunked };
    for event in ctx.opening() {
        sse.event(&event)?;
    }

    let delay = reply.delay();
    let mut sent = 0;
    let mut send_deltas = |sse: &mut Sse, upto: usize| -> io::Result<bool> {
        while sent < upto {
            if sent > 0 && !delay.is_zero() && !pause(shared, &stream_handle, delay) {
                return Ok(false);
            }
            sse.event(&ctx.delta(&deltas[sent]))?;
            sent += 1;
        }
        Ok(true)
    };
    if !send_deltas(&mut sse, cut)? {
        return Ok(false);
    }
    match fault {
        Some(Fault::Stall { .. }) => {
            pause(shared, &stream_handle, Duration::MAX);
            return Ok(false);
        }
        Some(Fault::Truncated { .. }) => return Ok(false),
        Some(Fault::MalformedJson { .. }) => {
            sse.event(&ctx.malformed())?;
        }
        _ => {}
    }
    if !send_deltas(&mut sse, deltas.len())? {
        return Ok(false);
    }
    done();
    for event in ctx.closing() {
        sse.event(&event)?;
    }
    sse.end()?;
    Ok(keep_alive)
}

/// A non-streaming reply after the reply's total delay. Ok(true): sent.
fn whole_reply(
    shared: &Shared,
    w: &mut TcpStream,
    ctx: &Completion,
    reply: &Reply,
    keep_alive: bool,
    done: impl FnOnce(),
) -> io::Result<bool> {
    let pieces = reply.deltas().len().saturating_sub(1) as u32;
    let total = reply.delay().saturating_mul(pieces);
    if !total.is_zero() && !pause(shared, w, total) {
        return Ok(false);
    }
    done();
    let extra = [ctx.id_header()];
    respond_json(w, 200, &extra, &ctx.full(&reply.text()), keep_alive)?;
    Ok(true)
}

/// Serves a fault; returns whether the connection may be reused.
fn serve_fault(
    shared: &Shared,
    w: &mut TcpStream,
    req: &Request,
    ctx: &Completion,
    reply: &Reply,
    fault: &Fault,
    stream: bool,
) -> bool {
    let keep_alive = req.keep_alive();
    let api = ctx.api;
    let status = fault_status(api, fault);
    let error = |w: &mut TcpStream, body: Value, extra: &[(&str, String)]| {
        respond_json(w, status, extra, &body, keep_alive).is_ok() && keep_alive
    };
    let retry_after = match fault {
        Fault::RateLimitedFor { retry_after_secs } => retry_after_secs.to_string(),
        _ => "1".to_owned(),
    };
    match (fault, api) {
        (Fault::ServerError, Api::OpenAi) => error(
            w,
            error_body(
                "The server had an error while processing your request. Sorry about that! (scripted fault)",
                "server_error",
                None,
            ),
            &[],
        ),
        (Fault::ServerError, Api::Anthropic) => error(
            w,
            api.error("Internal server error (scripted fault)", "api_error", None),
            &[ctx.id_header()],
        ),
        (Fault::RateLimited | Fault::RateLimitedFor { .. }, Api::OpenAi) => error(
            w,
            error_body(
                &format!(
                    "Rate limit reached for requests (scripted fault). Please try again in {retry_after}s."
                ),
                "requests",
                Some("rate_limit_exceeded"),
            ),
            &[("retry-after", retry_after.clone())],
        ),
        (Fault::RateLimited | Fault::RateLimitedFor { .. }, Api::Anthropic) => error(
            w,
            api.error(
                "This request would exceed the rate limit for your organization (scripted fault).",
                "rate_limit_error",
                None,
            ),
            &[("retry-after", retry_after.clone()), ctx.id_header()],
        ),
        (Fault::Overloaded, Api::OpenAi) => error(
            w,
            error_body(
                "The engine is currently overloaded, please try again later. (scripted fault)",
                "server_error",
                None,
            ),
            &[],
        ),
        (Fault::Overloaded, Api::Anthropic) => error(
            w,
            api.error("Overloaded (scripted fault)", "overloaded_error", None),
            &[ctx.id_header()],
        ),
        _ if stream => {
            let _ = stream_reply(shared, w, req, ctx, reply, Some(fault), || {});
            // Every faulty stream leaves the connection unusable (stalled, cut or abandoned).
            false
        }
        (Fault::MalformedJson { .. }, _) => {
            let body = ctx.malformed_full();
            let headers = [
                ("content-type", "application/json".to_owned()),
                ("content-length", body.len().to_string()),
                connection_header(keep_alive),
            ];
            let ok = write_head(w, 200, &headers)
                .and_then(|()| w.write_all(body.as_bytes()))
                .and_then(|()| w.flush())
                .is_ok();
            ok && keep_alive
        }
        (Fault::Stall { .. } | Fault::Truncated { .. }, _) => {
            let body = ctx.full(&reply.text()).to_string().into_bytes();
            let headers = [
                ("content-type", "application/json".to_owned()),
                ("content-length", body.len().to_string()),
                connection_header(false),
            ];
            let half = &body[..body.len() / 2];
            let sent = write_head(w, 200, &headers)
                .and_then(|()| w.write_all(half))
                .and_then(|()| w.flush())
                .is_ok();
            if sent && matches!(fault, Fault::Stall { .. }) {
                pause(shared, w, Duration::MAX);
            }
            false
        }
    }
}

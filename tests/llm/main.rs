//! Tests of the scripted LLM test fixture (`kiln_e2e::llm`), over loopback with ureq and raw
//! sockets. They start no Worker.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kiln_e2e::llm::{Fault, Outcome, Reply, Script, ScriptedLlm, Turn, Usage};
use serde_json::{json, Value};

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .build()
}

fn request(user: &str, stream: bool) -> Value {
    json!({
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": user},
        ],
        "stream": stream,
        "temperature": 0.2,
        "max_tokens": 512,
    })
}

/// POSTs a chat request; returns (status, response) for any status.
fn post(agent: &ureq::Agent, llm: &ScriptedLlm, body: &Value) -> (u16, ureq::Response) {
    match agent
        .post(&format!("{}/chat/completions", llm.base_url()))
        .set("authorization", "Bearer sk-test")
        .send_json(body)
    {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// A read SSE body: the `data:` payloads in order, and whether reading ended in an error.
struct Events {
    data: Vec<String>,
    error: Option<std::io::Error>,
}

impl Events {
    fn read(resp: ureq::Response) -> Events {
        Events::from_reader(resp.into_reader())
    }

    fn from_reader(reader: impl Read) -> Events {
        let mut reader = BufReader::new(reader);
        let mut data = vec![];
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return Events { data, error: None },
                Ok(_) => {
                    if let Some(d) = line.trim_end_matches('\n').strip_prefix("data: ") {
                        data.push(d.to_owned());
                    }
                }
                Err(e) => {
                    return Events {
                        data,
                        error: Some(e),
                    }
                }
            }
        }
    }

    fn done(&self) -> bool {
        self.data.iter().any(|d| d == "[DONE]")
    }

    /// The parsed chunks (every data line but `[DONE]`), panicking on one that is not JSON.
    fn chunks(&self) -> Vec<Value> {
        self.data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
            .collect()
    }

    /// The concatenated content deltas of the chunks that parse.
    fn text(&self) -> String {
        self.data
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }
}

const TEXT: &str = "Here is your app: a counter with a button — «incrémenter» adds one. \
                    ```tsx\nexport default function App() { return <button>+1</button>; }\n```";

#[test]
fn streamed_deltas_concatenate_to_the_scripted_text() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text(TEXT)));
    let (status, resp) = post(&agent(), &llm, &request("make a counter", true));
    assert_eq!(status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let events = Events::read(resp);
    assert!(events.error.is_none(), "{:?}", events.error);
    assert_eq!(events.data.last().map(String::as_str), Some("[DONE]"));
    let chunks = events.chunks();
    assert_eq!(events.text(), TEXT);

    let id = chunks[0]["id"].as_str().expect("id");
    assert!(id.starts_with("chatcmpl-"), "{id}");
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "test-model");
        assert!(c["created"].as_u64().is_some());
        assert_eq!(c["choices"][0]["index"], 0);
        assert!(c.get("usage").is_none(), "usage without include_usage: {c}");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let last = chunks.last().expect("chunks");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    let middle = &chunks[1..chunks.len() - 1];
    for c in middle {
        assert!(c["choices"][0]["finish_reason"].is_null());
        let delta = c["choices"][0]["delta"]["content"]
            .as_str()
            .expect("content");
        // 24 bytes, or up to 3 more to finish a UTF-8 character.
        assert!(!delta.is_empty() && delta.len() <= 24 + 3, "{delta:?}");
    }
    assert_eq!(middle.len(), Reply::new(TEXT).deltas().len());
    assert!(middle.len() > 3);
}

#[test]
fn exact_chunks_and_chunk_size_are_honoured() {
    let recorded = vec![
        "He".to_owned(),
        "llo".to_owned(),
        ", wor".to_owned(),
        "ld".to_owned(),
    ];
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::new(Reply::from_chunks(recorded.clone())))
            .turn(Turn::text("abcdefghij").chunk_size(4)),
    );
    let agent = agent();
    let deltas = |events: &Events| -> Vec<String> {
        events.chunks()[1..]
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    };
    let (_, resp) = post(&agent, &llm, &request("one", true));
    assert_eq!(deltas(&Events::read(resp)), recorded);
    let (_, resp) = post(&agent, &llm, &request("two", true));
    assert_eq!(deltas(&Events::read(resp)), ["abcd", "efgh", "ij"]);
}

#[test]
fn usage_is_in_the_final_chunk_when_requested() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text(TEXT).usage(812, 301))
            .turn(Turn::text("no usage given")),
    );
    let mut body = request("plan it", true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, resp) = post(&agent(), &llm, &body);
    let events = Events::read(resp);
    assert!(events.done());
    let chunks = events.chunks();
    let last = chunks.last().expect("chunks");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 812, "completion_tokens": 301, "total_tokens": 1113})
    );
    for c in &chunks[..chunks.len() - 1] {
        assert!(c["usage"].is_null(), "{c}");
    }
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(events.text(), TEXT);

    // Without scripted usage the fixture estimates it (bytes / 4, rounded up).
    let (_, resp) = post(&agent(), &llm, &body);
    let usage = Events::read(resp).chunks().last().expect("chunks")["usage"].clone();
    assert_eq!(
        usage["completion_tokens"],
        "no usage given".len().div_ceil(4)
    );
    assert!(usage["prompt_tokens"].as_u64().expect("prompt_tokens") > 0);
}

#[test]
fn non_streaming_requests_get_a_chat_completion() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text(r#"{"name":"todo"}"#).usage(10, 5))
            .turn(Turn::text("cut short").finish_reason("length")),
    );
    let mut body = request("plan", false);
    body["response_format"] = json!({"type": "json_object"});
    let (status, resp) = post(&agent(), &llm, &body);
    assert_eq!(status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v: Value = resp.into_json().expect("json");
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("chatcmpl-")));
    assert_eq!(v["model"], "test-model");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], r#"{"name":"todo"}"#);
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
    );
    // `stream` absent means not streaming.
    let mut body = request("again", false);
    body.as_object_mut().expect("object").remove("stream");
    let (_, resp) = post(&agent(), &llm, &body);
    let v: Value = resp.into_json().expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "cut short");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let recorded = llm.requests();
    assert_eq!(
        recorded[0].body.as_ref().expect("body")["response_format"]["type"],
        "json_object"
    );
    assert!(!recorded[0].stream());
}

#[test]
fn matchers_route_requests_regardless_of_order() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text("PLAN")
                    .named("planner")
                    .matching("You are the planner"),
            )
            .turn(
                Turn::text("CODE")
                    .named("coder")
                    .matching("Implement phase"),
            )
            .turn(Turn::text("FIRST"))
            .turn(Turn::text("SECOND")),
    );
    let agent = agent();
    let ask = |system: &str, user: &str| -> String {
        let body = json!({
            "model": "m",
            "stream": true,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "an earlier message: You are the planner"},
                {"role": "assistant", "content": "ok"},
                // Content parts are searched too.
                {"role": "user", "content": [{"type": "text", "text": user}]},
            ],
        });
        let (status, resp) = post(&agent, &llm, &body);
        assert_eq!(status, 200);
        Events::read(resp).text()
    };
    // Only the *last* user message and system messages are searched.
    assert_eq!(ask("You are Kiln.", "hello"), "FIRST");
    assert_eq!(ask("You are Kiln.", "Implement phase 1: the list"), "CODE");
    assert_eq!(
        ask("You are the planner. Answer JSON.", "a todo app"),
        "PLAN"
    );
    assert_eq!(ask("You are Kiln.", "hello again"), "SECOND");
    let turns: Vec<_> = llm.requests().iter().map(|r| r.turn).collect();
    assert_eq!(turns, [Some(2), Some(1), Some(0), Some(3)]);
    assert!(llm.unused_turns().is_empty());
}

#[test]
fn server_error_then_success() {
    let llm = ScriptedLlm::start(
        Script::new().turn(Turn::text("recovered").fail_times(2, Fault::ServerError)),
    );
    let agent = agent();
    for _ in 0..2 {
        let (status, resp) = post(&agent, &llm, &request("go", true));
        assert_eq!(status, 500);
        let v: Value = resp.into_json().expect("json error body");
        assert_eq!(v["error"]["type"], "server_error");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let (status, resp) = post(&agent, &llm, &request("go", true));
    assert_eq!(status, 200);
    assert_eq!(Events::read(resp).text(), "recovered");
    assert_eq!(llm.calls_to(0), 3);
    assert_eq!(llm.completions(0), 1);
    let outcomes: Vec<_> = llm
        .requests()
        .into_iter()
        .map(|r| (r.status, r.attempt, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (500, 0, Outcome::Fault(Fault::ServerError)),
            (500, 1, Outcome::Fault(Fault::ServerError)),
            (200, 2, Outcome::Replied),
        ]
    );
}

#[test]
fn rate_limited_with_retry_after() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("ok").fail(Fault::RateLimited)));
    let (status, resp) = post(&agent(), &llm, &request("go", false));
    assert_eq!(status, 429);
    assert_eq!(resp.header("retry-after"), Some("1"));
    let v: Value = resp.into_json().expect("json error body");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let (status, resp) = post(&agent(), &llm, &request("go", false));
    assert_eq!(status, 200);
    let v: Value = resp.into_json().expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
}

#[test]
fn truncated_stream_has_no_done() {
    let llm = ScriptedLlm::start(
        Script::new().turn(Turn::text(TEXT).fail(Fault::Truncated { after_chunks: 2 })),
    );
    let (status, resp) = post(&agent(), &llm, &request("go", true));
    assert_eq!(status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    let events = Events::read(resp);
    assert!(events.error.is_none(), "a clean close: {:?}", events.error);
    assert!(!events.done());
    let chunks = events.chunks();
    assert_eq!(chunks.len(), 3, "role chunk + 2 deltas");
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    let partial = events.text();
    assert!(TEXT.starts_with(&partial) && partial.len() < TEXT.len());
    assert!(llm.unused_turns().contains(&0));
    // The retry gets the whole reply.
    let events = Events::read(post(&agent(), &llm, &request("go", true)).1);
    assert!(events.done());
    assert_eq!(events.text(), TEXT);
    assert!(llm.unused_turns().is_empty());
}

#[test]
fn malformed_json_line_is_sent() {
    let llm = ScriptedLlm::start(
        Script::new().turn(Turn::text(TEXT).fail(Fault::MalformedJson { after_chunks: 1 })),
    );
    let events = Events::read(post(&agent(), &llm, &request("go", true)).1);
    let bad: Vec<_> = events
        .data
        .iter()
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .collect();
    assert_eq!(bad.len(), 1, "{:?}", events.data);
    assert_eq!(
        events.data[2], *bad[0],
        "after the role chunk and one delta"
    );
    // The rest of the stream follows, so a client skipping the bad line would be fooled.
    assert!(events.done());
    assert_eq!(events.text(), TEXT);
    assert_eq!(llm.completions(0), 0);
    assert_eq!(
        llm.requests()[0].outcome,
        Outcome::Fault(Fault::MalformedJson { after_chunks: 1 })
    );
    // Non-streaming: a 200 whose body is not JSON; then the real reply.
    let llm = ScriptedLlm::start(
        Script::new().turn(Turn::text("fine").fail(Fault::MalformedJson { after_chunks: 1 })),
    );
    let (status, resp) = post(&agent(), &llm, &request("go", false));
    assert_eq!(status, 200);
    assert!(resp.into_json::<Value>().is_err());
    let v: Value = post(&agent(), &llm, &request("go", false))
        .1
        .into_json()
        .expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "fine");
}

#[test]
fn stalled_stream_times_out_the_client_then_the_retry_succeeds() {
    let llm = ScriptedLlm::start(
        Script::new().turn(Turn::text(TEXT).fail(Fault::Stall { after_chunks: 2 })),
    );
    let impatient = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_millis(300))
        .build();
    let (status, resp) = post(&impatient, &llm, &request("go", true));
    assert_eq!(status, 200);
    let events = Events::read(resp);
    let error = events.error.as_ref().expect("the read timed out");
    assert!(
        matches!(
            error.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        "{error:?}"
    );
    assert!(!events.done());
    assert_eq!(events.chunks().len(), 3, "role chunk + 2 deltas");
    drop(events);
    // The client hung up: the stalled response ends.
    assert!(llm.wait_idle(Duration::from_secs(10)));
    let events = Events::read(post(&agent(), &llm, &request("go", true)).1);
    assert_eq!(events.text(), TEXT);
    assert_eq!(llm.calls_to(0), 2);
    assert_eq!(llm.completions(0), 1);
}

#[test]
fn dropping_the_fixture_ends_a_stall_and_closes_the_port() {
    let llm = ScriptedLlm::start(
        Script::new().turn(Turn::text(TEXT).fail(Fault::Stall { after_chunks: 0 })),
    );
    let addr = llm.addr();
    let url = format!("{}/chat/completions", llm.base_url());
    // A patient client: no read timeout.
    let client = std::thread::spawn(move || {
        let resp = ureq::AgentBuilder::new()
            .build()
            .post(&url)
            .send_json(request("go", true))
            .expect("200");
        Events::read(resp)
    });
    assert_eq!(llm.wait_for_requests(1, Duration::from_secs(10)).len(), 1);
    drop(llm);
    let events = client.join().expect("client thread");
    assert!(!events.done());
    assert_eq!(events.chunks().len(), 1, "just the role chunk");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn an_abandoned_reply_leaves_its_turn_free() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text(TEXT)
                    .chunk_size(2)
                    .chunk_delay(Duration::from_millis(20)),
            )
            .turn(Turn::text("next")),
    );
    let (_, resp) = post(&agent(), &llm, &request("go", true));
    let mut reader = BufReader::new(resp.into_reader());
    let mut line = String::new();
    reader.read_line(&mut line).expect("first event");
    assert!(line.starts_with("data: {"), "{line:?}");
    drop(reader); // hang up midway, like a killed workerd
    assert!(llm.wait_idle(Duration::from_secs(10)));
    assert_eq!(llm.requests()[0].outcome, Outcome::Interrupted);
    assert_eq!(llm.unused_turns(), [0, 1]);
    // A repeat of the interrupted call gets the same turn, in full.
    let events = Events::read(post(&agent(), &llm, &request("go", true)).1);
    assert_eq!(events.text(), TEXT);
    assert_eq!(llm.calls_to(0), 2);
    assert_eq!(llm.completions(0), 1);
    assert_eq!(llm.unused_turns(), [1]);
}

#[test]
fn every_request_is_recorded() {
    let llm = ScriptedLlm::start(
        Script::new()
            .model("scripted-coder")
            .turn(Turn::text("one"))
            .turn(Turn::text("always").matching("ping").reusable()),
    );
    let agent = agent();
    let models: Value = agent
        .get(&format!("{}/models", llm.base_url()))
        .call()
        .expect("models")
        .into_json()
        .expect("json");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(models["data"][0]["id"], "scripted-coder");

    let mut first = request("hello", true);
    first["stream_options"] = json!({"include_usage": true});
    assert!(Events::read(post(&agent, &llm, &first).1).done());
    for _ in 0..3 {
        assert!(Events::read(post(&agent, &llm, &request("ping", true)).1).done());
    }
    // The script is used up: a repeated call is refused and recorded as such.
    let (status, resp) = post(&agent, &llm, &request("hello", true));
    assert_eq!(status, 400);
    let v: Value = resp.into_json().expect("json");
    assert_eq!(v["error"]["code"], "fixture_script_exhausted");
    // Not a chat request.
    let bad = agent
        .post(&format!("{}/chat/completions", llm.base_url()))
        .set("content-type", "application/json")
        .send_string("{not json");
    assert!(matches!(bad, Err(ureq::Error::Status(400, _))));
    let missing = agent.get(&format!("{}/nope", llm.base_url())).call();
    assert!(matches!(missing, Err(ureq::Error::Status(404, _))));
    let wrong_method = agent
        .get(&format!("{}/chat/completions", llm.base_url()))
        .call();
    assert!(matches!(wrong_method, Err(ureq::Error::Status(405, _))));

    let all = llm.requests();
    assert_eq!(all.len(), 9);
    assert_eq!(
        (all[0].method.as_str(), all[0].path.as_str()),
        ("GET", "/v1/models")
    );
    assert_eq!(all[0].outcome, Outcome::Models);
    let chat = &all[1];
    assert_eq!(
        (chat.method.as_str(), chat.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(chat.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(chat.body.as_ref(), Some(&first));
    assert_eq!(chat.last_user_message().as_deref(), Some("hello"));
    assert_eq!(chat.system_messages(), ["You are a helpful assistant."]);
    assert!(chat.stream());
    assert_eq!(
        (chat.turn, chat.status, &chat.outcome),
        (Some(0), 200, &Outcome::Replied)
    );
    assert_eq!(all[5].outcome, Outcome::NoTurn);
    assert_eq!(all[5].turn, None);
    assert!(matches!(all[6].outcome, Outcome::BadRequest(_)));
    assert_eq!(all[6].body, None);
    assert_eq!((all[7].status, &all[7].outcome), (404, &Outcome::NotFound));
    assert_eq!((all[8].status, &all[8].outcome), (405, &Outcome::NotFound));
    assert_eq!(llm.calls_to(0), 1);
    assert_eq!(llm.calls_to(1), 3);
    assert_eq!(llm.completions(1), 3);
    assert!(llm.unused_turns().is_empty());
    assert_eq!(llm.chat_requests().len(), 6);

    // Turns can be added while running.
    let t = llm.add_turn(Turn::text("follow-up"));
    assert_eq!(t, 2);
    let events = Events::read(post(&agent, &llm, &request("change the title", true)).1);
    assert_eq!(events.text(), "follow-up");
    assert_eq!(llm.completions(2), 1);
}

const SCRIPT_JSON: &str = r#"{
  "model": "kiln-scripted",
  "turns": [
    {
      "name": "plan",
      "matcher": "You are the planner",
      "faults": [
        { "kind": "server_error" },
        { "kind": "rate_limited" },
        { "kind": "overloaded" },
        { "kind": "stall", "after_chunks": 2 },
        { "kind": "truncated" },
        { "kind": "malformed_json", "after_chunks": 0 }
      ],
      "reply": {
        "content": "the assistant text",
        "chunk_size": 8,
        "chunk_delay_ms": 5,
        "usage": { "prompt_tokens": 812, "completion_tokens": 301 }
      }
    },
    { "reply": { "chunks": ["the ", "deltas"], "finish_reason": "length" }, "reusable": true }
  ]
}"#;

#[test]
fn scripts_load_from_json_and_round_trip() {
    let script = Script::from_json(SCRIPT_JSON).expect("valid script");
    let plan = &script.turns[0];
    assert_eq!(plan.matcher.as_deref(), Some("You are the planner"));
    assert_eq!(
        plan.faults,
        [
            Fault::ServerError,
            Fault::RateLimited,
            Fault::Overloaded,
            Fault::Stall { after_chunks: 2 },
            Fault::Truncated { after_chunks: 1 },
            Fault::MalformedJson { after_chunks: 0 },
        ]
    );
    assert_eq!(
        plan.reply.usage,
        Some(Usage {
            prompt_tokens: 812,
            completion_tokens: 301
        })
    );
    assert_eq!(plan.reply.finish_reason, "stop");
    assert_eq!(script.turns[1].reply.text(), "the deltas");
    assert_eq!(script.turns[1].reply.chunk_size, 24);
    assert!(script.turns[1].reusable);

    // Through a file, and back.
    let path = std::env::temp_dir().join(format!("kiln-llm-script-{}.json", std::process::id()));
    std::fs::write(&path, script.to_json()).expect("write");
    let loaded = Script::load(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.expect("load"), script);
    // Built in code, the same.
    let built = Script::new()
        .turn(
            Turn::text("x")
                .named("plan")
                .fail(Fault::ServerError)
                .chunk_delay(Duration::from_millis(5)),
        )
        .turn(Turn::new(Reply::from_chunks(vec!["a".into()])).reusable());
    assert_eq!(
        Script::from_json(&built.to_json()).expect("round trip"),
        built
    );

    // Mistakes are errors, not silently ignored.
    for bad in [
        r#"{"turns":[{"reply":{"content":"x"},"matcher":"a","extra":1}]}"#,
        r#"{"turns":[{"reply":{"content":"x","chunks":["y"]}}]}"#,
        r#"{"turns":[{"reply":{"content":"x","chunk_size":0}}]}"#,
        r#"{"turns":[{"reply":{"content":"x"},"matcher":""}]}"#,
        r#"{"turns":[{"reply":{"content":"x"},"faults":[{"kind":"explode"}]}]}"#,
        r#"{"turns":[{"faults":[]}]}"#,
    ] {
        assert!(Script::from_json(bad).is_err(), "accepted: {bad}");
    }
    assert!(Script::load("/nonexistent/script.json").is_err());
}

/// Reads one HTTP response with a `Content-Length` body from a raw socket.
fn read_response(reader: &mut impl BufRead) -> (String, Vec<(String, String)>, Vec<u8>) {
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    let mut headers = vec![];
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').expect("header line");
        headers.push((k.to_ascii_lowercase(), v.trim().to_owned()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| v.parse().expect("length"))
        .expect("content-length");
    let mut body = vec![0; len];
    reader.read_exact(&mut body).expect("body");
    (status.trim_end().to_owned(), headers, body)
}

#[test]
fn raw_http_keep_alive_chunked_bodies_and_http10() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("first"))
            .turn(Turn::text("second"))
            .turn(Turn::text("third")),
    );
    let mut conn = TcpStream::connect(llm.addr()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = request("hi", false).to_string();
    // Two requests pipelined on one connection: one by Content-Length, one chunked.
    let (a, b) = body.split_at(body.len() / 2);
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}\
         POST /v1/chat/completions?api-version=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\n\r\n",
        body.len(),
        a.len(),
        b.len(),
    );
    conn.write_all(raw.as_bytes()).expect("write");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    for expected in ["first", "second"] {
        let (status, headers, body) = read_response(&mut reader);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(headers.contains(&("connection".into(), "keep-alive".into())));
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["choices"][0]["message"]["content"], expected);
    }
    assert_eq!(llm.requests()[1].path, "/v1/chat/completions");

    // HTTP/1.0 streaming: a close-delimited SSE body.
    let mut conn = TcpStream::connect(llm.addr()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let body = request("hi", true).to_string();
    write!(
        conn,
        "POST /v1/chat/completions HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut all = String::new();
    conn.read_to_string(&mut all).expect("read to close");
    let (head, sse) = all.split_once("\r\n\r\n").expect("head");
    assert!(head.starts_with("HTTP/1.1 200 OK"));
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding"));
    let events = Events::from_reader(sse.as_bytes());
    assert!(events.done());
    assert_eq!(events.text(), "third");

    // A malformed request line gets a 400 and the connection is closed.
    let mut conn = TcpStream::connect(llm.addr()).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(b"NONSENSE\r\n\r\n").expect("write");
    let mut all = String::new();
    conn.read_to_string(&mut all).expect("read to close");
    assert!(all.starts_with("HTTP/1.1 400 "), "{all}");
}

#[test]
fn concurrent_requests_get_distinct_turns() {
    let texts: Vec<String> = (0..8)
        .map(|i| format!("reply number {i} ").repeat(4))
        .collect();
    let mut script = Script::new();
    for t in &texts {
        script = script.turn(Turn::text(t.clone()).chunk_delay(Duration::from_millis(5)));
    }
    let llm = ScriptedLlm::start(script);
    let got: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..texts.len())
            .map(|_| s.spawn(|| Events::read(post(&agent(), &llm, &request("go", true)).1)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let events = h.join().expect("client");
                assert!(events.done());
                events.text()
            })
            .collect()
    });
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want = texts.clone();
    want.sort();
    assert_eq!(got_sorted, want, "each turn served once: {got:?}");
    assert!(llm.unused_turns().is_empty());
    assert!((0..texts.len()).all(|i| llm.calls_to(i) == 1 && llm.completions(i) == 1));
}

#[test]
fn non_streaming_stall_and_truncation_cut_the_body() {
    let llm = ScriptedLlm::start(
        Script::new().turn(
            Turn::text(TEXT)
                .fail(Fault::Truncated { after_chunks: 1 })
                .fail(Fault::Stall { after_chunks: 1 }),
        ),
    );
    // Truncated: the body ends before its Content-Length.
    let (status, resp) = post(&agent(), &llm, &request("go", false));
    assert_eq!(status, 200);
    let mut body = vec![];
    assert!(resp.into_reader().read_to_end(&mut body).is_err());
    assert!(!body.is_empty());
    // Stall: half the body, then nothing.
    let impatient = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_millis(300))
        .build();
    let (status, resp) = post(&impatient, &llm, &request("go", false));
    assert_eq!(status, 200);
    let mut body = vec![];
    let err = resp
        .into_reader()
        .read_to_end(&mut body)
        .expect_err("timed out");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        "{err:?}"
    );
    assert!(llm.wait_idle(Duration::from_secs(10)));
    let v: Value = post(&agent(), &llm, &request("go", false))
        .1
        .into_json()
        .expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], TEXT);
    assert_eq!(llm.calls_to(0), 3);
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages: POST /v1/messages

const API_KEY: &str = "sk-ant-test-key";
const VERSION: &str = "2023-06-01";

fn messages_request(user: &str, stream: bool) -> Value {
    json!({
        "model": "claude-sonnet-4-test",
        "system": "You are a helpful assistant.",
        "messages": [{"role": "user", "content": user}],
        "max_tokens": 1024,
        "stream": stream,
        "temperature": 0.2,
    })
}

/// POSTs a messages request with Anthropic's headers; returns (status, response) for any status.
fn post_messages(
    agent: &ureq::Agent,
    llm: &ScriptedLlm,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, ureq::Response) {
    let mut req = agent.post(&format!("{}/messages", llm.base_url()));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req.send_json(body) {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn anthropic(agent: &ureq::Agent, llm: &ScriptedLlm, body: &Value) -> (u16, ureq::Response) {
    post_messages(
        agent,
        llm,
        &[("x-api-key", API_KEY), ("anthropic-version", VERSION)],
        body,
    )
}

/// A read Anthropic SSE body: (event name, parsed data) pairs, the data lines that are not
/// JSON, and whether reading ended in an error.
struct Named {
    events: Vec<(String, Value)>,
    bad: Vec<String>,
    error: Option<std::io::Error>,
}

impl Named {
    fn read(resp: ureq::Response) -> Named {
        let mut reader = BufReader::new(resp.into_reader());
        let mut named = Named {
            events: vec![],
            bad: vec![],
            error: None,
        };
        let (mut name, mut line) = (None::<String>, String::new());
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return named,
                Ok(_) => {
                    let l = line.trim_end_matches('\n');
                    if let Some(n) = l.strip_prefix("event: ") {
                        name = Some(n.to_owned());
                    } else if let Some(d) = l.strip_prefix("data: ") {
                        let n = name.take().expect("every data line has an event name");
                        match serde_json::from_str::<Value>(d) {
                            Ok(v) => named.events.push((n, v)),
                            Err(_) => named.bad.push(d.to_owned()),
                        }
                    } else {
                        assert!(l.is_empty(), "unexpected SSE line {l:?}");
                    }
                }
                Err(e) => {
                    named.error = Some(e);
                    return named;
                }
            }
        }
    }

    fn names(&self) -> Vec<&str> {
        self.events.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|(_, v)| v["delta"]["text"].as_str())
            .collect()
    }

    fn get(&self, name: &str) -> &Value {
        &self
            .events
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.names()))
            .1
    }

    fn stopped(&self) -> bool {
        self.names().last() == Some(&"message_stop")
    }
}

#[test]
fn anthropic_stream_has_every_event_in_order() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text(TEXT).usage(812, 301)));
    let (status, resp) = anthropic(&agent(), &llm, &messages_request("make a counter", true));
    assert_eq!(status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let request_id = resp.header("request-id").expect("request-id").to_owned();
    let stream = Named::read(resp);
    assert!(stream.error.is_none() && stream.bad.is_empty());
    let deltas = Reply::new(TEXT).deltas();
    let mut want = vec!["message_start", "content_block_start", "ping"];
    want.extend(std::iter::repeat_n("content_block_delta", deltas.len()));
    want.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(stream.names(), want);
    // Each payload's `type` is its event's name.
    for (name, v) in &stream.events {
        assert_eq!(v["type"], name.as_str(), "{v}");
    }
    let start = &stream.get("message_start")["message"];
    assert_eq!(start["id"], request_id.as_str());
    assert!(request_id.starts_with("msg_"), "{request_id}");
    assert_eq!(
        (&start["type"], &start["role"], &start["model"]),
        (
            &json!("message"),
            &json!("assistant"),
            &json!("claude-sonnet-4-test")
        )
    );
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["usage"]["input_tokens"], 812);
    assert_eq!(
        stream.get("content_block_start")["content_block"],
        json!({"type": "text", "text": ""})
    );
    let pieces: Vec<&str> = stream
        .events
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| {
            assert_eq!(
                (v["index"].as_u64(), &v["delta"]["type"]),
                (Some(0), &json!("text_delta"))
            );
            v["delta"]["text"].as_str().expect("text")
        })
        .collect();
    assert_eq!(pieces, deltas);
    assert_eq!(stream.text(), TEXT);
    let end = stream.get("message_delta");
    assert_eq!(end["delta"]["stop_reason"], "end_turn");
    assert_eq!(end["usage"]["output_tokens"], 301);
    assert_eq!(llm.completions(0), 1);
    assert_eq!(llm.messages_requests().len(), 1);
    assert!(llm.chat_requests().is_empty());
}

#[test]
fn anthropic_non_streaming_requests_get_a_message() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text(r#"{"name":"todo"}"#).usage(10, 5))
            .turn(Turn::text("cut short").finish_reason("length")),
    );
    let (status, resp) = anthropic(&agent(), &llm, &messages_request("plan", false));
    assert_eq!(status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v: Value = resp.into_json().expect("json");
    assert!(v["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-test");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": r#"{"name":"todo"}"#}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"], json!({"input_tokens": 10, "output_tokens": 5}));
    // `stream` absent means not streaming; OpenAI's `length` is Anthropic's `max_tokens`.
    let mut body = messages_request("again", false);
    body.as_object_mut().expect("object").remove("stream");
    let v: Value = anthropic(&agent(), &llm, &body)
        .1
        .into_json()
        .expect("json");
    assert_eq!(v["content"][0]["text"], "cut short");
    assert_eq!(v["stop_reason"], "max_tokens");
}

#[test]
fn anthropic_requests_are_validated_as_anthropic_does() {
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("fine")));
    let agent = agent();
    let error = |(status, resp): (u16, ureq::Response)| -> (u16, String, String) {
        let v: Value = resp.into_json().expect("json error body");
        assert_eq!(v["type"], "error", "{v}");
        let e = &v["error"];
        (
            status,
            e["type"].as_str().expect("type").to_owned(),
            e["message"].as_str().expect("message").to_owned(),
        )
    };
    let body = messages_request("hi", true);
    let (status, kind, _) = error(post_messages(
        &agent,
        &llm,
        &[("anthropic-version", VERSION)],
        &body,
    ));
    assert_eq!((status, kind.as_str()), (401, "authentication_error"));
    let (status, kind, message) = error(post_messages(
        &agent,
        &llm,
        &[("x-api-key", API_KEY)],
        &body,
    ));
    assert_eq!((status, kind.as_str()), (400, "invalid_request_error"));
    assert!(message.contains("anthropic-version"), "{message}");

    let without = |field: &str| {
        let mut b = body.clone();
        b.as_object_mut().expect("object").remove(field);
        b
    };
    let with = |field: &str, value: Value| {
        let mut b = body.clone();
        b[field] = value;
        b
    };
    for (bad, names) in [
        (without("model"), "model"),
        (without("max_tokens"), "max_tokens"),
        (with("max_tokens", json!(0)), "max_tokens"),
        (without("messages"), "messages"),
        (with("messages", json!([])), "messages"),
        (with("system", json!(42)), "system"),
        // A chat-completions habit: the system prompt as a message.
        (
            with(
                "messages",
                json!([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]),
            ),
            "system",
        ),
        (
            with("messages", json!([{"role": "user", "content": ""}])),
            "non-empty",
        ),
        (
            with("messages", json!([{"role": "tool", "content": "x"}])),
            "role",
        ),
    ] {
        let (status, kind, message) = error(anthropic(&agent, &llm, &bad));
        assert_eq!(
            (status, kind.as_str()),
            (400, "invalid_request_error"),
            "{bad}"
        );
        assert!(message.contains(names), "{message} for {bad}");
    }
    let refused = llm.requests();
    assert_eq!(refused[0].outcome, Outcome::Unauthorized);
    assert!(refused[1..].iter().all(|r| r.status == 400
        && matches!(r.outcome, Outcome::BadRequest(_))
        && r.turn.is_none()));
    assert_eq!(llm.unused_turns(), [0], "a refused request uses no turn");

    // A trailing empty assistant message (a prefill) and system text blocks are fine.
    let ok = with(
        "messages",
        json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]},
               {"role": "assistant", "content": ""}]),
    );
    let ok = {
        let mut b = ok;
        b["system"] = json!([{"type": "text", "text": "You are Kiln."}]);
        b
    };
    let (status, resp) = anthropic(&agent, &llm, &ok);
    assert_eq!(status, 200);
    assert_eq!(Named::read(resp).text(), "fine");
}

#[test]
fn anthropic_matching_uses_the_system_field_and_the_last_user_message() {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(Turn::text("PLAN").matching("You are the planner"))
            .turn(Turn::text("CODE").matching("Implement phase"))
            .turn(Turn::text("FIRST")),
    );
    let agent = agent();
    let ask = |system: Value, user: &str| -> String {
        let body = json!({
            "model": "m",
            "max_tokens": 100,
            "stream": true,
            "system": system,
            "messages": [
                {"role": "user", "content": "an earlier message: You are the planner"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": user}]},
            ],
        });
        let (status, resp) = anthropic(&agent, &llm, &body);
        assert_eq!(status, 200);
        Named::read(resp).text()
    };
    assert_eq!(ask(json!("You are Kiln."), "hello"), "FIRST");
    assert_eq!(ask(json!("You are Kiln."), "Implement phase 1"), "CODE");
    let blocks = json!([{"type": "text", "text": "Be brief."}, {"type": "text", "text": "You are the planner."}]);
    assert_eq!(ask(blocks, "a todo app"), "PLAN");
    let last = &llm.messages_requests()[2];
    assert_eq!(last.system_messages(), ["Be brief.\nYou are the planner."]);
    assert_eq!(last.last_user_message().as_deref(), Some("a todo app"));
    // The headers a client sent are kept.
    assert_eq!(last.header("x-api-key"), Some(API_KEY));
    assert_eq!(last.header("anthropic-version"), Some(VERSION));
}

#[test]
fn anthropic_error_faults_then_success() {
    let llm = ScriptedLlm::start(
        Script::new().turn(
            Turn::text("recovered")
                .fail(Fault::ServerError)
                .fail(Fault::RateLimited)
                .fail(Fault::Overloaded),
        ),
    );
    let agent = agent();
    let mut seen = vec![];
    for _ in 0..3 {
        let (status, resp) = anthropic(&agent, &llm, &messages_request("go", true));
        let retry_after = resp.header("retry-after").map(str::to_owned);
        let v: Value = resp.into_json().expect("json error body");
        assert_eq!(v["type"], "error");
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        seen.push((
            status,
            v["error"]["type"].as_str().expect("type").to_owned(),
            retry_after,
        ));
    }
    assert_eq!(
        seen,
        [
            (500, "api_error".to_owned(), None),
            (429, "rate_limit_error".to_owned(), Some("1".to_owned())),
            (529, "overloaded_error".to_owned(), None),
        ]
    );
    let (status, resp) = anthropic(&agent, &llm, &messages_request("go", true));
    assert_eq!(status, 200);
    assert_eq!(Named::read(resp).text(), "recovered");
    let statuses: Vec<u16> = llm.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 429, 529, 200]);
    assert_eq!(llm.requests()[2].outcome, Outcome::Fault(Fault::Overloaded));
    assert_eq!(llm.completions(0), 1);

    // Chat completions has no 529: overloaded is a 503 there.
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("ok").fail(Fault::Overloaded)));
    let (status, resp) = post(&agent, &llm, &request("go", true));
    assert_eq!(status, 503);
    let v: Value = resp.into_json().expect("json");
    assert_eq!(v["error"]["type"], "server_error");
}

#[test]
fn anthropic_truncated_malformed_and_stalled_streams() {
    let llm = ScriptedLlm::start(
        Script::new().turn(
            Turn::text(TEXT)
                .fail(Fault::Truncated { after_chunks: 2 })
                .fail(Fault::MalformedJson { after_chunks: 1 })
                .fail(Fault::Stall { after_chunks: 1 }),
        ),
    );
    // Truncated: the opening events and two deltas, then a clean close without an end.
    let (status, resp) = anthropic(&agent(), &llm, &messages_request("go", true));
    assert_eq!(status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    let cut = Named::read(resp);
    assert!(cut.error.is_none(), "a clean close: {:?}", cut.error);
    assert_eq!(
        cut.names(),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta"
        ]
    );
    assert!(!cut.stopped());
    // Malformed: one bad data line after the first delta, then the rest as usual.
    let bad = Named::read(anthropic(&agent(), &llm, &messages_request("go", true)).1);
    assert_eq!(bad.bad.len(), 1, "{:?}", bad.bad);
    assert!(bad.bad[0].starts_with(r#"{"type":"content_block_delta""#));
    assert!(bad.stopped());
    assert_eq!(bad.text(), TEXT);
    // Stalled: an impatient client times out.
    let impatient = ureq::AgentBuilder::new()
        .timeout_read(Duration::from_millis(500))
        .build();
    let (status, resp) = anthropic(&impatient, &llm, &messages_request("go", true));
    assert_eq!(status, 200);
    let stalled = Named::read(resp);
    assert!(stalled.error.is_some());
    assert_eq!(stalled.names().last(), Some(&"content_block_delta"));
    drop(stalled);
    assert!(llm.wait_idle(Duration::from_secs(10)));
    assert_eq!(llm.completions(0), 0);
    // Then the whole reply.
    let whole = Named::read(anthropic(&agent(), &llm, &messages_request("go", true)).1);
    assert!(whole.stopped());
    assert_eq!(whole.text(), TEXT);
    assert_eq!(llm.calls_to(0), 4);
    assert_eq!(llm.completions(0), 1);
    let elapsed: Vec<bool> = llm.requests().iter().map(|r| r.elapsed.is_some()).collect();
    assert_eq!(elapsed, [true; 4]);
}

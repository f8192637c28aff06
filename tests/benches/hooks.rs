//! Benchmark (prints figures, asserts nothing): how fast a webhook delivery starts a
//! generation. 50 projects, each with a hook and a watching socket; all 50 signed deliveries
//! are sent at once, and for each the bench times the `202` and the moment its socket sees
//! the generation start (the `prompt` event by the webhook). p50 and p99 of both.
//!
//! Run: `./kiln bench` (or `cargo bench -p kiln-e2e --bench hooks` after `./kiln build`).

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kiln_core::webhooks::sign;
use kiln_e2e::llm::{Script, ScriptedLlm, Turn};
use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, Kiln};
use serde_json::json;

const HOOKS: usize = 50;

fn main() {
    // A model that answers slowly enough that the generations are still starting, not
    // finishing, while the deliveries land (the plan is all it is asked for here).
    let llm = ScriptedLlm::start(Script::new().turn(Turn::text("{}").reusable()));
    let base = llm.base_url();
    let kiln = Kiln::start_with(&[
        ("KILN_LLM_BASE_URL", base.as_str()),
        ("KILN_LLM_MODEL", "kiln-scripted"),
        ("KILN_ORG_MAX_GENERATIONS", "100"),
    ]);
    let owner = register(&kiln, "hooks-bench");
    let mut hooks = Vec::new();
    for i in 0..HOOKS {
        let pid = kiln
            .post(
                "/api/projects",
                owner.token(),
                json!({ "name": format!("hook {i}") }),
            )
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let made = kiln
            .post(
                &format!("/api/projects/{pid}/webhooks"),
                owner.token(),
                json!({ "prompt_template": "a counter that {{/wish}}", "template": "static" }),
            )
            .expect(201);
        hooks.push((
            pid,
            made["id"].as_str().unwrap().to_owned(),
            made["secret"].as_str().unwrap().to_owned(),
        ));
    }
    let go = Arc::new(Barrier::new(HOOKS));
    let threads: Vec<_> = hooks
        .into_iter()
        .enumerate()
        .map(|(i, (pid, hook, secret))| {
            let (url, token, go) = (kiln.url.clone(), owner.token.clone(), go.clone());
            std::thread::spawn(move || {
                let mut ws = Socket::connect(&url, &pid, Auth::Bearer(&token)).expect("socket");
                ws.send(json!({ "type": "hello" }));
                ws.recv_type("state");
                let body = format!(r#"{{"wish":"counts {i}"}}"#);
                let t = chrono::Utc::now().timestamp();
                let signature = sign(&secret, t, body.as_bytes());
                go.wait();
                let start = Instant::now();
                let status = match ureq::post(&format!("{url}/hooks/{hook}"))
                    .set("kiln-signature", &signature)
                    .set("kiln-delivery", &format!("bench-{i}"))
                    .set("content-type", "application/json")
                    .send_bytes(body.as_bytes())
                {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(s, _)) => s,
                    Err(_) => 0,
                };
                let accepted = start.elapsed();
                loop {
                    let f = ws
                        .try_recv(Duration::from_secs(60))
                        .expect("the generation start");
                    if f["type"] == "prompt" {
                        return (status, accepted, start.elapsed());
                    }
                }
            })
        })
        .collect();
    let results: Vec<(u16, Duration, Duration)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.0 == 202).count();
    let pct = |mut v: Vec<Duration>, q: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
    };
    let accepted: Vec<Duration> = results.iter().map(|r| r.1).collect();
    let started: Vec<Duration> = results.iter().map(|r| r.2).collect();
    println!(
        "webhook benchmark ({HOOKS} deliveries at once, wrangler dev --local, {} cores): {ok} answered 202",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  delivery → 202: p50 {:.0} ms, p99 {:.0} ms",
        pct(accepted.clone(), 0.5),
        pct(accepted, 0.99)
    );
    println!(
        "  delivery → generation started on the socket: p50 {:.0} ms, p99 {:.0} ms",
        pct(started.clone(), 0.5),
        pct(started, 0.99)
    );
}

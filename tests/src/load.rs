//! The load suite's driver, shared by its short form (`tests/stress/load.rs`, in `./kiln
//! test`) and its full form (`tests/benches/load.rs`, which prints the figures): many projects
//! generating at once against the scripted model (the test fixture) at a fixed token rate,
//! each watched by several sockets, one of which also types into a file of its own while the
//! agent writes. It reports what every client ended with against what Kiln stored, and how
//! long a typed edit took to reach the project's other sockets.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::llm::{Script, ScriptedLlm, Turn};
use crate::process::Group;
use crate::ws::{Auth, Socket};
use crate::{register, Kiln};

pub struct LoadSpec {
    pub projects: usize,
    /// Sockets per project (the first one asks for the generation and types).
    pub sockets: usize,
    /// The model's fixed rate: `chunk_bytes` every `chunk_delay`.
    pub chunk_bytes: usize,
    pub chunk_delay: Duration,
    /// Lines of the app's script (the reply's length).
    pub lines: usize,
    /// The sandbox-proxy's instance tag and subnet octet (unique per test binary).
    pub instance: &'static str,
    pub octet: u8,
}

pub struct LoadReport {
    pub projects: usize,
    pub sockets: usize,
    /// From the first `generate` sent to the last generation's end.
    pub wall: Duration,
    pub completed: usize,
    /// Every problem found: a generation that did not complete, a client whose files differ
    /// from the stored ones, a streamed file that differs from what was stored.
    pub problems: Vec<String>,
    /// Typed edit sent → its `file_edited` at each other socket of the project.
    pub edit_latencies: Vec<Duration>,
    /// Events each socket received, in all.
    pub events: usize,
}

impl LoadReport {
    pub fn generations_per_minute(&self) -> f64 {
        self.completed as f64 * 60.0 / self.wall.as_secs_f64().max(0.001)
    }

    /// The `q` quantile (0..=1) of the edit latencies.
    pub fn edit_latency(&self, q: f64) -> Duration {
        let mut l = self.edit_latencies.clone();
        l.sort();
        if l.is_empty() {
            return Duration::ZERO;
        }
        l[((l.len() - 1) as f64 * q).round() as usize]
    }
}

const SANDBOX_SECRET: &str = "load-sandbox-secret-0123456789abcdef0123456789";
const NOTES: &str = "notes/typed.md";

fn blueprint() -> String {
    r##"{"name":"Meter","summary":"A page of counters.","template":"static",
"design":{"style":"plain","palette":[{"name":"bg","hex":"#ffffff"},{"name":"ink","hex":"#111111"}],"typography":"system-ui","sections":["counters"]},
"images":[],
"phases":[{"name":"Counters","goal":"Counters that count","files":["index.html","main.js"],
"acceptance":["each + adds one to its counter"]}]}"##
        .into()
}

/// The app the coder writes: `lines` counters in main.js.
pub fn app_files(lines: usize) -> Vec<(&'static str, String)> {
    let index = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Meter</title></head>\n<body>\n<h1>Meter</h1>\n<div id=\"c\"></div>\n<script src=\"main.js\"></script>\n</body>\n</html>\n".to_owned();
    let mut main = String::from("const root = document.getElementById('c');\n");
    for i in 0..lines {
        main.push_str(&format!(
            "{{ const b = document.createElement('button'); let n{i} = 0; b.textContent = 'counter {i}: 0'; b.onclick = () => {{ n{i} += 1; b.textContent = `counter {i}: ${{n{i}}}`; }}; root.append(b); }}\n"
        ));
    }
    vec![("index.html", index), ("main.js", main)]
}

fn coder_reply(lines: usize) -> String {
    let mut out = String::from("Here it is.\n");
    for (path, content) in app_files(lines) {
        out.push_str(&format!("<file path=\"{path}\">\n{content}</file>\n"));
    }
    out
}

/// What one socket saw.
#[derive(Default)]
struct Seen {
    /// path → content, from the `file_*` events a client applies.
    files: BTreeMap<String, String>,
    /// path → the text streamed in `file_chunk`s, as a client shows a file being written.
    streamed: BTreeMap<String, String>,
    end: Option<Value>,
    events: usize,
}

impl Seen {
    fn apply(&mut self, e: &Value) {
        self.events += 1;
        let path = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
        match e["type"].as_str().unwrap_or_default() {
            "file_edited" => {
                let content = match e["encoding"].as_str() {
                    Some("base64") => {
                        use base64::Engine;
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(e["content"].as_str().unwrap_or_default())
                            .unwrap_or_default();
                        String::from_utf8_lossy(&raw).into_owned()
                    }
                    _ => e["content"].as_str().unwrap_or_default().to_owned(),
                };
                self.files.insert(path("path"), content);
            }
            "file_deleted" => {
                self.files.remove(&path("path"));
            }
            "file_renamed" => {
                if let Some(c) = self.files.remove(&path("from")) {
                    self.files.insert(path("to"), c);
                }
            }
            "file_start" => {
                self.streamed.insert(path("path"), String::new());
            }
            "file_chunk" => {
                let chunk = e["chunk"].as_str().unwrap_or_default();
                self.streamed
                    .entry(path("path"))
                    .or_default()
                    .push_str(chunk);
            }
            _ => {}
        }
    }
}

/// A generation's last event on a socket: complete, failed or cancelled.
pub fn is_end(e: &Value) -> bool {
    e["type"] == "generation_complete"
        || (e["type"] == "state_change" && (e["step"] == "failed" || e["step"] == "cancelled"))
}

/// Sent edits: (project, n) → when.
type Sent = Arc<Mutex<BTreeMap<(usize, u64), Instant>>>;

/// Runs the load and reports; panics only when the harness itself cannot start.
pub fn run(spec: &LoadSpec) -> LoadReport {
    let llm = ScriptedLlm::start(
        Script::new()
            .turn(
                Turn::text(blueprint())
                    .matching("planner of an app builder")
                    .reusable(),
            )
            .turn(
                Turn::text(coder_reply(spec.lines))
                    .matching("Phase 1 of 1")
                    .reusable()
                    .chunk_size(spec.chunk_bytes)
                    .chunk_delay(spec.chunk_delay),
            ),
    );
    let state = std::env::temp_dir().join(format!(
        "kiln-load-sandbox-{}-{}",
        spec.instance,
        std::process::id()
    ));
    let sandbox_port = crate::free_port();
    let bin = crate::sandbox::proxy_bin_beside_exe();
    if !bin.exists() {
        // A bench runs from target/release, where `cargo test` built no proxy.
        let release = bin.components().any(|c| c.as_os_str() == "release");
        let mut cargo =
            std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
        cargo.args(["build", "--quiet", "-p", "kiln-sandbox-proxy"]);
        if release {
            cargo.arg("--release");
        }
        assert!(
            cargo.status().is_ok_and(|s| s.success()),
            "building the sandbox-proxy"
        );
    }
    let max = (spec.projects + 4).to_string();
    let _proxy: Group = crate::sandbox::spawn_proxy(&crate::sandbox::ProxySpec {
        bin: &bin,
        instance: spec.instance,
        octet: spec.octet,
        port: sandbox_port,
        state: &state,
        jwt_secret: SANDBOX_SECRET,
        extra: vec![("KILN_SANDBOX_MAX_SANDBOXES".into(), max)],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let base = llm.base_url();
    let sandbox_url = format!("http://127.0.0.1:{sandbox_port}");
    let kiln = Kiln::start_with(&[
        ("KILN_LLM_BASE_URL", base.as_str()),
        ("KILN_LLM_MODEL", "kiln-scripted"),
        ("KILN_SANDBOX_URL", sandbox_url.as_str()),
        ("KILN_SANDBOX_JWT_SECRET", SANDBOX_SECRET),
        ("KILN_BROWSER_CHECKS", "off"),
        // One person per project, all from this one address.
        ("KILN_LIMIT_REGISTER_PER_IP", "100000"),
    ]);
    let members: Vec<(crate::User, String)> = (0..spec.projects)
        .map(|n| {
            let user = register(&kiln, &format!("load{n}"));
            let pid = kiln
                .post(
                    "/api/projects",
                    user.token(),
                    json!({ "name": format!("meter {n}") }),
                )
                .expect(201)["id"]
                .as_str()
                .unwrap()
                .to_owned();
            (user, pid)
        })
        .collect();

    let total = spec.projects * spec.sockets;
    // Every socket is connected and has its snapshot before the first `generate`.
    let ready = Arc::new(Barrier::new(total + 1));
    let sent: Sent = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let kiln = Arc::new(kiln);
    let mut threads = Vec::new();
    for (p, (user, pid)) in members.iter().enumerate() {
        for s in 0..spec.sockets {
            let (kiln, ready, sent, latencies) =
                (kiln.clone(), ready.clone(), sent.clone(), latencies.clone());
            let (token, pid) = (user.token.clone(), pid.clone());
            threads.push(std::thread::spawn(move || {
                let mut ws = kiln.ws(&pid, Auth::Bearer(&token)).expect("socket");
                ws.send(json!({ "type": "hello" }));
                let snapshot = ws.recv_type("state");
                // A client starts from the snapshot: its files' contents come over REST.
                let mut seen = Seen::default();
                if snapshot["files"].as_array().is_some_and(|f| !f.is_empty()) {
                    seen.files = stored_files(&kiln, &token, &pid);
                }
                ready.wait();
                watch(&mut ws, seen, p, s == 0, &sent, &latencies)
            }));
        }
    }
    ready.wait();
    let started = Instant::now();
    let seen: Vec<Seen> = threads
        .into_iter()
        .map(|t| t.join().unwrap_or_default())
        .collect();
    let wall = started.elapsed();

    let mut problems = Vec::new();
    let mut completed = 0;
    for (p, (user, pid)) in members.iter().enumerate() {
        let stored = stored_files(&kiln, &user.token, pid);
        for s in 0..spec.sockets {
            let seen = &seen[p * spec.sockets + s];
            match &seen.end {
                Some(e) if e["type"] == "generation_complete" => {
                    if s == 0 {
                        completed += 1;
                    }
                }
                other => problems.push(format!("{pid} socket {s}: ended with {other:?}")),
            }
            if seen.files != stored {
                let diff: Vec<&String> = stored
                    .keys()
                    .chain(seen.files.keys())
                    .filter(|k| stored.get(*k) != seen.files.get(*k))
                    .collect();
                problems.push(format!(
                    "{pid} socket {s}: files differ from the stored ones at {diff:?}"
                ));
            }
            for (path, text) in &seen.streamed {
                if stored.get(path) != Some(text) {
                    problems.push(format!(
                        "{pid} socket {s}: {path} streamed otherwise than stored"
                    ));
                }
            }
        }
        for (path, content) in app_files(spec.lines) {
            if stored.get(path) != Some(&content) {
                problems.push(format!("{pid}: {path} is not the app the model wrote"));
            }
        }
    }
    if !problems.is_empty() {
        // The room's side of it, for whoever reads the failure.
        let log = kiln.log();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        problems.push(format!(
            "Kiln's log, last lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let events = seen.iter().map(|s| s.events).sum();
    let edit_latencies = latencies.lock().unwrap().clone();
    LoadReport {
        projects: spec.projects,
        sockets: total,
        wall,
        completed,
        problems,
        edit_latencies,
        events,
    }
}

/// One socket: the first of a project asks for the generation and, until it ends, types a
/// numbered line into `notes/typed.md` every 300 ms; every socket applies what it receives and
/// times the typed edits it sees. After the end it reads on until the room is quiet.
fn watch(
    ws: &mut Socket,
    mut seen: Seen,
    project: usize,
    typist: bool,
    sent: &Sent,
    latencies: &Mutex<Vec<Duration>>,
) -> Seen {
    if typist {
        ws.send(
            json!({ "type": "generate", "prompt": "a page of counters", "template": "static" }),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let (mut rev, mut typed, mut last_typed) = (0u64, 0u64, Instant::now());
    let mut waiting_for_own = false;
    while seen.end.is_none() && Instant::now() < deadline {
        // Its own edit comes back to it as to everyone; one that does not within 2 s is given up.
        let waited = last_typed.elapsed();
        if waiting_for_own && waited >= Duration::from_secs(2) {
            waiting_for_own = false;
        }
        if typist && !waiting_for_own && waited >= Duration::from_millis(300) {
            typed += 1;
            let content = format!("{project}:{typed}\n");
            sent.lock()
                .unwrap()
                .insert((project, typed), Instant::now());
            if ws
                .try_send(
                    json!({ "type": "edit", "path": NOTES, "base_rev": rev, "content": content }),
                )
                .is_err()
            {
                break;
            }
            waiting_for_own = true;
            last_typed = Instant::now();
        }
        let Some(e) = ws.try_recv(Duration::from_millis(100)) else {
            continue;
        };
        seen.apply(&e);
        if e["type"] == "file_edited" && e["path"] == NOTES {
            rev = e["rev"].as_u64().unwrap_or(rev);
            let n = e["content"]
                .as_str()
                .and_then(|c| c.trim().split_once(':'))
                .and_then(|(_, n)| n.parse::<u64>().ok());
            if let Some(n) = n {
                if typist {
                    waiting_for_own = false;
                } else if let Some(at) = sent.lock().unwrap().get(&(project, n)) {
                    latencies.lock().unwrap().push(at.elapsed());
                }
            }
        }
        if e["type"] == "edit_rejected" {
            waiting_for_own = false;
            rev = e["current_rev"].as_u64().unwrap_or(rev);
        }
        if is_end(&e) {
            seen.end = Some(e);
        }
    }
    // What follows the end (the version, the last file events) arrives within a quiet second.
    for e in ws.drain(Duration::from_secs(2)) {
        seen.apply(&e);
    }
    seen
}

/// path → content of every file Kiln stored for the project (REST).
pub fn stored_files(kiln: &Kiln, token: &str, pid: &str) -> BTreeMap<String, String> {
    let list = kiln
        .get(&format!("/api/projects/{pid}/files"), Some(token))
        .expect(200);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|f| f["path"].as_str().map(str::to_owned))
        .map(|path| {
            let (status, body) = kiln.raw_bytes(
                "GET",
                &format!("/api/projects/{pid}/files/{path}"),
                &[("authorization".into(), format!("Bearer {token}"))],
            );
            assert_eq!(status, 200, "{path}");
            (path, String::from_utf8_lossy(&body).into_owned())
        })
        .collect()
}

//! The fault suite's runner, shared by its short form (`tests/stress/faults.rs`, in `./kiln
//! test`) and its full form (`tests/benches/faults.rs`: 30 seeded runs per target, figures
//! printed). One run: a fresh project generates a small static app against the scripted model
//! (the test fixture) while the runner kills one part of Kiln after a seeded number of the
//! generation's events — the sandbox-proxy host (SIGKILL, then started again on its state, as
//! systemd restarts a crashed service), workerd (SIGKILL of `wrangler dev`, then a restart on the
//! same state), or the model server (every connection cut, new ones refused for a while).
//! Then it waits for the generation to end. A run survives when it ends complete with the
//! app the model wrote, or failed with a reason a person can read, and in both cases every
//! stored file is one an undisturbed run stores (nothing half-written). The seed alone
//! decides where and for how long: `run(target, seed)` again reproduces the run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::llm::{Script, ScriptedLlm, Turn};
use crate::process::Group;
use crate::ws::Auth;
use crate::{register, Kiln};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Sandbox,
    Workerd,
    Model,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Sandbox, Target::Workerd, Target::Model];

    pub fn name(self) -> &'static str {
        match self {
            Target::Sandbox => "sandbox-proxy host",
            Target::Workerd => "workerd",
            Target::Model => "model server",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Complete,
    Failed(String),
    /// No end within the deadline.
    Stuck(String),
}

#[derive(Debug, Clone)]
pub struct FaultRun {
    pub target: Target,
    pub seed: u64,
    /// The kill came after this many of the generation's events (`None`: it ended first).
    pub killed_after: Option<usize>,
    pub down: Duration,
    pub end: End,
    pub problems: Vec<String>,
    pub took: Duration,
}

impl FaultRun {
    pub fn survived(&self) -> bool {
        self.problems.is_empty() && !matches!(self.end, End::Stuck(_))
    }
}

/// SplitMix64: a seed's whole run follows from it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const SANDBOX_SECRET: &str = "faults-sandbox-secret-0123456789abcdef0123456789";

fn blueprint() -> String {
    r##"{"name":"Clicker","summary":"A button that counts.","template":"static",
"design":{"style":"plain","palette":[{"name":"bg","hex":"#ffffff"},{"name":"ink","hex":"#111111"}],"typography":"system-ui","sections":["counter"]},
"images":[],
"phases":[{"name":"Counter","goal":"A button that counts its clicks","files":["index.html","main.js"],
"acceptance":["clicking the button adds one"]}]}"##
        .into()
}

fn app() -> Vec<(&'static str, String)> {
    let index = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Clicker</title></head>\n<body>\n<h1>Clicker</h1>\n<button id=\"b\">0</button>\n<script src=\"main.js\"></script>\n</body>\n</html>\n".to_owned();
    let mut main = String::from("const b = document.getElementById('b');\nlet n = 0;\n");
    for i in 0..30 {
        main.push_str(&format!(
            "// step {i}: each click is counted once, and shown at once.\n"
        ));
    }
    main.push_str("b.onclick = () => { n += 1; b.textContent = String(n); };\n");
    vec![("index.html", index), ("main.js", main)]
}

fn coder_reply() -> String {
    let mut out = String::from("The app:\n");
    for (path, content) in app() {
        out.push_str(&format!("<file path=\"{path}\">\n{content}</file>\n"));
    }
    out
}

/// One Kiln, sandbox host and model server, reused by every run of a suite.
pub struct Rig {
    llm: ScriptedLlm,
    kiln: Option<Kiln>,
    proxy: Option<Group>,
    proxy_port: u16,
    proxy_state: std::path::PathBuf,
    instance: &'static str,
    octet: u8,
    /// path → every content an undisturbed generation stores there, in turn.
    allowed: BTreeMap<String, BTreeSet<String>>,
    /// path → what an undisturbed generation ends with.
    finished: BTreeMap<String, String>,
    /// Events a client receives in an undisturbed generation before its end.
    events: usize,
    runs: u64,
}

impl Rig {
    pub fn start(instance: &'static str, octet: u8) -> Rig {
        let llm = ScriptedLlm::start(
            Script::new()
                .turn(
                    Turn::text(blueprint())
                        .matching("planner of an app builder")
                        .reusable(),
                )
                .turn(
                    Turn::text(coder_reply())
                        .matching("Phase 1 of 1")
                        .reusable()
                        .chunk_size(16)
                        .chunk_delay(Duration::from_millis(15)),
                ),
        );
        let proxy_port = crate::free_port();
        let proxy_state = std::env::temp_dir().join(format!(
            "kiln-faults-sandbox-{instance}-{}",
            std::process::id()
        ));
        let mut rig = Rig {
            llm,
            kiln: None,
            proxy: None,
            proxy_port,
            proxy_state,
            instance,
            octet,
            allowed: BTreeMap::new(),
            finished: BTreeMap::new(),
            events: 0,
            runs: 0,
        };
        rig.proxy = Some(rig.spawn_proxy(true));
        let base = rig.llm.base_url();
        let sandbox_url = format!("http://127.0.0.1:{proxy_port}");
        rig.kiln = Some(Kiln::start_with(&[
            ("KILN_LLM_BASE_URL", base.as_str()),
            ("KILN_LLM_MODEL", "kiln-scripted"),
            ("KILN_SANDBOX_URL", sandbox_url.as_str()),
            ("KILN_SANDBOX_JWT_SECRET", SANDBOX_SECRET),
            ("KILN_BROWSER_CHECKS", "off"),
            ("KILN_LIMIT_REGISTER_PER_IP", "100000"),
        ]));
        rig.learn_undisturbed();
        rig
    }

    fn kiln(&self) -> &Kiln {
        self.kiln.as_ref().expect("kiln")
    }

    fn spawn_proxy(&self, fresh: bool) -> Group {
        let bin = crate::sandbox::proxy_bin_beside_exe();
        let start = if fresh {
            crate::sandbox::spawn_proxy
        } else {
            crate::sandbox::restart_proxy
        };
        start(&crate::sandbox::ProxySpec {
            bin: &bin,
            instance: self.instance,
            octet: self.octet,
            port: self.proxy_port,
            state: &self.proxy_state,
            jwt_secret: SANDBOX_SECRET,
            extra: vec![("KILN_SANDBOX_MAX_SANDBOXES".into(), "64".into())],
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// One generation with nothing killed: what it stores, file by file, is what a run may
    /// leave behind.
    fn learn_undisturbed(&mut self) {
        let (token, pid) = self.new_project();
        let mut ws = self.start_generation(&token, &pid);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "the undisturbed run did not end");
            let Some(e) = ws.try_recv(Duration::from_secs(1)) else {
                continue;
            };
            if e["type"] == "file_edited" {
                self.allowed
                    .entry(e["path"].as_str().unwrap_or_default().to_owned())
                    .or_default()
                    .insert(e["content"].as_str().unwrap_or_default().to_owned());
            }
            if e["type"] == "generation_complete" {
                break;
            }
            self.events += 1;
            assert!(
                !(e["type"] == "state_change" && e["step"] == "failed"),
                "the undisturbed run failed: {e}"
            );
        }
        self.finished = crate::load::stored_files(self.kiln(), &token, &pid);
        for (path, content) in app() {
            assert_eq!(self.finished.get(path), Some(&content), "{path}");
        }
        self.delete(&token, &pid);
    }

    /// A socket on the project, after its snapshot, that has asked for the generation.
    fn start_generation(&self, token: &str, pid: &str) -> crate::ws::Socket {
        let mut ws = self.kiln().ws(pid, Auth::Bearer(token)).expect("socket");
        ws.send(json!({ "type": "hello" }));
        ws.recv_type("state");
        ws.send(
            json!({ "type": "generate", "prompt": "a button that counts", "template": "static" }),
        );
        ws
    }

    fn new_project(&mut self) -> (String, String) {
        self.runs += 1;
        let user = register(self.kiln(), &format!("fault{}", self.runs));
        let pid = self
            .kiln()
            .post("/api/projects", user.token(), json!({ "name": "clicker" }))
            .expect(201)["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (user.token, pid)
    }

    fn delete(&self, token: &str, pid: &str) {
        // Frees the project's sandbox for the next runs; a failure here is no part of a run.
        let _ = self
            .kiln()
            .send("DELETE", &format!("/api/projects/{pid}"), Some(token), None);
    }

    /// One seeded run against `target`.
    pub fn run(&mut self, target: Target, seed: u64) -> FaultRun {
        let mut rng = Rng(seed ^ ((target as u64) << 56));
        // Somewhere in the generation: after 1 to all-but-one of an undisturbed run's events
        // (most of them file chunks).
        let kill_at = 1 + rng.below(self.events.saturating_sub(1) as u64) as usize;
        let down = Duration::from_millis(200 + rng.below(1800));
        let started = Instant::now();
        let (token, pid) = self.new_project();
        let mut ws = self.start_generation(&token, &pid);
        let mut seen = 0;
        let mut killed_after = None;
        while started.elapsed() < Duration::from_secs(120) {
            let Some(e) = ws.try_recv(Duration::from_millis(500)) else {
                continue;
            };
            // It ended before the kill came: the run says so (`killed_after: None`).
            if crate::load::is_end(&e) {
                break;
            }
            seen += 1;
            if seen == kill_at {
                killed_after = Some(seen);
                break;
            }
        }
        if killed_after.is_some() {
            drop(ws);
            self.kill(target, down);
        }
        let end = self.wait_end(&token, &pid, started);
        let mut problems = Vec::new();
        let files = crate::load::stored_files(self.kiln(), &token, &pid);
        for (path, content) in &files {
            if self.allowed.get(path).is_some_and(|a| a.contains(content)) {
                continue;
            }
            problems.push(format!(
                "{path} holds what no undisturbed run stores ({} bytes)",
                content.len()
            ));
        }
        match &end {
            End::Complete => {
                for (path, content) in app() {
                    if files.get(path) != Some(&content) {
                        problems.push(format!("complete, but {path} is not the app"));
                    }
                }
                let g = self
                    .kiln()
                    .get(&format!("/api/projects/{pid}/generation"), Some(&token))
                    .json();
                if g["version"].as_u64().is_none() {
                    problems.push("complete without a version".into());
                }
            }
            End::Failed(reason) => {
                if reason.trim().is_empty() || reason.len() > 600 {
                    problems.push(format!("failed without a readable reason: {reason:?}"));
                }
            }
            End::Stuck(how) => problems.push(format!("no end: {how}")),
        }
        self.delete(&token, &pid);
        FaultRun {
            target,
            seed,
            killed_after,
            down,
            end,
            problems,
            took: started.elapsed(),
        }
    }

    fn kill(&mut self, target: Target, down: Duration) {
        match target {
            Target::Sandbox => {
                // A crash: no chance to stop its sandboxes; the next host cleans up.
                self.proxy.take().expect("proxy").kill();
                std::thread::sleep(down);
                self.proxy = Some(self.spawn_proxy(false));
            }
            Target::Workerd => {
                let kiln = self.kiln.take().expect("kiln");
                kiln.crash();
                std::thread::sleep(down);
                self.kiln = Some(kiln.restart());
            }
            Target::Model => self.llm.crash_for(down),
        }
    }

    fn wait_end(&self, token: &str, pid: &str, started: Instant) -> End {
        let mut last = Value::Null;
        while started.elapsed() < Duration::from_secs(150) {
            let r = self
                .kiln()
                .get(&format!("/api/projects/{pid}/generation"), Some(token));
            let g = r.json();
            let step = &g["step"];
            let name = step["step"].as_str().or(step.as_str()).unwrap_or_default();
            match name {
                "done" => return End::Complete,
                "failed" => {
                    return End::Failed(step["reason"].as_str().unwrap_or_default().to_owned())
                }
                "cancelled" => return End::Failed("cancelled".into()),
                _ => last = g,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        End::Stuck(format!("last seen at step {}", last["step"]))
    }
}

/// `KILN_FAULT_SEEDS=workerd:17,model:3` reruns those runs only (a failure prints its target
/// and seed); otherwise `default` seeds 1..=n for every target.
pub fn plan(n: u64) -> Vec<(Target, u64)> {
    if let Ok(list) = std::env::var("KILN_FAULT_SEEDS") {
        return list
            .split(',')
            .filter_map(|item| {
                let (t, s) = item.trim().split_once(':')?;
                let target = match t {
                    "sandbox" => Target::Sandbox,
                    "workerd" => Target::Workerd,
                    "model" => Target::Model,
                    _ => return None,
                };
                Some((target, s.parse().ok()?))
            })
            .collect();
    }
    Target::ALL
        .iter()
        .flat_map(|t| (1..=n).map(move |s| (*t, s)))
        .collect()
}

impl std::fmt::Display for FaultRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.target {
            Target::Sandbox => "sandbox",
            Target::Workerd => "workerd",
            Target::Model => "model",
        };
        write!(
            f,
            "{key}:{} killed after {} events, down {} ms → {:?} in {:.1} s{}",
            self.seed,
            self.killed_after
                .map_or("no (it ended first)".into(), |n| n.to_string()),
            self.down.as_millis(),
            self.end,
            self.took.as_secs_f64(),
            if self.problems.is_empty() {
                String::new()
            } else {
                format!(": {}", self.problems.join("; "))
            }
        )
    }
}

//! Replays recorded generations natively: every recording in `tests/replay/*.json` holds the
//! model's answers in call order and the sandbox's results, and this harness drives the
//! pipeline exactly as the room does — `driver::step` until the generation ends — through a
//! test double of the room (`Double`: the working tree, the broadcast, the stored state and
//! a sandbox in memory). It asserts the steps taken, the events every browser would see and
//! the files made, in milliseconds. Recordings of real model runs belong here as fixtures.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use kiln_core::agent::driver::{self, AfterStep, CallRecord, Host, HostResult};
use kiln_core::agent::llm::{CallError, CallResult, ChatRequest, Usage};
use kiln_core::agent::machine::Generation;
use kiln_core::agent::roles::Role;
use kiln_core::path::ProjectPath;
use kiln_core::protocol::ServerEvent;
use kiln_core::sandbox::{
    DevServerAction, DevServerStatus, ExecRequest, ExecResult, FileEncoding, FileWrite,
    SandboxError, Template, WriteFilesRequest,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recording {
    /// What the recording shows.
    about: String,
    prompt: String,
    template: Template,
    /// `KILN_MODEL_PROFILE` (`small`, `large`); by the model's name when left out.
    #[serde(default)]
    profile: Option<String>,
    /// What a new sandbox holds before the tree is written (the template's scaffolding).
    #[serde(default)]
    template_files: BTreeMap<String, String>,
    /// The model's answers, in call order.
    calls: VecDeque<Call>,
    /// The sandbox's command results, in order: `compile` (a type or syntax check),
    /// `checks` (the acceptance-check runner) or `install` (`npm install`).
    sandbox: VecDeque<SandboxResult>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Call {
    /// `plan`, `edit`, `code`, `test` or `fix`.
    ask: String,
    /// Text the request must carry (e.g. the failing check the fixer is told about).
    #[serde(default)]
    asked: Option<String>,
    answer: String,
    /// The call fails instead (`"429 retry-after 3"`: a rate limit with its wait).
    #[serde(default)]
    fails: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxResult {
    #[serde(rename = "for")]
    purpose: String,
    exit_code: i32,
    output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// `Step::name()` after every step's outcome (a retried step shows twice).
    steps: Vec<String>,
    /// Event types every browser sees, in this order (others may come between).
    #[serde(default)]
    events: Vec<String>,
    /// Every path of the final tree.
    paths: Vec<String>,
    /// Final contents of these files.
    files: BTreeMap<String, String>,
    unresolved: Vec<String>,
}

/// The room, in memory: what the driver reads and writes, and everything it sent.
struct Double {
    name: String,
    recording: RefCell<Recording>,
    tree: RefCell<BTreeMap<String, Vec<u8>>>,
    sandbox: RefCell<Option<BTreeMap<String, Vec<u8>>>>,
    stored: RefCell<Option<Generation>>,
    memo: RefCell<BTreeMap<String, String>>,
    events: RefCell<Vec<ServerEvent>>,
    calls: RefCell<Vec<ChatRequest>>,
    logged: Cell<u32>,
    cancel_after_chunks: Cell<Option<usize>>,
    cancelled: Cell<bool>,
    versions: Cell<u64>,
}

impl Double {
    fn new(name: &str, recording: Recording) -> Double {
        Double {
            name: name.to_owned(),
            recording: RefCell::new(recording),
            tree: Default::default(),
            sandbox: Default::default(),
            stored: Default::default(),
            memo: Default::default(),
            events: Default::default(),
            calls: Default::default(),
            logged: Cell::new(0),
            cancel_after_chunks: Cell::new(None),
            cancelled: Cell::new(false),
            versions: Cell::new(0),
        }
    }

    fn result(&self, purpose: &str) -> ExecResult {
        let r = self
            .recording
            .borrow_mut()
            .sandbox
            .pop_front()
            .unwrap_or_else(|| panic!("{}: no sandbox result left for {purpose}", self.name));
        assert_eq!(
            r.purpose, purpose,
            "{}: the pipeline ran something else",
            self.name
        );
        ExecResult {
            output: r.output,
            exit_code: Some(r.exit_code),
            timed_out: false,
            oom_killed: false,
        }
    }

    fn paths(&self) -> Vec<String> {
        self.tree.borrow().keys().cloned().collect()
    }

    fn event_types(&self) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .map(|e| {
                serde_json::to_value(e).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }
}

impl Host for Double {
    fn files(&self) -> HostResult<Vec<(ProjectPath, u64)>> {
        Ok(self
            .tree
            .borrow()
            .iter()
            .map(|(p, c)| (ProjectPath::parse(p).unwrap(), c.len() as u64))
            .collect())
    }
    fn read(&self, path: &ProjectPath) -> HostResult<Option<Vec<u8>>> {
        Ok(self.tree.borrow().get(path.as_str()).cloned())
    }
    fn write(&self, path: &ProjectPath, content: &[u8]) -> HostResult<()> {
        self.tree
            .borrow_mut()
            .insert(path.to_string(), content.to_vec());
        Ok(())
    }
    fn delete(&self, path: &ProjectPath) -> HostResult<()> {
        self.tree.borrow_mut().remove(path.as_str());
        Ok(())
    }
    fn tree_writes(&self) -> HostResult<Vec<FileWrite>> {
        Ok(self
            .tree
            .borrow()
            .iter()
            .map(|(p, c)| FileWrite {
                path: ProjectPath::parse(p).unwrap(),
                content: String::from_utf8(c.clone()).unwrap(),
                encoding: FileEncoding::Utf8,
            })
            .collect())
    }
    fn broadcast(&self, event: ServerEvent) -> HostResult<()> {
        self.events.borrow_mut().push(event);
        Ok(())
    }
    fn config(&self, name: &str) -> Option<String> {
        match name {
            "KILN_PREVIEW_URL" => Some("http://preview.localhost".into()),
            "KILN_MODEL_PROFILE" => self.recording.borrow().profile.clone(),
            _ => None,
        }
    }
    fn project(&self) -> &str {
        "p-replay"
    }
    fn now(&self) -> i64 {
        1_000
    }
    fn stored(&self) -> HostResult<Option<Generation>> {
        Ok(self.stored.borrow().clone())
    }
    fn save(&self, g: &Generation) -> HostResult<()> {
        *self.stored.borrow_mut() = Some(g.clone());
        Ok(())
    }
    fn cancelled(&self, _id: &str) -> bool {
        self.cancelled.get()
    }
    fn memo(&self, key: &str) -> HostResult<Option<String>> {
        Ok(self.memo.borrow().get(key).cloned())
    }
    fn set_memo(&self, key: &str, value: &str) -> HostResult<()> {
        self.memo.borrow_mut().insert(key.into(), value.into());
        Ok(())
    }
    fn model(&self, role: Role, _attempt: u32) -> Option<String> {
        Some(format!("recorded-{}", role.as_str()))
    }
    async fn stream(
        &self,
        req: &ChatRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<CallResult, CallError> {
        self.calls.borrow_mut().push(req.clone());
        let call = self
            .recording
            .borrow_mut()
            .calls
            .pop_front()
            .unwrap_or_else(|| panic!("{}: no recorded answer left for {}", self.name, req.model));
        let asked = ask_of(req);
        assert_eq!(
            call.ask, asked,
            "{}: the pipeline asked another role",
            self.name
        );
        if let Some(needle) = &call.asked {
            assert!(
                req.messages.iter().any(|m| m.content.contains(needle)),
                "{}: the {asked} request lacks {needle:?}",
                self.name
            );
        }
        if let Some(how) = &call.fails {
            let retry_after_secs = how
                .split("retry-after ")
                .nth(1)
                .and_then(|s| s.trim().parse().ok());
            return Err(CallError {
                reason: how.clone(),
                retryable: true,
                retry_after_secs,
                status: how.split(' ').next().and_then(|s| s.parse().ok()),
                latency_ms: 5,
            });
        }
        // Fed in small pieces, as a stream arrives.
        let mut text = String::new();
        for (i, piece) in call.answer.as_bytes().chunks(7).enumerate() {
            if asked == "code" && self.cancel_after_chunks.get() == Some(i) {
                self.cancelled.set(true);
            }
            let piece = String::from_utf8_lossy(piece);
            text.push_str(&piece);
            if !on_text(&piece) {
                break;
            }
        }
        Ok(CallResult {
            text,
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
            },
            latency_ms: 5,
            model: req.model.clone(),
        })
    }
    async fn log_call(&self, _call: &CallRecord<'_>) -> HostResult<()> {
        self.logged.set(self.logged.get() + 1);
        Ok(())
    }
    async fn credit_left(&self) -> HostResult<Option<u64>> {
        Ok(None)
    }
    fn has_sandbox(&self) -> bool {
        true
    }
    async fn ensure_sandbox(&self, _template: Template) -> Result<bool, SandboxError> {
        let mut sb = self.sandbox.borrow_mut();
        if sb.is_some() {
            return Ok(false);
        }
        let scaffold = self.recording.borrow().template_files.clone();
        *sb = Some(
            scaffold
                .into_iter()
                .map(|(p, c)| (p, c.into_bytes()))
                .collect(),
        );
        Ok(true)
    }
    async fn write_files(&self, req: WriteFilesRequest) -> Result<(), SandboxError> {
        let mut sb = self.sandbox.borrow_mut();
        let files = sb.as_mut().expect("a sandbox is made before it is written");
        if req.prune {
            let keep: Vec<String> = req.files.iter().map(|f| f.path.to_string()).collect();
            files.retain(|p, _| keep.contains(p));
        }
        for f in req.files {
            files.insert(f.path.to_string(), f.content.into_bytes());
        }
        Ok(())
    }
    async fn exec(
        &self,
        req: &ExecRequest,
        on_output: &mut dyn FnMut(&str),
    ) -> Result<ExecResult, SandboxError> {
        let purpose = match (req.cmd.as_str(), req.args.first().map(String::as_str)) {
            ("npx", Some("tsc")) | ("node", Some("--check")) => "compile",
            ("node", Some("/opt/kiln/check.mjs")) => {
                let smoke = req.args.iter().any(|a| a == "--smoke");
                assert!(
                    smoke,
                    "{}: the runner is asked for Kiln's smoke check",
                    self.name
                );
                "checks"
            }
            ("npm", Some("install")) => "install",
            other => panic!("{}: unexpected command {other:?}", self.name),
        };
        let r = self.result(purpose);
        on_output(&r.output);
        Ok(r)
    }
    async fn dev_server(&self, _action: DevServerAction) -> Result<DevServerStatus, SandboxError> {
        Ok(
            serde_json::from_value(serde_json::json!({"state": "ready", "port": 5173, "log": ""}))
                .unwrap(),
        )
    }
    async fn sandbox_files(&self) -> Result<Vec<ProjectPath>, SandboxError> {
        let sb = self.sandbox.borrow();
        Ok(sb
            .iter()
            .flat_map(|f| f.keys())
            .map(|p| ProjectPath::parse(p).unwrap())
            .collect())
    }
    async fn sandbox_read(&self, path: &ProjectPath) -> Result<Vec<u8>, SandboxError> {
        self.sandbox
            .borrow()
            .as_ref()
            .and_then(|f| f.get(path.as_str()).cloned())
            .ok_or(SandboxError {
                message: "no such file".into(),
                status: Some(404),
                lost: false,
            })
    }
    async fn snapshot(&self, _message: &str) -> HostResult<u64> {
        self.versions.set(self.versions.get() + 1);
        Ok(self.versions.get())
    }
}

/// Which kind of call a request is: by its role's model, and for the coder's two kinds,
/// whether the answer is a JSON tool call.
fn ask_of(req: &ChatRequest) -> &'static str {
    match req.model.trim_start_matches("recorded-") {
        "planner" => "plan",
        "fixer" => "fix",
        "tester" => "test",
        _ if req.json_schema.is_some() => "edit",
        _ => "code",
    }
}

/// The futures of the double are always ready: one poll each.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// Steps `g` to its end as the room's alarms would; the step names after each step.
fn drive(host: &Double, g: &mut Generation) -> (Vec<String>, AfterStep) {
    host.save(g).unwrap();
    let mut steps = Vec::new();
    // A bound on steps, so a recording that makes the pipeline loop fails instead of hanging.
    for _ in 0..200 {
        let after = block_on(driver::step(host, g)).unwrap();
        if after != AfterStep::Cancelled {
            steps.push(g.step.name().to_owned());
        }
        if !matches!(after, AfterStep::Again { .. }) {
            return (steps, after);
        }
    }
    panic!("{}: the pipeline did not end", host.name);
}

/// `want` appears in `seen` in this order.
fn in_order(seen: &[String], want: &[String]) -> bool {
    let mut it = seen.iter();
    want.iter().all(|w| it.any(|s| s == w))
}

fn replay(name: &str, text: &str) {
    let recording: Recording =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: not a recording: {e}"));
    assert!(!recording.about.is_empty());
    let mut g = Generation::new("g1".into(), recording.prompt.clone(), recording.template, 0);
    let calls = recording.calls.len() as u32;
    let host = Double::new(name, recording);
    let (steps, after) = drive(&host, &mut g);
    let r = host.recording.borrow();
    let expect = &r.expect;
    assert_eq!(steps, expect.steps, "{name}: steps");
    assert_eq!(
        after,
        AfterStep::Done { follow_up: None },
        "{name}: the end"
    );
    let events = host.event_types();
    assert!(
        in_order(&events, &expect.events),
        "{name}: events {events:?} lack {:?} in order",
        expect.events
    );
    assert_eq!(host.paths(), expect.paths, "{name}: paths");
    for (path, content) in &expect.files {
        let have = host.tree.borrow().get(path).cloned();
        assert_eq!(have.as_deref(), Some(content.as_bytes()), "{name}: {path}");
    }
    // The sandbox holds what the tree holds (the scaffolding the tree took included).
    let sandbox = host.sandbox.borrow().clone().unwrap_or_default();
    assert_eq!(
        sandbox,
        *host.tree.borrow(),
        "{name}: the sandbox and the tree"
    );
    assert_eq!(g.unresolved, expect.unresolved, "{name}: unresolved");
    assert!(r.calls.is_empty(), "{name}: answers left unasked");
    assert!(r.sandbox.is_empty(), "{name}: sandbox results left unused");
    assert_eq!(g.totals.llm_calls, calls, "{name}: every call counted");
    assert_eq!(host.logged.get(), calls, "{name}: every call logged");
    assert_eq!(
        host.stored.borrow().as_ref(),
        Some(&g),
        "{name}: the stored state"
    );
}

#[test]
fn every_recording_replays_to_its_expected_steps_and_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 2, "recordings in {}", dir.display());
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        replay(&name, &std::fs::read_to_string(&path).unwrap());
    }
}

#[test]
fn a_recording_the_pipeline_does_not_follow_fails_the_replay() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let text = std::fs::read_to_string(dir.join("tally_fixed_by_a_check.json")).unwrap();
    let mut recording: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The runner says the reload check passed at once: no fix round, so the fixer's answer
    // is left over and the steps differ.
    recording["sandbox"][1]["output"] = serde_json::json!(
        r#"{"results":[{"name":"smoke","passed":true},{"name":"controls","passed":true},{"name":"clicking + adds one","passed":true},{"name":"the count survives a reload","passed":true}]}"#
    );
    let outcome = std::panic::catch_unwind(|| replay("changed", &recording.to_string()));
    assert!(outcome.is_err());
}

fn recording(name: &str) -> Recording {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

fn new_generation(r: &Recording) -> Generation {
    Generation::new("g1".into(), r.prompt.clone(), r.template, 0)
}

#[test]
fn a_cancel_mid_stream_drops_the_steps_outcome_and_writes_no_file() {
    let host = Double::new("cancel", recording("tally_fixed_by_a_check.json"));
    let mut g = new_generation(&host.recording.borrow());
    host.save(&g).unwrap();
    // The plan, then the coder's answer cancelled a few pieces in.
    assert!(matches!(
        block_on(driver::step(&host, &mut g)),
        Ok(AfterStep::Again { .. })
    ));
    host.cancel_after_chunks.set(Some(40));
    assert_eq!(
        block_on(driver::step(&host, &mut g)),
        Ok(AfterStep::Cancelled)
    );
    let paths = host.paths();
    assert!(
        !paths.iter().any(|p| p == "index.html" || p == "main.js"),
        "{paths:?}"
    );
    // The stored state is the one before the step: the room's cancel writes its own.
    assert_eq!(
        host.stored.borrow().as_ref().unwrap().step.name(),
        "implementing"
    );
    assert_eq!(
        host.calls.borrow().len(),
        2,
        "the stream was abandoned, not asked again"
    );
}

#[test]
fn a_rate_limit_is_waited_out_as_long_as_the_server_asked() {
    let mut r = recording("tally_fixed_by_a_check.json");
    r.calls.push_front(Call {
        ask: "plan".into(),
        asked: None,
        answer: String::new(),
        fails: Some("429 retry-after 3".into()),
    });
    let host = Double::new("429", r);
    let mut g = new_generation(&host.recording.borrow());
    host.save(&g).unwrap();
    match block_on(driver::step(&host, &mut g)).unwrap() {
        AfterStep::Again { in_ms } => assert!(in_ms >= 3_000, "{in_ms}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.step.name(), "planning");
    assert_eq!(host.logged.get(), 1, "the failed call is in the cost log");
    // The retry goes on to the end, as without the 429.
    let (steps, after) = drive(&host, &mut g);
    assert_eq!(after, AfterStep::Done { follow_up: None });
    assert_eq!(steps.first().map(String::as_str), Some("implementing"));
}

#[test]
fn a_follow_up_edits_the_app_through_the_tool_loop_and_rechecks_it() {
    let host = Double::new("follow-up", recording("tally_fixed_by_a_check.json"));
    let mut g = new_generation(&host.recording.borrow());
    drive(&host, &mut g);
    let edit = |answer: &str, asked: Option<&str>| Call {
        ask: "edit".into(),
        asked: asked.map(Into::into),
        answer: answer.into(),
        fails: None,
    };
    {
        let mut r = host.recording.borrow_mut();
        r.calls.extend([
            edit(r#"{"tool":"read_file","path":"index.html"}"#, Some("say Add")),
            edit(
                r#"{"tool":"edit_file","path":"index.html","search":"<button id=\"plus\">+</button>","replace":"<button id=\"plus\">Add</button>"}"#,
                Some("<h1>Tally</h1>"),
            ),
            edit(r#"{"tool":"finish","summary":"The button says Add."}"#, None),
        ]);
        let ok = |purpose: &str, output: &str| SandboxResult {
            purpose: purpose.into(),
            exit_code: 0,
            output: output.into(),
        };
        r.sandbox.extend([
            ok("compile", ""),
            ok(
                "checks",
                r#"{"results":[{"name":"smoke","passed":true},{"name":"controls","passed":true},{"name":"clicking + adds one","passed":true},{"name":"the count survives a reload","passed":true}]}"#,
            ),
        ]);
    }
    let mut next = Generation::follow_up(
        "g2".into(),
        "make the button say Add".into(),
        g.template,
        g.blueprint.clone(),
        2_000,
    );
    let (steps, after) = drive(&host, &mut next);
    assert_eq!(after, AfterStep::Done { follow_up: None });
    // The step after each of the three rounds: two more rounds, then the check.
    let want = [
        "editing",
        "editing",
        "checking",
        "serving",
        "snapshotting",
        "done",
    ];
    assert_eq!(steps, want, "{steps:?}");
    assert!(
        host.recording.borrow().calls.is_empty(),
        "every round was asked"
    );
    let html = host.tree.borrow()["index.html"].clone();
    assert!(String::from_utf8(html)
        .unwrap()
        .contains(r#"<button id="plus">Add</button>"#));
    // The existing checks ran again as regressions; the sandbox has the edit.
    assert!(host.recording.borrow().sandbox.is_empty());
    assert_eq!(
        *host.sandbox.borrow().as_ref().unwrap(),
        *host.tree.borrow()
    );
    assert_eq!(next.version, Some(2));
}

//! End-to-end generation: a prompt on the socket becomes files streamed to every client, a
//! checked app running in a real sandbox, and version 1 — with the scripted model (a test
//! fixture) in place of an LLM and the real sandbox-proxy (needs root, as CI has).

mod credits;
mod fleet;
mod hooks;
mod isolation;
mod notify;
mod publish;
mod ui;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions};
use kiln_e2e::llm::{Fault, Script, ScriptedLlm, Turn};
use kiln_e2e::process::Group;
use kiln_e2e::ws::Auth;
use kiln_e2e::{register, Kiln};
use serde_json::{json, Value};

const SANDBOX_SECRET: &str = "e2e-sandbox-secret-0123456789abcdef0123456789";

struct Sandbox {
    url: String,
    port: u16,
    instance: &'static str,
    octet: u8,
    state: PathBuf,
    group: std::sync::Mutex<Group>,
}

/// One sandbox-proxy for the tests of this binary.
fn sandbox() -> &'static Sandbox {
    static SB: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
    SB.get_or_init(|| start_sandbox("e2g", 211))
}

/// The real sandbox-proxy, built alongside the tests (`cargo test` builds workspace bins).
fn start_sandbox(instance: &'static str, octet: u8) -> Sandbox {
    let port = kiln_e2e::free_port();
    let state = std::env::temp_dir().join(format!(
        "kiln-e2e-sandbox-{instance}-{}",
        std::process::id()
    ));
    let group = spawn_proxy(instance, octet, port, &state);
    Sandbox {
        url: format!("http://127.0.0.1:{port}"),
        port,
        instance,
        octet,
        state,
        group: std::sync::Mutex::new(group),
    }
}

fn spawn_proxy(instance: &str, octet: u8, port: u16, state: &std::path::Path) -> Group {
    let bin = kiln_e2e::sandbox::proxy_bin_beside_exe();
    if !bin.exists() {
        let status = Command::new("cargo")
            .args(["build", "-p", "kiln-sandbox-proxy"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    kiln_e2e::sandbox::spawn_proxy(&kiln_e2e::sandbox::ProxySpec {
        bin: &bin,
        instance,
        octet,
        port,
        state,
        jwt_secret: SANDBOX_SECRET,
        extra: vec![],
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

impl Sandbox {
    /// A file as the sandbox holds it.
    fn file(&self, project: &str, path: &str) -> String {
        ureq::get(&format!("{}/v1/sandboxes/{project}/files/{path}", self.url))
            .set(
                "authorization",
                &format!("Bearer {}", sandbox_token(project)),
            )
            .call()
            .unwrap_or_else(|e| panic!("{path} in the sandbox: {e}"))
            .into_string()
            .unwrap()
    }

    /// Stops the proxy and starts it again on an empty state directory: the host was
    /// replaced, every sandbox is gone.
    fn restart_fresh(&self) {
        let mut g = self.group.lock().unwrap();
        g.stop();
        *g = spawn_proxy(self.instance, self.octet, self.port, &self.state);
    }
}

fn sandbox_token(project: &str) -> String {
    #[derive(serde::Serialize)]
    struct C {
        project_id: String,
    }
    let claims = Claims::new(C {
        project_id: project.into(),
    })
    .set_duration_and_issuance(&TimeOptions::default(), chrono::Duration::seconds(60));
    Hs256
        .token(
            &Header::empty(),
            &claims,
            &Hs256Key::new(SANDBOX_SECRET.as_bytes()),
        )
        .unwrap()
}

const BLUEPRINT: &str = r##"{"name":"Tally","summary":"A counter that remembers its count.","template":"static",
"design":{"style":"calm","palette":[{"name":"bg","hex":"#fdf6e3"},{"name":"ink","hex":"#073642"}],"typography":"system-ui","sections":["counter"]},
"images":[{"path":"public/hero.svg","description":"a tally sheet","width":320,"height":160}],
"phases":[{"name":"Counter","goal":"A button that counts clicks, kept in localStorage","files":["index.html","style.css","main.js"],
"acceptance":["clicking + adds one","the count survives a reload"]}]}"##;

const INDEX: &str = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Tally</title><link rel=\"stylesheet\" href=\"style.css\"></head>\n<body>\n<h1>Tally</h1>\n<button id=\"plus\">+</button> <output id=\"count\">0</output>\n<script src=\"main.js\"></script>\n</body>\n</html>\n";
const STYLE: &str = "body { font-family: system-ui; background: #fdf6e3; color: #073642; }\n";
const MAIN: &str = "const out = document.getElementById('count');\nlet n = Number(localStorage.getItem('count') || 0);\nout.textContent = n;\ndocument.getElementById('plus').onclick = () => {\n  n += 1;\n  localStorage.setItem('count', n);\n  out.textContent = n;\n};\n";

fn coder_reply() -> String {
    format!(
        "Here is the app.\n<file path=\"index.html\">\n{INDEX}</file>\n<file path=\"style.css\">\n```css\n{STYLE}```\n</file>\n<file path=\"main.js\">\n{MAIN}</file>\nDone."
    )
}

fn plan_turn() -> Turn {
    Turn::text(BLUEPRINT)
        .named("plan")
        .matching("planner of an app builder")
        .usage(900, 300)
}

fn code_turn() -> Turn {
    Turn::text(coder_reply())
        .named("phase 1")
        .matching("Phase 1 of 1")
        .usage(1500, 700)
}

/// The acceptance checks the scripted tester writes for Tally's two acceptance points.
const CHECKS: &str = r##"{"checks":[
{"name":"clicking + adds one","steps":[{"do":"click","target":"#plus"},{"do":"see","text":"1","target":"#count"}]},
{"name":"the count survives a reload","steps":[{"do":"click","target":"#plus"},{"do":"click","target":"#plus"},
 {"do":"reload"},{"do":"see","text":"2","target":"#count"}]}]}"##;

/// After "make the button count by two" the checks of "+ adds one" are out of date: the
/// fixer, told what the user asked, rewrites them instead of undoing the change.
fn count_by_two_checks_turn() -> Turn {
    let checks = CHECKS
        .replace("clicking + adds one", "clicking + adds two")
        .replace(r#""text":"1""#, r#""text":"2""#)
        .replace(
            r#"{"do":"reload"},{"do":"see","text":"2""#,
            r#"{"do":"reload"},{"do":"see","text":"4""#,
        );
    Turn::text(format!(
        "<file path=\".kiln/checks.json\">\n{checks}</file>\n"
    ))
    .matching("The user has just asked: \"make the button count by two\"")
}

fn test_turn() -> Turn {
    Turn::text(CHECKS)
        .named("checks")
        .matching("You write acceptance checks")
        .usage(1200, 150)
}

struct Run {
    llm: ScriptedLlm,
    kiln: Kiln,
    owner: kiln_e2e::User,
    pid: String,
}

/// Kiln wired to a scripted model and the real sandbox-proxy, with one project.
fn setup(script: Script, vars: &[(&str, &str)]) -> Run {
    setup_on(sandbox(), script, vars)
}

fn setup_on(sandbox: &Sandbox, script: Script, vars: &[(&str, &str)]) -> Run {
    // Every generation of Tally writes its checks; a test that scripts its own tester turn
    // earlier gets that one (the first free matching turn wins).
    let llm = ScriptedLlm::start(script.turn(test_turn().reusable()));
    let base = llm.base_url();
    let mut all = vec![
        ("KILN_LLM_BASE_URL", base.as_str()),
        ("KILN_LLM_MODEL", "kiln-scripted"),
        ("KILN_SANDBOX_URL", sandbox.url.as_str()),
        ("KILN_SANDBOX_JWT_SECRET", SANDBOX_SECRET),
    ];
    // A test's own value of a setting replaces the default above.
    all.retain(|(k, _)| !vars.iter().any(|(vk, _)| vk == k));
    all.extend_from_slice(vars);
    let kiln = Kiln::start_with(&all);
    let owner = register(&kiln, "gen");
    let pid = kiln
        .post("/api/projects", owner.token(), json!({ "name": "tally" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    Run {
        llm,
        kiln,
        owner,
        pid,
    }
}

/// Events until the generation ends (complete, failed or cancelled).
fn until_done(run: &Run, ws: &mut kiln_e2e::ws::Socket) -> Vec<Value> {
    let mut events: Vec<Value> = vec![];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        assert!(
            Instant::now() < deadline,
            "no end of generation; got {:?}\n{}",
            events.iter().map(|e| e["type"].clone()).collect::<Vec<_>>(),
            run.kiln.log()
        );
        let Some(e) = ws.try_recv(Duration::from_secs(1)) else {
            continue;
        };
        let end = e["type"] == "generation_complete"
            || (e["type"] == "state_change" && (e["step"] == "failed" || e["step"] == "cancelled"));
        events.push(e);
        if end {
            return events;
        }
    }
}

fn socket(run: &Run) -> kiln_e2e::ws::Socket {
    let mut ws = run
        .kiln
        .ws(&run.pid, Auth::Bearer(&run.owner.token))
        .unwrap();
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    ws
}

/// Generates from a fresh socket and returns the events, which must end in completion.
fn generate_to_completion(run: &Run) -> Vec<Value> {
    let mut ws = socket(run);
    generate(&mut ws);
    let events = until_done(run, &mut ws);
    assert_eq!(
        events.last().unwrap()["type"],
        "generation_complete",
        "{:?}",
        events.last()
    );
    events
}

fn generate(ws: &mut kiln_e2e::ws::Socket) {
    ws.send(json!({ "type": "generate", "prompt": "a tally counter that remembers", "template": "static" }));
}

#[test]
fn a_prompt_becomes_a_running_checked_versioned_app() {
    let run = setup(Script::new().turn(plan_turn()).turn(code_turn()), &[]);
    let (llm, kiln, owner, pid) = (&run.llm, &run.kiln, &run.owner, run.pid.clone());
    let sandbox = sandbox();
    let mut ws = socket(&run);
    generate(&mut ws);

    let mut events: Vec<Value> = vec![];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(
            Instant::now() < deadline,
            "no generation_complete; got {:?}\n{}\nLLM requests: {:?}",
            events.iter().map(|e| e["type"].clone()).collect::<Vec<_>>(),
            kiln.log(),
            llm.requests()
                .iter()
                .map(|r| (r.path.clone(), format!("{:?}", r.outcome)))
                .collect::<Vec<_>>()
        );
        let Some(e) = ws.try_recv(Duration::from_secs(1)) else {
            continue;
        };
        let done = e["type"] == "generation_complete";
        let failed = e["type"] == "state_change" && e["step"] == "failed";
        events.push(e);
        assert!(
            !failed,
            "generation failed: {}\n{}",
            events.last().unwrap(),
            kiln.log()
        );
        if done {
            break;
        }
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|t| *t != "presence")
        .collect();
    let pos = |t: &str| {
        kinds
            .iter()
            .position(|k| *k == t)
            .unwrap_or_else(|| panic!("no {t} in {kinds:?}"))
    };
    assert!(pos("blueprint") < pos("phase_designing"));
    assert!(pos("phase_designing") < pos("file_start"));
    assert!(pos("file_end") < pos("files_written"));
    // The preview is up as soon as the first phase's files are in, while its checks are
    // written and run, long before the version.
    assert!(pos("files_written") < pos("server_started"));
    assert!(pos("server_started") < pos("checks_written"));
    assert!(pos("checks_written") < pos("check_result"));
    assert!(pos("check_result") < pos("version_created"));
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // Every file's chunks join into the file in the room and in the sandbox.
    let token = sandbox_token(&pid);
    for (path, want) in [
        ("index.html", INDEX),
        ("style.css", STYLE),
        ("main.js", MAIN),
    ] {
        let streamed: String = events
            .iter()
            .filter(|e| e["type"] == "file_chunk" && e["path"] == path)
            .map(|e| e["chunk"].as_str().unwrap())
            .collect();
        assert_eq!(streamed, want, "{path} as streamed");
        let room = kiln.get(&format!("/api/projects/{pid}/files/{path}"), owner.token());
        assert_eq!(room.text, want, "{path} in the room");
        assert_eq!(sandbox.file(&pid, path), want, "{path} in the sandbox");
    }
    // The acceptance checks were written into the project and passed in the sandbox's browser.
    let written = events
        .iter()
        .find(|e| e["type"] == "checks_written")
        .unwrap();
    assert_eq!(
        written["checks"],
        json!(["clicking + adds one", "the count survives a reload"]),
        "{written}"
    );
    let check = events.iter().find(|e| e["type"] == "check_result").unwrap();
    assert_eq!(check["passed"], true, "{check}");
    let ran = checks_ran(check);
    assert_eq!(
        ran,
        [
            ("clicking + adds one", true),
            ("the count survives a reload", true)
        ]
    );
    let file = kiln.get(
        &format!("/api/projects/{pid}/files/.kiln/checks.json"),
        owner.token(),
    );
    assert!(file.text.contains("\"phase\": 0"), "{}", file.text);
    // The template's scaffolding is part of the project, so versions hold the whole app.
    let store = kiln.get(
        &format!("/api/projects/{pid}/files/store.js"),
        owner.token(),
    );
    assert!(
        store.text.contains("function load(key, fallback)"),
        "{}",
        store.text
    );
    let svg = kiln.get(
        &format!("/api/projects/{pid}/files/public/hero.svg"),
        owner.token(),
    );
    assert!(
        svg.status == 200 && svg.text.starts_with("<svg"),
        "the image spec became an SVG"
    );

    // The app runs: the dev server answers with the app's HTML.
    let status: Value = ureq::post(&format!("{}/v1/sandboxes/{pid}/dev-server", sandbox.url))
        .set("authorization", &format!("Bearer {token}"))
        .send_json(json!({ "action": "status" }))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(status["state"], "ready", "{status}");
    let preview = ureq::get(&format!(
        "{}{}",
        sandbox.url,
        status["preview_url"].as_str().unwrap()
    ))
    .call()
    .unwrap()
    .into_string()
    .unwrap();
    assert!(preview.contains("<h1>Tally</h1>"), "{preview}");

    // …and through Kiln, on the project's own preview origin, for signed-in members only.
    let redirect = kiln.get(&format!("/preview/{pid}/"), owner.token());
    assert_eq!(redirect.status, 302, "{}", redirect.text);
    let host = kiln.preview_host(&pid);
    assert!(
        redirect
            .header("location")
            .is_some_and(|l| l.starts_with(&format!("http://{host}/__kiln/preview-auth?token="))),
        "{:?}",
        redirect.header("location")
    );
    kiln.get(&format!("/preview/{pid}/"), None)
        .expect_error(401, "unauthorized");
    let cookie = vec![("cookie".to_owned(), kiln.open_preview(&pid, &owner.token))];
    let page = kiln.on_host(&host, "GET", "/", &cookie);
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<h1>Tally</h1>"), "{}", page.text);
    let js = kiln.on_host(&host, "GET", "/main.js", &cookie);
    assert_eq!(js.text, MAIN);
    kiln.on_host(&host, "GET", "/", &[])
        .expect_error(401, "unauthorized");
    let stranger = register(kiln, "stranger");
    kiln.post(
        &format!("/api/projects/{pid}/preview-link"),
        stranger.token(),
        json!({}),
    )
    .expect_error(404, "not_found");
    // The preview URL announced is the preview's own origin.
    let started = events
        .iter()
        .find(|e| e["type"] == "server_started")
        .expect("server_started");
    assert_eq!(started["preview_url"], format!("http://{host}/"));

    // Version 1, totals, and one logged call per LLM request.
    let versions = kiln
        .get(&format!("/api/projects/{pid}/versions"), owner.token())
        .expect(200);
    assert_eq!(versions["items"][0]["number"], 1);
    let complete = events.last().unwrap();
    assert_eq!(complete["version"], 1);
    assert_eq!(complete["llm_calls"], 3);
    assert_eq!(complete["input_tokens"], 3600);
    assert_eq!(complete["unresolved"], json!([]));
    assert_eq!(llm.requests().len(), 3, "no call was repeated");
    let rows = kiln
        .d1("SELECT role, model, input_tokens, output_tokens, status FROM ai_calls ORDER BY id");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["role"], "planner");
    assert_eq!(rows[1]["role"], "coder");
    assert_eq!(rows[1]["input_tokens"], 1500);
    assert_eq!(rows[2]["role"], "tester");
    let _ = Utc::now();
}

/// The quality lever: the model forgets a requirement (the count is not saved), the build is
/// fine, and only the acceptance check run in the sandbox's Chromium notices. The fixer is
/// told which check failed at which step and what the page showed; its fix passes.
#[test]
fn a_forgotten_requirement_is_caught_by_an_acceptance_check_and_fixed() {
    let forgetful = "const out = document.getElementById('count');\nlet n = 0;\ndocument.getElementById('plus').onclick = () => {\n  n += 1;\n  out.textContent = n;\n};\n";
    let coder = format!(
        "<file path=\"index.html\">\n{INDEX}</file>\n<file path=\"style.css\">\n{STYLE}</file>\n<file path=\"main.js\">\n{forgetful}</file>\n"
    );
    let fixer = format!("<file path=\"main.js\">\n{MAIN}</file>\n");
    let run = setup(
        Script::new()
            .turn(plan_turn())
            .turn(Turn::text(coder).matching("Phase 1 of 1"))
            .turn(test_turn())
            .turn(Turn::text(fixer).matching("You fix bugs")),
        &[],
    );
    let events = generate_to_completion(&run);
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "check_result")
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0]["passed"], false);
    let first = checks_ran(results[0]);
    assert_eq!(
        first,
        [
            ("clicking + adds one", true),
            ("the count survives a reload", false)
        ]
    );
    assert_eq!(results[0]["checks"][3]["step"], 4, "{}", results[0]);
    assert_eq!(results[1]["passed"], true, "{}", results[1]);

    // The fixer saw what failed, where, and what the page showed.
    let fix = run
        .llm
        .chat_requests()
        .into_iter()
        .find(|r| {
            r.system_messages()
                .iter()
                .any(|m| m.contains("You fix bugs"))
        })
        .expect("a fixer call");
    let asked = fix.last_user_message().unwrap();
    for needle in [
        "Browser check \"the count survives a reload\" failed at step 4 (see \"2\" in #count)",
        "click #plus; click #plus; reload the page",
        "Visible text then",
    ] {
        assert!(asked.contains(needle), "{needle} not in {asked}");
    }
    let done = events.last().unwrap();
    assert_eq!(done["unresolved"], json!([]), "{done}");
    let main = run.kiln.get(
        &format!("/api/projects/{}/files/main.js", run.pid),
        run.owner.token(),
    );
    assert_eq!(main.text, MAIN);
}

/// The other quality lever: the import mistakes small models make most (a component and a
/// scaffolding hook used without an import, a test library imported for `data-testid`) are
/// repaired without a model call, and the type-check and the browser checks then pass.
#[test]
fn import_mistakes_are_repaired_without_a_fix_round() {
    let plan = BLUEPRINT
        .replace(r#""template":"static""#, r#""template":"react-vite""#)
        .replace(
            r#""files":["index.html","style.css","main.js"]"#,
            r#""files":["src/components/Counter.tsx","src/App.tsx"]"#,
        );
    let counter = "import { data-testid as tid } from '@testing-library/react'\n\nexport default function Counter({ count, onAdd }: { count: number; onAdd: () => void }) {\n  return (\n    <p>\n      <button id=\"plus\" data-testid=\"add\" onClick={onAdd}>+</button> <output id=\"count\">{count}</output>\n    </p>\n  )\n}\n";
    let app = "export default function App() {\n  const [count, setCount] = usePersistentState('count', 0)\n  return (\n    <main>\n      <h1>Tally</h1>\n      <Counter count={count} onAdd={() => setCount(count + 1)} />\n    </main>\n  )\n}\n";
    let coder = format!(
        "<file path=\"src/components/Counter.tsx\">\n{counter}</file>\n<file path=\"src/App.tsx\">\n{app}</file>\n"
    );
    let run = setup(
        Script::new()
            .turn(Turn::text(plan).matching("planner of an app builder"))
            .turn(Turn::text(coder).matching("Phase 1 of 1")),
        &[],
    );
    let mut ws = socket(&run);
    ws.send(json!({ "type": "generate", "prompt": "a tally counter that remembers", "template": "react-vite" }));
    let events = until_done(&run, &mut ws);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    assert_eq!(done["unresolved"], json!([]), "{done}");
    // Vite serves the app (type errors and all) while its checks are written.
    let pos = |t: &str| events.iter().position(|e| e["type"] == t).unwrap();
    assert!(pos("server_started") < pos("checks_written"));
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "check_result")
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["passed"], true, "{}", results[0]);
    assert_eq!(
        checks_ran(results[0]),
        [
            ("clicking + adds one", true),
            ("the count survives a reload", true)
        ]
    );
    let notes: String = events
        .iter()
        .filter(|e| e["type"] == "command_output" && e["command"] == "autofix")
        .map(|e| e["output"].as_str().unwrap())
        .collect();
    for needle in [
        "src/App.tsx: imported `Counter` from './components/Counter'",
        "src/App.tsx: imported `usePersistentState` from './lib/persist'",
        "src/components/Counter.tsx:1: removed",
    ] {
        assert!(notes.contains(needle), "{needle} not in {notes}");
    }
    // Plan, phase, checks: no fixer.
    assert_eq!(run.llm.chat_requests().len(), 3);
    let file = |path: &str| {
        run.kiln
            .get(
                &format!("/api/projects/{}/files/{path}", run.pid),
                run.owner.token(),
            )
            .text
    };
    assert_eq!(
        file("src/App.tsx"),
        format!("import Counter from './components/Counter'\nimport {{ usePersistentState }} from './lib/persist'\n{app}")
    );
    assert_eq!(
        file("src/components/Counter.tsx"),
        counter.split_once('\n').unwrap().1
    );
    assert_eq!(sandbox().file(&run.pid, "src/App.tsx"), file("src/App.tsx"));
}

/// The small profile (`KILN_MODEL_PROFILE=small`, what the embedded 1.5B model gets): no
/// planner is asked — the plan is one phase made from the request, in its words, that writes
/// only src/App.tsx — and strict type complaints (implicit `any` here) are shown but do not
/// send the app to the fixer; no tester is asked: Kiln's smoke checks judge the app in the
/// browser, and it passes them.
#[test]
fn the_small_profile_writes_one_file_and_lets_type_complaints_through() {
    let app = "import { usePersistentState } from './lib/persist'\n\nfunction Counter({ count, onAdd }) {\n  return (\n    <p>\n      <button id=\"plus\" data-testid=\"add\" onClick={onAdd}>+</button> <output id=\"count\">{count}</output>\n    </p>\n  )\n}\n\nexport default function App() {\n  const [count, setCount] = usePersistentState('count', 0)\n  return (\n    <main>\n      <h1>Tally</h1>\n      <Counter count={count} onAdd={() => setCount(count + 1)} />\n    </main>\n  )\n}\n";
    let run = setup(
        Script::new().turn(
            Turn::text(format!("<file path=\"src/App.tsx\">\n{app}</file>\n"))
                .matching("ONE file, src/App.tsx"),
        ),
        &[("KILN_MODEL_PROFILE", "small")],
    );
    let mut ws = socket(&run);
    ws.send(json!({ "type": "generate", "prompt": "a tally counter that remembers", "template": "react-vite" }));
    let events = until_done(&run, &mut ws);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    let blueprint = events.iter().find(|e| e["type"] == "blueprint").unwrap();
    assert_eq!(
        blueprint["blueprint"]["phases"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        blueprint["blueprint"]["phases"][0]["files"],
        json!(["src/App.tsx"])
    );
    assert_eq!(
        blueprint["blueprint"]["phases"][0]["acceptance"],
        json!(["a tally counter that remembers"])
    );
    let note = events
        .iter()
        .find(|e| e["type"] == "command_output" && e["command"] == "type-check")
        .unwrap_or_else(|| panic!("no type-check note in {events:?}"));
    assert!(
        note["output"].as_str().unwrap().contains("TS7031"),
        "{note}"
    );
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "check_result")
        .collect();
    // No tester: the smoke checks judge the app, and it passes them.
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["passed"], true, "{}", results[0]);
    assert_eq!(checks_ran(results[0]), []);
    assert!(!events.iter().any(|e| e["type"] == "checks_written"));
    // The one file, asked for in the person's words: no planner, no tester, no fixer.
    let asked = run.llm.chat_requests();
    assert_eq!(asked.len(), 1);
    let body = asked[0].body.as_ref().unwrap().to_string();
    assert!(body.contains("a tally counter that remembers"), "{body}");
}

/// The small profile asks no tester, but Kiln writes the checks the request's words call for
/// (`core::agent::probes`): "add items with Enter" is tried in Chromium, an app whose Enter
/// adds nothing fails it and is written again, told what the check did and saw, and the
/// second app passes it. The check is kept in the project's check file like a tester's.
#[test]
fn the_small_profile_checks_what_the_request_says_and_tries_again_when_it_fails() {
    let app = |on_enter: &str| {
        format!(
            "import {{ useState }} from 'react'\n\nexport default function App() {{\n  const [items, setItems] = useState<string[]>([])\n  const [text, setText] = useState('')\n  const add = () => {{\n    if (!text.trim()) return\n    setItems([...items, text])\n    setText('')\n  }}\n  return (\n    <main>\n      <h1>Shopping</h1>\n      <input value={{text}} onChange={{(e) => setText(e.target.value)}}{on_enter} />\n      <button onClick={{add}}>Add</button>\n      <ul>{{items.map((it, i) => <li key={{i}}>{{it}}</li>)}}</ul>\n    </main>\n  )\n}}\n"
        )
    };
    let broken = app("");
    let fixed = app(" onKeyDown={(e) => { if (e.key === 'Enter') add() }}");
    let run = setup(
        Script::new()
            .turn(
                Turn::text(format!("<file path=\"src/App.tsx\">\n{broken}</file>\n"))
                    .matching("ONE file, src/App.tsx"),
            )
            .turn(
                Turn::text(format!("<file path=\"src/App.tsx\">\n{fixed}</file>\n"))
                    .matching("The last version of this app failed with"),
            ),
        &[("KILN_MODEL_PROFILE", "small")],
    );
    let mut ws = socket(&run);
    ws.send(json!({ "type": "generate", "prompt": "a shopping list: add items with Enter", "template": "react-vite" }));
    let events = until_done(&run, &mut ws);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    assert_eq!(done["unresolved"], json!([]), "{done}");
    let probe = "typing in the text field and pressing Enter adds the entry";
    let written = events
        .iter()
        .find(|e| e["type"] == "checks_written")
        .unwrap_or_else(|| panic!("no checks_written in {events:?}"));
    assert_eq!(written["checks"], json!([probe]), "{written}");
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "check_result")
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(checks_ran(results[0]), [(probe, false)], "{}", results[0]);
    assert_eq!(checks_ran(results[1]), [(probe, true)], "{}", results[1]);
    let asked = run.llm.chat_requests();
    assert_eq!(asked.len(), 2);
    let again = asked[1].body.as_ref().unwrap().to_string();
    assert!(
        again.contains(probe) && again.contains("Kiln check one"),
        "the second try is told what the check did: {again}"
    );
    let stored = run.kiln.get(
        &format!("/api/projects/{}/files/.kiln/checks.json", run.pid),
        run.owner.token(),
    );
    assert!(stored.text.contains(probe), "{}", stored.text);
    assert!(sandbox()
        .file(&run.pid, "src/App.tsx")
        .contains("onKeyDown"));
}

/// Small models loop: the whole answer again and again until max_tokens. The second time a
/// file closes with the same content the stream is stopped and what was written is kept (here
/// the repeat is followed by a block that never closes, which would otherwise fail the phase).
#[test]
fn a_model_repeating_its_answer_is_stopped_and_its_files_kept() {
    let looping = format!(
        "{}\n{}\n<file path=\"main.js\">\nconst again = 1;\n",
        coder_reply(),
        coder_reply()
    );
    let run = setup(
        Script::new()
            .turn(plan_turn())
            .turn(Turn::text(looping).matching("Phase 1 of 1")),
        &[],
    );
    let events = generate_to_completion(&run);
    let done = events.last().unwrap();
    assert_eq!(done["unresolved"], json!([]), "{done}");
    assert!(
        events.iter().any(|e| e["type"] == "command_output"
            && e["output"]
                .as_str()
                .unwrap()
                .contains("began repeating itself")),
        "the stop is reported"
    );
    let main = run.kiln.get(
        &format!("/api/projects/{}/files/main.js", run.pid),
        run.owner.token(),
    );
    assert_eq!(main.text, MAIN);
    let check = events.iter().find(|e| e["type"] == "check_result").unwrap();
    assert_eq!(check["passed"], true, "{check}");
}

/// Rows of a query against the local D1, through wrangler.
#[test]
fn a_500_is_retried_and_a_cut_stream_leaves_no_half_file() {
    let run = setup(
        Script::new()
            .turn(plan_turn().fail(Fault::ServerError))
            .turn(
                code_turn()
                    .chunk_size(40)
                    .fail(Fault::Truncated { after_chunks: 6 }),
            ),
        &[],
    );
    let events = generate_to_completion(&run);
    assert_eq!(run.llm.calls_to(0), 2, "the plan: a 500, then the reply");
    assert_eq!(
        run.llm.calls_to(1),
        2,
        "the phase: a cut stream, then the reply"
    );
    // Whatever the model's streams stored was whole: every version of a file stored after
    // streaming began (the template's scaffolding comes before) is its full content.
    let streaming = events
        .iter()
        .position(|e| e["type"] == "file_start")
        .expect("files were streamed");
    for e in events[streaming..]
        .iter()
        .filter(|e| e["type"] == "file_edited")
    {
        let want = match e["path"].as_str().unwrap() {
            "index.html" => INDEX,
            "style.css" => STYLE,
            "main.js" => MAIN,
            _ => continue,
        };
        assert_eq!(e["content"], want, "a half file was stored: {e}");
    }
    let rows = run.kiln.d1("SELECT status FROM ai_calls ORDER BY id");
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    // The plan, the phase, then the checks.
    assert_eq!(statuses, vec!["error", "ok", "error", "ok", "ok"]);
}

/// A generation whose one phase is streaming, slowly enough to act in the middle of it.
fn streaming_slowly() -> (Run, kiln_e2e::ws::Socket) {
    let run = setup(
        Script::new().turn(plan_turn()).turn(
            code_turn()
                .chunk_size(8)
                .chunk_delay(Duration::from_millis(100)),
        ),
        &[],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    ws.recv_type("file_chunk");
    (run, ws)
}

#[test]
fn cancel_stops_a_running_generation() {
    let (run, mut ws) = streaming_slowly();
    // Mid-generation, the room's state says which step the agent is in.
    ws.send(json!({ "type": "get_state" }));
    assert_eq!(ws.recv_type("state")["agent"], "implementing");
    ws.send(json!({ "type": "cancel" }));
    let events = until_done(&run, &mut ws);
    let last = events.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["step"].as_str()),
        (Some("state_change"), Some("cancelled"))
    );
    assert!(
        !events.iter().any(|e| e["type"] == "file_edited"),
        "no phase file was stored"
    );
    let versions = run
        .kiln
        .get(
            &format!("/api/projects/{}/versions", run.pid),
            run.owner.token(),
        )
        .expect(200);
    assert!(versions["items"].as_array().unwrap().is_empty());
    ws.send(json!({ "type": "get_state" }));
    assert_eq!(ws.recv_type("state")["agent"], "idle");
    // The room stays usable: a new generation runs to the end.
    run.llm.add_turn(code_turn());
    run.llm.add_turn(plan_turn());
    generate(&mut ws);
    let again = until_done(&run, &mut ws);
    assert_eq!(again.last().unwrap()["type"], "generation_complete");
}

#[test]
fn deleting_a_project_stops_its_generation_and_removes_its_sandbox() {
    let (run, mut ws) = streaming_slowly();
    let sandbox_status = || match ureq::get(&format!("{}/v1/sandboxes/{}", sandbox().url, run.pid))
        .set(
            "authorization",
            &format!("Bearer {}", sandbox_token(&run.pid)),
        )
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("sandbox-proxy: {e}"),
    };
    assert_eq!(sandbox_status(), 200, "the sandbox exists while it builds");
    run.kiln
        .delete(&format!("/api/projects/{}", run.pid), run.owner.token())
        .expect(204);
    let (_, end) = ws.wait_closed(Duration::from_secs(10));
    assert!(
        matches!(end, kiln_e2e::ws::Ended::Closed { code: 4003, .. }),
        "{end:?}"
    );
    assert_eq!(sandbox_status(), 404, "the sandbox is gone");
    // Nothing more is asked of the model: the generation was cancelled.
    let calls = run.llm.chat_requests().len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(run.llm.chat_requests().len(), calls);
    assert_eq!(sandbox_status(), 404, "and stays gone");
}

#[test]
fn a_restart_mid_phase_resumes_without_repeating_finished_calls() {
    let run = setup(
        Script::new().turn(plan_turn()).turn(
            code_turn()
                .chunk_size(8)
                .chunk_delay(Duration::from_millis(50)),
        ),
        &[],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    ws.recv_type("file_chunk");
    drop(ws);
    let Run {
        llm,
        kiln,
        owner,
        pid,
    } = run;
    let kiln = kiln.restart();
    // The step watchdog is left at its 5 minutes: the restarted room resumes the step it was
    // cut off in when it is first asked (here, by this poll), long before that.
    let deadline = Instant::now() + Duration::from_secs(120);
    let state = loop {
        let g = kiln
            .get(&format!("/api/projects/{pid}/generation"), owner.token())
            .expect(200);
        if g["step"]["step"] == "done" || g["step"]["step"] == "failed" {
            break g;
        }
        assert!(
            Instant::now() < deadline,
            "did not resume: {g}\n{}",
            kiln.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(state["step"]["step"], "done", "{state}");
    assert_eq!(
        llm.completions(0),
        1,
        "the finished plan was not asked for again"
    );
    assert_eq!(llm.completions(1), 1);
    let main = kiln.get(&format!("/api/projects/{pid}/files/main.js"), owner.token());
    assert_eq!(main.text, MAIN);
    let versions = kiln
        .get(&format!("/api/projects/{pid}/versions"), owner.token())
        .expect(200);
    assert_eq!(
        versions["items"].as_array().unwrap().len(),
        1,
        "one version, not two"
    );
}

#[test]
fn a_sandbox_proxy_restart_mid_generation_recreates_the_sandbox() {
    let proxy = start_sandbox("e2r", 212);
    let run = setup_on(
        &proxy,
        Script::new().turn(plan_turn()).turn(
            code_turn()
                .chunk_size(8)
                .chunk_delay(Duration::from_millis(30)),
        ),
        &[],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    ws.recv_type("file_chunk");
    proxy.restart_fresh();
    let events = until_done(&run, &mut ws);
    assert_eq!(
        events.last().unwrap()["type"],
        "generation_complete",
        "{:?}",
        events.last()
    );
    assert_eq!(
        proxy.file(&run.pid, "main.js"),
        MAIN,
        "the re-created sandbox has the files"
    );
}

/// The files a client knows from the `file_edited` events it received.
/// (name, passed) of each acceptance check a `check_result` event reports.
/// The tester's checks a `check_result` reports, after Kiln's own two smoke checks (always
/// first, here always passed: every scripted app shows its page and survives its buttons).
fn checks_ran(result: &Value) -> Vec<(&str, bool)> {
    let all: Vec<(&str, bool)> = result["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no check reports: {result}"))
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        all.get(..2),
        Some(
            &[
                ("the app opens and shows its page without errors", true),
                ("its fields and buttons can be used without errors", true)
            ][..]
        ),
        "{result}"
    );
    all[2..].to_vec()
}

fn files_seen(events: &[Value]) -> std::collections::BTreeMap<String, String> {
    events
        .iter()
        .filter(|e| e["type"] == "file_edited")
        .map(|e| {
            (
                e["path"].as_str().unwrap().to_owned(),
                e["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_client_joining_midway_and_one_reconnecting_end_with_the_same_files() {
    let run = setup(
        Script::new().turn(plan_turn()).turn(
            code_turn()
                .chunk_size(8)
                .chunk_delay(Duration::from_millis(20)),
        ),
        &[],
    );
    let mut first = socket(&run);
    let mut leaver = socket(&run);
    generate(&mut first);
    // The leaver drops after seeing the first chunk…
    let mut leaver_events = vec![];
    loop {
        let f = leaver.recv();
        let chunk = f["type"] == "file_chunk";
        leaver_events.push(f);
        if chunk {
            break;
        }
    }
    let n = leaver.last_seq;
    leaver.close();
    // …a newcomer joins while the phase streams: it starts from the snapshot (contents
    // over REST) and follows the events…
    let mut late = run
        .kiln
        .ws(&run.pid, Auth::Bearer(&run.owner.token))
        .unwrap();
    late.send(json!({ "type": "hello" }));
    let snapshot = late.recv_type("state");
    let mut late_files = std::collections::BTreeMap::new();
    for f in snapshot["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let body = run.kiln.get(
            &format!("/api/projects/{}/files/{path}", run.pid),
            run.owner.token(),
        );
        late_files.insert(path.to_owned(), body.text);
    }
    // …and the leaver comes back with what it had.
    let mut back = run
        .kiln
        .ws(&run.pid, Auth::Bearer(&run.owner.token))
        .unwrap();
    back.send(json!({ "type": "hello", "last_seq": n }));
    let all = until_done(&run, &mut first);
    let late_events = until_done(&run, &mut late);
    let back_events = until_done(&run, &mut back);
    let want = files_seen(&all);
    assert!(want.contains_key("main.js"), "{want:?}");
    late_files.extend(files_seen(&late_events));
    assert_eq!(late_files, want);
    let mut back_files = files_seen(&leaver_events);
    back_files.extend(files_seen(&back_events));
    assert_eq!(back_files, want);
    for (path, content) in &want {
        let stored = run.kiln.get(
            &format!("/api/projects/{}/files/{path}", run.pid),
            run.owner.token(),
        );
        assert_eq!(&stored.text, content, "{path}");
    }
}

/// Tally, then the follow-up "make the button count by two" as three tool rounds (read
/// main.js, edit it, finish) and the rewritten checks.
fn tally_then_count_by_two() -> Script {
    let tool = |json: &str| Turn::text(json).matching("You change an existing web app");
    Script::new()
        .turn(plan_turn())
        .turn(code_turn())
        .turn(tool(r#"{"tool":"read_file","path":"main.js"}"#))
        .turn(tool(
            r#"{"tool":"edit_file","path":"main.js","search":"n += 1;","replace":"n += 2;"}"#,
        ))
        .turn(tool(
            r#"{"tool":"finish","summary":"the button now counts by two"}"#,
        ))
        .turn(count_by_two_checks_turn())
}

#[test]
fn a_follow_up_edits_a_file_through_the_tool_loop_and_makes_version_2() {
    let run = setup(tally_then_count_by_two(), &[]);
    let mut ws = socket(&run);
    generate(&mut ws);
    let first = until_done(&run, &mut ws);
    assert_eq!(first.last().unwrap()["version"], 1);
    // A file deleted from the tree is gone from the sandbox after the next sync.
    let style = run.kiln.get(
        &format!("/api/projects/{}/files/style.css", run.pid),
        run.owner.token(),
    );
    let rev = style.header("x-kiln-rev").unwrap().to_owned();
    run.kiln
        .raw(
            "DELETE",
            &format!("/api/projects/{}/files/style.css", run.pid),
            &[
                (
                    "authorization".into(),
                    format!("Bearer {}", run.owner.token),
                ),
                ("if-match".into(), rev),
            ],
            None,
        )
        .expect(204);
    ws.send(json!({ "type": "generate", "prompt": "make the button count by two" }));
    let events = until_done(&run, &mut ws);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    assert_eq!(done["version"], 2);
    assert!(events
        .iter()
        .any(|e| e["type"] == "state_change" && e["step"] == "editing"));
    assert!(
        !events.iter().any(|e| e["type"] == "blueprint"),
        "no new plan for a follow-up"
    );
    let edited = events
        .iter()
        .find(|e| e["type"] == "file_edited" && e["path"] == "main.js")
        .expect("main.js was edited");
    assert_eq!(edited["by"], "agent");
    let want = MAIN.replace("n += 1;", "n += 2;");
    let stored = run.kiln.get(
        &format!("/api/projects/{}/files/main.js", run.pid),
        run.owner.token(),
    );
    assert_eq!(stored.text, want);
    assert_eq!(sandbox().file(&run.pid, "main.js"), want);
    let gone = ureq::get(&format!(
        "{}/v1/sandboxes/{}/files/style.css",
        sandbox().url,
        run.pid
    ))
    .set(
        "authorization",
        &format!("Bearer {}", sandbox_token(&run.pid)),
    )
    .call();
    assert!(
        matches!(gone, Err(ureq::Error::Status(404, _))),
        "style.css is still in the sandbox: {gone:?}"
    );
    // The model saw the file it asked for before it edited it.
    let fixed_checks = run.kiln.get(
        &format!("/api/projects/{}/files/.kiln/checks.json", run.pid),
        run.owner.token(),
    );
    assert!(
        fixed_checks.text.contains("clicking + adds two"),
        "{}",
        fixed_checks.text
    );
    let results: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "check_result")
        .collect();
    assert_eq!(
        results
            .iter()
            .map(|r| r["passed"].as_bool().unwrap())
            .collect::<Vec<_>>(),
        [false, true],
        "the old check failed, the rewritten one passed"
    );
    // Plan, phase, checks, three tool rounds, the fixer.
    let chats = run.llm.chat_requests();
    assert_eq!(chats.len(), 7);
    let edit_request = chats[4].body.as_ref().unwrap().to_string();
    assert!(
        edit_request.contains("localStorage.setItem"),
        "the read_file result was in the conversation"
    );
    let versions = run
        .kiln
        .get(
            &format!("/api/projects/{}/versions", run.pid),
            run.owner.token(),
        )
        .expect(200);
    assert_eq!(versions["items"].as_array().unwrap().len(), 2);
}

#[test]
fn prompts_sent_during_a_generation_are_not_lost() {
    let run = setup(
        Script::new()
            .turn(plan_turn())
            .turn(
                code_turn()
                    .chunk_size(8)
                    .chunk_delay(Duration::from_millis(20)),
            )
            .turn(
                Turn::text(r#"{"tool":"finish","summary":"made it blue"}"#)
                    .matching("You change an existing web app"),
            ),
        &[],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    ws.recv_type("file_chunk");
    // Arrives while the last phase streams: too late for it, so a follow-up carries it out.
    ws.send(json!({ "type": "generate", "prompt": "make the button blue" }));
    let first = until_done(&run, &mut ws);
    assert_eq!(first.last().unwrap()["version"], 1);
    let second = until_done(&run, &mut ws);
    let done = second.last().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    assert_eq!(done["version"], 2);
    // Plan, phase, checks, then the follow-up.
    let chats = run.llm.chat_requests();
    assert_eq!(chats.len(), 4);
    let follow_up = chats[3].body.as_ref().unwrap().to_string();
    assert!(follow_up.contains("make the button blue"), "{follow_up}");
}

#[test]
fn a_flood_of_queued_prompts_is_refused_with_a_clear_error() {
    let run = setup(
        Script::new()
            .turn(plan_turn())
            .turn(
                code_turn()
                    .chunk_size(4)
                    .chunk_delay(Duration::from_millis(40)),
            )
            .turn(
                Turn::text(r#"{"tool":"finish","summary":"done"}"#)
                    .matching("You change an existing web app")
                    .reusable(),
            ),
        &[],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    ws.recv_type("file_chunk");
    let path = format!("/api/projects/{}/generate", run.pid);
    let mut answers = vec![];
    for i in 0..11 {
        let r = run.kiln.post(
            &path,
            run.owner.token(),
            json!({ "prompt": format!("tweak number {i}") }),
        );
        answers.push(r);
    }
    let id = answers[0].json()["generation_id"].clone();
    for (i, r) in answers[..10].iter().enumerate() {
        assert_eq!(r.status, 202, "prompt {i}: {}", r.text);
        assert_eq!(r.json()["generation_id"], id, "folded into the running one");
    }
    answers[10].expect_error(429, "quota_exceeded");
    // Over the socket too, with the same code.
    ws.send(json!({ "type": "generate", "prompt": "one too many" }));
    let err = ws.recv_type("error");
    assert_eq!(err["code"], "quota_exceeded", "{err}");
    let first = until_done(&run, &mut ws);
    assert_eq!(first.last().unwrap()["type"], "generation_complete");
    // The ten that were taken are carried out by one follow-up.
    let second = until_done(&run, &mut ws);
    assert_eq!(second.last().unwrap()["type"], "generation_complete");
    let chats = run.llm.chat_requests();
    let follow_up = chats.last().unwrap().body.as_ref().unwrap().to_string();
    assert!(
        follow_up.contains("tweak number 0") && follow_up.contains("tweak number 9"),
        "{follow_up}"
    );
    assert!(!follow_up.contains("one too many"));
}

#[test]
fn an_org_runs_at_most_its_cap_of_generations_at_once() {
    let run = setup(
        Script::new().turn(plan_turn().reusable()).turn(
            code_turn()
                .chunk_size(4)
                .chunk_delay(Duration::from_millis(40))
                .reusable(),
        ),
        &[("KILN_ORG_MAX_GENERATIONS", "1")],
    );
    let (kiln, owner) = (&run.kiln, &run.owner);
    let second = kiln
        .post("/api/projects", owner.token(), json!({ "name": "second" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another org is not held back by this one.
    let other_org = kiln
        .post("/api/orgs", owner.token(), json!({ "name": "Elsewhere" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let elsewhere = kiln
        .post(
            "/api/projects",
            owner.token(),
            json!({ "name": "elsewhere", "org": other_org }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let prompt = json!({ "prompt": "a tally counter that remembers", "template": "static" });
    let generate = |pid: &str| {
        kiln.post(
            &format!("/api/projects/{pid}/generate"),
            owner.token(),
            prompt.clone(),
        )
    };
    let mut ws = socket(&run);
    generate(&run.pid).expect(202);
    ws.recv_type("file_chunk");
    let refused = generate(&second).expect_error(429, "quota_exceeded");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 generation"),
        "{refused}"
    );
    generate(&elsewhere).expect(202);
    // Cancelling gives the slot back at once.
    kiln.post(
        &format!("/api/projects/{}/cancel", run.pid),
        owner.token(),
        json!({}),
    )
    .expect(204);
    let events = until_done(&run, &mut ws);
    assert_eq!(events.last().unwrap()["step"], "cancelled");
    generate(&second).expect(202);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let g = kiln
            .get(&format!("/api/projects/{second}/generation"), owner.token())
            .expect(200);
        if g["step"]["step"] == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "second project never finished: {g}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // And finishing gives it back too.
    generate(&run.pid).expect(202);
}

#[test]
fn rate_limits_malformed_and_stalled_streams_are_retried() {
    let run = setup(
        Script::new()
            .turn(plan_turn().fail(Fault::RateLimited))
            .turn(
                code_turn()
                    .fail(Fault::MalformedJson { after_chunks: 2 })
                    .fail(Fault::Stall { after_chunks: 2 }),
            ),
        &[("KILN_LLM_IDLE_TIMEOUT_MS", "1500")],
    );
    generate_to_completion(&run);
    assert_eq!(run.llm.calls_to(0), 2, "429, then the plan");
    assert_eq!(
        run.llm.calls_to(1),
        3,
        "malformed event, stall, then the phase"
    );
    let main = run.kiln.get(
        &format!("/api/projects/{}/files/main.js", run.pid),
        run.owner.token(),
    );
    assert_eq!(main.text, MAIN);
    let rows = run
        .kiln
        .d1("SELECT status, error FROM ai_calls ORDER BY id");
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        vec!["error", "ok", "error", "error", "ok", "ok"],
        "{rows:?}"
    );
    let errors: Vec<&str> = rows.iter().filter_map(|r| r["error"].as_str()).collect();
    assert!(errors[0].contains("429"), "{errors:?}");
    assert!(errors[1].contains("malformed"), "{errors:?}");
    assert!(errors[2].contains("stalled"), "{errors:?}");
}

#[test]
fn a_429s_retry_after_is_waited_out_before_the_call_is_repeated() {
    let run = setup(
        Script::new()
            .turn(plan_turn().fail(Fault::RateLimitedFor {
                retry_after_secs: 3,
            }))
            .turn(code_turn()),
        &[],
    );
    generate_to_completion(&run);
    let plans: Vec<_> = run
        .llm
        .requests()
        .into_iter()
        .filter(|r| r.turn == Some(0))
        .collect();
    assert_eq!(plans.len(), 2, "429, then the plan");
    let waited = plans[1].received - plans[0].received;
    // Without the header the first retry comes after 1 s.
    assert!(
        waited >= Duration::from_secs(3),
        "the plan was asked again after {waited:?}, before the server's Retry-After: 3"
    );
}

/// A sandbox-proxy of its own ("e2a", subnet octet 214) for the Anthropic test, so it never
/// shares sandboxes or a subnet with the other tests' proxies.
fn anthropic_sandbox() -> &'static Sandbox {
    static SB: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
    SB.get_or_init(|| start_sandbox("e2a", 214))
}

const ANTHROPIC_KEY: &str = "sk-ant-e2e-0123456789";
const PLANNER_MODEL: &str = "claude-sonnet-4-20250514";
const CODER_MODEL: &str = "claude-3-5-haiku-20241022";

#[test]
fn anthropic_a_prompt_becomes_a_running_versioned_app_through_the_messages_api() {
    let run = setup_on(
        anthropic_sandbox(),
        Script::new()
            .turn(plan_turn().fail(Fault::Overloaded))
            .turn(code_turn().fail(Fault::ServerError)),
        &[
            ("KILN_LLM_PROVIDER", "anthropic"),
            ("KILN_LLM_API_KEY", ANTHROPIC_KEY),
            ("KILN_LLM_MODEL_PLANNER", PLANNER_MODEL),
            ("KILN_LLM_MODEL_CODER", CODER_MODEL),
        ],
    );
    let (llm, kiln, owner, pid) = (&run.llm, &run.kiln, &run.owner, run.pid.as_str());
    let events = generate_to_completion(&run);

    // Every call went to the Messages API, authenticated and versioned, shaped as Anthropic
    // wants it (the fixture refuses anything else with a 400 the generation would not survive).
    let calls = llm.messages_requests();
    assert!(llm.chat_requests().is_empty(), "no chat-completions call");
    assert_eq!(calls.len(), 5, "529 + plan, 500 + phase, checks");
    for c in &calls {
        assert_eq!(c.header("x-api-key"), Some(ANTHROPIC_KEY), "{c:?}");
        assert_eq!(c.header("anthropic-version"), Some("2023-06-01"), "{c:?}");
        assert!(c.header("authorization").is_none());
        let body = c.body.as_ref().unwrap();
        assert_eq!(body["stream"], true);
        assert!(body["max_tokens"].as_u64().is_some_and(|n| n > 0), "{body}");
        assert!(
            !c.system_messages().is_empty(),
            "the system prompt is the top-level system field"
        );
    }
    let models: Vec<&str> = calls
        .iter()
        .map(|c| c.body.as_ref().unwrap()["model"].as_str().unwrap())
        .collect();
    assert_eq!(
        models,
        [
            PLANNER_MODEL,
            PLANNER_MODEL,
            CODER_MODEL,
            CODER_MODEL,
            CODER_MODEL
        ]
    );
    let statuses: Vec<u16> = calls.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [529, 200, 500, 200, 200],
        "each fault was retried"
    );
    assert_eq!((llm.completions(0), llm.completions(1)), (1, 1));

    // The app was built from the streamed reply, runs, and is version 1.
    let main = kiln.get(&format!("/api/projects/{pid}/files/main.js"), owner.token());
    assert_eq!(main.text, MAIN);
    assert_eq!(anthropic_sandbox().file(pid, "main.js"), MAIN);
    let cookie = vec![("cookie".to_owned(), kiln.open_preview(pid, &owner.token))];
    let page = kiln.on_host(&kiln.preview_host(pid), "GET", "/", &cookie);
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<h1>Tally</h1>"), "{}", page.text);
    let versions = kiln
        .get(&format!("/api/projects/{pid}/versions"), owner.token())
        .expect(200);
    assert_eq!(versions["items"][0]["number"], 1);

    // The tokens the fixture reported (message_start / message_delta) are what Kiln counted.
    let complete = events.last().unwrap();
    assert_eq!(complete["version"], 1);
    assert_eq!(complete["llm_calls"], 5);
    assert_eq!(complete["input_tokens"], 900 + 1500 + 1200);
    assert_eq!(complete["output_tokens"], 300 + 700 + 150);
    let rows = kiln.d1(
        "SELECT role, model, input_tokens, output_tokens, cost_micros, status, error \
         FROM ai_calls ORDER BY id",
    );
    let got: Vec<(&str, &str, u64, u64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["role"].as_str().unwrap(),
                r["model"].as_str().unwrap(),
                r["input_tokens"].as_u64().unwrap(),
                r["output_tokens"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("planner", PLANNER_MODEL, 0, 0, "error"),
            ("planner", PLANNER_MODEL, 900, 300, "ok"),
            ("coder", CODER_MODEL, 0, 0, "error"),
            ("coder", CODER_MODEL, 1500, 700, "ok"),
            ("tester", CODER_MODEL, 1200, 150, "ok"),
        ],
        "{rows:?}"
    );
    assert!(
        rows[0]["error"].as_str().unwrap().contains("529"),
        "{rows:?}"
    );
    assert!(
        rows[2]["error"].as_str().unwrap().contains("500"),
        "{rows:?}"
    );
    // Priced from the table: Sonnet 4 at $3/$15, Haiku 3.5 at $0.80/$4 per million tokens.
    assert_eq!(rows[1]["cost_micros"], 900 * 3 + 300 * 15);
    assert_eq!(rows[3]["cost_micros"], (1500 * 8 + 700 * 40) / 10);
}

#[test]
fn anthropic_a_follow_up_runs_its_tool_loop_through_the_messages_api() {
    let tool = |json: &str| Turn::text(json).matching("You change an existing web app");
    let run = setup_on(
        anthropic_sandbox(),
        Script::new()
            .turn(plan_turn())
            .turn(code_turn())
            .turn(tool(r#"{"tool":"read_file","path":"main.js"}"#))
            .turn(tool(
                r#"{"tool":"edit_file","path":"main.js","search":"n += 1;","replace":"n += 2;"}"#,
            ))
            .turn(tool(r#"{"tool":"finish","summary":"counts by two"}"#))
            .turn(count_by_two_checks_turn()),
        &[
            ("KILN_LLM_PROVIDER", "anthropic"),
            ("KILN_LLM_API_KEY", ANTHROPIC_KEY),
        ],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    assert_eq!(until_done(&run, &mut ws).last().unwrap()["version"], 1);
    ws.send(json!({ "type": "generate", "prompt": "make the button count by two" }));
    let done = until_done(&run, &mut ws).pop().unwrap();
    assert_eq!(done["type"], "generation_complete", "{done}");
    assert_eq!(done["version"], 2);
    let main = run.kiln.get(
        &format!("/api/projects/{}/files/main.js", run.pid),
        run.owner.token(),
    );
    assert_eq!(main.text, MAIN.replace("n += 1;", "n += 2;"));
    // The transcript grew turn by turn as user/assistant messages (the fixture refuses a
    // `system` role or an empty message, as Anthropic does), with the file the model read.
    // Plan, phase, checks, three tool rounds, the fixer updating the checks.
    let calls = run.llm.messages_requests();
    assert_eq!(calls.len(), 7);
    assert!(calls.iter().all(|c| c.status == 200), "{calls:?}");
    let edit = calls[4].body.as_ref().unwrap();
    let roles: Vec<&str> = edit["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert!(edit["messages"][2]["content"]
        .as_str()
        .unwrap()
        .contains("localStorage.setItem"));
}

#[test]
fn anthropic_without_a_key_sends_the_version_and_fails_fast_on_the_401() {
    let run = setup_on(
        anthropic_sandbox(),
        Script::new().turn(plan_turn()).turn(code_turn()),
        &[("KILN_LLM_PROVIDER", "anthropic")],
    );
    let mut ws = socket(&run);
    generate(&mut ws);
    let last = until_done(&run, &mut ws).pop().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["step"].as_str()),
        (Some("state_change"), Some("failed")),
        "{last}"
    );
    let calls = run.llm.messages_requests();
    assert_eq!(calls.len(), 1, "an authentication error is not retried");
    assert_eq!(calls[0].status, 401);
    assert!(calls[0].header("x-api-key").is_none());
    assert_eq!(calls[0].header("anthropic-version"), Some("2023-06-01"));
    let rows = run.kiln.d1("SELECT status, error FROM ai_calls");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "error");
    assert!(
        rows[0]["error"].as_str().unwrap().contains("401"),
        "{rows:?}"
    );
}

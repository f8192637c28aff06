//! Benchmark (prints figures, asserts nothing): the platform's overhead on a full generation.
//!
//! Kiln (`wrangler dev --local`), a real sandbox-proxy (instance "e2o", subnet octet 215; needs
//! root) and the scripted model (the test fixture) streaming realistic replies — 8-byte deltas
//! every 25 ms, about 80 tokens/s — build a two-phase react-vite app in N fresh projects, one
//! after another. Platform overhead = a generation's wall time (the client sends `generate`
//! until it receives `generation_complete`) minus the model's own streaming time (the sum of
//! the fixture's per-request elapsed), as a % of the total. What remains is Kiln: the room's
//! steps and events, D1/R2 writes, and the sandbox work (writing files, `npm install`, `tsc
//! --noEmit`, starting Vite, the version snapshot).
//!
//! Run: `./kiln bench` (or `cargo bench -p kiln-e2e --bench generation` after `./kiln build`,
//! as root). `KILN_BENCH_GENERATIONS` sets N (default 3).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_e2e::llm::{Recorded, Script, ScriptedLlm, Turn};
use kiln_e2e::process::Group;
use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, Kiln, User};
use serde_json::{json, Value};

const SANDBOX_SECRET: &str = "bench-sandbox-secret-0123456789abcdef0123456789";
const INSTANCE: &str = "e2o";
const OCTET: u8 = 215;
const CHUNK_BYTES: usize = 8;
const CHUNK_DELAY: Duration = Duration::from_millis(25);

// ---------------------------------------------------------------------------------------------
// The scripted model: a planner and a coder for a small react-vite task list.

const BLUEPRINT: &str = r##"{"name":"Tasks","summary":"A task list with filters that survives reloads.","template":"react-vite",
"design":{"style":"clean and calm","palette":[{"name":"bg","hex":"#f8fafc"},{"name":"ink","hex":"#1e293b"},{"name":"accent","hex":"#4f46e5"}],"typography":"system-ui","sections":["header","new task form","task list","filters"]},
"images":[],
"phases":[{"name":"Task list","goal":"Add, tick and remove tasks","files":["src/types.ts","src/components/TaskList.tsx","src/App.tsx"],
"acceptance":["typing a title and pressing Enter adds the task to the list","ticking a task strikes it through","Remove deletes the task"]},
{"name":"Filters and persistence","goal":"Filter by state and keep tasks across reloads","files":["src/storage.ts","src/components/Filters.tsx","src/App.tsx"],
"acceptance":["All / Active / Done show the matching tasks","the count of open tasks is shown","tasks survive a reload"]}]}"##;

const TYPES: &str = "export type Task = {
  id: number
  title: string
  done: boolean
}

export type Filter = 'all' | 'active' | 'done'
";

const TASK_LIST: &str = "import type { Task } from '../types.ts'

type Props = {
  tasks: Task[]
  onToggle: (id: number) => void
  onRemove: (id: number) => void
}

export default function TaskList({ tasks, onToggle, onRemove }: Props) {
  if (tasks.length === 0) {
    return <p className=\"italic text-slate-500\">Nothing to do yet.</p>
  }
  return (
    <ul className=\"divide-y divide-slate-200 rounded-lg bg-white shadow\">
      {tasks.map((task) => (
        <li key={task.id} className=\"flex items-center gap-3 px-4 py-2\">
          <input
            type=\"checkbox\"
            checked={task.done}
            onChange={() => onToggle(task.id)}
            aria-label={`Mark ${task.title} as done`}
          />
          <span className={task.done ? 'flex-1 text-slate-400 line-through' : 'flex-1'}>
            {task.title}
          </span>
          <button
            type=\"button\"
            className=\"text-sm text-rose-600 hover:underline\"
            onClick={() => onRemove(task.id)}
          >
            Remove
          </button>
        </li>
      ))}
    </ul>
  )
}
";

const APP_1: &str = "import { useState } from 'react'
import type { FormEvent } from 'react'
import TaskList from './components/TaskList.tsx'
import type { Task } from './types.ts'

export default function App() {
  const [tasks, setTasks] = useState<Task[]>([])
  const [title, setTitle] = useState('')

  function add(e: FormEvent) {
    e.preventDefault()
    const t = title.trim()
    if (!t) return
    setTasks((ts) => [...ts, { id: Date.now(), title: t, done: false }])
    setTitle('')
  }

  const toggle = (id: number) =>
    setTasks((ts) => ts.map((t) => (t.id === id ? { ...t, done: !t.done } : t)))
  const remove = (id: number) => setTasks((ts) => ts.filter((t) => t.id !== id))

  return (
    <main className=\"mx-auto max-w-xl space-y-4 p-8\">
      <h1 className=\"text-3xl font-semibold text-slate-800\">Tasks</h1>
      <form onSubmit={add} className=\"flex gap-2\">
        <input
          className=\"flex-1 rounded border border-slate-300 px-3 py-2\"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          placeholder=\"What needs doing?\"
        />
        <button type=\"submit\" className=\"rounded bg-indigo-600 px-4 py-2 text-white\">
          Add
        </button>
      </form>
      <TaskList tasks={tasks} onToggle={toggle} onRemove={remove} />
    </main>
  )
}
";

const STORAGE: &str = "import type { Task } from './types.ts'

const KEY = 'kiln.tasks'

export function loadTasks(): Task[] {
  try {
    const raw = localStorage.getItem(KEY)
    const parsed: unknown = raw ? JSON.parse(raw) : []
    return Array.isArray(parsed) ? (parsed as Task[]) : []
  } catch {
    return []
  }
}

export function saveTasks(tasks: Task[]): void {
  localStorage.setItem(KEY, JSON.stringify(tasks))
}
";

const FILTERS: &str = "import clsx from 'clsx'
import type { Filter } from '../types.ts'

const FILTERS: Filter[] = ['all', 'active', 'done']

type Props = {
  value: Filter
  remaining: number
  onChange: (filter: Filter) => void
}

export default function Filters({ value, remaining, onChange }: Props) {
  return (
    <div className=\"flex items-center justify-between text-sm\">
      <span className=\"text-slate-600\">{remaining} left</span>
      <div className=\"flex gap-1\">
        {FILTERS.map((f) => (
          <button
            key={f}
            type=\"button\"
            onClick={() => onChange(f)}
            className={clsx(
              'rounded px-2 py-1 capitalize',
              f === value ? 'bg-indigo-600 text-white' : 'text-slate-700 hover:bg-slate-100',
            )}
          >
            {f}
          </button>
        ))}
      </div>
    </div>
  )
}
";

const APP_2: &str = "import { useEffect, useMemo, useState } from 'react'
import type { FormEvent } from 'react'
import Filters from './components/Filters.tsx'
import TaskList from './components/TaskList.tsx'
import { loadTasks, saveTasks } from './storage.ts'
import type { Filter, Task } from './types.ts'

export default function App() {
  const [tasks, setTasks] = useState<Task[]>(loadTasks)
  const [title, setTitle] = useState('')
  const [filter, setFilter] = useState<Filter>('all')

  useEffect(() => saveTasks(tasks), [tasks])

  function add(e: FormEvent) {
    e.preventDefault()
    const t = title.trim()
    if (!t) return
    setTasks((ts) => [...ts, { id: Date.now(), title: t, done: false }])
    setTitle('')
  }

  const toggle = (id: number) =>
    setTasks((ts) => ts.map((t) => (t.id === id ? { ...t, done: !t.done } : t)))
  const remove = (id: number) => setTasks((ts) => ts.filter((t) => t.id !== id))
  const visible = useMemo(
    () => tasks.filter((t) => filter === 'all' || (filter === 'done') === t.done),
    [tasks, filter],
  )
  const remaining = tasks.filter((t) => !t.done).length

  return (
    <main className=\"mx-auto max-w-xl space-y-4 p-8\">
      <h1 className=\"text-3xl font-semibold text-slate-800\">Tasks</h1>
      <form onSubmit={add} className=\"flex gap-2\">
        <input
          className=\"flex-1 rounded border border-slate-300 px-3 py-2\"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          placeholder=\"What needs doing?\"
        />
        <button type=\"submit\" className=\"rounded bg-indigo-600 px-4 py-2 text-white\">
          Add
        </button>
      </form>
      <TaskList tasks={visible} onToggle={toggle} onRemove={remove} />
      <Filters value={filter} remaining={remaining} onChange={setFilter} />
    </main>
  )
}
";

fn file(path: &str, content: &str) -> String {
    format!("<file path=\"{path}\">\n{content}</file>\n")
}

/// The acceptance checks the tester writes for each phase (run in the sandbox's Chromium).
const CHECKS_1: &str = r##"{"checks":[
{"name":"Enter adds the task","steps":[{"do":"fill","target":"[placeholder='What needs doing?']","value":"Buy milk"},
 {"do":"press","key":"Enter","target":"[placeholder='What needs doing?']"},{"do":"count","target":"li","equals":1},{"do":"see","text":"Buy milk"}]},
{"name":"Remove deletes the task","steps":[{"do":"fill","target":"[placeholder='What needs doing?']","value":"Walk"},
 {"do":"press","key":"Enter","target":"[placeholder='What needs doing?']"},{"do":"click","target":"text=Remove"},{"do":"count","target":"li","equals":0}]}]}"##;
const CHECKS_2: &str = r##"{"checks":[
{"name":"Active hides done tasks","steps":[{"do":"fill","target":"[placeholder='What needs doing?']","value":"a"},
 {"do":"press","key":"Enter","target":"[placeholder='What needs doing?']"},{"do":"fill","target":"[placeholder='What needs doing?']","value":"b"},
 {"do":"press","key":"Enter","target":"[placeholder='What needs doing?']"},{"do":"click","target":"li >> nth=0 >> input[type=checkbox]"},
 {"do":"see","text":"1 left"},{"do":"click","target":"text=active"},{"do":"count","target":"li","equals":1}]},
{"name":"tasks survive a reload","steps":[{"do":"fill","target":"[placeholder='What needs doing?']","value":"Keep me"},
 {"do":"press","key":"Enter","target":"[placeholder='What needs doing?']"},{"do":"reload"},{"do":"see","text":"Keep me"}]}]}"##;

/// One generation's five model calls, streamed as a hosted model would.
fn turns() -> [Turn; 5] {
    let phase1 = format!(
        "I'll start with the types, the list component and the app shell.\n{}{}{}",
        file("src/types.ts", TYPES),
        file("src/components/TaskList.tsx", TASK_LIST),
        file("src/App.tsx", APP_1)
    );
    let phase2 = format!(
        "Filters use clsx for the active button.\n<command>npm install clsx</command>\n{}{}{}",
        file("src/storage.ts", STORAGE),
        file("src/components/Filters.tsx", FILTERS),
        file("src/App.tsx", APP_2)
    );
    let streamed = |t: Turn| t.chunk_size(CHUNK_BYTES).chunk_delay(CHUNK_DELAY);
    [
        streamed(
            Turn::text(BLUEPRINT)
                .named("plan")
                .matching("planner of an app builder")
                .usage(700, 420),
        ),
        streamed(
            Turn::text(phase1)
                .named("phase")
                .matching("Phase 1 of 2")
                .usage(1900, 620),
        ),
        streamed(
            Turn::text(phase2)
                .named("phase")
                .matching("Phase 2 of 2")
                .usage(2900, 780),
        ),
        streamed(
            Turn::text(CHECKS_1)
                .named("checks")
                .matching("- Remove deletes the task")
                .usage(1400, 200),
        ),
        streamed(
            Turn::text(CHECKS_2)
                .named("checks")
                .matching("- tasks survive a reload")
                .usage(2100, 220),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The sandbox-proxy (release build, as bench/sandbox.sh uses)

struct Proxy {
    url: String,
    state: PathBuf,
    group: Option<Group>,
}

impl Proxy {
    fn start() -> Proxy {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--quiet", "--release", "-p", "kiln-sandbox-proxy"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the sandbox-proxy failed");
        let bin = kiln_e2e::sandbox::proxy_bin_beside_exe();
        let port = kiln_e2e::free_port();
        let state = std::env::temp_dir().join(format!(
            "kiln-bench-sandbox-{INSTANCE}-{}",
            std::process::id()
        ));
        let group = kiln_e2e::sandbox::spawn_proxy(&kiln_e2e::sandbox::ProxySpec {
            bin: &bin,
            instance: INSTANCE,
            octet: OCTET,
            port,
            state: &state,
            jwt_secret: SANDBOX_SECRET,
            extra: vec![],
        })
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        });
        let url = format!("http://127.0.0.1:{port}");
        Proxy {
            url,
            state,
            group: Some(group),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.group.take());
        let _ = std::fs::remove_dir_all(&self.state);
        let _ = std::fs::remove_file(self.state.with_extension("log"));
    }
}

// ---------------------------------------------------------------------------------------------
// One generation, timed from the client

struct Timed {
    total: Duration,
    /// Kiln's own `elapsed_ms` from `generation_complete`.
    server: Duration,
    /// The fixture's elapsed over this generation's model calls.
    model: Duration,
    /// Wall time per step (`state_change` to the next), and before the first step.
    steps: BTreeMap<String, Duration>,
    /// The model's streaming time inside the planning and implementing steps.
    model_in: BTreeMap<&'static str, Duration>,
}

fn generate(kiln: &Kiln, llm: &ScriptedLlm, owner: &User, n: usize) -> Timed {
    let pid = kiln
        .post(
            "/api/projects",
            owner.token(),
            json!({ "name": format!("tasks {n}") }),
        )
        .expect(201)["id"]
        .as_str()
        .expect("project id")
        .to_owned();
    let mut ws = Socket::connect(&kiln.url, &pid, Auth::Bearer(&owner.token)).expect("socket");
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    let before = llm.requests().len();

    let start = Instant::now();
    ws.send(json!({ "type": "generate", "template": "react-vite",
        "prompt": "a task list where I can add, tick and remove tasks, filter them, and keep them across reloads" }));
    let mut marks: Vec<(String, Duration)> = vec![("queued".into(), Duration::ZERO)];
    let complete: Value = loop {
        let Some(e) = ws.try_recv(Duration::from_secs(300)) else {
            fail(kiln, llm, "no event for 300 s");
        };
        let at = start.elapsed();
        match e["type"].as_str() {
            Some("state_change") => {
                let step = e["step"].as_str().unwrap_or("?").to_owned();
                if step == "failed" || step == "cancelled" {
                    fail(kiln, llm, &format!("the generation ended: {e}"));
                }
                marks.push((step, at));
            }
            Some("check_result") if e["passed"] != true => {
                fail(kiln, llm, &format!("the app did not check: {e}"));
            }
            Some("generation_complete") => {
                marks.push(("complete".into(), at));
                break e;
            }
            _ => {}
        }
    };
    let total = start.elapsed();

    let mut steps = BTreeMap::new();
    for w in marks.windows(2) {
        *steps.entry(w[0].0.clone()).or_default() += w[1].1 - w[0].1;
    }
    let script = llm.script();
    let calls: Vec<Recorded> = llm.requests()[before..]
        .iter()
        .filter(|r| r.turn.is_some())
        .cloned()
        .collect();
    let mut model_in = BTreeMap::new();
    for r in &calls {
        let step = match script.turns[r.turn.unwrap_or(0)].name.as_deref() {
            Some("plan") => "planning",
            _ => "implementing",
        };
        *model_in.entry(step).or_default() += r.elapsed.unwrap_or_default();
    }

    // Not timed: the app answers on its preview origin.
    let cookie = vec![("cookie".to_owned(), kiln.open_preview(&pid, &owner.token))];
    let page = kiln.on_host(&kiln.preview_host(&pid), "GET", "/", &cookie);
    if page.status != 200 {
        fail(kiln, llm, &format!("preview answered {}", page.status));
    }
    Timed {
        total,
        server: Duration::from_millis(complete["elapsed_ms"].as_u64().unwrap_or(0)),
        model: calls.iter().filter_map(|r| r.elapsed).sum(),
        steps,
        model_in,
    }
}

fn fail(kiln: &Kiln, llm: &ScriptedLlm, why: &str) -> ! {
    let calls: Vec<String> = llm
        .requests()
        .iter()
        .map(|r| format!("{} {} → {} {:?}", r.method, r.path, r.status, r.outcome))
        .collect();
    eprintln!(
        "generation benchmark: {why}\nmodel calls: {calls:#?}\n{}",
        kiln.log()
    );
    std::process::exit(1);
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn main() {
    // The sandbox-proxy needs root for namespaces and cgroups.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");
    if !root {
        println!(
            "generation benchmark: skipped (the sandbox-proxy needs root; see docs/SANDBOX.md)"
        );
        return;
    }
    let n: usize = std::env::var("KILN_BENCH_GENERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);

    let proxy = Proxy::start();
    let mut script = Script::new();
    for _ in 0..=n {
        for t in turns() {
            script = script.turn(t);
        }
    }
    let llm = ScriptedLlm::start(script);
    let base = llm.base_url();
    let kiln = Kiln::start_with(&[
        ("KILN_LLM_BASE_URL", base.as_str()),
        ("KILN_LLM_MODEL", "kiln-scripted"),
        ("KILN_SANDBOX_URL", proxy.url.as_str()),
        ("KILN_SANDBOX_JWT_SECRET", SANDBOX_SECRET),
    ]);
    let owner = register(&kiln, "bench");

    // The first generation on a fresh sandbox host also installs the shared react-vite layer;
    // it is reported apart and not counted.
    let warm = generate(&kiln, &llm, &owner, 0);
    let runs: Vec<Timed> = (1..=n).map(|i| generate(&kiln, &llm, &owner, i)).collect();

    let streamed: usize = turns().iter().map(|t| t.reply.text().len()).sum();
    let chunks: usize = turns().iter().map(|t| t.reply.deltas().len()).sum();
    println!(
        "generation benchmark (react-vite, 2 phases, wrangler dev --local + sandbox-proxy, {} cores)",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    println!(
        "  model: 3 calls per generation, {streamed} bytes in {chunks} deltas of {CHUNK_BYTES} B every {} ms",
        CHUNK_DELAY.as_millis()
    );
    let overhead = |t: &Timed| t.total.saturating_sub(t.model);
    let pct = |t: &Timed| 100.0 * overhead(t).as_secs_f64() / t.total.as_secs_f64();
    println!(
        "  warm-up (fresh sandbox host, not counted): total {}, model {}, overhead {} ({:.1} %)",
        secs(warm.total),
        secs(warm.model),
        secs(overhead(&warm)),
        pct(&warm)
    );
    for (i, t) in runs.iter().enumerate() {
        println!(
            "  run {}: total {} (Kiln's elapsed_ms {}), model streaming {}, platform overhead {} ({:.1} %)",
            i + 1,
            secs(t.total),
            secs(t.server),
            secs(t.model),
            secs(overhead(t)),
            pct(t)
        );
    }
    let mean = |f: &dyn Fn(&Timed) -> Duration| -> Duration {
        runs.iter().map(f).sum::<Duration>() / n as u32
    };
    let (total, model) = (mean(&|t| t.total), mean(&|t| t.model));
    let over = total.saturating_sub(model);
    println!(
        "  mean of {n}: total {}, model streaming {}, platform overhead {:.0} ms = {:.1} % of the total",
        secs(total),
        secs(model),
        over.as_secs_f64() * 1e3,
        100.0 * over.as_secs_f64() / total.as_secs_f64()
    );
    let order = [
        "queued",
        "planning",
        "implementing",
        "installing",
        "checking",
        "fixing",
        "serving",
        "snapshotting",
    ];
    let mut parts = vec![];
    for step in order {
        let wall = mean(&|t| t.steps.get(step).copied().unwrap_or_default());
        if wall.is_zero() && !runs.iter().any(|t| t.steps.contains_key(step)) {
            continue;
        }
        let in_model = mean(&|t| t.model_in.get(step).copied().unwrap_or_default());
        parts.push(if in_model.is_zero() {
            format!("{step} {:.0} ms", wall.as_secs_f64() * 1e3)
        } else {
            format!(
                "{step} {:.0} ms (model {:.0} ms, Kiln {:.0} ms)",
                wall.as_secs_f64() * 1e3,
                in_model.as_secs_f64() * 1e3,
                wall.saturating_sub(in_model).as_secs_f64() * 1e3
            )
        });
    }
    println!("  per step, mean: {}", parts.join("; "));
    drop(kiln);
    drop(proxy);
}

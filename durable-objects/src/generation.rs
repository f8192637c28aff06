//! The generation pipeline's imperative shell. `kiln_core::agent::machine::Generation` decides;
//! this module performs one step per alarm (an LLM call, a sandbox call, a snapshot), feeds the
//! outcome back, persists the state, broadcasts what happened and sets the next alarm.
//!
//! Durability: before a step runs, a watchdog alarm is set a few minutes out, so a step cut
//! off by eviction, a crash or a deploy runs again; a step whose outcome was applied and
//! persisted never runs again, so a finished LLM call is never paid for twice.

use crate::limiter::{self, LimitOp};
use kiln_core::agent::autofix;
use kiln_core::agent::blueprint::{placeholder_svg, Blueprint};
use kiln_core::agent::checks::{self, CheckFile, CheckReport, RunReport, CHECKS_PATH};
use kiln_core::agent::file_stream::{apply_edit, FileParser, StreamEvent};
use kiln_core::agent::llm::{backoff_ms, cost_micros, ChatMessage, ChatRequest};
use kiln_core::agent::machine::{Generation, Next, Outcome, QueueFull, Step};
use kiln_core::agent::prompts;
use kiln_core::agent::tools::{self, ToolCall};
use kiln_core::path::ProjectPath;
use kiln_core::protocol::ServerEvent;
use kiln_core::sandbox::{
    DevServerAction, DevServerStatus, ExecRequest, FileEncoding, FileWrite, Template, WriteFiles,
    WriteFilesRequest,
};
use wasm_bindgen::JsValue;
use worker::Result;

use crate::llm_client::{CallError, LlmConfig, Role};
use crate::room::{encode, now, ProjectRoom};
use crate::sandbox_client::{SandboxClient, SandboxError};
use crate::versions;

const AGENT: &str = "agent";
const STATE_KEY: &str = "generation";
/// A step cut off for longer than this is run again (alarms take offsets in ms).
const WATCHDOG_MS: i64 = 5 * 60 * 1000;
const INSTALL_TIMEOUT_MS: u64 = 180_000;
const CHECK_TIMEOUT_MS: u64 = 120_000;
/// Type-check, repair, type-check again: at most this many repairs per check.
const AUTOFIX_PASSES: usize = 2;
/// The whole acceptance-check run (Chromium start plus every check).
const BROWSER_CHECK_TIMEOUT_MS: u64 = 240_000;

pub fn load(room: &ProjectRoom) -> Result<Option<Generation>> {
    Ok(room
        .store()
        .meta(STATE_KEY)?
        .and_then(|s| serde_json::from_str(&s).ok()))
}

fn save(room: &ProjectRoom, g: &Generation) -> Result<()> {
    room.store().set_meta(STATE_KEY, &serde_json::to_string(g)?)
}

/// Why a prompt was not taken.
pub enum NotStarted {
    /// Too many prompts already wait for the running generation.
    QueueFull(QueueFull),
    /// The project's org already runs as many generations as it may.
    OrgBusy { cap: u32 },
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotStarted::QueueFull(q) => q.fmt(f),
            NotStarted::OrgBusy { cap } => write!(
                f,
                "your org already runs {cap} generations at once; try again when one has finished"
            ),
        }
    }
}

/// Starts a generation, or folds the prompt into the running one. Returns its id, or why
/// the prompt was not taken.
pub async fn start(
    room: &ProjectRoom,
    prompt: String,
    template: Option<Template>,
    by: &str,
) -> Result<std::result::Result<String, NotStarted>> {
    if let Some(mut g) = load(room)?.filter(|g| !g.step.is_terminal()) {
        if let Err(full) = g.enqueue(prompt.clone()) {
            return Ok(Err(NotStarted::QueueFull(full)));
        }
        save(room, &g)?;
        room.broadcast(ServerEvent::Prompt {
            generation_id: g.id.clone(),
            prompt,
            by: by.to_owned(),
            queued: true,
        })?;
        return Ok(Ok(g.id));
    }
    if let Err(busy) = take_org_slot(room).await? {
        return Ok(Err(busy));
    }
    let n = room
        .store()
        .meta("generation_counter")?
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    room.store()
        .set_meta("generation_counter", &n.to_string())?;
    // After a finished generation, a prompt is a change request: the tool loop over the
    // existing files, keeping the app's blueprint.
    let previous = load(room)?.filter(|g| g.step == Step::Done && g.blueprint.is_some());
    let id = format!("g{n}");
    let g = match previous {
        Some(prev) => Generation::follow_up(id, prompt, prev.template, prev.blueprint, now()),
        None => Generation::new(id, prompt, template.unwrap_or(Template::ReactVite), now()),
    };
    save(room, &g)?;
    // The automatic follow-up's prompts were shown when they were queued.
    if by != AGENT {
        room.broadcast(ServerEvent::Prompt {
            generation_id: g.id.clone(),
            prompt: g.prompt.clone(),
            by: by.to_owned(),
            queued: false,
        })?;
    }
    announce(room, &g)?;
    room.state().storage().set_alarm(0i64).await?;
    Ok(Ok(g.id))
}

/// How many generations one org may run at once (`KILN_ORG_MAX_GENERATIONS`), so that one
/// tenant cannot take every sandbox and model slot.
const DEFAULT_ORG_GENERATIONS: u32 = 3;

fn org_key(room: &ProjectRoom) -> Result<Option<(String, String)>> {
    let org = room.store().meta("org_id")?;
    let project = room.store().meta("project_id")?;
    Ok(org
        .zip(project)
        .map(|(o, p)| (format!("generations:{o}"), p)))
}

/// Takes (or renews) this project's slot among its org's running generations. A room that
/// is evicted or crashes loses the slot when the lease runs out; each step renews it.
async fn take_org_slot(room: &ProjectRoom) -> Result<std::result::Result<(), NotStarted>> {
    let Some((key, project)) = org_key(room)? else {
        return Ok(Ok(()));
    };
    let cap = room
        .env()
        .var("KILN_ORG_MAX_GENERATIONS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(DEFAULT_ORG_GENERATIONS);
    let op = LimitOp::Acquire {
        holder: project,
        cap,
        ttl_ms: 2 * WATCHDOG_MS,
    };
    let answer = limiter::call(room.env(), &key, &op).await?;
    Ok(if answer.allowed {
        Ok(())
    } else {
        Err(NotStarted::OrgBusy { cap })
    })
}

async fn free_org_slot(room: &ProjectRoom) -> Result<()> {
    if let Some((key, project)) = org_key(room)? {
        limiter::call(room.env(), &key, &LimitOp::Release { holder: project }).await?;
    }
    Ok(())
}

/// The project was deleted: its generation stops and its sandbox goes. The working tree
/// stays in the room (a soft delete can be undone by an operator).
pub async fn project_deleted(room: &ProjectRoom, project: &str) -> Result<()> {
    cancel(room).await?;
    room.state().storage().delete_alarm().await?;
    if let Some(sb) = sandbox_client(room, project) {
        if let Err(e) = sb.remove().await {
            worker::console_warn!("removing the sandbox of deleted project {project}: {e}");
        }
    }
    Ok(())
}

pub async fn cancel(room: &ProjectRoom) -> Result<()> {
    if let Some(mut g) = load(room)?.filter(|g| !g.step.is_terminal()) {
        g.apply(Outcome::Cancel);
        save(room, &g)?;
        announce(room, &g)?;
        free_org_slot(room).await?;
    }
    Ok(())
}

fn cancelled(room: &ProjectRoom) -> bool {
    matches!(load(room), Ok(Some(g)) if g.step == Step::Cancelled)
}

fn announce(room: &ProjectRoom, g: &Generation) -> Result<()> {
    room.broadcast(ServerEvent::StateChange {
        generation_id: g.id.clone(),
        step: g.step.name().into(),
        phase: g.phase,
        reason: match &g.step {
            Step::Failed { reason } => Some(reason.clone()),
            _ => None,
        },
    })
}

/// One step; called from the room's `alarm()`.
pub async fn run_step(room: &ProjectRoom, project: &str) -> Result<()> {
    let Some(mut g) = load(room)? else {
        return Ok(());
    };
    if g.step.is_terminal() {
        return Ok(());
    }
    let storage = room.state().storage();
    let watchdog = room
        .env()
        .var("KILN_STEP_WATCHDOG_MS")
        .ok()
        .and_then(|v| v.to_string().parse().ok())
        .unwrap_or(WATCHDOG_MS);
    storage.set_alarm(watchdog).await?;
    // Renew the org slot; a running generation is never stopped for the cap.
    let _ = take_org_slot(room).await;
    let queued_before = g.queued.len();
    let outcome = match perform(room, project, &mut g).await {
        Ok(o) => o,
        Err(e) => Outcome::StepFailed {
            reason: e.to_string(),
            retryable: true,
        },
    };
    // A cancel that arrived during the step wins over its outcome.
    if cancelled(room) {
        return Ok(());
    }
    // Prompts queued while the step ran were saved by `start`: keep them, minus those this
    // step took into its request.
    let taken = queued_before - g.queued.len();
    if let Some(stored) = load(room)? {
        g.queued = stored.queued.into_iter().skip(taken).collect();
    }
    let retry_in = match &outcome {
        Outcome::StepFailed { .. } => backoff_ms(g.attempts, None) as i64,
        _ => 0,
    };
    g.apply(outcome);
    save(room, &g)?;
    announce(room, &g)?;
    match &g.step {
        Step::Done => {
            room.broadcast(ServerEvent::GenerationComplete {
                generation_id: g.id.clone(),
                version: g.version,
                preview_url: g.preview_url.clone(),
                elapsed_ms: now() - g.started_at,
                llm_calls: g.totals.llm_calls,
                input_tokens: g.totals.input_tokens,
                output_tokens: g.totals.output_tokens,
                cost_micros: g.totals.cost_micros,
                unresolved: g.unresolved.clone(),
            })?;
            storage.delete_alarm().await?;
            // Prompts that came in during the last phase: a follow-up carries them out. It
            // keeps this generation's org slot (renewing one's own slot is never refused).
            if g.queued.is_empty() {
                free_org_slot(room).await?;
            } else {
                let prompt = g.queued.join("\n");
                if let Ok(Err(why)) = start(room, prompt, None, AGENT).await {
                    room.broadcast(ServerEvent::error("not_started", why.to_string()))?;
                }
            }
        }
        s if s.is_terminal() => {
            storage.delete_alarm().await?;
            free_org_slot(room).await?;
        }
        _ => storage.set_alarm(retry_in).await?,
    }
    Ok(())
}

/// Performs what `g.next()` asks for and reports the outcome. Totals are updated in `g`.
async fn perform(room: &ProjectRoom, project: &str, g: &mut Generation) -> Result<Outcome> {
    let Some(llm) = LlmConfig::from_env(room.env()) else {
        return Ok(Outcome::StepFailed {
            reason: "no model configured (KILN_LLM_BASE_URL)".into(),
            retryable: false,
        });
    };
    match g.next() {
        Next::Idle => Ok(Outcome::Cancel),
        Next::CallEditor => {
            if g.transcript.is_empty() {
                g.take_queued();
                let files: Vec<String> = room
                    .store()
                    .list()?
                    .into_iter()
                    .map(|f| f.path.to_string())
                    .collect();
                let mut request = g.prompt.clone();
                for q in &g.folding {
                    request += &format!("\nAlso: {q}");
                }
                g.transcript = tools::start(g.template, &request, &files);
            }
            let req = ChatRequest {
                model: llm.model(Role::Coder, g.attempts),
                messages: g.transcript.clone(),
                max_tokens: 4096,
                temperature: 0.1,
                json_schema: Some(("tool_call".into(), tools::schema())),
            };
            let text = match ask(room, project, g, &llm, Role::Coder, &req).await? {
                Ok(t) => t,
                Err(o) => return Ok(o),
            };
            g.transcript.push(ChatMessage::assistant(text.clone()));
            let (result, finished) = match tools::parse(&text) {
                Ok(call) => run_tool(room, g, call)?,
                Err(e) => (
                    format!("Error: {e}. Answer with one JSON tool call."),
                    false,
                ),
            };
            g.transcript.push(ChatMessage::user(result));
            if finished || g.tool_rounds + 1 >= tools::MAX_TOOL_ROUNDS {
                sync_sandbox(room, project, g.template, Sync::Always)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(Outcome::ToolRound { finished })
        }
        Next::CallPlanner => {
            let messages = match room.store().meta("plan_answer")? {
                Some(prev) if !g.plan_errors.is_empty() => {
                    prompts::plan_repair(&g.prompt, g.template, &prev, &g.plan_errors)
                }
                _ => prompts::planner(&g.prompt, g.template),
            };
            let req = ChatRequest {
                model: llm.model(Role::Planner, g.attempts),
                messages,
                max_tokens: 1500,
                temperature: 0.2,
                json_schema: Some(("blueprint".into(), Blueprint::json_schema())),
            };
            let text = match ask(room, project, g, &llm, Role::Planner, &req).await? {
                Ok(t) => t,
                Err(o) => return Ok(o),
            };
            room.store().set_meta("plan_answer", &text)?;
            match Blueprint::from_model(&text) {
                Ok(mut bp) => {
                    bp.template = g.template;
                    bp.ensure_entry_files();
                    room.broadcast(ServerEvent::Blueprint {
                        blueprint: bp.clone(),
                    })?;
                    Ok(Outcome::Planned(bp))
                }
                Err(errors) => Ok(Outcome::PlanRejected(errors)),
            }
        }
        Next::CallCoder { phase } => {
            let bp = g.blueprint.clone().ok_or("no blueprint")?;
            if phase == 0 {
                // The template's scaffolding becomes part of the project (and of the coder's
                // context): versions and exports hold an app that builds on its own.
                let sb = sandbox(room, project)?;
                sync_sandbox(room, project, g.template, Sync::KeepTemplate)
                    .await
                    .map_err(|e| e.to_string())?;
                adopt_sandbox_files(room, &sb, None)
                    .await
                    .map_err(|e| e.to_string())?;
                for img in &bp.images {
                    let svg = placeholder_svg(img, &bp.design.palette);
                    write_agent_file(room, &img.path, svg.as_bytes())?;
                }
            }
            let ph = &bp.phases[phase];
            room.broadcast(ServerEvent::PhaseDesigning {
                phase,
                name: ph.name.clone(),
                goal: ph.goal.clone(),
            })?;
            let files = context_files(room, ph.files.iter().map(|p| p.as_str()))?;
            g.take_queued();
            let req = ChatRequest {
                model: llm.model(Role::Coder, g.attempts),
                messages: prompts::coder(&bp, phase, &files, &g.folding),
                max_tokens: 8192,
                temperature: 0.2,
                json_schema: None,
            };
            match stream_files(room, project, g, &llm, Role::Coder, &req).await? {
                Ok((written, commands)) => {
                    room.broadcast(ServerEvent::PhaseDesigned {
                        phase,
                        files: written.clone(),
                    })?;
                    sync_sandbox(room, project, g.template, Sync::Always)
                        .await
                        .map_err(|e| e.to_string())?;
                    room.broadcast(ServerEvent::FilesWritten {
                        phase,
                        files: written,
                    })?;
                    Ok(Outcome::PhaseWritten { commands })
                }
                Err(o) => Ok(o),
            }
        }
        Next::Install { commands } => {
            let sandbox = sandbox(room, project)?;
            sync_sandbox(room, project, g.template, Sync::IfNew)
                .await
                .map_err(|e| e.to_string())?;
            for command in &commands {
                let Some(packages) = npm_install_packages(command) else {
                    room.broadcast(ServerEvent::CommandOutput {
                        command: command.clone(),
                        output: "skipped: only `npm install <packages>` is run".into(),
                    })?;
                    continue;
                };
                if let Err(why) = npm_install(room, &sandbox, command, packages)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Ok(Outcome::StepFailed {
                        reason: format!("{command} failed: {why}"),
                        retryable: false,
                    });
                }
            }
            room.broadcast(ServerEvent::DepsInstalled { commands })?;
            Ok(Outcome::Installed)
        }
        Next::CallTester { phase } => {
            if !browser_checks_enabled(room) {
                return Ok(Outcome::TestsWritten);
            }
            // The phase's files and dependencies are in: show the app while its checks are
            // written. Best effort — an app that does not start yet is the check's finding.
            if g.preview_url.is_none()
                && sync_sandbox(room, project, g.template, Sync::IfNew)
                    .await
                    .is_ok()
            {
                let _ = start_preview(room, project, g, &sandbox(room, project)?).await;
            }
            let bp = g.blueprint.clone().ok_or("no blueprint")?;
            let files = context_files(room, bp.phases[phase].files.iter().map(|p| p.as_str()))?;
            let req = ChatRequest {
                model: llm.model(Role::Tester, g.attempts),
                messages: prompts::tester(&bp, phase, &files),
                max_tokens: 2048,
                temperature: 0.1,
                json_schema: Some(("checks".into(), checks::json_schema())),
            };
            let text = match ask(room, project, g, &llm, Role::Tester, &req).await? {
                Ok(t) => t,
                Err(o) => return Ok(o),
            };
            // Unusable checks cost this phase its checks, never the generation.
            let (written, dropped) = match checks::from_model(&text, phase) {
                Ok(r) => r,
                Err(e) => (vec![], vec![e]),
            };
            let names = written.iter().map(|c| c.name.clone()).collect();
            if !written.is_empty() {
                let mut file = read_checks(room)?;
                file.set_phase(phase, written);
                let content = file.to_pretty();
                write_agent_file(room, &checks_path(), content.as_bytes())?;
                sandbox(room, project)?
                    .write_files(WriteFiles {
                        files: vec![FileWrite {
                            path: checks_path(),
                            content,
                            encoding: FileEncoding::Utf8,
                        }],
                    })
                    .await
                    .map_err(|e| e.to_string())?;
            }
            room.broadcast(ServerEvent::ChecksWritten {
                phase,
                checks: names,
                dropped,
            })?;
            Ok(Outcome::TestsWritten)
        }
        Next::Check { phase } => {
            let sandbox = sandbox(room, project)?;
            sync_sandbox(room, project, g.template, Sync::IfNew)
                .await
                .map_err(|e| e.to_string())?;
            let mut errors = check(room, &sandbox, g.template)
                .await
                .map_err(|e| e.to_string())?;
            let mut reports = Vec::new();
            if errors.is_empty() && browser_checks_enabled(room) {
                let file = read_checks(room)?;
                if !file.checks.is_empty() {
                    match run_browser_checks(room, project, g, &sandbox, &file).await {
                        Ok(r) => {
                            for (c, rep) in file.checks.iter().zip(&r) {
                                if !rep.passed {
                                    errors.push(checks::failure_text(c, rep));
                                }
                            }
                            reports = r;
                        }
                        Err(BrowserCheck::Unavailable(why)) => {
                            room.broadcast(ServerEvent::CommandOutput {
                                command: "acceptance checks".into(),
                                output: format!("skipped: {why}"),
                            })?;
                        }
                        Err(BrowserCheck::AppDoesNotStart(why)) => errors.push(why),
                        Err(BrowserCheck::Sandbox(e)) => return Err(e.to_string().into()),
                    }
                }
            }
            room.broadcast(ServerEvent::CheckResult {
                phase,
                passed: errors.is_empty(),
                errors: errors.clone(),
                checks: reports,
            })?;
            Ok(Outcome::Checked { errors })
        }
        Next::CallFixer { phase } => {
            let bp = g.blueprint.clone().ok_or("no blueprint")?;
            let all: Vec<String> = room
                .store()
                .list()?
                .into_iter()
                .map(|f| f.path.to_string())
                .collect();
            let files = context_files(room, all.iter().map(String::as_str))?;
            let checks_now = read_checks(room)?.to_pretty();
            let change = g
                .is_follow_up()
                .then_some((g.prompt.as_str(), checks_now.as_str()));
            let req = ChatRequest {
                model: llm.model(Role::Fixer, g.attempts),
                messages: prompts::fixer(&bp, phase, &g.check_errors, &files, change),
                max_tokens: 8192,
                temperature: 0.1,
                json_schema: None,
            };
            match stream_files(room, project, g, &llm, Role::Fixer, &req).await? {
                Ok(_) => {
                    sync_sandbox(room, project, g.template, Sync::Always)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Outcome::Fixed)
                }
                Err(o) => Ok(o),
            }
        }
        Next::Serve => {
            let sandbox = sandbox(room, project)?;
            sync_sandbox(room, project, g.template, Sync::IfNew)
                .await
                .map_err(|e| e.to_string())?;
            let status = sandbox
                .dev_server(DevServerAction::Restart)
                .await
                .map_err(|e| e.to_string())?;
            if status.state != "ready" {
                return Ok(Outcome::StepFailed {
                    reason: format!(
                        "the dev server did not start ({}): {}",
                        status.state,
                        tail(&status.log)
                    ),
                    retryable: true,
                });
            }
            let url = preview_url(room, project);
            room.broadcast(ServerEvent::ServerStarted {
                preview_url: url.clone(),
            })?;
            Ok(Outcome::Served { url })
        }
        Next::Snapshot => {
            let name = g
                .blueprint
                .as_ref()
                .map_or("app", |b| b.name.as_str())
                .to_owned();
            let v = versions::create(room, project, AGENT, &format!("Generated: {name}")).await?;
            Ok(Outcome::Snapshotted { version: v.number })
        }
    }
}

/// A call whose answer is used whole (a plan, a tool call); abandoned on cancel.
async fn ask(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    role: Role,
    req: &ChatRequest,
) -> Result<std::result::Result<String, Outcome>> {
    call(room, project, g, llm, role, req, |_| !cancelled(room)).await
}

/// One LLM call with its cost logged; `Err(outcome)` when it failed.
async fn call(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    role: Role,
    req: &ChatRequest,
    on_text: impl FnMut(&str) -> bool,
) -> Result<std::result::Result<String, Outcome>> {
    let result = llm.stream(req, on_text).await;
    let (status, usage, latency, error) = match &result {
        Ok(r) => ("ok", r.usage, r.latency_ms, None),
        Err(e) => (
            "error",
            Default::default(),
            e.latency_ms,
            Some(e.reason.clone()),
        ),
    };
    let cost = cost_micros(&req.model, usage);
    g.totals.llm_calls += 1;
    g.totals.input_tokens += usage.input_tokens;
    g.totals.output_tokens += usage.output_tokens;
    g.totals.cost_micros += cost;
    log_call(
        room,
        project,
        g,
        role,
        &req.model,
        usage,
        cost,
        latency,
        status,
        error.as_deref(),
    )
    .await?;
    room.broadcast(ServerEvent::ModelCall {
        generation_id: g.id.clone(),
        role: role.as_str().into(),
        step: g.step.name().into(),
        phase: g.phase,
        model: req.model.clone(),
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        cost_micros: cost,
        latency_ms: latency,
        ok: status == "ok",
    })?;
    match result {
        Ok(r) => Ok(Ok(r.text)),
        Err(CallError {
            reason, retryable, ..
        }) => Ok(Err(Outcome::StepFailed { reason, retryable })),
    }
}

#[allow(clippy::too_many_arguments)]
async fn log_call(
    room: &ProjectRoom,
    project: &str,
    g: &Generation,
    role: Role,
    model: &str,
    usage: kiln_core::agent::llm::Usage,
    cost: u64,
    latency: u64,
    status: &str,
    error: Option<&str>,
) -> Result<()> {
    let f = |v: u64| JsValue::from_f64(v as f64);
    room.env()
        .d1("DB")?
        .prepare(
            "INSERT INTO ai_calls (project_id, generation_id, role, model, input_tokens, \
             output_tokens, cost_micros, latency_ms, status, error, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )
        .bind(&[
            project.into(),
            g.id.as_str().into(),
            role.as_str().into(),
            model.into(),
            f(usage.input_tokens),
            f(usage.output_tokens),
            f(cost),
            f(latency),
            status.into(),
            error.map_or(JsValue::NULL, JsValue::from_str),
            JsValue::from_f64(now() as f64),
        ])?
        .run()
        .await?;
    Ok(())
}

/// Streams a call whose answer is file blocks: every file is broadcast as it is written and
/// stored whole when its block closes. A stream that fails leaves no half file behind.
async fn stream_files(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    role: Role,
    req: &ChatRequest,
) -> Result<std::result::Result<(Vec<String>, Vec<String>), Outcome>> {
    let mut parser = FileParser::new();
    let mut events: Vec<StreamEvent> = Vec::new();
    let mut failure: Option<String> = None;
    // Small models loop until max_tokens: the whole answer again (a file closed a second time
    // with the same content) or a few lines over and over inside a file. Stop there and keep
    // the files closed before it; an unclosed one is dropped, and the check reports it missing.
    let mut finished: std::collections::HashMap<String, String> = Default::default();
    let mut writing = String::new();
    let mut looped = false;
    let answer = call(room, project, g, llm, role, req, |text| {
        if failure.is_some() || cancelled(room) {
            return false;
        }
        for ev in parser.feed(text.as_bytes()) {
            match &ev {
                StreamEvent::FileStart { .. } => writing.clear(),
                StreamEvent::FileChunk { text, .. } => {
                    writing.push_str(text);
                    looped = kiln_core::agent::file_stream::repeats_at_end(&writing);
                }
                StreamEvent::FileEnd { path, content } => {
                    looped = finished.get(path.as_str()) == Some(content);
                    finished.insert(path.to_string(), content.clone());
                }
                _ => {}
            }
            // The repeat's end still goes out, so clients close the file it reopened.
            if let Err(e) = live(room, &ev) {
                failure = Some(e.to_string());
            }
            if looped {
                return false;
            }
            events.push(ev);
        }
        true
    })
    .await?;
    if looped && !cancelled(room) {
        room.broadcast(ServerEvent::CommandOutput {
            command: role.as_str().into(),
            output: "the model began repeating itself: stopped it there".into(),
        })?;
    } else if let Err(o) = answer {
        return Ok(Err(o));
    }
    if let Some(f) = failure {
        return Ok(Err(Outcome::StepFailed {
            reason: f,
            retryable: true,
        }));
    }
    let tail_events = if looped { vec![] } else { parser.finish() };
    if let Some(StreamEvent::Error { message }) = tail_events
        .iter()
        .find(|e| matches!(e, StreamEvent::Error { .. }))
    {
        // An unclosed block: the answer was cut off. Retry the phase.
        return Ok(Err(Outcome::StepFailed {
            reason: message.clone(),
            retryable: true,
        }));
    }
    events.extend(tail_events);
    let (mut written, mut commands) = (Vec::new(), Vec::new());
    for ev in events {
        match ev {
            StreamEvent::FileEnd { path, content } => {
                write_agent_file(room, &path, content.as_bytes())?;
                written.push(path.to_string());
            }
            StreamEvent::Edit {
                path,
                search,
                replace,
            } => {
                let current = room
                    .store()
                    .content(&path)?
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                match current.map(|c| apply_edit(&c, &search, &replace)) {
                    Some(Ok(updated)) => {
                        write_agent_file(room, &path, updated.as_bytes())?;
                        written.push(path.to_string());
                    }
                    Some(Err(e)) => g.check_errors.push(format!("edit of {path}: {e}")),
                    None => g.check_errors.push(format!("edit of {path}: no such file")),
                }
            }
            StreamEvent::Command { command } => commands.push(command),
            _ => {}
        }
    }
    Ok(Ok((written, commands)))
}

/// Runs one tool call against the working tree; returns what the model is told, and whether
/// it finished.
fn run_tool(room: &ProjectRoom, g: &mut Generation, call: ToolCall) -> Result<(String, bool)> {
    const MAX_READ: usize = 12 * 1024;
    let text_of = |path: &ProjectPath| -> Result<Option<String>> {
        Ok(room
            .store()
            .content(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    Ok(match call {
        ToolCall::ListFiles => {
            let files: Vec<String> = room
                .store()
                .list()?
                .into_iter()
                .map(|f| format!("{} ({} bytes)", f.path, f.size))
                .collect();
            (files.join("\n"), false)
        }
        ToolCall::ReadFile { path } => match text_of(&path)? {
            Some(t) if t.len() > MAX_READ => (
                format!("{}\n… (truncated)", &t[..t.floor_char_boundary(MAX_READ)]),
                false,
            ),
            Some(t) => (t, false),
            None => (format!("no file {path}"), false),
        },
        ToolCall::Search { query } => {
            let mut hits = Vec::new();
            for f in room.store().list()? {
                let Some(t) = text_of(&f.path)? else { continue };
                for (n, line) in t.lines().enumerate() {
                    if line.contains(&query) && hits.len() < 40 {
                        hits.push(format!("{}:{}: {}", f.path, n + 1, line.trim()));
                    }
                }
            }
            (
                if hits.is_empty() {
                    "no matches".into()
                } else {
                    hits.join("\n")
                },
                false,
            )
        }
        ToolCall::WriteFile { path, content } => {
            match write_agent_file(room, &path, content.as_bytes()) {
                Ok(()) => (format!("wrote {path}"), false),
                Err(e) => (format!("could not write {path}: {e}"), false),
            }
        }
        ToolCall::EditFile {
            path,
            search,
            replace,
        } => match text_of(&path)? {
            None => (format!("no file {path}"), false),
            Some(current) => match apply_edit(&current, &search, &replace) {
                Ok(updated) => {
                    write_agent_file(room, &path, updated.as_bytes())?;
                    (format!("edited {path}"), false)
                }
                Err(e) => (format!("edit of {path} failed: {e}"), false),
            },
        },
        ToolCall::Exec { command } => match npm_install_packages(&command) {
            Some(_) => {
                g.commands.push(command.clone());
                (format!("{command} will run before the check"), false)
            }
            None => ("only `npm install <packages>` can be run".into(), false),
        },
        ToolCall::Finish { summary } => (summary, true),
    })
}

/// Broadcasts parser progress so every browser watches the files stream in.
fn live(room: &ProjectRoom, ev: &StreamEvent) -> Result<()> {
    match ev {
        StreamEvent::FileStart { path } => {
            room.broadcast(ServerEvent::FileStart { path: path.clone() })
        }
        StreamEvent::FileChunk { path, text } => room.broadcast(ServerEvent::FileChunk {
            path: path.clone(),
            chunk: text.clone(),
        }),
        StreamEvent::FileEnd { path, content } => room.broadcast(ServerEvent::FileEnd {
            path: path.clone(),
            size: content.len() as u64,
        }),
        _ => Ok(()),
    }
}

/// Writes a file as the agent: the next rev, whatever it is (the agent owns the step).
fn write_agent_file(room: &ProjectRoom, path: &ProjectPath, content: &[u8]) -> Result<()> {
    let slot = room.store().slot(path)?;
    let totals = room.store().totals()?;
    kiln_core::tree::check_fits(slot, content.len() as u64, totals).map_err(|r| r.message())?;
    room.apply_write(AGENT, path, slot.rev + 1, content)?;
    Ok(())
}

fn context_files<'a>(
    room: &ProjectRoom,
    first: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut add = |path: &str| -> Result<()> {
        if out.iter().any(|(p, _)| p == path) {
            return Ok(());
        }
        let Ok(p) = ProjectPath::parse(path) else {
            return Ok(());
        };
        if let Some(bytes) = room.store().content(&p)? {
            if let Ok(text) = String::from_utf8(bytes) {
                out.push((path.to_owned(), text));
            }
        }
        Ok(())
    };
    for p in first {
        add(p)?;
    }
    for f in room.store().list()? {
        if worth_quoting(f.path.as_str()) {
            add(f.path.as_str())?;
        }
    }
    Ok(out)
}

/// Whether a file helps the model write the app: not images, lockfiles, tool configuration or
/// Kiln's own checks, which would only crowd a small model's context.
fn worth_quoting(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !(path.starts_with("public/")
        || path.starts_with(".kiln/")
        || name == "package-lock.json"
        || name.starts_with("tsconfig")
        || name.contains(".config.")
        || name.ends_with(".d.ts")
        // Given and never changed; small models shown it copied it into App.tsx.
        || path == "src/main.tsx")
}

/// The project's sandbox, as its org's (the proxy caps sandboxes per org).
fn sandbox_client(room: &ProjectRoom, project: &str) -> Option<SandboxClient> {
    let org = room.store().meta("org_id").ok().flatten();
    SandboxClient::from_env(room.env(), project, org)
}

fn sandbox(room: &ProjectRoom, project: &str) -> std::result::Result<SandboxClient, String> {
    sandbox_client(room, project).ok_or_else(|| {
        "no sandbox-proxy configured (KILN_SANDBOX_URL, KILN_SANDBOX_JWT_SECRET)".to_owned()
    })
}

/// When the working tree is written into the sandbox.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Only into a sandbox that was just made (new, or re-created after a lost host).
    IfNew,
    /// Every time (files changed).
    Always,
    /// Into a new sandbox without pruning, so the template's scaffolding stays there for
    /// phase 0 to take into the tree.
    KeepTemplate,
}

/// Makes the sandbox hold the working tree. Unless `Sync::Always`, the files are only sent
/// when the sandbox had to be created — the proxy restarted on a fresh host, or lost it.
async fn sync_sandbox(
    room: &ProjectRoom,
    project: &str,
    template: Template,
    when: Sync,
) -> std::result::Result<(), SandboxError> {
    let always = when == Sync::Always;
    let may_prune = when != Sync::KeepTemplate;
    let Some(sb) = sandbox_client(room, project) else {
        return Err(SandboxError {
            message: "no sandbox-proxy configured".into(),
            status: None,
            lost: false,
        });
    };
    let info = sb.ensure(template).await?;
    if !always && !info.created {
        return Ok(());
    }
    push_tree(&sb, tree_writes(room)?, may_prune).await
}

/// The whole working tree as sandbox writes.
fn tree_writes(room: &ProjectRoom) -> Result<Vec<FileWrite>> {
    let mut files = Vec::new();
    for meta in room.store().list()? {
        let bytes = room.store().content(&meta.path)?.unwrap_or_default();
        let (content, enc) = encode(bytes);
        files.push(FileWrite {
            path: meta.path,
            content,
            encoding: if enc.is_utf8() {
                FileEncoding::Utf8
            } else {
                FileEncoding::Base64
            },
        });
    }
    Ok(files)
}

/// Writes the tree into the sandbox. The proxy bounds one request; send in batches. With
/// `prune`, the last one removes what is gone from the tree (deleted or renamed files would
/// otherwise live on in the sandbox, be served and be type-checked), keeping what the
/// earlier batches wrote.
async fn push_tree(
    sb: &SandboxClient,
    files: Vec<FileWrite>,
    may_prune: bool,
) -> std::result::Result<(), SandboxError> {
    let batches: Vec<&[FileWrite]> = files.chunks(200).collect();
    let last = batches.len().saturating_sub(1);
    let mut written: Vec<ProjectPath> = Vec::new();
    for (i, batch) in batches.iter().enumerate() {
        let prune = may_prune && i == last;
        sb.write_files(WriteFilesRequest {
            files: batch.to_vec(),
            prune,
            keep: if prune {
                std::mem::take(&mut written)
            } else {
                vec![]
            },
        })
        .await?;
        written.extend(batch.iter().map(|f| f.path.clone()));
    }
    if batches.is_empty() && may_prune {
        sb.write_files(WriteFilesRequest {
            files: vec![],
            prune: true,
            keep: vec![],
        })
        .await?;
    }
    Ok(())
}

/// A person changed files (an edit, a restore): the running app follows, so the preview
/// shows what the tree holds, and `files_written` tells the browsers when it does. Only
/// between generations (a running one syncs the tree at its own steps, and its sandbox may
/// hold files it has not taken into the tree yet), and only into a sandbox that exists:
/// nothing is created for it. A failure is logged, not the person's problem.
pub async fn follow_people(room: &ProjectRoom, project: &str) -> Result<()> {
    if load(room)?.is_some_and(|g| !g.step.is_terminal()) {
        return Ok(());
    }
    let Some(sb) = sandbox_client(room, project) else {
        return Ok(());
    };
    let files = tree_writes(room)?;
    let paths: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
    match push_tree(&sb, files, true).await {
        Ok(()) => room.broadcast(ServerEvent::FilesWritten {
            phase: 0,
            files: paths,
        }),
        Err(e) if e.lost => Ok(()),
        Err(e) => {
            worker::console_warn!("syncing {project}'s edits to its sandbox: {e}");
            Ok(())
        }
    }
}

/// The template's check: a type-check for react-vite, a syntax check for static JS. Before a
/// failed type-check goes to the fixer, deterministic repairs of common import mistakes
/// (`core::agent::autofix`) are applied and the type-check runs again: seconds instead of a
/// fix round of model time.
async fn check(
    room: &ProjectRoom,
    sb: &SandboxClient,
    template: Template,
) -> std::result::Result<Vec<String>, SandboxError> {
    let exec = |cmd: &str, args: Vec<String>| ExecRequest {
        cmd: cmd.into(),
        args,
        cwd: None,
        timeout_ms: Some(CHECK_TIMEOUT_MS),
        env: Default::default(),
    };
    let mut errors = Vec::new();
    match template {
        Template::ReactVite => {
            let tsc = || {
                exec(
                    "npx",
                    vec!["tsc".into(), "--noEmit".into(), "-p".into(), ".".into()],
                )
            };
            let mut pass = 0;
            loop {
                let r = sb.exec(&tsc(), |_| {}).await?;
                if r.timed_out {
                    errors.push("the check timed out".into());
                } else if !r.ok() {
                    pass += 1;
                    if pass <= AUTOFIX_PASSES && autofix(room, sb, &r.output).await? {
                        continue;
                    }
                    errors.push(tail(&r.output));
                    let (files, _) = project_code(room)?;
                    errors.extend(autofix::hints(&r.output, &files));
                }
                break;
            }
        }
        Template::Static => {
            for f in room.store().list()? {
                if !f.path.as_str().ends_with(".js") {
                    continue;
                }
                let args = vec!["--check".to_owned(), f.path.to_string()];
                let r = sb.exec(&exec("node", args), |_| {}).await?;
                if r.timed_out {
                    errors.push("the check timed out".into());
                } else if !r.ok() {
                    errors.push(tail(&r.output));
                }
            }
        }
    }
    Ok(errors)
}

/// Applies `core::agent::autofix`'s repairs for a failed type-check to the working tree and the
/// sandbox; true when something changed (so the type-check is worth running again).
async fn autofix(
    room: &ProjectRoom,
    sb: &SandboxClient,
    tsc_output: &str,
) -> std::result::Result<bool, SandboxError> {
    let (files, deps) = project_code(room)?;
    let repair = autofix::repair(tsc_output, &files, &deps);
    if repair.is_empty() {
        return Ok(false);
    }
    let mut writes = Vec::new();
    for (path, content) in repair.files {
        let Ok(p) = ProjectPath::parse(&path) else {
            continue;
        };
        write_agent_file(room, &p, content.as_bytes())?;
        writes.push(FileWrite {
            path: p,
            content,
            encoding: FileEncoding::Utf8,
        });
    }
    let mut changed = !writes.is_empty();
    if changed {
        sb.write_files(WriteFiles { files: writes }).await?;
    }
    let mut notes = repair.notes;
    if !repair.install.is_empty() {
        let command = format!("npm install {}", repair.install.join(" "));
        match npm_install(room, sb, &command, repair.install).await? {
            Ok(()) => changed = true,
            Err(why) => notes.push(format!("{command} failed: {why}")),
        }
    }
    let _ = room.broadcast(ServerEvent::CommandOutput {
        command: "autofix".into(),
        output: notes.join("\n"),
    });
    Ok(changed)
}

/// Source path → text, and package.json's dependency names.
type Code = (
    std::collections::BTreeMap<String, String>,
    std::collections::BTreeSet<String>,
);

/// The project's source files (what the type-check reads) and package.json's dependencies.
fn project_code(room: &ProjectRoom) -> Result<Code> {
    let mut files = std::collections::BTreeMap::new();
    let mut deps = std::collections::BTreeSet::new();
    for meta in room.store().list()? {
        let path = meta.path.as_str();
        if path == "package.json" {
            let manifest: serde_json::Value = room
                .store()
                .content(&meta.path)?
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            for key in ["dependencies", "devDependencies"] {
                if let Some(m) = manifest[key].as_object() {
                    deps.extend(m.keys().cloned());
                }
            }
        } else if autofix::is_code(path) && meta.size <= 256 * 1024 {
            if let Some(text) = room
                .store()
                .content(&meta.path)?
                .and_then(|b| String::from_utf8(b).ok())
            {
                files.insert(path.to_owned(), text);
            }
        }
    }
    Ok((files, deps))
}

/// `npm install <packages>` in the sandbox, its output streamed as `command_output`; the
/// sandbox's new manifest and lockfile are taken into the project. `Err` inside: npm failed.
async fn npm_install(
    room: &ProjectRoom,
    sb: &SandboxClient,
    command: &str,
    packages: Vec<String>,
) -> std::result::Result<std::result::Result<(), String>, SandboxError> {
    let mut args = vec![
        "install".to_owned(),
        "--no-audit".into(),
        "--no-fund".into(),
    ];
    args.extend(packages);
    let req = ExecRequest {
        cmd: "npm".into(),
        args,
        cwd: None,
        timeout_ms: Some(INSTALL_TIMEOUT_MS),
        env: Default::default(),
    };
    let r = sb
        .exec(&req, |out| {
            let _ = room.broadcast(ServerEvent::CommandOutput {
                command: command.to_owned(),
                output: out.to_owned(),
            });
        })
        .await?;
    if !r.ok() {
        return Ok(Err(tail(&r.output)));
    }
    adopt_sandbox_files(room, sb, Some(&["package.json", "package-lock.json"])).await?;
    Ok(Ok(()))
}

/// Copies files the sandbox made into the working tree: with `only`, those paths when they
/// differ; without, every file the project does not have yet (the template's). Idempotent,
/// so a re-run step writes nothing twice.
async fn adopt_sandbox_files(
    room: &ProjectRoom,
    sb: &SandboxClient,
    only: Option<&[&str]>,
) -> std::result::Result<(), SandboxError> {
    let wanted: Vec<ProjectPath> = match only {
        Some(paths) => paths
            .iter()
            .filter_map(|p| ProjectPath::parse(p).ok())
            .collect(),
        None => {
            let have: std::collections::HashSet<String> = room
                .store()
                .list()?
                .into_iter()
                .map(|f| f.path.to_string())
                .collect();
            sb.list_files()
                .await?
                .into_iter()
                .map(|f| f.path)
                .filter(|p| !have.contains(p.as_str()))
                .collect()
        }
    };
    for path in wanted {
        let bytes = match sb.read_file(&path).await {
            Ok(b) => b,
            Err(e) if e.status == Some(404) && only.is_some() => continue,
            Err(e) => return Err(e),
        };
        if room.store().content(&path)?.as_deref() == Some(&bytes[..]) {
            continue;
        }
        write_agent_file(room, &path, &bytes)?;
    }
    Ok(())
}

fn checks_path() -> ProjectPath {
    ProjectPath::parse(CHECKS_PATH).expect("a valid path")
}

/// `KILN_BROWSER_CHECKS=off` skips writing and running acceptance checks.
fn browser_checks_enabled(room: &ProjectRoom) -> bool {
    room.env()
        .var("KILN_BROWSER_CHECKS")
        .map(|v| v.to_string() != "off")
        .unwrap_or(true)
}

/// The project's checks; a file a person broke by hand counts as none (and is rewritten by
/// the next phase that writes checks).
fn read_checks(room: &ProjectRoom) -> Result<CheckFile> {
    Ok(room
        .store()
        .content(&checks_path())?
        .and_then(|b| CheckFile::parse(&b).ok())
        .unwrap_or_default())
}

/// The project's preview, on its own origin (`KILN_PREVIEW_URL`'s domain). Viewers get in
/// through a preview link; opening this bare URL in a browser sends them through Kiln for one.
fn preview_url(room: &ProjectRoom, project: &str) -> String {
    let domain = room
        .env()
        .var("KILN_PREVIEW_URL")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "http://preview.localhost:8787".into());
    match (
        kiln_core::origin::PreviewDomain::parse(&domain),
        kiln_core::ids::ProjectId::parse(project),
    ) {
        (Ok(d), Some(id)) => format!("{}/", d.origin_for(&id)),
        _ => format!("/preview/{project}/"),
    }
}

/// Starts the app's dev server (a no-op when it runs) and, the first time it is up,
/// publishes the preview: people watch the app while the rest is built, checked and fixed.
async fn start_preview(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    sb: &SandboxClient,
) -> std::result::Result<DevServerStatus, SandboxError> {
    let status = sb.dev_server(DevServerAction::Start).await?;
    if status.state == "ready" && g.preview_url.is_none() {
        let url = preview_url(room, project);
        g.preview_url = Some(url.clone());
        // Stored now, not when the step ends, so `GET …/generation` shows it too. Only this
        // field: the stored state may hold a cancel or queued prompts this step has not seen.
        if let Ok(Some(mut stored)) = load(room) {
            if stored.id == g.id && !stored.step.is_terminal() {
                stored.preview_url = Some(url.clone());
                let _ = save(room, &stored);
            }
        }
        let _ = room.broadcast(ServerEvent::ServerStarted { preview_url: url });
    }
    Ok(status)
}

enum BrowserCheck {
    /// No browser on the sandbox host: the checks cannot say anything.
    Unavailable(String),
    /// The app's dev server does not come up: that is the app's failure, for the fixer.
    AppDoesNotStart(String),
    Sandbox(SandboxError),
}

/// Runs every acceptance check in the sandbox's Chromium against its dev server.
async fn run_browser_checks(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    sb: &SandboxClient,
    file: &CheckFile,
) -> std::result::Result<Vec<CheckReport>, BrowserCheck> {
    let status = start_preview(room, project, g, sb)
        .await
        .map_err(BrowserCheck::Sandbox)?;
    if status.state != "ready" {
        return Err(BrowserCheck::AppDoesNotStart(format!(
            "the app's dev server does not start ({}): {}",
            status.state,
            tail(&status.log)
        )));
    }
    let _ = room.broadcast(ServerEvent::CommandOutput {
        command: "acceptance checks".into(),
        output: format!("running {} checks in Chromium", file.checks.len()),
    });
    let req = ExecRequest {
        cmd: "node".into(),
        args: vec!["/opt/kiln/check.mjs".into(), CHECKS_PATH.into()],
        cwd: None,
        timeout_ms: Some(BROWSER_CHECK_TIMEOUT_MS),
        env: Default::default(),
    };
    let r = sb.exec(&req, |_| {}).await.map_err(BrowserCheck::Sandbox)?;
    if r.timed_out {
        return Err(BrowserCheck::AppDoesNotStart(
            "the acceptance checks timed out: the app hangs".into(),
        ));
    }
    // The runner prints one JSON line; anything else on the streams is noise.
    let line = r
        .output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default();
    match (r.exit_code, serde_json::from_str::<RunReport>(line)) {
        (Some(0), Ok(report)) if report.results.len() == file.checks.len() => Ok(report.results),
        (Some(3), _) => {
            let why = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| tail(&r.output));
            Err(BrowserCheck::Unavailable(why))
        }
        _ if r.oom_killed => Err(BrowserCheck::Unavailable(
            "the sandbox ran out of memory running the browser".into(),
        )),
        _ => Err(BrowserCheck::Unavailable(format!(
            "the check runner failed: {}",
            tail(&r.output)
        ))),
    }
}

/// `npm install a b@1` → `[a, b@1]`; anything else (flags, scripts, other programs) → None.
fn npm_install_packages(command: &str) -> Option<Vec<String>> {
    let mut words = command.split_whitespace();
    if words.next()? != "npm" || !matches!(words.next()?, "install" | "i" | "add") {
        return None;
    }
    let pkgs: Vec<String> = words.map(str::to_owned).collect();
    let ok = !pkgs.is_empty()
        && pkgs.iter().all(|p| {
            !p.starts_with('-')
                && p.len() <= 214
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "@/._-^~".contains(c))
        });
    ok.then_some(pkgs)
}

fn tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(3000)..].iter().collect()
}

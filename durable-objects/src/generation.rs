//! The generation pipeline's imperative shell. `kiln_core::agent` decides — the state
//! machine (`machine`), who is asked with what (`roles`), what a prompt quotes (`context`),
//! the tool loop's rules (`tools`), the repeat guard (`repeat`), installs (`npm`) and what
//! the check runner's answers mean (`checks`); this module performs one step per alarm (an
//! LLM call, a sandbox call, a snapshot), feeds every outcome back through
//! `Generation::apply`, persists the state, broadcasts what happened and sets the next alarm.
//! It writes no field of a `Generation` itself.
//!
//! Durability: before a step runs, a watchdog alarm is set a few minutes out, so a step cut
//! off by eviction, a crash or a deploy runs again; a step whose outcome was applied and
//! persisted never runs again, so a finished LLM call is never paid for twice.

use crate::limiter::{self, LimitOp};
use kiln_core::agent::autofix;
use kiln_core::agent::blueprint::placeholder_svg;
use kiln_core::agent::checks::{self, CheckFile, Ran, RunVerdict, CHECKS_PATH};
use kiln_core::agent::context;
use kiln_core::agent::file_stream::StreamEvent;
use kiln_core::agent::llm::{cost_micros, ChatMessage};
use kiln_core::agent::machine::{Generation, Next, Outcome, QueueFull, Step};
use kiln_core::agent::npm::NpmInstall;
use kiln_core::agent::pipeline::{self, Applied, FileAnswer};
use kiln_core::agent::prompts;
use kiln_core::agent::roles::Ask;
use kiln_core::agent::tools::{self, ToolTree};
use kiln_core::path::ProjectPath;
use kiln_core::protocol::ServerEvent;
use kiln_core::sandbox::{
    write_batches, DevServerAction, DevServerStatus, ExecRequest, FileEncoding, FileWrite,
    Template, WriteFiles,
};
use worker::Result;

use crate::llm_client::{CallError, LlmConfig};
use crate::repo::{AiCall, AiCalls};
use crate::room::{encode, now, ProjectRoom};
use crate::sandbox_client::{ExecResult, SandboxClient, SandboxError};
use crate::versions;

const AGENT: &str = "agent";
const STATE_KEY: &str = "generation";
/// The id of the generation last cancelled: a flag read on every streamed chunk, so it is a
/// key of its own, not the whole stored `Generation`.
const CANCEL_KEY: &str = "generation_cancelled";
/// A step cut off for longer than this is run again (alarms take offsets in ms).
const WATCHDOG_MS: i64 = 5 * 60 * 1000;
const INSTALL_TIMEOUT_MS: u64 = 180_000;
const CHECK_TIMEOUT_MS: u64 = 120_000;
/// Type-check, repair, type-check again: at most this many repairs per check.
const AUTOFIX_PASSES: usize = 2;
/// The whole acceptance-check run (Chromium start plus every check).
const BROWSER_CHECK_TIMEOUT_MS: u64 = 240_000;

/// The stored generation. A record that cannot be read (a shape this Kiln does not know) is
/// reported, stored as a failed generation and returned as one: never silently gone.
pub fn load(room: &ProjectRoom) -> Result<Option<Generation>> {
    let Some(text) = room.store().meta(STATE_KEY)? else {
        return Ok(None);
    };
    match Generation::from_stored(&text) {
        Ok(g) => Ok(Some(g)),
        Err(unreadable) => {
            worker::console_error!("{unreadable}");
            let message = unreadable.to_string();
            let g = unreadable.into_failed(now());
            save(room, &g)?;
            room.broadcast(ServerEvent::error("generation_unreadable", message))?;
            announce(room, &g)?;
            Ok(Some(g))
        }
    }
}

fn save(room: &ProjectRoom, g: &Generation) -> Result<()> {
    room.store().set_meta(STATE_KEY, &g.to_stored())
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
        room.store().set_meta(CANCEL_KEY, &g.id)?;
        g.apply(Outcome::Cancel);
        save(room, &g)?;
        announce(room, &g)?;
        free_org_slot(room).await?;
    }
    Ok(())
}

/// Whether generation `id` was cancelled (one small key, read per streamed chunk).
fn cancelled(room: &ProjectRoom, id: &str) -> bool {
    matches!(room.store().meta(CANCEL_KEY), Ok(Some(c)) if c == id)
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
    let outcome = perform(room, project, &mut g)
        .await
        .unwrap_or_else(|e| Outcome::failed(e.to_string(), true));
    // A cancel that arrived during the step wins over its outcome.
    if cancelled(room, &g.id) {
        return Ok(());
    }
    // Prompts queued while the step ran were saved by `start`: keep them.
    if let Some(stored) = load(room)?.filter(|s| s.id == g.id) {
        g.apply(Outcome::QueueSeen {
            stored: stored.queued,
        });
    }
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
            match g.follow_up_prompt() {
                None => free_org_slot(room).await?,
                Some(prompt) => {
                    if let Ok(Err(why)) = start(room, prompt, None, AGENT).await {
                        room.broadcast(ServerEvent::error("not_started", why.to_string()))?;
                    }
                }
            }
        }
        s if s.is_terminal() => {
            storage.delete_alarm().await?;
            free_org_slot(room).await?;
        }
        _ => storage.set_alarm(g.retry_in_ms() as i64).await?,
    }
    Ok(())
}

/// Every path in the working tree.
fn tree_paths(room: &ProjectRoom) -> Result<Vec<String>> {
    Ok(room
        .store()
        .list()?
        .into_iter()
        .map(|f| f.path.to_string())
        .collect())
}

/// Performs what `g.next()` asks for and reports the outcome. What it learns on the way
/// (model usage, folded prompts, a published preview) is applied to `g` as it happens.
async fn perform(room: &ProjectRoom, project: &str, g: &mut Generation) -> Result<Outcome> {
    let Some(llm) = LlmConfig::from_env(room.env()) else {
        return Ok(Outcome::failed(
            "no model configured (KILN_LLM_BASE_URL)",
            false,
        ));
    };
    match g.next() {
        Next::Idle => Ok(Outcome::Cancel),
        Next::CallEditor => {
            g.apply(Outcome::ToolLoopOpened {
                files: tree_paths(room)?,
            });
            let messages = g.transcript.clone();
            let answer = match ask(room, project, g, &llm, Ask::Edit, messages).await? {
                Ok(t) => t,
                Err(o) => return Ok(o),
            };
            let result = tools::answer(&mut AgentTree(room), &answer)?;
            if g.closes_tool_loop(result.finished) {
                sync_sandbox(room, project, g.template, Sync::Always)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(Outcome::ToolRound {
                answer,
                reply: result.reply,
                command: result.command,
                finished: result.finished,
            })
        }
        Next::CallPlanner => {
            let messages = match room.store().meta("plan_answer")? {
                Some(prev) if !g.plan_errors.is_empty() => {
                    prompts::plan_repair(&g.prompt, g.template, &prev, &g.plan_errors)
                }
                _ => prompts::planner(&g.prompt, g.template),
            };
            let text = match ask(room, project, g, &llm, Ask::Plan, messages).await? {
                Ok(t) => t,
                Err(o) => return Ok(o),
            };
            room.store().set_meta("plan_answer", &text)?;
            let outcome = pipeline::planned(&text, g.template);
            if let Outcome::Planned(blueprint) = &outcome {
                room.broadcast(ServerEvent::Blueprint {
                    blueprint: blueprint.clone(),
                })?;
            }
            Ok(outcome)
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
            g.apply(Outcome::QueueTaken);
            let messages = prompts::coder(&bp, phase, &files, &g.folding);
            match stream_files(room, project, g, &llm, Ask::Code, messages).await? {
                Ok(streamed) => {
                    room.broadcast(ServerEvent::PhaseDesigned {
                        phase,
                        files: streamed.written.clone(),
                    })?;
                    sync_sandbox(room, project, g.template, Sync::Always)
                        .await
                        .map_err(|e| e.to_string())?;
                    room.broadcast(ServerEvent::FilesWritten {
                        phase,
                        files: streamed.written,
                    })?;
                    Ok(Outcome::PhaseWritten {
                        commands: streamed.commands,
                        edit_errors: streamed.edit_errors,
                    })
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
                let install = match NpmInstall::parse(command) {
                    Ok(install) => install,
                    Err(refused) => {
                        room.broadcast(ServerEvent::CommandOutput {
                            command: command.clone(),
                            output: format!("skipped: {refused}"),
                        })?;
                        continue;
                    }
                };
                if let Err(why) = npm_install(room, &sandbox, command, &install)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Ok(Outcome::failed(format!("{command} failed: {why}"), false));
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
            let messages = prompts::tester(&bp, phase, &files);
            let text = match ask(room, project, g, &llm, Ask::Test, messages).await? {
                Ok(t) => t,
                Err(o) => return Ok(o),
            };
            let mut file = read_checks(room)?;
            let (names, dropped) = pipeline::tested(&text, phase, &mut file);
            if !names.is_empty() {
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
            let compile_errors = check(room, &sandbox, g.template)
                .await
                .map_err(|e| e.to_string())?;
            let file = read_checks(room)?;
            let run = if compile_errors.is_empty()
                && browser_checks_enabled(room)
                && !file.checks.is_empty()
            {
                let verdict = run_browser_checks(room, project, g, &sandbox, &file)
                    .await
                    .map_err(|e| e.to_string())?;
                Some((&file, verdict))
            } else {
                None
            };
            let found = pipeline::checked(compile_errors, run);
            if let Some(why) = &found.skipped {
                room.broadcast(ServerEvent::CommandOutput {
                    command: "acceptance checks".into(),
                    output: format!("skipped: {why}"),
                })?;
            }
            let errors = found.errors;
            room.broadcast(ServerEvent::CheckResult {
                phase,
                passed: errors.is_empty(),
                errors: errors.clone(),
                checks: found.reports,
            })?;
            Ok(Outcome::Checked { errors })
        }
        Next::CallFixer { phase } => {
            let bp = g.blueprint.clone().ok_or("no blueprint")?;
            let all = tree_paths(room)?;
            let files = context_files(room, all.iter().map(String::as_str))?;
            let checks_now = read_checks(room)?.to_pretty();
            let change = g
                .is_follow_up()
                .then_some((g.prompt.as_str(), checks_now.as_str()));
            let messages = prompts::fixer(&bp, phase, &g.check_errors, &files, change);
            match stream_files(room, project, g, &llm, Ask::Fix, messages).await? {
                Ok(streamed) => {
                    sync_sandbox(room, project, g.template, Sync::Always)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(Outcome::Fixed {
                        edit_errors: streamed.edit_errors,
                    })
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
            if let Some(why) = checks::dev_server_failure(&status.state, &status.log) {
                return Ok(Outcome::failed(why, true));
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
    ask: Ask,
    messages: Vec<ChatMessage>,
) -> Result<std::result::Result<String, Outcome>> {
    let id = g.id.clone();
    call(room, project, g, llm, ask, messages, |_| {
        !cancelled(room, &id)
    })
    .await
}

/// One LLM call with its cost logged and applied to the totals; `Err(outcome)` when it
/// failed (with the server's `Retry-After`, if any).
async fn call(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    ask: Ask,
    messages: Vec<ChatMessage>,
    on_text: impl FnMut(&str) -> bool,
) -> Result<std::result::Result<String, Outcome>> {
    let role = ask.role();
    let req = ask.request(llm.model(role, g.attempts), messages);
    let result = llm.stream(&req, on_text).await;
    let (usage, latency, error) = match &result {
        Ok(r) => (r.usage, r.latency_ms, None),
        Err(e) => (Default::default(), e.latency_ms, Some(e.reason.as_str())),
    };
    let cost = cost_micros(&req.model, usage);
    g.apply(Outcome::ModelCalled {
        usage,
        cost_micros: cost,
    });
    let db = room.env().d1("DB")?;
    AiCalls(&db)
        .log(&AiCall {
            project,
            generation: &g.id,
            role: role.as_str(),
            model: &req.model,
            usage,
            cost_micros: cost,
            latency_ms: latency,
            error,
            created_at: now(),
        })
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
        ok: error.is_none(),
    })?;
    match result {
        Ok(r) => Ok(Ok(r.text)),
        Err(CallError {
            reason,
            retryable,
            retry_after_secs,
            ..
        }) => Ok(Err(Outcome::StepFailed {
            reason,
            retryable,
            retry_after_secs,
        })),
    }
}

/// Streams a call whose answer is file blocks (`pipeline::FileAnswer` reads it): every file
/// is broadcast as it is written and stored whole when the answer is over. A stream that
/// fails leaves no half file behind; one that loops is stopped, keeping the files closed
/// before the loop.
async fn stream_files(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    llm: &LlmConfig,
    ask: Ask,
    messages: Vec<ChatMessage>,
) -> Result<std::result::Result<Applied, Outcome>> {
    let mut file_answer = FileAnswer::new();
    let mut failure: Option<String> = None;
    let id = g.id.clone();
    let answer = call(room, project, g, llm, ask, messages, |text| {
        if failure.is_some() || cancelled(room, &id) {
            return false;
        }
        let fed = file_answer.feed(text);
        for ev in &fed.events {
            if let Err(e) = live(room, ev) {
                failure = Some(e.to_string());
            }
        }
        !fed.stop
    })
    .await?;
    if file_answer.looped() && !cancelled(room, &g.id) {
        room.broadcast(ServerEvent::CommandOutput {
            command: ask.role().as_str().into(),
            output: "the model began repeating itself: stopped it there".into(),
        })?;
    } else if let Err(o) = answer {
        return Ok(Err(o));
    }
    if let Some(f) = failure {
        return Ok(Err(Outcome::failed(f, true)));
    }
    match file_answer.finish() {
        Ok(events) => Ok(Ok(pipeline::apply_answer(&mut AgentTree(room), events)?)),
        // An unclosed block: the answer was cut off. Retry the step.
        Err(cut) => Ok(Err(Outcome::failed(cut, true))),
    }
}

/// The working tree as the tool loop sees it (`core::agent::tools` decides what each call
/// does with it).
struct AgentTree<'a>(&'a ProjectRoom);

impl ToolTree for AgentTree<'_> {
    type Error = worker::Error;

    fn files(&self) -> Result<Vec<(ProjectPath, u64)>> {
        Ok(self
            .0
            .store()
            .list()?
            .into_iter()
            .map(|f| (f.path, f.size))
            .collect())
    }

    fn read(&self, path: &ProjectPath) -> Result<Option<String>> {
        Ok(self
            .0
            .store()
            .content(path)?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    }

    fn write(&mut self, path: &ProjectPath, content: &str) -> std::result::Result<(), String> {
        write_agent_file(self.0, path, content.as_bytes()).map_err(|e| e.to_string())
    }
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

/// The files a prompt quotes (`core::agent::context` picks them), with their text; binary
/// files are left out.
fn context_files<'a>(
    room: &ProjectRoom,
    first: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>> {
    let tree = tree_paths(room)?;
    let mut out = Vec::new();
    for path in context::select(first, &tree) {
        let Ok(p) = ProjectPath::parse(&path) else {
            continue;
        };
        if let Some(text) = room
            .store()
            .content(&p)?
            .and_then(|b| String::from_utf8(b).ok())
        {
            out.push((path, text));
        }
    }
    Ok(out)
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

/// Writes the tree into the sandbox, in the batches `sandbox::write_batches` plans (with
/// `may_prune`, the last removes what is gone from the tree).
async fn push_tree(
    sb: &SandboxClient,
    files: Vec<FileWrite>,
    may_prune: bool,
) -> std::result::Result<(), SandboxError> {
    for call in write_batches(files, may_prune) {
        sb.write_files(call).await?;
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
                if let Some(error) = checks::compile_error(&ran(&r)) {
                    pass += 1;
                    if !r.timed_out
                        && pass <= AUTOFIX_PASSES
                        && autofix(room, sb, &r.output).await?
                    {
                        continue;
                    }
                    errors.push(error);
                    if !r.timed_out {
                        let (files, _) = project_code(room)?;
                        errors.extend(autofix::hints(&r.output, &files));
                    }
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
                errors.extend(checks::compile_error(&ran(&r)));
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
        match NpmInstall::of(repair.install) {
            Ok(install) => {
                let command = install.command();
                match npm_install(room, sb, &command, &install).await? {
                    Ok(()) => changed = true,
                    Err(why) => notes.push(format!("{command} failed: {why}")),
                }
            }
            Err(refused) => notes.push(refused.to_string()),
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
            let manifest = room.store().content(&meta.path)?.unwrap_or_default();
            deps = autofix::manifest_dependencies(&manifest);
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
    install: &NpmInstall,
) -> std::result::Result<std::result::Result<(), String>, SandboxError> {
    let req = ExecRequest {
        cmd: "npm".into(),
        args: install.args(),
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
        return Ok(Err(checks::output_tail(&r.output)));
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
    kiln_core::origin::preview_url(&domain, project)
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
        let published = Outcome::PreviewPublished { url: url.clone() };
        g.apply(published.clone());
        // Stored now, not when the step ends, so `GET …/generation` shows it too. Only this
        // fact: the stored state may hold a cancel or queued prompts this step has not seen.
        if let Ok(Some(mut stored)) = load(room) {
            if stored.id == g.id {
                stored.apply(published);
                let _ = save(room, &stored);
            }
        }
        let _ = room.broadcast(ServerEvent::ServerStarted { preview_url: url });
    }
    Ok(status)
}

/// Runs every acceptance check in the sandbox's Chromium against its dev server;
/// `core::agent::checks` reads what the runner says.
async fn run_browser_checks(
    room: &ProjectRoom,
    project: &str,
    g: &mut Generation,
    sb: &SandboxClient,
    file: &CheckFile,
) -> std::result::Result<RunVerdict, SandboxError> {
    let status = start_preview(room, project, g, sb).await?;
    if let Some(why) = checks::dev_server_failure(&status.state, &status.log) {
        return Ok(RunVerdict::AppDoesNotRun(why));
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
    let r = sb.exec(&req, |_| {}).await?;
    Ok(checks::interpret_run(&ran(&r), file.checks.len()))
}

/// A sandbox command's result as `core::agent::checks` reads it.
fn ran(r: &ExecResult) -> Ran<'_> {
    Ran {
        output: &r.output,
        exit_code: r.exit_code,
        timed_out: r.timed_out,
        oom_killed: r.oom_killed,
    }
}

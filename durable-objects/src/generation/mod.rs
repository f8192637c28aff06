//! The generation pipeline's imperative shell. `kiln_core::agent` decides — the state
//! machine (`machine`), what a step makes of an answer or a result (`pipeline`), who is
//! asked with what (`roles`), what a prompt quotes (`context`), the tool loop's rules
//! (`tools`), installs (`npm`) and what the check runner's answers mean (`checks`); this
//! module performs one step per alarm, feeds every outcome back through `Generation::apply`,
//! persists the state, broadcasts what happened and sets the next alarm. It writes no field
//! of a `Generation` itself.
//!
//! Here: the lifecycle (start, queue, cancel, one step per alarm, the org's slot); `steps`
//! (one function per step); `model` (model calls and their cost log); `tree` (the working
//! tree as the agent reads and writes it); `sandbox_sync` (the sandbox kept in step with
//! the tree, installs); `checker` (compile checks with their repairs, the preview, the
//! acceptance checks).
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

mod checker;
mod model;
mod sandbox_sync;
mod steps;
mod tree;

use checker::*;
use model::*;
pub use sandbox_sync::follow_people;
use sandbox_sync::*;
use steps::*;
use tree::*;

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

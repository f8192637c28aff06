//! The generation pipeline's lifecycle in the room: start, queue, cancel, the org's slot,
//! and one step per alarm. The steps themselves run in `kiln_core::agent::driver`, which
//! decides and performs them through a `Host`; `host` is the room as that host (tree,
//! broadcast, model, sandbox, cost log, versions). Nothing here writes a field of a
//! `Generation`: every change goes through `Generation::apply`.
//!
//! Durability: before a step runs, a watchdog alarm is set a few minutes out, so a step cut
//! off by eviction, a crash or a deploy runs again; a step whose outcome was applied and
//! persisted never runs again, so a finished LLM call is never paid for twice. A step also
//! marks itself running until it returns: the next instance of the room, when first asked
//! anything, re-runs a step so cut at once instead of at the watchdog. A step that returned
//! (a Retry-After wait among them) leaves no mark, so its wait is kept.

use crate::limiter::{self, LimitOp};
use kiln_core::agent::driver::{self, AfterStep, AGENT};
use kiln_core::agent::machine::{Generation, Outcome, QueueFull};
use kiln_core::error::ErrorCode;
use kiln_core::protocol::ServerEvent;
use kiln_core::sandbox::Template;
use worker::Result;

use crate::room::{now, ProjectRoom};

pub(crate) mod host;

use host::RoomHost;
use kiln_core::agent::driver::Host;

const STATE_KEY: &str = "generation";
/// The id of the generation last cancelled: a flag read on every streamed chunk, so it is a
/// key of its own, not the whole stored `Generation`.
const CANCEL_KEY: &str = "generation_cancelled";
/// A step cut off for longer than this is run again (alarms take offsets in ms).
const WATCHDOG_MS: i64 = 5 * 60 * 1000;
/// Set while a step runs: how many times in a row it was started without returning.
const RUNNING_KEY: &str = "generation_step_running";
/// A step cut off this many times in a row (one that itself brings the room down, say) is
/// left to the watchdog's pace rather than re-run on every request.
const QUICK_RESUMES: u32 = 3;

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
            room.broadcast(ServerEvent::error(ErrorCode::GenerationUnreadable, message))?;
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
    /// The configured model has a price and the org's credit is spent.
    NoCredit { balance: u64 },
}

impl NotStarted {
    pub fn code(&self) -> ErrorCode {
        match self {
            NotStarted::NoCredit { .. } => ErrorCode::PaymentRequired,
            _ => ErrorCode::QuotaExceeded,
        }
    }
}

impl std::fmt::Display for NotStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotStarted::QueueFull(q) => q.fmt(f),
            NotStarted::OrgBusy { cap } => write!(
                f,
                "your org already runs {cap} generations at once; try again when one has finished"
            ),
            NotStarted::NoCredit { balance } => {
                f.write_str(&kiln_core::credits::spent_message(*balance))
            }
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
    if let Err(balance) = hold_credit(room, &format!("g{n}")).await? {
        free_org_slot(room).await?;
        return Ok(Err(NotStarted::NoCredit { balance }));
    }
    room.store()
        .set_meta("generation_counter", &n.to_string())?;
    let previous = load(room)?;
    let g = Generation::start(previous.as_ref(), format!("g{n}"), prompt, template, now());
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

/// On a priced model, sets the generation's hold aside from its org's credit (`Err(balance)`
/// when the balance does not cover it); the local model (no price) holds nothing.
async fn hold_credit(room: &ProjectRoom, id: &str) -> Result<std::result::Result<(), u64>> {
    let host = RoomHost::new(room, "");
    let priced = host
        .model(kiln_core::agent::roles::Role::Planner, 0)
        .is_some_and(|m| kiln_core::credits::needs_credit(&m));
    let Some(org) = room.store().meta("org_id")?.filter(|_| priced) else {
        return Ok(Ok(()));
    };
    let amount = kiln_core::credits::hold(
        room.env()
            .var("KILN_CREDIT_HOLD_MICROS")
            .ok()
            .map(|v| v.to_string())
            .as_deref(),
    );
    let project = room.store().meta("project_id")?.unwrap_or_default();
    let credits = crate::repo::Credits(&room.env().d1("DB")?);
    if credits.hold(&org, amount, &project, id, now()).await? {
        host::set_held(room, id, amount)?;
        Ok(Ok(()))
    } else {
        Ok(Err(credits.balance(&org).await?))
    }
}

/// Gives back what generation `id` did not spend of its hold (once: the hold is then 0).
async fn release_credit(room: &ProjectRoom, id: &str) -> Result<()> {
    let left = host::held(room, id);
    let Some(org) = room.store().meta("org_id")?.filter(|_| left > 0) else {
        return Ok(());
    };
    let project = room.store().meta("project_id")?.unwrap_or_default();
    host::set_held(room, id, 0)?;
    crate::repo::Credits(&room.env().d1("DB")?)
        .release(&org, left, &project, id, now())
        .await
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
    let org = room.store().meta("org_id")?;
    if let Some(sb) = crate::fleet::existing(room.env(), project, org).await {
        if let Err(e) = sb.remove().await {
            worker::console_warn!("removing the sandbox of deleted project {project}: {e}");
        }
        if let Ok(db) = room.env().d1("DB") {
            crate::fleet::Fleet(&db).forget(project).await?;
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
        release_credit(room, &g.id).await?;
        free_org_slot(room).await?;
    }
    Ok(())
}

fn announce(room: &ProjectRoom, g: &Generation) -> Result<()> {
    room.broadcast(driver::state_change(g))
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
    let starts = cut_starts(room)? + 1;
    room.store().set_meta(RUNNING_KEY, &starts.to_string())?;
    // Renew the org slot; a running generation is never stopped for the cap.
    let _ = take_org_slot(room).await;
    let host = RoomHost::new(room, project);
    let after = driver::step(&host, &mut g)
        .await
        .map_err(worker::Error::from);
    room.store().set_meta_opt(RUNNING_KEY, None)?;
    let after = after?;
    if matches!(after, AfterStep::Done { .. } | AfterStep::Failed) {
        release_credit(room, &g.id).await?;
        notify(room, project, &g).await;
    }
    match after {
        AfterStep::Cancelled => {}
        AfterStep::Again { in_ms } => storage.set_alarm(in_ms as i64).await?,
        AfterStep::Failed => {
            storage.delete_alarm().await?;
            free_org_slot(room).await?;
        }
        // Prompts that came in during the last phase: a follow-up carries them out. It keeps
        // this generation's org slot (renewing one's own slot is never refused).
        AfterStep::Done { follow_up } => {
            storage.delete_alarm().await?;
            match follow_up {
                None => free_org_slot(room).await?,
                Some(prompt) => {
                    if let Ok(Err(why)) = start(room, prompt, None, AGENT).await {
                        room.broadcast(ServerEvent::error(
                            ErrorCode::QuotaExceeded,
                            why.to_string(),
                        ))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn cut_starts(room: &ProjectRoom) -> Result<u32> {
    Ok(room
        .store()
        .meta(RUNNING_KEY)?
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Called once per room instance, on its first request: a step the last instance was cut off
/// in (a crash, an eviction mid-step) runs again now.
pub async fn resume_cut_step(room: &ProjectRoom) -> Result<()> {
    let starts = cut_starts(room)?;
    if starts == 0 || starts > QUICK_RESUMES {
        return Ok(());
    }
    if load(room)?.is_some_and(|g| !g.step.is_terminal()) {
        room.state().storage().set_alarm(0i64).await?;
    }
    Ok(())
}

/// Queues the generation's end for the project's notification targets (`kiln-notify`; the
/// Worker delivers). Best effort: a failure here is logged and never fails the generation.
async fn notify(room: &ProjectRoom, project: &str, g: &Generation) {
    use kiln_core::agent::machine::Step;
    use kiln_core::notify::{NotifyEvent, NotifyJob};
    let (event, reason) = match &g.step {
        Step::Done => ("generation.completed", None),
        Step::Failed { reason } => ("generation.failed", Some(reason.clone())),
        _ => return,
    };
    let queued = async {
        let db = room.env().d1("DB")?;
        let targets = crate::repo::Notifications(&db).for_project(project).await?;
        let targets: Vec<_> = targets
            .into_iter()
            .filter(|t| t.events().iter().any(|e| e == event))
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let queue = room.env().queue("NOTIFY")?;
        let ev = NotifyEvent {
            id: format!("{project}-{}-{event}", g.id),
            event: event.into(),
            project_id: project.into(),
            generation_id: g.id.clone(),
            version: g.version,
            preview_url: g.preview_url.clone(),
            reason,
            at: now(),
        };
        for t in targets {
            let job = NotifyJob {
                target_id: t.id,
                attempt: 1,
                event: ev.clone(),
            };
            queue.send(job).await?;
        }
        Ok::<(), worker::Error>(())
    };
    if let Err(e) = queued.await {
        worker::console_warn!("queueing {project}'s {event} notifications: {e}");
    }
}

/// A person changed files: the running app follows (`driver::follow_people`). A failure is
/// logged, not the person's problem.
pub async fn follow_people(room: &ProjectRoom, project: &str) -> Result<()> {
    if let Err(e) = driver::follow_people(&RoomHost::new(room, project)).await {
        worker::console_warn!("syncing {project}'s edits to its sandbox: {e}");
    }
    Ok(())
}

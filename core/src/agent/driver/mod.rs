//! The pipeline's driver: performs the step `Generation::next` names through a [`Host`] (the
//! room in production, an in-memory double in tests), turns what the effects return into
//! `Outcome`s and applies them. The decisions stay where they were (`machine`, `pipeline`,
//! `roles`, `context`, `tools`, `npm`, `checks`, `autofix`); this is the order in which they
//! meet the world, written once so that a native test drives exactly what the room runs.
//!
//! Here: the step's lifecycle (`step`: perform, a cancel wins, queued prompts kept, apply,
//! save, announce, what comes next); `steps` (one function per step); `model` (calls, their
//! cost log, streamed file answers); `tree` (the working tree as the agent reads and writes
//! it); `sandbox` (the sandbox kept in step with the tree, installs); `checker` (the compile
//! check with its repairs, the preview, the acceptance checks).

use super::llm::{CallError, CallResult, ChatRequest, Usage};
use super::machine::{Generation, Outcome, Step};
use super::roles::Role;
use crate::path::ProjectPath;
use crate::protocol::ServerEvent;
use crate::sandbox::{
    DevServerAction, DevServerStatus, ExecRequest, ExecResult, FileWrite, SandboxError, Template,
    WriteFilesRequest,
};

mod checker;
mod model;
mod sandbox;
mod steps;
mod tree;

pub use sandbox::follow_people;

/// Who writes the agent's files and versions.
pub const AGENT: &str = "agent";
const INSTALL_TIMEOUT_MS: u64 = 180_000;
const CHECK_TIMEOUT_MS: u64 = 120_000;
/// Type-check, repair, type-check again: at most this many repairs per check.
const AUTOFIX_PASSES: usize = 2;
/// The whole acceptance-check run (Chromium start plus every check).
const BROWSER_CHECK_TIMEOUT_MS: u64 = 240_000;

/// A failure on the host's side (its storage, its database): the step fails and is retried.
pub type HostError = String;
pub type HostResult<T> = Result<T, HostError>;

/// One model call, for the cost log (`ai_calls`).
pub struct CallRecord<'a> {
    pub generation: &'a str,
    pub role: Role,
    pub model: &'a str,
    pub usage: Usage,
    pub cost_micros: u64,
    pub latency_ms: u64,
    pub error: Option<&'a str>,
}

/// What the pipeline needs from where it runs. Every method takes `&self`: a streamed
/// answer's callback reads the cancel flag and broadcasts while the call is in flight.
#[allow(async_fn_in_trait)]
pub trait Host {
    /// Every file of the working tree with its size.
    fn files(&self) -> HostResult<Vec<(ProjectPath, u64)>>;
    fn read(&self, path: &ProjectPath) -> HostResult<Option<Vec<u8>>>;
    /// Writes a file as the agent: the next rev, within the project's limits.
    fn write(&self, path: &ProjectPath, content: &[u8]) -> HostResult<()>;
    /// Deletes a file as the agent; a file that is not there is no error.
    fn delete(&self, path: &ProjectPath) -> HostResult<()>;
    /// The whole working tree as sandbox writes (binary files base64).
    fn tree_writes(&self) -> HostResult<Vec<FileWrite>>;
    fn broadcast(&self, event: ServerEvent) -> HostResult<()>;
    /// A setting (`KILN_BROWSER_CHECKS`, `KILN_PREVIEW_URL`); `None` when unset.
    fn config(&self, name: &str) -> Option<String>;
    fn project(&self) -> &str;
    fn now(&self) -> i64;

    /// The stored generation (`None` when there is none).
    fn stored(&self) -> HostResult<Option<Generation>>;
    fn save(&self, g: &Generation) -> HostResult<()>;
    /// Whether generation `id` was cancelled: a cheap flag, read on every streamed chunk.
    fn cancelled(&self, id: &str) -> bool;
    /// A small value the pipeline keeps between steps (the last plan answer).
    fn memo(&self, key: &str) -> HostResult<Option<String>>;
    fn set_memo(&self, key: &str, value: &str) -> HostResult<()>;

    /// The model a role is asked on a given attempt; `None` when no model is configured.
    fn model(&self, role: Role, attempt: u32) -> Option<String>;
    /// Streams one call, handing each piece of text to `on_text`; `false` abandons it.
    async fn stream(
        &self,
        req: &ChatRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<CallResult, CallError>;
    /// Logs a call in the cost log and pays for it from the org's credit.
    async fn log_call(&self, call: &CallRecord<'_>) -> HostResult<()>;
    /// The org's credit left, in micro-dollars; `None` when there is no org to pay (credit
    /// does not apply).
    async fn credit_left(&self) -> HostResult<Option<u64>>;

    /// Whether a sandbox-proxy is configured.
    fn has_sandbox(&self) -> bool;
    /// Makes the project's sandbox exist; true when it had to be created.
    async fn ensure_sandbox(&self, template: Template) -> Result<bool, SandboxError>;
    async fn write_files(&self, files: WriteFilesRequest) -> Result<(), SandboxError>;
    async fn exec(
        &self,
        req: &ExecRequest,
        on_output: &mut dyn FnMut(&str),
    ) -> Result<ExecResult, SandboxError>;
    async fn dev_server(&self, action: DevServerAction) -> Result<DevServerStatus, SandboxError>;
    /// The files in the sandbox (directories left out).
    async fn sandbox_files(&self) -> Result<Vec<ProjectPath>, SandboxError>;
    async fn sandbox_read(&self, path: &ProjectPath) -> Result<Vec<u8>, SandboxError>;

    /// Stores a version of the working tree by the agent; its number.
    async fn snapshot(&self, message: &str) -> HostResult<u64>;
}

/// What follows a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStep {
    /// A cancel arrived during the step: its outcome is dropped.
    Cancelled,
    /// The next step (or this one again, after a failure) in `in_ms`.
    Again { in_ms: u64 },
    /// The generation is done; prompts that came in during its last phase, if any, make a
    /// follow-up.
    Done { follow_up: Option<String> },
    /// It failed for good.
    Failed,
}

/// The `state_change` event for where `g` stands.
pub fn state_change(g: &Generation) -> ServerEvent {
    ServerEvent::StateChange {
        generation_id: g.id.clone(),
        step: g.step.name().into(),
        phase: g.phase,
        reason: match &g.step {
            Step::Failed { reason } => Some(reason.clone()),
            _ => None,
        },
    }
}

/// Runs one step of `g` and stores where it ends. A cancel that arrived during the step wins
/// over its outcome; prompts queued while it ran (stored by the host) are kept.
pub async fn step<H: Host>(host: &H, g: &mut Generation) -> HostResult<AfterStep> {
    let outcome = steps::perform(host, g)
        .await
        .unwrap_or_else(|e| Outcome::failed(e, true));
    if host.cancelled(&g.id) {
        return Ok(AfterStep::Cancelled);
    }
    if let Some(stored) = host.stored()?.filter(|s| s.id == g.id) {
        g.apply(Outcome::QueueSeen {
            stored: stored.queued,
        });
    }
    g.apply(outcome);
    host.save(g)?;
    host.broadcast(state_change(g))?;
    Ok(match &g.step {
        Step::Done => {
            host.broadcast(ServerEvent::GenerationComplete {
                generation_id: g.id.clone(),
                version: g.version,
                preview_url: g.preview_url.clone(),
                elapsed_ms: host.now() - g.started_at,
                llm_calls: g.totals.llm_calls,
                input_tokens: g.totals.input_tokens,
                output_tokens: g.totals.output_tokens,
                cost_micros: g.totals.cost_micros,
                unresolved: g.unresolved.clone(),
            })?;
            AfterStep::Done {
                follow_up: g.follow_up_prompt(),
            }
        }
        s if s.is_terminal() => AfterStep::Failed,
        _ => AfterStep::Again {
            in_ms: g.retry_in_ms(),
        },
    })
}

/// The project's preview, on its own origin (`KILN_PREVIEW_URL`'s domain). Viewers get in
/// through a preview link; opening this bare URL in a browser sends them through Kiln for one.
pub fn preview_url<H: Host>(host: &H) -> String {
    let domain = host
        .config("KILN_PREVIEW_URL")
        .unwrap_or_else(|| "http://preview.localhost:8787".into());
    crate::origin::preview_url(&domain, host.project())
}

/// The configured model's profile (`profile::Profile::choose`).
pub(crate) fn profile<H: Host>(host: &H) -> super::profile::Profile {
    let model = host.model(Role::Coder, 0).unwrap_or_default();
    super::profile::Profile::choose(&model, host.config("KILN_MODEL_PROFILE").as_deref())
}

/// `KILN_BROWSER_CHECKS=off` skips writing and running acceptance checks.
fn browser_checks_enabled<H: Host>(host: &H) -> bool {
    host.config("KILN_BROWSER_CHECKS").as_deref() != Some("off")
}

/// A sandbox failure as a step's error.
fn sb(e: SandboxError) -> HostError {
    e.to_string()
}

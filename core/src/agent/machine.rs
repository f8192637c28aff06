//! The generation pipeline as a pure state machine: `Generation::next` says what to do,
//! `Generation::apply` takes what happened. The room performs the effects (LLM calls, sandbox
//! calls, storage writes), persists the `Generation` after every `apply`, and drives one step
//! per alarm — so resuming after a crash is just calling `next` on the persisted state, and a
//! finished step (whose outcome was applied and persisted) is never run again.

use super::blueprint::Blueprint;
use super::llm::{backoff_ms, ChatMessage, Usage};
use super::tools;
use crate::sandbox::Template;
use serde::{Deserialize, Serialize};

/// Plan attempts: the first, and one repair with the validation errors.
pub const MAX_PLAN_ATTEMPTS: u32 = 2;
/// Transient failures (5xx, 429, timeouts, truncated streams) tolerated per step.
pub const MAX_STEP_ATTEMPTS: u32 = 4;
/// Fix rounds per phase after a failing check, unless the profile allows more
/// (`Profile::fix_rounds`).
pub const MAX_FIX_ROUNDS: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Step {
    Plan,
    /// A follow-up: the tool loop over the existing files.
    Edit,
    Implement,
    Install,
    /// Write the phase's acceptance checks (browser tests) for its acceptance points.
    Test,
    Check,
    Fix,
    Serve,
    Snapshot,
    Done,
    Failed {
        reason: String,
    },
    Cancelled,
}

impl Step {
    pub fn is_terminal(&self) -> bool {
        matches!(self, Step::Done | Step::Failed { .. } | Step::Cancelled)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Step::Plan => "planning",
            Step::Edit => "editing",
            Step::Implement => "implementing",
            Step::Install => "installing",
            Step::Test => "writing checks",
            Step::Check => "checking",
            Step::Fix => "fixing",
            Step::Serve => "serving",
            Step::Snapshot => "snapshotting",
            Step::Done => "done",
            Step::Failed { .. } => "failed",
            Step::Cancelled => "cancelled",
        }
    }
}

/// Running totals for `generation_complete` and the cost log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Totals {
    pub llm_calls: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_micros: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Generation {
    pub id: String,
    pub prompt: String,
    pub template: Template,
    pub step: Step,
    pub blueprint: Option<Blueprint>,
    /// Index of the phase being built.
    pub phase: usize,
    /// Failed attempts of the current step.
    pub attempts: u32,
    pub fix_round: u32,
    /// Why the last plan was rejected (fed to the repair request).
    pub plan_errors: Vec<String>,
    /// What the last check reported (fed to the fixer).
    pub check_errors: Vec<String>,
    /// Check errors still open after the last fix round of each phase.
    pub unresolved: Vec<String>,
    /// Commands the current phase asked for (dependency installs).
    pub commands: Vec<String>,
    /// Prompts that arrived while running, waiting for the next phase.
    pub queued: Vec<String>,
    /// Queued prompts taken into the phase (or tool loop) in progress; kept until it is
    /// written, so a retried step still carries them.
    #[serde(default)]
    pub folding: Vec<String>,
    pub totals: Totals,
    pub preview_url: Option<String>,
    pub version: Option<u64>,
    pub started_at: i64,
    /// The follow-up tool loop's conversation so far (persisted, so a resumed step never
    /// repeats a paid call).
    #[serde(default)]
    pub transcript: Vec<super::llm::ChatMessage>,
    #[serde(default)]
    pub tool_rounds: u32,
    /// Phases whose acceptance checks are written.
    #[serde(default)]
    pub tested: Vec<usize>,
    /// How long to wait before the next step (a retry's backoff); set by `apply`, read by
    /// the shell for its next alarm. Not persisted: a resumed step runs at once.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    retry_in_ms: u64,
    /// Queued prompts the running step took into its request, so that the prompts `start`
    /// stored meanwhile can be kept without these (`Outcome::QueueSeen`). Not persisted.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    taken: usize,
}

/// What the room must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    CallPlanner,
    CallEditor,
    CallCoder {
        phase: usize,
    },
    Install {
        commands: Vec<String>,
    },
    CallTester {
        phase: usize,
    },
    Check {
        phase: usize,
    },
    CallFixer {
        phase: usize,
    },
    Serve,
    Snapshot,
    /// Terminal: nothing more to do.
    Idle,
}

/// What happened. Besides the step outcomes, the facts a step learns on the way (a model
/// call's usage, the folded prompts, a published preview) come in as outcomes too: `apply` is
/// the only code that changes a `Generation`.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A model call ended (either way); its usage counts towards the totals.
    ModelCalled {
        usage: Usage,
        cost_micros: u64,
    },
    /// The step about to call the model takes the queued prompts (unless a retry of it
    /// already carries some).
    QueueTaken,
    /// The queue as stored now (`start` adds to it while a step runs); the prompts this step
    /// took are dropped from it.
    QueueSeen {
        stored: Vec<String>,
    },
    /// The tool loop begins: the queued prompts are taken and the conversation opens with
    /// the request and the project's `files`. Ignored once it has begun (a retried round).
    ToolLoopOpened {
        files: Vec<String>,
    },
    /// The app's preview is up for the first time (published mid-step).
    PreviewPublished {
        url: String,
    },
    Planned(Blueprint),
    /// One tool round of a follow-up: the model's `answer`, the `reply` it was given, an
    /// install it asked for, and `finished` when it called `finish`.
    ToolRound {
        answer: String,
        reply: String,
        command: Option<String>,
        finished: bool,
    },
    PlanRejected(Vec<String>),
    /// Every file of the phase is written; `commands` were asked for; `edit_errors` are the
    /// edits that did not apply (kept for the fixer).
    PhaseWritten {
        commands: Vec<String>,
        edit_errors: Vec<String>,
    },
    Installed,
    /// The phase's checks are written (or the tester gave none usable).
    TestsWritten,
    Checked {
        errors: Vec<String>,
        /// The fix rounds this phase may have in all (`Profile::fix_rounds`).
        fix_rounds: u32,
    },
    Fixed {
        edit_errors: Vec<String>,
    },
    Served {
        url: String,
    },
    Snapshotted {
        version: u64,
    },
    /// A step failed; `retryable` for transient failures; `retry_after_secs` is the
    /// server's `Retry-After`, honoured by the backoff.
    StepFailed {
        reason: String,
        retryable: bool,
        retry_after_secs: Option<u64>,
    },
    Cancel,
}

impl Outcome {
    /// A failure with no server-given wait.
    pub fn failed(reason: impl Into<String>, retryable: bool) -> Outcome {
        Outcome::StepFailed {
            reason: reason.into(),
            retryable,
            retry_after_secs: None,
        }
    }
}

impl Generation {
    pub fn new(id: String, prompt: String, template: Template, now: i64) -> Generation {
        Generation {
            id,
            prompt,
            template,
            step: Step::Plan,
            blueprint: None,
            phase: 0,
            attempts: 0,
            fix_round: 0,
            plan_errors: vec![],
            check_errors: vec![],
            unresolved: vec![],
            commands: vec![],
            queued: vec![],
            folding: vec![],
            totals: Totals::default(),
            preview_url: None,
            version: None,
            started_at: now,
            transcript: vec![],
            tool_rounds: 0,
            tested: vec![],
            retry_in_ms: 0,
            taken: 0,
        }
    }

    /// A change to an app that exists: the tool loop, then check, serve and snapshot like a
    /// phase of the first generation.
    pub fn follow_up(
        id: String,
        prompt: String,
        template: Template,
        blueprint: Option<Blueprint>,
        now: i64,
    ) -> Generation {
        let mut g = Generation::new(id, prompt, template, now);
        g.step = Step::Edit;
        g.phase = blueprint
            .as_ref()
            .map_or(0, |b| b.phases.len().saturating_sub(1));
        // A follow-up is checked against the checks the first generation wrote.
        g.tested = (0..blueprint.as_ref().map_or(0, |b| b.phases.len())).collect();
        g.blueprint = blueprint;
        g
    }

    /// What a prompt starts when nothing runs: after a finished generation with a blueprint,
    /// a change request (the tool loop over the existing files, keeping the app's blueprint
    /// and template); otherwise a new app (`template`, react-vite by default).
    pub fn start(
        previous: Option<&Generation>,
        id: String,
        prompt: String,
        template: Option<Template>,
        now: i64,
    ) -> Generation {
        match previous.filter(|p| p.step == Step::Done && p.blueprint.is_some()) {
            Some(prev) => {
                Generation::follow_up(id, prompt, prev.template, prev.blueprint.clone(), now)
            }
            None => Generation::new(id, prompt, template.unwrap_or(Template::ReactVite), now),
        }
    }

    pub fn next(&self) -> Next {
        match self.step {
            Step::Plan => Next::CallPlanner,
            Step::Edit => Next::CallEditor,
            Step::Implement => Next::CallCoder { phase: self.phase },
            Step::Install => Next::Install {
                commands: self.commands.clone(),
            },
            Step::Test => Next::CallTester { phase: self.phase },
            Step::Check => Next::Check { phase: self.phase },
            Step::Fix => Next::CallFixer { phase: self.phase },
            Step::Serve => Next::Serve,
            Step::Snapshot => Next::Snapshot,
            Step::Done | Step::Failed { .. } | Step::Cancelled => Next::Idle,
        }
    }

    fn phases(&self) -> usize {
        self.blueprint.as_ref().map_or(0, |b| b.phases.len())
    }

    fn goto(&mut self, step: Step) {
        self.step = step;
        self.attempts = 0;
    }

    /// After the phase's files (and dependencies) are in: write its checks first if it has
    /// acceptance points and none are written yet, then check.
    fn written(&mut self) {
        let needs_checks = !self.tested.contains(&self.phase)
            && self
                .blueprint
                .as_ref()
                .and_then(|b| b.phases.get(self.phase))
                .is_some_and(|p| !p.acceptance.is_empty());
        self.goto(if needs_checks {
            Step::Test
        } else {
            Step::Check
        });
    }

    /// After a phase passes (or runs out of fix rounds): the next phase, or serve.
    fn phase_done(&mut self) {
        self.fix_round = 0;
        self.check_errors.clear();
        if self.phase + 1 < self.phases() {
            self.phase += 1;
            self.goto(Step::Implement);
        } else {
            self.goto(Step::Serve);
        }
    }

    pub fn apply(&mut self, outcome: Outcome) {
        if self.step.is_terminal() {
            return;
        }
        self.retry_in_ms = 0;
        match (self.step.clone(), outcome) {
            (_, Outcome::ModelCalled { usage, cost_micros }) => {
                self.totals.llm_calls += 1;
                self.totals.input_tokens += usage.input_tokens;
                self.totals.output_tokens += usage.output_tokens;
                self.totals.cost_micros += cost_micros;
            }
            (_, Outcome::QueueTaken) => self.take_queued(),
            (_, Outcome::QueueSeen { stored }) => {
                self.queued = stored.into_iter().skip(self.taken).collect();
                self.taken = 0;
            }
            (_, Outcome::PreviewPublished { url }) => {
                self.preview_url.get_or_insert(url);
            }
            // Once begun (a retried round), it is not opened again.
            (Step::Edit, Outcome::ToolLoopOpened { files }) if self.transcript.is_empty() => {
                self.take_queued();
                self.transcript = tools::start(self.template, &self.request(), &files);
            }
            (_, Outcome::Cancel) => self.goto(Step::Cancelled),
            (
                _,
                Outcome::StepFailed {
                    reason,
                    retryable,
                    retry_after_secs,
                },
            ) => {
                let delay = backoff_ms(self.attempts, retry_after_secs);
                self.attempts += 1;
                if !retryable || self.attempts >= MAX_STEP_ATTEMPTS {
                    self.goto(Step::Failed {
                        reason: format!("{} failed: {reason}", self.step.name()),
                    });
                } else {
                    self.retry_in_ms = delay;
                }
            }
            (Step::Plan, Outcome::Planned(bp)) => {
                self.blueprint = Some(bp);
                self.plan_errors.clear();
                self.phase = 0;
                self.goto(Step::Implement);
            }
            (Step::Plan, Outcome::PlanRejected(errors)) => {
                self.attempts += 1;
                if self.attempts >= MAX_PLAN_ATTEMPTS {
                    self.goto(Step::Failed {
                        reason: format!("the plan was invalid: {}", errors.join("; ")),
                    });
                } else {
                    self.plan_errors = errors;
                }
            }
            (
                Step::Edit,
                Outcome::ToolRound {
                    answer,
                    reply,
                    command,
                    finished,
                },
            ) => {
                self.transcript.push(ChatMessage::assistant(answer));
                self.transcript.push(ChatMessage::user(reply));
                self.commands.extend(command);
                self.tool_rounds += 1;
                self.attempts = 0;
                if finished || self.tool_rounds >= tools::MAX_TOOL_ROUNDS {
                    self.folding.clear();
                    if self.commands.is_empty() {
                        self.written();
                    } else {
                        self.goto(Step::Install);
                    }
                }
            }
            (
                Step::Implement,
                Outcome::PhaseWritten {
                    commands,
                    edit_errors,
                },
            ) => {
                self.check_errors.extend(edit_errors);
                self.fix_round = 0;
                self.commands = commands;
                self.folding.clear();
                if self.commands.is_empty() {
                    self.written();
                } else {
                    self.goto(Step::Install);
                }
            }
            (Step::Install, Outcome::Installed) => {
                self.commands.clear();
                self.written();
            }
            (Step::Test, Outcome::TestsWritten) => {
                if !self.tested.contains(&self.phase) {
                    self.tested.push(self.phase);
                }
                self.goto(Step::Check);
            }
            (Step::Check, Outcome::Checked { errors, fix_rounds }) => {
                if errors.is_empty() {
                    self.phase_done();
                } else if self.fix_round < fix_rounds {
                    self.check_errors = errors;
                    self.goto(Step::Fix);
                } else {
                    // Out of fix rounds: keep going; the user sees what is still wrong.
                    self.unresolved.extend(errors);
                    self.phase_done();
                }
            }
            (Step::Fix, Outcome::Fixed { edit_errors }) => {
                self.check_errors.extend(edit_errors);
                self.fix_round += 1;
                self.goto(Step::Check);
            }
            (Step::Serve, Outcome::Served { url }) => {
                self.preview_url = Some(url);
                self.goto(Step::Snapshot);
            }
            (Step::Snapshot, Outcome::Snapshotted { version }) => {
                self.version = Some(version);
                self.goto(Step::Done);
            }
            // An outcome that does not belong to the current step (a late reply after a
            // resume) changes nothing.
            _ => {}
        }
    }

    /// Moves the queued prompts into the step about to call the model (unless a retry of
    /// that step already carries some).
    fn take_queued(&mut self) {
        if self.folding.is_empty() {
            self.folding = std::mem::take(&mut self.queued);
            self.taken += self.folding.len();
        }
    }

    /// Whether the tool round under way is the loop's last (the model finished, or the
    /// rounds are used up): the shell then syncs the sandbox for the check.
    pub fn closes_tool_loop(&self, finished: bool) -> bool {
        finished || self.tool_rounds + 1 >= tools::MAX_TOOL_ROUNDS
    }

    /// The change request the tool loop works on: the prompt, and the prompts folded in.
    pub fn request(&self) -> String {
        let mut request = self.prompt.clone();
        for q in &self.folding {
            request += &format!("\nAlso: {q}");
        }
        request
    }

    /// Once done, the prompts that came in during its last phase, merged into the prompt of
    /// the follow-up that carries them out; `None` when there is none to run.
    pub fn follow_up_prompt(&self) -> Option<String> {
        (self.step == Step::Done && !self.queued.is_empty()).then(|| self.queued.join("\n"))
    }

    /// How long the shell waits before the next step: a failed step's backoff (the server's
    /// `Retry-After` when it gave one), else nothing.
    pub fn retry_in_ms(&self) -> u64 {
        if self.step.is_terminal() {
            0
        } else {
            self.retry_in_ms
        }
    }

    /// A change to an existing app (the tool loop ran), not a first build.
    pub fn is_follow_up(&self) -> bool {
        !self.transcript.is_empty()
    }

    /// A prompt that arrived while this generation runs: folded into the next phase.
    /// Queues a prompt that arrived during the run. The queue is bounded, so a flood of
    /// prompts is refused instead of growing the stored state without end.
    pub fn enqueue(&mut self, prompt: String) -> Result<(), QueueFull> {
        if self.step.is_terminal() {
            return Ok(());
        }
        let bytes: usize = self.queued.iter().map(String::len).sum::<usize>() + prompt.len();
        if self.queued.len() >= MAX_QUEUED_PROMPTS || bytes > MAX_QUEUED_BYTES {
            return Err(QueueFull);
        }
        self.queued.push(prompt);
        Ok(())
    }
}

/// How many prompts may wait for a running generation, and how many bytes they may hold.
pub const MAX_QUEUED_PROMPTS: usize = 10;
pub const MAX_QUEUED_BYTES: usize = 64 * 1024;

/// The queue of prompts waiting for the running generation is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFull;

impl std::fmt::Display for QueueFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{MAX_QUEUED_PROMPTS} prompts (or {MAX_QUEUED_BYTES} bytes) are already waiting for this generation; \
             wait for it to finish or cancel it"
        )
    }
}

/// The format of a stored `Generation`; bump it (and add a step to `migrate`) whenever a
/// change to the record would not read the old one as meant.
pub const STORED_VERSION: u32 = 1;

/// A stored record that cannot be read (another shape, a newer Kiln, broken JSON). What
/// could still be read of it is kept, so the failure is reported for the right generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub id: Option<String>,
    pub prompt: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the stored generation cannot be read: {}", self.reason)
    }
}

impl Unreadable {
    /// The generation it was, failed: shown and reported, never silently gone.
    pub fn into_failed(self, now: i64) -> Generation {
        let mut g = Generation::new(
            self.id.clone().unwrap_or_else(|| "unreadable".into()),
            self.prompt.clone().unwrap_or_default(),
            Template::ReactVite,
            now,
        );
        g.step = Step::Failed {
            reason: self.to_string(),
        };
        g
    }
}

impl Generation {
    /// The record as stored: `{"format": STORED_VERSION, "generation": {…}}` (`version` is
    /// the generation's own field: the app version it made).
    pub fn to_stored(&self) -> String {
        serde_json::json!({ "format": STORED_VERSION, "generation": self }).to_string()
    }

    /// Reads a stored record of any known version, migrating it to this one.
    pub fn from_stored(text: &str) -> Result<Generation, Unreadable> {
        let unreadable = |value: Option<&serde_json::Value>, reason: String| {
            let field = |name: &str| {
                value
                    .and_then(|v| v.get("generation").unwrap_or(v).get(name))
                    .and_then(|f| f.as_str())
                    .map(str::to_owned)
            };
            Unreadable {
                id: field("id"),
                prompt: field("prompt"),
                reason,
            }
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| unreadable(None, format!("not JSON: {e}")))?;
        let current = migrate(value.clone()).map_err(|why| unreadable(Some(&value), why))?;
        serde_json::from_value(current).map_err(|e| unreadable(Some(&value), e.to_string()))
    }
}

/// Brings a stored record to `STORED_VERSION`'s shape; returns the generation object.
fn migrate(mut value: serde_json::Value) -> Result<serde_json::Value, String> {
    // Version 0: the bare generation, before records had a version. Its later fields
    // (`folding`, `transcript`, `tool_rounds`, `tested`) read as their defaults.
    let version = match value.get("format") {
        None if value.get("generation").is_none() => 0,
        None => return Err("a record without its format".into()),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("version {v} is not a number"))?,
    };
    match version {
        0 => Ok(value),
        1 => Ok(value["generation"].take()),
        v => Err(format!(
            "written in format {v}, this Kiln reads up to {STORED_VERSION}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_after_a_finished_app_changes_it_and_otherwise_starts_one() {
        let mut done = Generation::new("g1".into(), "tally".into(), Template::Static, 0);
        let fresh = Generation::start(Some(&done), "g2".into(), "x".into(), None, 5);
        // No blueprint yet (a first generation that failed): a new app, react-vite by default.
        assert_eq!(
            (fresh.step.clone(), fresh.template),
            (Step::Plan, Template::ReactVite)
        );
        done.step = Step::Done;
        done.blueprint = Some(
            serde_json::from_value(serde_json::json!({
                "name": "Tally", "summary": "counts", "template": "static",
                "design": {"style": "calm", "palette": [{"name": "bg", "hex": "#ffffff"}, {"name": "ink", "hex": "#000000"}], "typography": "system-ui", "sections": []},
                "phases": [{"name": "Core", "goal": "count", "files": ["index.html"], "acceptance": ["+ adds one"]}]
            }))
            .unwrap(),
        );
        let change = Generation::start(
            Some(&done),
            "g3".into(),
            "by two".into(),
            Some(Template::ReactVite),
            9,
        );
        assert_eq!(change.step, Step::Edit);
        assert_eq!(
            change.template,
            Template::Static,
            "a change keeps the app's template"
        );
        assert_eq!(change.blueprint, done.blueprint);
        assert_eq!(change.started_at, 9);
        let mut failed = done.clone();
        failed.step = Step::Failed { reason: "x".into() };
        assert_eq!(
            Generation::start(Some(&failed), "g4".into(), "y".into(), None, 0).step,
            Step::Plan
        );
    }

    #[test]
    fn the_prompt_queue_is_bounded_by_count_and_bytes() {
        let mut g = Generation::new("g1".into(), "x".into(), Template::Static, 0);
        for i in 0..MAX_QUEUED_PROMPTS {
            assert_eq!(g.enqueue(format!("p{i}")), Ok(()));
        }
        assert_eq!(g.enqueue("one more".into()), Err(QueueFull));
        assert_eq!(g.queued.len(), MAX_QUEUED_PROMPTS);
        let mut g = Generation::new("g2".into(), "x".into(), Template::Static, 0);
        assert_eq!(g.enqueue("a".repeat(MAX_QUEUED_BYTES)), Ok(()));
        assert_eq!(g.enqueue("b".into()), Err(QueueFull));
    }

    fn bp(phases: usize) -> Blueprint {
        let phases: Vec<serde_json::Value> = (0..phases)
            .map(|i| serde_json::json!({"name": format!("p{i}"), "goal": "g", "files": ["index.html"], "acceptance": []}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "name": "x", "summary": "y", "template": "static",
            "design": {"style": "s", "palette": [{"name":"a","hex":"#000000"},{"name":"b","hex":"#ffffff"}], "typography": "t", "sections": []},
            "images": [], "phases": phases
        }))
        .unwrap()
    }

    fn written(commands: Vec<String>) -> Outcome {
        Outcome::PhaseWritten {
            commands,
            edit_errors: vec![],
        }
    }

    fn round(finished: bool) -> Outcome {
        Outcome::ToolRound {
            answer: "{}".into(),
            reply: "ok".into(),
            command: None,
            finished,
        }
    }

    fn gen() -> Generation {
        Generation::new("g1".into(), "a todo app".into(), Template::Static, 0)
    }

    #[test]
    fn a_clean_run_goes_plan_phases_serve_snapshot_done() {
        let mut g = gen();
        assert_eq!(g.next(), Next::CallPlanner);
        g.apply(Outcome::Planned(bp(2)));
        assert_eq!(g.next(), Next::CallCoder { phase: 0 });
        g.apply(written(vec!["npm install zustand".into()]));
        assert_eq!(
            g.next(),
            Next::Install {
                commands: vec!["npm install zustand".into()]
            }
        );
        g.apply(Outcome::Installed);
        assert_eq!(g.next(), Next::Check { phase: 0 });
        g.apply(Outcome::Checked {
            errors: vec![],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        assert_eq!(g.next(), Next::CallCoder { phase: 1 });
        g.apply(written(vec![]));
        assert_eq!(g.next(), Next::Check { phase: 1 });
        g.apply(Outcome::Checked {
            errors: vec![],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        assert_eq!(g.next(), Next::Serve);
        g.apply(Outcome::Served {
            url: "/preview/p/".into(),
        });
        assert_eq!(g.next(), Next::Snapshot);
        g.apply(Outcome::Snapshotted { version: 1 });
        assert_eq!(g.step, Step::Done);
        assert_eq!(g.next(), Next::Idle);
    }

    #[test]
    fn a_phase_with_acceptance_points_gets_its_checks_written_once_before_checking() {
        let mut plan = bp(2);
        plan.phases[0].acceptance = vec!["Enter adds a task".into()];
        let mut g = gen();
        g.apply(Outcome::Planned(plan.clone()));
        g.apply(written(vec!["npm install zustand".into()]));
        g.apply(Outcome::Installed);
        assert_eq!(g.next(), Next::CallTester { phase: 0 });
        g.apply(Outcome::TestsWritten);
        assert_eq!(g.next(), Next::Check { phase: 0 });
        // A failing check goes to the fixer and back to checking, not to the tester again.
        g.apply(Outcome::Checked {
            errors: vec!["Browser check \"Enter adds a task\" failed".into()],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        assert_eq!(g.next(), Next::CallFixer { phase: 0 });
        g.apply(Outcome::Fixed {
            edit_errors: vec![],
        });
        assert_eq!(g.next(), Next::Check { phase: 0 });
        g.apply(Outcome::Checked {
            errors: vec![],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        // Phase 1 has no acceptance points: straight to the check.
        g.apply(written(vec![]));
        assert_eq!(g.next(), Next::Check { phase: 1 });
        assert_eq!(g.tested, vec![0]);
        // A follow-up runs the existing checks and writes none.
        let mut f = Generation::follow_up("g2".into(), "x".into(), Template::Static, Some(plan), 0);
        f.phase = 0;
        f.apply(round(true));
        assert_eq!(f.next(), Next::Check { phase: 0 });
    }

    #[test]
    fn a_rejected_plan_gets_one_repair_then_fails() {
        let mut g = gen();
        g.apply(Outcome::PlanRejected(vec!["name is empty".into()]));
        assert_eq!(g.next(), Next::CallPlanner);
        assert_eq!(g.plan_errors, vec!["name is empty".to_owned()]);
        g.apply(Outcome::PlanRejected(vec!["still bad".into()]));
        assert!(matches!(&g.step, Step::Failed { reason } if reason.contains("still bad")));
    }

    #[test]
    fn failing_checks_loop_through_bounded_fixes() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        g.apply(written(vec![]));
        for round in 0..MAX_FIX_ROUNDS {
            g.apply(Outcome::Checked {
                errors: vec![format!("error {round}")],
                fix_rounds: MAX_FIX_ROUNDS,
            });
            assert_eq!(g.next(), Next::CallFixer { phase: 0 });
            assert_eq!(g.check_errors, vec![format!("error {round}")]);
            g.apply(Outcome::Fixed {
                edit_errors: vec![],
            });
            assert_eq!(g.next(), Next::Check { phase: 0 });
        }
        g.apply(Outcome::Checked {
            errors: vec!["still broken".into()],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        assert_eq!(g.next(), Next::Serve, "out of rounds: go on");
        assert_eq!(g.unresolved, vec!["still broken".to_owned()]);
    }

    #[test]
    fn transient_failures_retry_the_same_step_then_fail() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        for _ in 0..MAX_STEP_ATTEMPTS - 1 {
            g.apply(Outcome::failed("HTTP 500", true));
            assert_eq!(g.next(), Next::CallCoder { phase: 0 });
        }
        g.apply(Outcome::failed("HTTP 500", true));
        assert!(matches!(&g.step, Step::Failed { reason } if reason.contains("implementing")));
        let mut h = gen();
        h.apply(Outcome::failed("HTTP 401", false));
        assert!(matches!(h.step, Step::Failed { .. }));
    }

    #[test]
    fn a_follow_up_loops_tools_then_checks_serves_and_snapshots() {
        let mut g = Generation::follow_up(
            "g2".into(),
            "count by two".into(),
            Template::Static,
            Some(bp(2)),
            0,
        );
        assert_eq!(g.next(), Next::CallEditor);
        assert_eq!(g.phase, 1, "fixes refer to the last phase");
        g.apply(round(false));
        assert_eq!(g.next(), Next::CallEditor);
        g.apply(round(true));
        assert_eq!(g.next(), Next::Check { phase: 1 });
        g.apply(Outcome::Checked {
            errors: vec![],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        assert_eq!(g.next(), Next::Serve);
        let mut capped = Generation::follow_up("g3".into(), "x".into(), Template::Static, None, 0);
        for _ in 0..crate::agent::tools::MAX_TOOL_ROUNDS {
            capped.apply(round(false));
        }
        assert_eq!(
            capped.next(),
            Next::Check { phase: 0 },
            "the loop is capped"
        );
    }

    #[test]
    fn cancel_stops_and_terminal_states_ignore_everything() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        g.apply(Outcome::Cancel);
        assert_eq!(g.step, Step::Cancelled);
        g.apply(written(vec![]));
        assert_eq!(g.step, Step::Cancelled);
        assert_eq!(g.next(), Next::Idle);
    }

    #[test]
    fn late_outcomes_of_other_steps_change_nothing_and_state_round_trips() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        let before = g.clone();
        g.apply(Outcome::Snapshotted { version: 9 });
        assert_eq!(g, before);
        g.enqueue("make it dark".into()).unwrap();
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(serde_json::from_str::<Generation>(&json).unwrap(), g);
        g.apply(Outcome::QueueTaken);
        assert_eq!(g.folding, vec!["make it dark".to_owned()]);
        g.enqueue("and round corners".into()).unwrap();
        // A retry of the step keeps what it carries and takes nothing new.
        g.apply(Outcome::failed("cut", true));
        g.apply(Outcome::QueueTaken);
        assert_eq!(g.folding, vec!["make it dark".to_owned()]);
        g.apply(written(vec![]));
        assert!(g.folding.is_empty(), "folded into that phase");
        assert_eq!(
            g.queued,
            vec!["and round corners".to_owned()],
            "waits for the next"
        );
    }
    #[test]
    fn a_retry_waits_for_the_servers_retry_after_else_backs_off() {
        let mut g = gen();
        g.apply(Outcome::StepFailed {
            reason: "HTTP 429".into(),
            retryable: true,
            retry_after_secs: Some(3),
        });
        assert_eq!(g.retry_in_ms(), 3000, "Retry-After: 3");
        assert_eq!(g.next(), Next::CallPlanner);
        g.apply(Outcome::failed("HTTP 500", true));
        assert_eq!(
            g.retry_in_ms(),
            backoff_ms(1, None),
            "no header: exponential"
        );
        // A step that then goes through runs the next one at once.
        g.apply(Outcome::Planned(bp(1)));
        assert_eq!(g.retry_in_ms(), 0);
        // A failure that ends the generation schedules nothing.
        g.apply(Outcome::StepFailed {
            reason: "HTTP 401".into(),
            retryable: false,
            retry_after_secs: Some(3),
        });
        assert_eq!(g.retry_in_ms(), 0);
    }

    #[test]
    fn model_calls_add_up_in_the_totals_whatever_the_step_does() {
        let mut g = gen();
        let usage = Usage {
            input_tokens: 100,
            output_tokens: 20,
        };
        g.apply(Outcome::ModelCalled {
            usage,
            cost_micros: 7,
        });
        g.apply(Outcome::failed("cut", true));
        g.apply(Outcome::ModelCalled {
            usage,
            cost_micros: 7,
        });
        assert_eq!(
            g.totals,
            Totals {
                llm_calls: 2,
                input_tokens: 200,
                output_tokens: 40,
                cost_micros: 14
            }
        );
    }

    #[test]
    fn prompts_stored_during_a_step_are_kept_without_those_it_took() {
        let mut g = gen();
        g.enqueue("dark mode".into()).unwrap();
        // What `start` stored while the step ran: the queue it saw, plus one.
        let mut stored = g.clone();
        stored.enqueue("round corners".into()).unwrap();
        g.apply(Outcome::QueueTaken);
        g.apply(Outcome::QueueSeen {
            stored: stored.queued.clone(),
        });
        assert_eq!(g.folding, vec!["dark mode".to_owned()]);
        assert_eq!(g.queued, vec!["round corners".to_owned()]);
        // The next step took nothing: it keeps the whole stored queue.
        g.apply(Outcome::QueueSeen {
            stored: vec!["round corners".into(), "bigger font".into()],
        });
        assert_eq!(g.queued.len(), 2);
    }

    #[test]
    fn the_tool_loop_opens_with_the_folded_request_and_records_each_turn() {
        let mut g = Generation::follow_up(
            "g2".into(),
            "count by two".into(),
            Template::Static,
            Some(bp(1)),
            0,
        );
        g.enqueue("and reset".into()).unwrap();
        g.apply(Outcome::ToolLoopOpened {
            files: vec!["main.js".into()],
        });
        assert_eq!(g.request(), "count by two\nAlso: and reset");
        assert_eq!(g.transcript.len(), 2);
        assert!(g.transcript[1]
            .content
            .contains("count by two\nAlso: and reset"));
        assert!(g.transcript[1].content.contains("main.js"));
        assert!(g.queued.is_empty());
        // A retried round does not open it again.
        g.apply(Outcome::ToolLoopOpened { files: vec![] });
        assert_eq!(g.transcript.len(), 2);
        g.apply(Outcome::ToolRound {
            answer: r#"{"tool":"exec","command":"npm install ms"}"#.into(),
            reply: "npm install ms will run before the check".into(),
            command: Some("npm install ms".into()),
            finished: false,
        });
        assert_eq!(g.transcript.len(), 4);
        assert_eq!(g.transcript[2].role, "assistant");
        assert_eq!(g.commands, vec!["npm install ms".to_owned()]);
        g.apply(round(true));
        assert_eq!(
            g.next(),
            Next::Install {
                commands: vec!["npm install ms".into()]
            }
        );
        assert!(g.folding.is_empty());
    }

    #[test]
    fn edit_errors_reach_the_fixer_and_a_preview_is_published_once() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        g.apply(Outcome::PhaseWritten {
            commands: vec![],
            edit_errors: vec!["edit of a.js: no such file".into()],
        });
        assert_eq!(
            g.check_errors,
            vec!["edit of a.js: no such file".to_owned()]
        );
        g.apply(Outcome::PreviewPublished {
            url: "http://a/".into(),
        });
        g.apply(Outcome::PreviewPublished {
            url: "http://b/".into(),
        });
        assert_eq!(g.preview_url.as_deref(), Some("http://a/"));
    }

    #[test]
    fn queued_prompts_become_one_follow_up_once_done() {
        let mut g = gen();
        g.enqueue("dark mode".into()).unwrap();
        g.enqueue("round corners".into()).unwrap();
        assert_eq!(g.follow_up_prompt(), None, "not while it runs");
        g.apply(Outcome::Planned(bp(1)));
        g.apply(written(vec![]));
        g.apply(Outcome::Checked {
            errors: vec![],
            fix_rounds: MAX_FIX_ROUNDS,
        });
        g.apply(Outcome::Served { url: "/p/".into() });
        g.apply(Outcome::Snapshotted { version: 1 });
        assert_eq!(
            g.follow_up_prompt().as_deref(),
            Some("dark mode\nround corners")
        );
        let mut idle = gen();
        idle.apply(Outcome::Cancel);
        assert_eq!(idle.follow_up_prompt(), None);
    }

    #[test]
    fn a_stored_record_carries_its_version_and_reads_back() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        let text = g.to_stored();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["format"], STORED_VERSION);
        assert_eq!(Generation::from_stored(&text), Ok(g));
    }

    #[test]
    fn a_record_from_before_versions_migrates() {
        // The bare shape stored before records had a version, without its later fields.
        let v0 = r#"{"id":"g3","prompt":"a todo app","template":"static","step":{"step":"implement"},
            "blueprint":null,"phase":0,"attempts":1,"fix_round":0,"plan_errors":[],"check_errors":[],
            "unresolved":[],"commands":[],"queued":["dark"],"totals":{"llm_calls":1,"input_tokens":5,
            "output_tokens":6,"cost_micros":0},"preview_url":null,"version":null,"started_at":42}"#;
        let g = Generation::from_stored(v0).unwrap();
        assert_eq!(
            (g.id.as_str(), g.step.clone(), g.attempts),
            ("g3", Step::Implement, 1)
        );
        assert_eq!(g.queued, vec!["dark".to_owned()]);
        assert!(g.transcript.is_empty() && g.tested.is_empty());
    }

    #[test]
    fn an_unreadable_record_is_an_error_that_fails_its_generation() {
        let newer = r#"{"format":9,"generation":{"id":"g7","prompt":"p"}}"#;
        let broken =
            r#"{"format":1,"generation":{"id":"g8","prompt":"q","step":{"step":"teleport"}}}"#;
        for (text, id) in [
            (newer, Some("g7")),
            (broken, Some("g8")),
            ("{not json", None),
        ] {
            let e = Generation::from_stored(text).unwrap_err();
            assert_eq!(e.id.as_deref(), id, "{text}");
            let failed = e.clone().into_failed(5);
            assert!(
                matches!(&failed.step, Step::Failed { reason } if reason.contains("cannot be read")),
                "{failed:?}"
            );
            assert_eq!(failed.next(), Next::Idle);
        }
        let e = Generation::from_stored(newer).unwrap_err();
        assert!(e.reason.contains("format 9"), "{}", e.reason);
        assert_eq!(e.into_failed(0).prompt, "p");
    }
}

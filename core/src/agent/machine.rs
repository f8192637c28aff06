//! The generation pipeline as a pure state machine: `Generation::next` says what to do,
//! `Generation::apply` takes what happened. The room performs the effects (LLM calls, sandbox
//! calls, storage writes), persists the `Generation` after every `apply`, and drives one step
//! per alarm — so resuming after a crash is just calling `next` on the persisted state, and a
//! finished step (whose outcome was applied and persisted) is never run again.

use super::blueprint::Blueprint;
use crate::sandbox::Template;
use serde::{Deserialize, Serialize};

/// Plan attempts: the first, and one repair with the validation errors.
pub const MAX_PLAN_ATTEMPTS: u32 = 2;
/// Transient failures (5xx, 429, timeouts, truncated streams) tolerated per step.
pub const MAX_STEP_ATTEMPTS: u32 = 4;
/// Fix rounds per phase after a failing check.
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

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Planned(Blueprint),
    /// One tool round of a follow-up; `finished` when the model called `finish`.
    ToolRound {
        finished: bool,
    },
    PlanRejected(Vec<String>),
    /// Every file of the phase is written; `commands` were asked for.
    PhaseWritten {
        commands: Vec<String>,
    },
    Installed,
    /// The phase's checks are written (or the tester gave none usable).
    TestsWritten,
    Checked {
        errors: Vec<String>,
    },
    Fixed,
    Served {
        url: String,
    },
    Snapshotted {
        version: u64,
    },
    /// A step failed; `retryable` for transient failures.
    StepFailed {
        reason: String,
        retryable: bool,
    },
    Cancel,
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
        match (self.step.clone(), outcome) {
            (_, Outcome::Cancel) => self.goto(Step::Cancelled),
            (_, Outcome::StepFailed { reason, retryable }) => {
                self.attempts += 1;
                if !retryable || self.attempts >= MAX_STEP_ATTEMPTS {
                    self.goto(Step::Failed {
                        reason: format!("{} failed: {reason}", self.step.name()),
                    });
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
            (Step::Edit, Outcome::ToolRound { finished }) => {
                self.tool_rounds += 1;
                self.attempts = 0;
                if finished || self.tool_rounds >= super::tools::MAX_TOOL_ROUNDS {
                    self.folding.clear();
                    if self.commands.is_empty() {
                        self.written();
                    } else {
                        self.goto(Step::Install);
                    }
                }
            }
            (Step::Implement, Outcome::PhaseWritten { commands }) => {
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
            (Step::Check, Outcome::Checked { errors }) => {
                if errors.is_empty() {
                    self.phase_done();
                } else if self.fix_round < MAX_FIX_ROUNDS {
                    self.check_errors = errors;
                    self.goto(Step::Fix);
                } else {
                    // Out of fix rounds: keep going; the user sees what is still wrong.
                    self.unresolved.extend(errors);
                    self.phase_done();
                }
            }
            (Step::Fix, Outcome::Fixed) => {
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
    /// that step already carries some); returns how many were taken.
    pub fn take_queued(&mut self) -> usize {
        if !self.folding.is_empty() {
            return 0;
        }
        self.folding = std::mem::take(&mut self.queued);
        self.folding.len()
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn gen() -> Generation {
        Generation::new("g1".into(), "a todo app".into(), Template::Static, 0)
    }

    #[test]
    fn a_clean_run_goes_plan_phases_serve_snapshot_done() {
        let mut g = gen();
        assert_eq!(g.next(), Next::CallPlanner);
        g.apply(Outcome::Planned(bp(2)));
        assert_eq!(g.next(), Next::CallCoder { phase: 0 });
        g.apply(Outcome::PhaseWritten {
            commands: vec!["npm install zustand".into()],
        });
        assert_eq!(
            g.next(),
            Next::Install {
                commands: vec!["npm install zustand".into()]
            }
        );
        g.apply(Outcome::Installed);
        assert_eq!(g.next(), Next::Check { phase: 0 });
        g.apply(Outcome::Checked { errors: vec![] });
        assert_eq!(g.next(), Next::CallCoder { phase: 1 });
        g.apply(Outcome::PhaseWritten { commands: vec![] });
        assert_eq!(g.next(), Next::Check { phase: 1 });
        g.apply(Outcome::Checked { errors: vec![] });
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
        g.apply(Outcome::PhaseWritten {
            commands: vec!["npm install zustand".into()],
        });
        g.apply(Outcome::Installed);
        assert_eq!(g.next(), Next::CallTester { phase: 0 });
        g.apply(Outcome::TestsWritten);
        assert_eq!(g.next(), Next::Check { phase: 0 });
        // A failing check goes to the fixer and back to checking, not to the tester again.
        g.apply(Outcome::Checked {
            errors: vec!["Browser check \"Enter adds a task\" failed".into()],
        });
        assert_eq!(g.next(), Next::CallFixer { phase: 0 });
        g.apply(Outcome::Fixed);
        assert_eq!(g.next(), Next::Check { phase: 0 });
        g.apply(Outcome::Checked { errors: vec![] });
        // Phase 1 has no acceptance points: straight to the check.
        g.apply(Outcome::PhaseWritten { commands: vec![] });
        assert_eq!(g.next(), Next::Check { phase: 1 });
        assert_eq!(g.tested, vec![0]);
        // A follow-up runs the existing checks and writes none.
        let mut f = Generation::follow_up("g2".into(), "x".into(), Template::Static, Some(plan), 0);
        f.phase = 0;
        f.apply(Outcome::ToolRound { finished: true });
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
        g.apply(Outcome::PhaseWritten { commands: vec![] });
        for round in 0..MAX_FIX_ROUNDS {
            g.apply(Outcome::Checked {
                errors: vec![format!("error {round}")],
            });
            assert_eq!(g.next(), Next::CallFixer { phase: 0 });
            assert_eq!(g.check_errors, vec![format!("error {round}")]);
            g.apply(Outcome::Fixed);
            assert_eq!(g.next(), Next::Check { phase: 0 });
        }
        g.apply(Outcome::Checked {
            errors: vec!["still broken".into()],
        });
        assert_eq!(g.next(), Next::Serve, "out of rounds: go on");
        assert_eq!(g.unresolved, vec!["still broken".to_owned()]);
    }

    #[test]
    fn transient_failures_retry_the_same_step_then_fail() {
        let mut g = gen();
        g.apply(Outcome::Planned(bp(1)));
        for _ in 0..MAX_STEP_ATTEMPTS - 1 {
            g.apply(Outcome::StepFailed {
                reason: "HTTP 500".into(),
                retryable: true,
            });
            assert_eq!(g.next(), Next::CallCoder { phase: 0 });
        }
        g.apply(Outcome::StepFailed {
            reason: "HTTP 500".into(),
            retryable: true,
        });
        assert!(matches!(&g.step, Step::Failed { reason } if reason.contains("implementing")));
        let mut h = gen();
        h.apply(Outcome::StepFailed {
            reason: "HTTP 401".into(),
            retryable: false,
        });
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
        g.apply(Outcome::ToolRound { finished: false });
        assert_eq!(g.next(), Next::CallEditor);
        g.apply(Outcome::ToolRound { finished: true });
        assert_eq!(g.next(), Next::Check { phase: 1 });
        g.apply(Outcome::Checked { errors: vec![] });
        assert_eq!(g.next(), Next::Serve);
        let mut capped = Generation::follow_up("g3".into(), "x".into(), Template::Static, None, 0);
        for _ in 0..crate::agent::tools::MAX_TOOL_ROUNDS {
            capped.apply(Outcome::ToolRound { finished: false });
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
        g.apply(Outcome::PhaseWritten { commands: vec![] });
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
        assert_eq!(g.take_queued(), 1);
        g.enqueue("and round corners".into()).unwrap();
        // A retry of the step keeps what it carries and takes nothing new.
        g.apply(Outcome::StepFailed {
            reason: "cut".into(),
            retryable: true,
        });
        assert_eq!(g.take_queued(), 0);
        assert_eq!(g.folding, vec!["make it dark".to_owned()]);
        g.apply(Outcome::PhaseWritten { commands: vec![] });
        assert!(g.folding.is_empty(), "folded into that phase");
        assert_eq!(
            g.queued,
            vec!["and round corners".to_owned()],
            "waits for the next"
        );
    }
}

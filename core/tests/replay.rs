//! Replays recorded generations natively: every recording in `tests/replay/*.json` holds the
//! model's answers in call order and the sandbox's results, and this harness runs the
//! pipeline's decisions on them — the state machine (`machine`), the requests
//! (`prompts`, `roles`, `context`), what the answers do (`pipeline`, `tools`) and what the
//! checks say (`checks`) — with the tree in memory. It asserts the steps taken and the files
//! made, in milliseconds. The room's shell performs the same decisions between real effects;
//! recordings of real model runs belong here as fixtures.

use std::collections::{BTreeMap, VecDeque};

use kiln_core::agent::blueprint::placeholder_svg;
use kiln_core::agent::checks::{self, CheckFile, Ran, CHECKS_PATH};
use kiln_core::agent::context;
use kiln_core::agent::llm::{ChatMessage, Usage};
use kiln_core::agent::machine::{Generation, Next, Outcome};
use kiln_core::agent::npm::NpmInstall;
use kiln_core::agent::pipeline::{self, FileAnswer};
use kiln_core::agent::prompts;
use kiln_core::agent::roles::Ask;
use kiln_core::agent::tools::{self, ToolTree};
use kiln_core::path::ProjectPath;
use kiln_core::sandbox::Template;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recording {
    /// What the recording shows.
    about: String,
    prompt: String,
    template: Template,
    /// The model's answers, in call order.
    calls: VecDeque<Call>,
    /// The sandbox's results, in order: the template's compile check (one per check step)
    /// and the acceptance-check runner.
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxResult {
    /// `compile` or `checks`.
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
    /// Every path of the final tree.
    paths: Vec<String>,
    /// Final contents of these files.
    files: BTreeMap<String, String>,
    unresolved: Vec<String>,
}

/// The working tree in memory.
#[derive(Default)]
struct Tree(BTreeMap<String, String>);

impl ToolTree for Tree {
    type Error = std::convert::Infallible;
    fn files(&self) -> Result<Vec<(ProjectPath, u64)>, Self::Error> {
        Ok(self
            .0
            .iter()
            .map(|(p, c)| (ProjectPath::parse(p).unwrap(), c.len() as u64))
            .collect())
    }
    fn read(&self, path: &ProjectPath) -> Result<Option<String>, Self::Error> {
        Ok(self.0.get(path.as_str()).cloned())
    }
    fn write(&mut self, path: &ProjectPath, content: &str) -> Result<(), String> {
        self.0.insert(path.to_string(), content.to_owned());
        Ok(())
    }
}

impl Tree {
    fn paths(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// What the shell's `context_files` gives a prompt.
    fn quoted<'a>(&self, first: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
        context::select(first, &self.paths())
            .into_iter()
            .filter_map(|p| self.0.get(&p).map(|c| (p, c.clone())))
            .collect()
    }

    fn checks(&self) -> CheckFile {
        self.0
            .get(CHECKS_PATH)
            .and_then(|c| CheckFile::parse(c.as_bytes()).ok())
            .unwrap_or_default()
    }
}

struct Replay {
    name: String,
    recording: Recording,
    g: Generation,
    tree: Tree,
    steps: Vec<String>,
}

impl Replay {
    /// The next recorded answer, for a request that must be of kind `ask`.
    fn answer(&mut self, ask: Ask, messages: &[ChatMessage]) -> String {
        let call = self
            .recording
            .calls
            .pop_front()
            .unwrap_or_else(|| panic!("{}: no recorded answer left for {ask:?}", self.name));
        let kind = match ask {
            Ask::Plan => "plan",
            Ask::Edit => "edit",
            Ask::Code => "code",
            Ask::Test => "test",
            Ask::Fix => "fix",
        };
        assert_eq!(
            call.ask, kind,
            "{}: the pipeline asked another role",
            self.name
        );
        let request = ask.request("recorded".into(), messages.to_vec());
        if let Some(needle) = &call.asked {
            assert!(
                request.messages.iter().any(|m| m.content.contains(needle)),
                "{}: the {kind} request lacks {needle:?}",
                self.name
            );
        }
        self.g.apply(Outcome::ModelCalled {
            usage: Usage {
                input_tokens: 1,
                output_tokens: 1,
            },
            cost_micros: 0,
        });
        call.answer
    }

    fn sandbox(&mut self, purpose: &str) -> SandboxResult {
        let r = self
            .recording
            .sandbox
            .pop_front()
            .unwrap_or_else(|| panic!("{}: no sandbox result left for {purpose}", self.name));
        assert_eq!(
            r.purpose, purpose,
            "{}: the pipeline ran something else",
            self.name
        );
        r
    }

    /// A streamed file answer, fed in small pieces as a stream arrives.
    /// `Err` is the cut-off error (the step is retried).
    fn stream(&mut self, text: &str) -> Result<pipeline::Applied, String> {
        let mut answer = FileAnswer::new();
        for piece in text.as_bytes().chunks(7) {
            if answer.feed(&String::from_utf8_lossy(piece)).stop {
                break;
            }
        }
        match answer.finish() {
            Ok(events) => Ok(pipeline::apply_answer(&mut self.tree, events).unwrap()),
            Err(cut) => Err(cut),
        }
    }

    fn step(&mut self) -> Option<Outcome> {
        let g = self.g.clone();
        Some(match g.next() {
            Next::Idle => return None,
            Next::CallPlanner => {
                let messages = match self.g.plan_errors.is_empty() {
                    true => prompts::planner(&g.prompt, g.template),
                    false => prompts::plan_repair(
                        &g.prompt,
                        g.template,
                        "the previous answer",
                        &g.plan_errors,
                    ),
                };
                let text = self.answer(Ask::Plan, &messages);
                pipeline::planned(&text, g.template)
            }
            Next::CallEditor => {
                self.g.apply(Outcome::ToolLoopOpened {
                    files: self.tree.paths(),
                });
                let messages = self.g.transcript.clone();
                let text = self.answer(Ask::Edit, &messages);
                let result = tools::answer(&mut self.tree, &text).unwrap();
                Outcome::ToolRound {
                    answer: text,
                    reply: result.reply,
                    command: result.command,
                    finished: result.finished,
                }
            }
            Next::CallCoder { phase } => {
                let bp = g.blueprint.clone().unwrap();
                if phase == 0 {
                    for img in &bp.images {
                        self.tree.0.insert(
                            img.path.to_string(),
                            placeholder_svg(img, &bp.design.palette),
                        );
                    }
                }
                let files = self
                    .tree
                    .quoted(bp.phases[phase].files.iter().map(|p| p.as_str()));
                self.g.apply(Outcome::QueueTaken);
                let messages = prompts::coder(&bp, phase, &files, &self.g.folding);
                let text = self.answer(Ask::Code, &messages);
                match self.stream(&text) {
                    Ok(applied) => Outcome::PhaseWritten {
                        commands: applied.commands,
                        edit_errors: applied.edit_errors,
                    },
                    Err(cut) => Outcome::failed(cut, true),
                }
            }
            Next::Install { commands } => {
                for command in &commands {
                    assert!(
                        NpmInstall::parse(command).is_ok(),
                        "{}: {command}",
                        self.name
                    );
                }
                Outcome::Installed
            }
            Next::CallTester { phase } => {
                let bp = g.blueprint.clone().unwrap();
                let files = self
                    .tree
                    .quoted(bp.phases[phase].files.iter().map(|p| p.as_str()));
                let text = self.answer(Ask::Test, &prompts::tester(&bp, phase, &files));
                let mut file = self.tree.checks();
                pipeline::tested(&text, phase, &mut file);
                if !file.checks.is_empty() {
                    self.tree.0.insert(CHECKS_PATH.into(), file.to_pretty());
                }
                Outcome::TestsWritten
            }
            Next::Check { .. } => {
                let compiled = self.sandbox("compile");
                let compile_errors: Vec<String> =
                    checks::compile_error(&ran(&compiled)).into_iter().collect();
                let file = self.tree.checks();
                let verdict = (compile_errors.is_empty() && !file.checks.is_empty()).then(|| {
                    let r = self.sandbox("checks");
                    checks::interpret_run(&ran(&r), file.checks.len())
                });
                let found = pipeline::checked(compile_errors, verdict.map(|v| (&file, v)));
                Outcome::Checked {
                    errors: found.errors,
                }
            }
            Next::CallFixer { phase } => {
                let bp = g.blueprint.clone().unwrap();
                let all = self.tree.paths();
                let files = self.tree.quoted(all.iter().map(String::as_str));
                let checks_now = self.tree.checks().to_pretty();
                let change = g
                    .is_follow_up()
                    .then_some((g.prompt.as_str(), checks_now.as_str()));
                let messages = prompts::fixer(&bp, phase, &g.check_errors, &files, change);
                let text = self.answer(Ask::Fix, &messages);
                match self.stream(&text) {
                    Ok(applied) => Outcome::Fixed {
                        edit_errors: applied.edit_errors,
                    },
                    Err(cut) => Outcome::failed(cut, true),
                }
            }
            Next::Serve => Outcome::Served {
                url: "http://p-replay.preview.localhost/".into(),
            },
            Next::Snapshot => Outcome::Snapshotted { version: 1 },
        })
    }
}

fn ran(r: &SandboxResult) -> Ran<'_> {
    Ran {
        output: &r.output,
        exit_code: Some(r.exit_code),
        timed_out: false,
        oom_killed: false,
    }
}

fn replay(name: &str, text: &str) {
    let recording: Recording =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}: not a recording: {e}"));
    assert!(!recording.about.is_empty());
    let g = Generation::new("g1".into(), recording.prompt.clone(), recording.template, 0);
    let calls = recording.calls.len() as u32;
    let mut r = Replay {
        name: name.to_owned(),
        recording,
        g,
        tree: Tree::default(),
        steps: vec![],
    };
    // A bound on steps, so a recording that makes the pipeline loop fails instead of hanging.
    for _ in 0..200 {
        let Some(outcome) = r.step() else { break };
        r.g.apply(outcome);
        r.steps.push(r.g.step.name().to_owned());
    }
    let expect = &r.recording.expect;
    assert_eq!(r.steps, expect.steps, "{name}: steps");
    assert_eq!(r.tree.paths(), expect.paths, "{name}: paths");
    for (path, content) in &expect.files {
        assert_eq!(r.tree.0.get(path), Some(content), "{name}: {path}");
    }
    assert_eq!(r.g.unresolved, expect.unresolved, "{name}: unresolved");
    assert!(r.recording.calls.is_empty(), "{name}: answers left unasked");
    assert!(
        r.recording.sandbox.is_empty(),
        "{name}: sandbox results left unused"
    );
    assert_eq!(r.g.totals.llm_calls, calls, "{name}: every call counted");
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
        r#"{"results":[{"name":"clicking + adds one","passed":true},{"name":"the count survives a reload","passed":true}]}"#
    );
    let outcome = std::panic::catch_unwind(|| replay("changed", &recording.to_string()));
    assert!(outcome.is_err());
}

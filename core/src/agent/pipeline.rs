//! The steps' own decisions: from a model's answer or a sandbox's result to the outcome the
//! state machine takes. The room's shell calls these between its effects; the replay test
//! (`core/tests/replay.rs`) drives the same functions from recordings, so what the pipeline
//! does with an answer is tested natively.

use super::blueprint::Blueprint;
use super::checks::{self, CheckFile, CheckReport, RunVerdict};
use super::file_stream::{apply_edit, FileParser, StreamEvent};
use super::machine::Outcome;
use super::profile::Profile;
use super::repeat::RepeatGuard;
use super::tools::ToolTree;
use crate::sandbox::Template;

/// The planner's answer: a valid blueprint (for the generation's template, with its entry
/// files) or why it was rejected.
pub fn planned(answer: &str, template: Template, profile: Profile) -> Outcome {
    match Blueprint::from_model(answer) {
        Ok(mut blueprint) => {
            blueprint.template = template;
            blueprint.ensure_entry_files();
            if profile == Profile::Small {
                blueprint.into_single_file();
            }
            Outcome::Planned(blueprint)
        }
        Err(errors) => Outcome::PlanRejected(errors),
    }
}

/// A streamed answer of file blocks (the coder's, the fixer's), fed as it arrives: events go
/// out to clients at once, and the stream is stopped where the model loops.
#[derive(Default)]
pub struct FileAnswer {
    parser: FileParser,
    guard: RepeatGuard,
    kept: Vec<StreamEvent>,
}

/// What one piece of an answer gave.
pub struct Fed {
    /// To broadcast, in order (a loop's last event included: it closes what it reopened).
    pub events: Vec<StreamEvent>,
    /// The model is repeating itself: stop the stream.
    pub stop: bool,
}

impl FileAnswer {
    pub fn new() -> FileAnswer {
        FileAnswer::default()
    }

    pub fn feed(&mut self, text: &str) -> Fed {
        let mut events = Vec::new();
        for event in self.parser.feed(text.as_bytes()) {
            let looped = self.guard.observe(&event);
            events.push(event.clone());
            if looped {
                return Fed { events, stop: true };
            }
            self.kept.push(event);
        }
        Fed {
            events,
            stop: false,
        }
    }

    /// The answer stopped because it looped (its files so far are kept).
    pub fn looped(&self) -> bool {
        self.guard.looped()
    }

    /// The events to apply once the stream is over; `Err` when a block was left open (the
    /// answer was cut off: nothing is applied and the step is retried).
    pub fn finish(mut self) -> Result<Vec<StreamEvent>, String> {
        if self.guard.looped() {
            return Ok(self.kept);
        }
        for event in self.parser.finish() {
            if let StreamEvent::Error { message } = event {
                return Err(message);
            }
            self.kept.push(event);
        }
        Ok(self.kept)
    }
}

/// What an answer's blocks did to the tree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub written: Vec<String>,
    pub commands: Vec<String>,
    /// Edits that did not apply and writes that were refused, for the fixer.
    pub edit_errors: Vec<String>,
}

/// Applies a finished answer's blocks to the tree, in order (an edit sees the files the same
/// answer wrote before it).
pub fn apply_answer<T: ToolTree>(
    tree: &mut T,
    events: Vec<StreamEvent>,
) -> Result<Applied, T::Error> {
    let mut applied = Applied::default();
    for event in events {
        match event {
            StreamEvent::FileEnd { path, content } => match tree.write(&path, &content) {
                Ok(()) => applied.written.push(path.to_string()),
                Err(e) => applied.edit_errors.push(format!("write of {path}: {e}")),
            },
            StreamEvent::Edit {
                path,
                search,
                replace,
            } => match tree.read(&path)? {
                None => applied
                    .edit_errors
                    .push(format!("edit of {path}: no such file")),
                Some(current) => match apply_edit(&current, &search, &replace) {
                    Ok(updated) => match tree.write(&path, &updated) {
                        Ok(()) => applied.written.push(path.to_string()),
                        Err(e) => applied.edit_errors.push(format!("edit of {path}: {e}")),
                    },
                    Err(e) => applied.edit_errors.push(format!("edit of {path}: {e}")),
                },
            },
            StreamEvent::Command { command } => applied.commands.push(command),
            _ => {}
        }
    }
    Ok(applied)
}

/// The tester's answer for `phase` put into the project's check file; returns the names of
/// the checks written and why others were dropped. Unusable checks cost the phase its checks,
/// never the generation.
pub fn tested(answer: &str, phase: usize, file: &mut CheckFile) -> (Vec<String>, Vec<String>) {
    let (written, dropped) = match checks::from_model(answer, phase) {
        Ok(r) => r,
        Err(e) => (vec![], vec![e]),
    };
    let names = written.iter().map(|c| c.name.clone()).collect();
    if !written.is_empty() {
        file.set_phase(phase, written);
    }
    (names, dropped)
}

/// What a check found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckFindings {
    pub errors: Vec<String>,
    pub reports: Vec<CheckReport>,
    /// Why the acceptance checks said nothing (no browser, the runner broke).
    pub skipped: Option<String>,
}

/// The check's result: the compile errors, then, when there are none, what the acceptance
/// checks' run says about `file`.
pub fn checked(
    compile_errors: Vec<String>,
    run: Option<(&CheckFile, RunVerdict)>,
) -> CheckFindings {
    let mut findings = CheckFindings {
        errors: compile_errors,
        ..Default::default()
    };
    if let Some((file, verdict)) = run {
        match verdict {
            RunVerdict::Reports(reports) => {
                findings.errors.extend(checks::failures(file, &reports));
                findings.reports = reports;
            }
            RunVerdict::Unavailable(why) => findings.skipped = Some(why),
            RunVerdict::AppDoesNotRun(why) => findings.errors.push(why),
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ProjectPath;
    use std::collections::BTreeMap;

    #[derive(Default)]
    struct Tree(BTreeMap<String, String>);

    impl ToolTree for Tree {
        type Error = std::convert::Infallible;
        fn files(&self) -> Result<Vec<(ProjectPath, u64)>, Self::Error> {
            Ok(vec![])
        }
        fn read(&self, path: &ProjectPath) -> Result<Option<String>, Self::Error> {
            Ok(self.0.get(path.as_str()).cloned())
        }
        fn write(&mut self, path: &ProjectPath, content: &str) -> Result<(), String> {
            if path.as_str() == "refused.js" {
                return Err("over the project's size limit".into());
            }
            self.0.insert(path.to_string(), content.to_owned());
            Ok(())
        }
    }

    fn answer(text: &str, piece: usize) -> (Vec<StreamEvent>, Result<Vec<StreamEvent>, String>) {
        let mut a = FileAnswer::new();
        let mut live = Vec::new();
        for chunk in text.as_bytes().chunks(piece) {
            let fed = a.feed(std::str::from_utf8(chunk).unwrap());
            live.extend(fed.events);
            if fed.stop {
                break;
            }
        }
        (live, a.finish())
    }

    #[test]
    fn an_answer_applies_its_files_then_edits_in_order_and_reports_what_did_not() {
        let text = "<file path=\"a.js\">\nlet a = 1\n</file>\n\
            <edit path=\"a.js\">\n<<<<<<< SEARCH\nlet a = 1\n=======\nlet a = 2\n>>>>>>> REPLACE\n</edit>\n\
            <edit path=\"b.js\">\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n</edit>\n\
            <file path=\"refused.js\">\nbig\n</file>\n<command>npm install ms</command>\n";
        let (_, events) = answer(text, 5);
        let mut tree = Tree::default();
        let applied = apply_answer(&mut tree, events.unwrap()).unwrap();
        assert_eq!(tree.0["a.js"], "let a = 2\n");
        assert_eq!(applied.written, vec!["a.js", "a.js"]);
        assert_eq!(applied.commands, vec!["npm install ms"]);
        assert_eq!(
            applied.edit_errors,
            vec![
                "edit of b.js: no such file".to_owned(),
                "write of refused.js: over the project's size limit".to_owned()
            ]
        );
    }

    #[test]
    fn a_cut_answer_applies_nothing_and_a_looping_one_keeps_its_closed_files() {
        let (_, cut) = answer("<file path=\"a.js\">\nlet a = 1\n", 4);
        assert!(cut.is_err());
        let file = "<file path=\"a.js\">\nlet a = 1\n</file>\n";
        let (live, looped) = answer(&format!("{file}{file}{file}"), 3);
        let kept = looped.unwrap();
        let ends = |evs: &[StreamEvent]| {
            evs.iter()
                .filter(|e| matches!(e, StreamEvent::FileEnd { .. }))
                .count()
        };
        assert_eq!(ends(&kept), 1, "the repeat is not applied");
        assert_eq!(
            ends(&live),
            2,
            "but its end went out, closing the reopened file"
        );
    }

    #[test]
    fn a_plan_gets_the_generations_template_and_its_entry_files() {
        let plan = r##"{"name":"x","summary":"y","template":"react-vite",
            "design":{"style":"s","palette":[{"name":"a","hex":"#000000"},{"name":"b","hex":"#ffffff"}],"typography":"t","sections":[]},
            "images":[],"phases":[{"name":"p","goal":"g","files":["style.css"],"acceptance":[]}]}"##;
        match planned(plan, Template::Static, Profile::Large) {
            Outcome::Planned(bp) => {
                assert_eq!(bp.template, Template::Static);
                let files: Vec<&str> = bp.phases[0].files.iter().map(|p| p.as_str()).collect();
                assert!(
                    files.contains(&"index.html") && files.contains(&"main.js"),
                    "{files:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            planned("no plan", Template::Static, Profile::Large),
            Outcome::PlanRejected(_)
        ));
    }

    #[test]
    fn compile_errors_come_first_and_a_run_adds_its_failures_or_says_why_it_was_skipped() {
        let mut file = CheckFile::default();
        let (names, dropped) = tested(
            r##"{"checks":[{"name":"adds","steps":[{"do":"click","target":"#plus"},{"do":"see","text":"1","target":"#count"}]}]}"##,
            0,
            &mut file,
        );
        assert_eq!(names, vec!["adds".to_owned()], "{dropped:?}");
        let failed = CheckReport {
            name: "adds".into(),
            passed: false,
            step: Some(1),
            error: Some("no #plus".into()),
            page_text: None,
            console_errors: vec![],
        };
        let found = checked(vec![], Some((&file, RunVerdict::Reports(vec![failed]))));
        assert_eq!(found.errors.len(), 1);
        assert!(found.errors[0].starts_with("Browser check \"adds\" failed"));
        let skipped = checked(
            vec![],
            Some((&file, RunVerdict::Unavailable("no chromium".into()))),
        );
        assert_eq!(
            (skipped.errors.len(), skipped.skipped.as_deref()),
            (0, Some("no chromium"))
        );
        assert_eq!(
            checked(vec!["TS2304".into()], None).errors,
            vec!["TS2304".to_owned()]
        );
        let (names, dropped) = tested("not json", 1, &mut file);
        assert!(names.is_empty() && dropped.len() == 1);
        assert_eq!(
            file.checks.len(),
            1,
            "the phase's unusable checks change nothing"
        );
    }
}

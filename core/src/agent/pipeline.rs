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
use crate::path::ProjectPath;
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
    /// The small profile's answers end once the app is written (`ending_with_the_app`).
    ends_with_app: bool,
    closed: Vec<(String, String)>,
    ended_at: Option<String>,
}

/// What one piece of an answer gave.
pub struct Fed {
    /// To broadcast, in order (a loop's last event included: it closes what it reopened).
    pub events: Vec<StreamEvent>,
    /// The model is repeating itself, or has written what is asked: stop the stream.
    pub stop: bool,
}

impl FileAnswer {
    pub fn new() -> FileAnswer {
        FileAnswer::default()
    }

    /// An answer that ends at the first block after `src/App.tsx` which nothing written so
    /// far imports, or which is Kiln's scaffolding (refused anyway). A 1.5B model follows its
    /// app with files nobody asked for — index.html, index.css, the persistence helper again
    /// — and at ~8 tokens/s those are a third of some answers' time (the recordings of
    /// 88b9210: `ends_at` in core/tests/recorded).
    pub fn ending_with_the_app() -> FileAnswer {
        FileAnswer {
            ends_with_app: true,
            ..FileAnswer::default()
        }
    }

    pub fn feed(&mut self, text: &str) -> Fed {
        let mut events = Vec::new();
        for event in self.parser.feed(text.as_bytes()) {
            if let StreamEvent::FileStart { path } = &event {
                if self.needless(path.as_str()) {
                    self.ended_at = Some(path.as_str().to_owned());
                    return Fed { events, stop: true };
                }
            }
            let looped = self.guard.observe(&event);
            events.push(event.clone());
            if looped {
                return Fed { events, stop: true };
            }
            if let StreamEvent::FileEnd { path, content } = &event {
                self.closed
                    .push((path.as_str().to_owned(), content.clone()));
            }
            self.kept.push(event);
        }
        Fed {
            events,
            stop: false,
        }
    }

    fn needless(&self, path: &str) -> bool {
        use super::autofix::names_file;
        // A file the app imports and the answer has not written yet may still come.
        let pending = || {
            self.closed.iter().any(|(from, content)| {
                super::autofix::relative_specs(content)
                    .into_iter()
                    .any(|spec| {
                        !names_file(from, spec, "src/lib/persist.ts")
                            && !self.closed.iter().any(|(p, _)| names_file(from, spec, p))
                    })
            })
        };
        self.ends_with_app
            && self.closed.iter().any(|(p, _)| p == "src/App.tsx")
            && !pending()
            // How a model adds a dependency.
            && path != "package.json"
            && (super::context::is_scaffolding(path)
                || !self
                    .closed
                    .iter()
                    .any(|(from, content)| super::autofix::imports(from, content, path)))
    }

    /// The answer stopped because it looped (its files so far are kept).
    pub fn looped(&self) -> bool {
        self.guard.looped()
    }

    /// Where the answer was ended once the app was written (the block not read), if it was.
    pub fn ended_at(&self) -> Option<&str> {
        self.ended_at.as_deref()
    }

    /// The events to apply once the stream is over; `Err` when a block was left open (the
    /// answer was cut off: nothing is applied and the step is retried).
    pub fn finish(mut self) -> Result<Vec<StreamEvent>, String> {
        if self.guard.looped() || self.ended_at.is_some() {
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

/// Where a script holding JSX must be written for Vite to transform it: a `.ts` file as
/// `.tsx`, a `.js` file as `.jsx` (recorded, 73f13ec: the expense tracker's `src/lib/chart.ts`,
/// a component whose every JSX line was a syntax error to tsc and a 500 from Vite, unrepaired
/// in three rounds). Imports name a module without its extension, so they find the new
/// path. `None` for anything else, and outside `src/`.
pub fn jsx_path(path: &ProjectPath, content: &str) -> Option<ProjectPath> {
    let p = path.as_str();
    if !p.starts_with("src/") || p.ends_with(".d.ts") || !has_jsx(content) {
        return None;
    }
    let new = if let Some(stem) = p.strip_suffix(".ts") {
        format!("{stem}.tsx")
    } else if let Some(stem) = p.strip_suffix(".js") {
        format!("{stem}.jsx")
    } else {
        return None;
    };
    ProjectPath::parse(&new).ok()
}

/// A closing tag or fragment (`</div>`, `</>`) or a self-closing element (`<Bar />`):
/// TypeScript's generics and comparisons write neither.
fn has_jsx(content: &str) -> bool {
    let closing = content.match_indices("</").any(|(at, _)| {
        content[at + 2..]
            .chars()
            .next()
            .is_some_and(|c| c == '>' || c.is_ascii_alphabetic())
    });
    closing
        || content.lines().any(|l| {
            l.match_indices("/>").any(|(at, _)| {
                l[..at].rfind('<').is_some_and(|open| {
                    l[open + 1..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic())
                })
            })
        })
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
    /// The app does not build or does not start: nothing of it could be tried.
    pub broken: bool,
}

impl CheckFindings {
    /// How far the checked app is from working, to keep the best of a small model's tries:
    /// one that does not build or start is worse than any that runs, and one that shows
    /// nothing or throws on load (Kiln's first smoke check) worse than one that only fails
    /// checks. Counting error strings instead ranked a try that no longer built (one tsc
    /// output) level with one whose page worked but for one check (recorded, 73f13ec: the
    /// pomodoro timer ended on a try importing a package that is not installed).
    pub fn badness(&self) -> u32 {
        let n = self.errors.len() as u32;
        if self.broken {
            return 1_000 + n;
        }
        let blank = self
            .reports
            .iter()
            .any(|r| !r.passed && r.name == checks::smoke().name);
        let failed = self.reports.iter().filter(|r| !r.passed).count() as u32;
        if blank {
            500 + failed
        } else {
            failed.max(n.min(1))
        }
    }
}

/// `CheckFindings::badness` in words, for the people watching.
pub fn how_bad(badness: u32) -> String {
    match badness {
        1_000.. => "it does not build or start".into(),
        500.. => "its page shows nothing or throws".into(),
        1 => "1 check failing".into(),
        n => format!("{n} checks failing"),
    }
}

/// The check's result: the compile errors, then, when there are none, what the acceptance
/// checks' run says about `file`.
pub fn checked(
    compile_errors: Vec<String>,
    run: Option<(&CheckFile, RunVerdict)>,
) -> CheckFindings {
    let mut findings = CheckFindings {
        broken: !compile_errors.is_empty(),
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
            RunVerdict::AppDoesNotRun(why) => {
                findings.errors.push(why);
                findings.broken = true;
            }
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
    fn a_one_file_answer_ends_at_the_first_file_its_app_does_not_import() {
        let app = "<file path=\"src/App.tsx\">\nimport { Clock } from './Clock'\nimport {\n  Card,\n} from \"./components\"\nexport default function App() {}\n</file>\n";
        let clock = "<file path=\"src/Clock.tsx\">\nexport function Clock() {}\n</file>\n";
        let card = "<file path=\"src/components/Card.tsx\">\nexport function Card() {}\n</file>\n";
        let pkg = "<file path=\"package.json\">\n{}\n</file>\n";
        let extra = "<file path=\"src/index.css\">\nbody {}\n</file>\n";
        let helper = "<file path=\"src/lib/persist.ts\">\nexport {}\n</file>\n";
        let clock2 = clock.replace("{}", "{ return null }");
        let text = format!("{clock}{app}{clock2}{card}{pkg}{extra}{helper}");
        for piece in [3, 64] {
            let mut a = FileAnswer::ending_with_the_app();
            let mut live = Vec::new();
            for chunk in text.as_bytes().chunks(piece) {
                let fed = a.feed(std::str::from_utf8(chunk).unwrap());
                live.extend(fed.events);
                if fed.stop {
                    break;
                }
            }
            assert_eq!(a.ended_at(), Some("src/index.css"));
            let written: Vec<String> = a
                .finish()
                .unwrap()
                .iter()
                .filter_map(|e| match e {
                    StreamEvent::FileEnd { path, .. } => Some(path.as_str().to_owned()),
                    _ => None,
                })
                .collect();
            // A file before the app is kept whoever imports it; after it, what it imports.
            assert_eq!(
                written,
                [
                    "src/Clock.tsx",
                    "src/App.tsx",
                    "src/Clock.tsx",
                    "src/components/Card.tsx",
                    "package.json"
                ]
            );
            assert!(
                !live.iter().any(|e| matches!(e, StreamEvent::FileStart { path } if path.as_str() == "src/index.css")),
                "the needless file is never announced"
            );
        }
        // A file the app imports, not written yet, may follow the needless one.
        let text = format!("{app}{extra}{clock}{card}{helper}");
        let mut a = FileAnswer::ending_with_the_app();
        assert!(a.feed(&text).stop);
        assert_eq!(a.ended_at(), Some("src/lib/persist.ts"));
        // An ordinary answer reads on.
        let mut a = FileAnswer::new();
        assert!(!a.feed(&format!("{app}{extra}")).stop);
        let ends = a
            .finish()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, StreamEvent::FileEnd { .. }))
            .count();
        assert_eq!(ends, 2);
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

    #[test]
    fn a_script_holding_jsx_is_written_where_vite_transforms_it() {
        let path = |p: &str| ProjectPath::parse(p).unwrap();
        // The recorded answer's file (73f13ec, the expense tracker), as it began.
        let chart = "import React from 'react'\n\nexport function Bars({ totals }: { totals: Record<string, number> }) {\n  const max = Math.max(1, ...Object.values(totals))\n  return (\n    <div className=\"space-y-1\">\n      {Object.entries(totals).map(([k, v]) => (\n        <div key={k} style={{ width: `${(v / max) * 100}%` }} />\n      ))}\n    </div>\n  )\n}\n";
        assert_eq!(
            jsx_path(&path("src/lib/chart.ts"), chart),
            Some(path("src/lib/chart.tsx"))
        );
        assert_eq!(
            jsx_path(
                &path("src/Row.js"),
                "export const Row = () => <li>one</li>\n"
            ),
            Some(path("src/Row.jsx"))
        );
        assert_eq!(
            jsx_path(
                &path("src/Dot.js"),
                "export default () => <Dot size={2} />\n"
            ),
            Some(path("src/Dot.jsx"))
        );
        // Generics, comparisons and paths are not JSX; configs and declarations stay.
        let ts = "export function last<T>(xs: Array<T>): T | undefined {\n  return xs.length < 1 ? undefined : xs[xs.length - 1] // a/b\n}\n";
        assert_eq!(jsx_path(&path("src/lib/last.ts"), ts), None);
        assert_eq!(jsx_path(&path("vite.config.ts"), chart), None);
        assert_eq!(jsx_path(&path("src/types.d.ts"), chart), None);
        assert_eq!(jsx_path(&path("src/App.tsx"), chart), None);
        // The recorded answer's own file.
        let v: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/recorded/73f13ec-2-expense-tracker.json"
        ))
        .unwrap();
        let answer = v["calls"][0]["answer"].as_str().unwrap();
        let open = "<file path=\"src/lib/chart.ts\">\n";
        let start = answer.find(open).unwrap() + open.len();
        let end = start + answer[start..].find("</file>").unwrap();
        assert_eq!(
            jsx_path(&path("src/lib/chart.ts"), &answer[start..end]),
            Some(path("src/lib/chart.tsx"))
        );
    }

    #[test]
    fn a_try_that_does_not_build_is_worse_than_any_that_runs() {
        let file = CheckFile::default();
        let report = |name: &str, passed: bool| CheckReport {
            name: name.into(),
            passed,
            step: None,
            error: None,
            page_text: None,
            console_errors: vec![],
        };
        let ran = |reports: Vec<CheckReport>| {
            checked(vec![], Some((&file, RunVerdict::Reports(reports)))).badness()
        };
        let smoke = checks::smoke().name;
        let works = ran(vec![report(&smoke, true), report("enter adds", true)]);
        let one_check = ran(vec![report(&smoke, true), report("enter adds", false)]);
        let blank = ran(vec![report(&smoke, false), report("enter adds", false)]);
        let no_build = checked(
            vec!["src/App.tsx(4,37): error TS2307: Cannot find module '@material-ui/core'".into()],
            None,
        )
        .badness();
        let no_start = checked(
            vec![],
            Some((&file, RunVerdict::AppDoesNotRun("vite: 500".into()))),
        )
        .badness();
        assert_eq!(works, 0);
        assert!(
            works < one_check && one_check < blank && blank < no_build,
            "{one_check} {blank} {no_build}"
        );
        assert!(blank < no_start);
    }
}

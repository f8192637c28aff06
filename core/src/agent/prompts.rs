//! Prompt builders. Written for small local models first (Qwen2.5-Coder-1.5B follows a
//! `<file path="…">` format exactly, and JSON with a schema): short, concrete, one job per
//! call, and everything the model needs in the prompt — it cannot look around.

use super::blueprint::Blueprint;
use super::llm::ChatMessage;
use super::profile::Profile;
use crate::sandbox::Template;

/// Budget for existing file contents quoted in one prompt (bytes).
const CONTEXT_BUDGET: usize = 24 * 1024;

/// Stable hooks for the acceptance checks, which find elements by them.
const TESTIDS: &str = "Give every input, button, list item and displayed result a short \
data-testid attribute, written as a plain JSX attribute that needs no import \
(e.g. <button data-testid=\"add\">; others: \"new-task\", \"task\", \"total\"). \
Never import test libraries.";

const FORMAT: &str = "Write each file completely, in this exact format, one block per file:\n\
<file path=\"relative/path.ext\">\n\
…the whole file…\n\
</file>\n\
To add an npm package, write <command>npm install NAME</command>.\n\
No explanations are needed; only the blocks are used.";

fn template_notes(t: Template, profile: Profile) -> &'static str {
    match (t, profile) {
        // A small model writes one self-contained file far better than several that must
        // agree on props and exports (the baseline run's failures were mostly between files).
        (Template::ReactVite, Profile::Small) => {
            "Template `react-vite`: React 19 + TypeScript + Vite + Tailwind CSS. \
            src/main.tsx is given (it renders <App/>; never write it). Write the whole app in \
            ONE file, src/App.tsx: `export default function App()` plus any small components \
            as functions in the same file, above App. Use plain elements (<button>, <input>, \
            <ul>) with Tailwind classes: no UI component library (no Material UI, Tailwind UI, \
            Bootstrap or Chakra) and no package the app can work without. \
            Import every React hook you use: import { useState } from 'react'. Define every \
            type you use in that file; import nothing from files that do not exist, and no \
            package for ids (use Date.now()). For data that must survive a reload use the \
            given hook: import { usePersistentState } from './lib/persist', e.g. with \
            `type Item = { id: number; name: string }`: \
            const [items, setItems] = usePersistentState<Item[]>('items', []) — it works \
            like useState. No other files."
        }
        (Template::Static, _) => {
            "Template `static`: plain HTML, CSS and JavaScript served as files. \
            It starts with index.html (loads style.css, then store.js, then main.js), style.css \
            and main.js. store.js is given: load(key, fallback) and save(key, value) keep \
            data in localStorage across reloads; index.html must keep loading it before \
            main.js. No build step and no npm packages."
        }
        (Template::ReactVite, Profile::Large) => {
            "Template `react-vite`: React 19 + TypeScript + Vite + Tailwind CSS. \
            It starts with index.html, src/main.tsx (given: it renders <App/>; never write \
            it), src/App.tsx and src/index.css (Tailwind directives). src/App.tsx holds \
            `export default function App()`. Put components in src/components/, use \
            Tailwind classes for styling and useState for state. Define every type you use \
            (shared ones exported from src/types.ts). For data that must survive a reload \
            use the given hook: import { usePersistentState } from './lib/persist' (from \
            src/App.tsx; '../lib/persist' from src/components/), e.g. with \
            `type Expense = { id: number; amount: number }`: \
            const [expenses, setExpenses] = usePersistentState<Expense[]>('expenses', []) — it \
            works like useState. Keep the app's state in App.tsx and pass it to components as \
            props. src/App.tsx must import and render your components. Import every React hook \
            you use. The code must type-check (tsc --noEmit)."
        }
    }
}

/// The file that makes the app appear: what a phase that forgets it leaves blank.
fn entry_file(t: Template) -> &'static str {
    match t {
        Template::Static => "index.html and main.js",
        Template::ReactVite => "src/App.tsx",
    }
}

pub fn planner(prompt: &str, template: Template, profile: Profile) -> Vec<ChatMessage> {
    let phases = match profile {
        Profile::Small => format!(
            "Make exactly 1 phase; it writes {} and nothing else, and lists concrete \
             acceptance points a tester can check in a browser, e.g. \"pressing Enter in the \
             input adds the task to the list\".",
            entry_file(template)
        ),
        Profile::Large => format!(
            "Make 1 to 3 small phases; each lists the files it writes (at most 6) and \
             concrete acceptance points a tester can check in a browser, e.g. \"pressing \
             Enter in the input adds the task to the list\". The first phase must write {} \
             (the page people see) so the app works after it.",
            entry_file(template)
        ),
    };
    let system = format!(
        "You are the planner of an app builder. Turn the user's request into a blueprint: \
         a JSON object with name, summary, template, design (style, palette of #rrggbb \
         colours, typography, sections), images (SVG placeholders under public/, may be \
         empty) and phases. {phases} Cover every feature the user asked for with an \
         acceptance point, including persistence and live updates when asked.\n{}\nUse \
         template \"{}\". Answer with the JSON object only.",
        template_notes(template, profile),
        template.as_str()
    );
    vec![ChatMessage::system(system), ChatMessage::user(prompt)]
}

/// A second planner call after the first answer did not validate.
pub fn plan_repair(
    prompt: &str,
    template: Template,
    profile: Profile,
    previous: &str,
    errors: &[String],
) -> Vec<ChatMessage> {
    let mut m = planner(prompt, template, profile);
    m.push(ChatMessage::assistant(previous));
    m.push(ChatMessage::user(format!(
        "That blueprint is invalid:\n- {}\nAnswer again with the corrected JSON object only.",
        errors.join("\n- ")
    )));
    m
}

fn brief(bp: &Blueprint) -> String {
    let palette: Vec<String> = bp
        .design
        .palette
        .iter()
        .map(|s| format!("{} {}", s.name, s.hex))
        .collect();
    let mut s = format!(
        "App: {} — {}\nStyle: {}\nPalette: {}\nTypography: {}\n",
        bp.name,
        bp.summary,
        bp.design.style,
        palette.join(", "),
        bp.design.typography
    );
    if !bp.design.sections.is_empty() {
        s += &format!("Sections: {}\n", bp.design.sections.join(", "));
    }
    for img in &bp.images {
        s += &format!(
            "Image {} ({}x{}): {}\n",
            img.path, img.width, img.height, img.description
        );
    }
    s
}

/// Quotes existing files, newest-relevant first, within the context budget.
fn quote_files(files: &[(String, String)]) -> String {
    let mut out = String::new();
    for (path, content) in files {
        let block = format!("<file path=\"{path}\">\n{content}\n</file>\n");
        if out.len() + block.len() > CONTEXT_BUDGET {
            out += &format!("(file {path} exists; not shown)\n");
            continue;
        }
        out += &block;
    }
    out
}

/// Implement one phase. `files` are the current project files worth showing (the phase's
/// own files first); `queued` are user messages that arrived during the generation.
pub fn coder(
    bp: &Blueprint,
    profile: Profile,
    phase: usize,
    files: &[(String, String)],
    queued: &[String],
    example: Option<&super::examples::Example>,
) -> Vec<ChatMessage> {
    let ph = &bp.phases[phase];
    let system = format!(
        "You are a senior front-end engineer. You write complete, working files.\n{}\n{TESTIDS}\n{FORMAT}",
        template_notes(bp.template, profile)
    );
    // The example first, the request after it: a small model follows what it read last, and
    // shown the example after the request it wrote the example back (recorded, 4babc6e).
    let mut user = String::new();
    if let Some(ex) = example {
        user += &format!(
            "An example of a DIFFERENT app, only for its patterns (state, events, effects, \
             persistence, data-testid attributes):\n<example>\n{}</example>\n\nNow the app \
             to write, which is not that one.\n",
            ex.code
        );
    }
    user += &brief(bp);
    user += &format!(
        "\nPhase {} of {}: {}\nGoal: {}\nWrite these files: {}\n",
        phase + 1,
        bp.phases.len(),
        ph.name,
        ph.goal,
        ph.files
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !ph.acceptance.is_empty() {
        user += "It must satisfy:\n";
        for a in &ph.acceptance {
            user += &format!("- {a}\n");
        }
    }
    // What Kiln's own checks of the request will try (`probes`), in plain words: told up
    // front, a small model's first answer can meet them instead of a repair round.
    if profile == Profile::Small {
        let probes = super::probes::for_request(&format!("{}: {}", bp.name, bp.summary));
        if !probes.is_empty() {
            user += "Kiln will try it in a browser; make sure that:\n";
            for c in &probes {
                user += &format!("- {}\n", c.name);
            }
        }
        for hint in request_hints(&format!("{} {}", bp.name, bp.summary)) {
            user += hint;
            user += "\n";
        }
    }
    if !queued.is_empty() {
        user += "The user also asked, while you were working:\n";
        for q in queued {
            user += &format!("- {q}\n");
        }
    }
    if !files.is_empty() {
        user += &format!("\nCurrent files:\n{}", quote_files(files));
    }
    vec![ChatMessage::system(system), ChatMessage::user(user)]
}

/// The brief, what the phase must do, and what the check found: what every repair is told.
fn what_failed(bp: &Blueprint, phase: usize, errors: &[String]) -> String {
    let ph = &bp.phases[phase];
    let mut user = brief(bp);
    user += &format!("\nThe phase \"{}\" must satisfy:\n", ph.name);
    for a in &ph.acceptance {
        user += &format!("- {a}\n");
    }
    user += "\nThe check failed with:\n";
    for e in errors {
        user += &format!("- {}\n", e.chars().take(2000).collect::<String>());
    }
    user
}

/// The small profile's first repairs: only the wrong lines changed, as edit blocks, with the
/// lines tsc names quoted under their errors. Asked for whole files, a small model wrote its
/// file back unchanged (six rounds of six, recorded at 2231c80 and 4babc6e), while the
/// recorded errors were one or two lines of an otherwise working app (4babc6e+, the todo
/// list: `{ id: Date.now(), title, completed: false }` with no `title` in scope).
pub fn edit_fix(
    bp: &Blueprint,
    profile: Profile,
    phase: usize,
    errors: &[String],
    files: &[(String, String)],
) -> Vec<ChatMessage> {
    let system = format!(
        "You fix bugs in a small web app. {}\n{TESTIDS}\nChange only the lines that are \
         wrong. Answer with one edit block per wrong place, in this exact format:\n\
         <edit path=\"src/App.tsx\">\n<<<<<<< SEARCH\n…the wrong lines, copied exactly…\n\
         =======\n…the lines as they should be…\n>>>>>>> REPLACE\n</edit>\n\
         No explanations are needed; only the blocks are used.",
        template_notes(bp.template, profile)
    );
    let mut user = what_failed(bp, phase, errors);
    let named = super::autofix::parse_tsc(&errors.join("\n"));
    let mut pointed = String::new();
    for d in named.iter().take(6) {
        let line = files
            .iter()
            .find(|(p, _)| *p == d.file)
            .and_then(|(_, t)| t.lines().nth(d.line.saturating_sub(1)));
        if let Some(line) = line {
            pointed += &format!(
                "{} line {}: `{}`\n  {}\n",
                d.file,
                d.line,
                line.trim(),
                d.message
            );
        }
    }
    if !pointed.is_empty() {
        user += &format!("\nThe lines with errors:\n{pointed}");
    }
    user += &format!("\nCurrent files:\n{}", quote_files(files));
    vec![ChatMessage::system(system), ChatMessage::user(user)]
}

/// What the small model gets wrong on its own about a kind of app: the package to use for
/// what React has not (left to itself it named `react-qrcode` and called the `qrcode`
/// package's API on it in every try of 73f13ec-5 and 92ccf79-5; Kiln installs an imported
/// package), a convention it did not keep (a6c4162-7's board: "To do, In progress,
/// Completed"), and a layout for a kind of app it never got working (the converters of runs
/// 3–10: no field the check found, or a loop).
fn request_hints(request: &str) -> Vec<&'static str> {
    const HINTS: &[(&str, &str)] = &[
        (
            "kanban",
            "A kanban board's columns, unless the request names others, are To do, In \
             progress and Done.",
        ),
        (
            "converter",
            "A unit converter has one button per kind of unit the request names (Length, \
             Weight, Temperature), which picks the kind shown; the kind shown has two number \
             fields (°C then °F, mile then km, kg then lb), typing in either updates the other \
             at once, as the example's grams and ounces do, and a line of text under them says \
             the conversion (100 °C = 212 °F).",
        ),
        (
            "qr",
            "For the QR code use the package qrcode.react: import { QRCodeCanvas } from \
         'qrcode.react', then <QRCodeCanvas value={text} size={200} /> draws it on a canvas \
         as the text changes; for a PNG download, the canvas's toDataURL('image/png') is the \
         link's href.",
        ),
    ];
    let lower = request.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    HINTS
        .iter()
        .filter(|(w, _)| words.contains(w))
        .map(|(_, hint)| *hint)
        .collect()
}

/// The small profile's repair of a new app: the phase's files written again from the start,
/// told what the last version did wrong, without that version to copy (`files` are the
/// others, e.g. the persistence helper).
pub fn rewrite(
    bp: &Blueprint,
    profile: Profile,
    phase: usize,
    errors: &[String],
    files: &[(String, String)],
    example: Option<&super::examples::Example>,
) -> Vec<ChatMessage> {
    let mut m = coder(bp, profile, phase, &[], &[], example);
    let user = &mut m[1].content;
    *user += "\nThe last version of this app failed with:\n";
    for e in errors {
        *user += &format!("- {}\n", e.chars().take(1200).collect::<String>());
    }
    *user += "Write it again, whole, from the start, so that this does not happen.\n";
    if !files.is_empty() {
        *user += &format!("\nCurrent files:\n{}", quote_files(files));
    }
    m
}

/// Write the browser checks for one phase's acceptance points, against the code as written
/// (so the selectors match it).
pub fn tester(bp: &Blueprint, phase: usize, files: &[(String, String)]) -> Vec<ChatMessage> {
    let ph = &bp.phases[phase];
    let system = "You write acceptance checks for a web app: for each acceptance point, one \
        check that a browser runs on a freshly opened app with empty storage. A check is a \
        name, its steps and what it expects at the end. Steps:\n\
        {\"do\":\"click\",\"target\":SEL} {\"do\":\"fill\",\"target\":SEL,\"value\":TEXT} \
        {\"do\":\"press\",\"key\":\"Enter\",\"target\":SEL} {\"do\":\"select\",\"target\":SEL,\"value\":TEXT} \
        {\"do\":\"drag\",\"target\":SEL,\"to\":SEL} {\"do\":\"wait\",\"ms\":N} {\"do\":\"reload\"} \
        {\"do\":\"see\",\"text\":TEXT} {\"do\":\"see\",\"text\":TEXT,\"target\":SEL} \
        {\"do\":\"not_see\",\"text\":TEXT} {\"do\":\"count\",\"target\":SEL,\"equals\":N} \
        {\"do\":\"value\",\"target\":SEL,\"equals\":TEXT}\n\
        SEL is a CSS selector taken from the code, best [data-testid=...]; or text=Label for \
        a button by its label. Every check starts on the freshly opened app with NO data: \
        first create what it needs the way a person would (fill an input, press Enter or \
        click Add), then act; then `expect` proves the acceptance point with see, not_see, \
        count or value steps. `reload` keeps storage: use it to check that data survives a \
        reload. Example:\n\
        {\"checks\":[{\"name\":\"Enter adds a task\",\"steps\":[\
        {\"do\":\"fill\",\"target\":\"[data-testid=new-task]\",\"value\":\"Buy milk\"},\
        {\"do\":\"press\",\"key\":\"Enter\",\"target\":\"[data-testid=new-task]\"}],\
        \"expect\":[{\"do\":\"count\",\"target\":\"[data-testid=task]\",\"equals\":1},\
        {\"do\":\"see\",\"text\":\"Buy milk\",\"target\":null}]}]}\n\
        Answer with the JSON object only.";
    let mut user = format!("App: {} — {}\nAcceptance points:\n", bp.name, bp.summary);
    for a in &ph.acceptance {
        user += &format!("- {a}\n");
    }
    user += &format!("\nThe code:\n{}", quote_files(files));
    vec![ChatMessage::system(system), ChatMessage::user(user)]
}

/// Fix what the check reported. For a follow-up, `change` is what the user just asked for
/// and `checks` the current checks file: a check the change makes out of date is rewritten
/// rather than the change undone.
pub fn fixer(
    bp: &Blueprint,
    profile: Profile,
    phase: usize,
    errors: &[String],
    files: &[(String, String)],
    change: Option<(&str, &str)>,
) -> Vec<ChatMessage> {
    let system = format!(
        "You fix bugs in a small web app. {}\n{TESTIDS}\nA failing browser check means \
         the app does not do what the user asked: change the app so it does (keep the \
         data-testid attributes the check uses). Rewrite only the files that need \
         changes. {FORMAT}",
        template_notes(bp.template, profile)
    );
    let mut user = what_failed(bp, phase, errors);
    if let Some((request, checks)) = change {
        user += &format!(
            "\nThe user has just asked: \"{request}\". A browser check written before that \
             request may now be out of date. If a failing check contradicts the request, \
             do not undo the request: rewrite {} with that check changed to match it \
             (same JSON format). Otherwise fix the app.\n<file path=\"{}\">\n{checks}\n</file>\n",
            super::checks::CHECKS_PATH,
            super::checks::CHECKS_PATH,
        );
    }
    user += &format!("\nCurrent files:\n{}", quote_files(files));
    vec![ChatMessage::system(system), ChatMessage::user(user)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bp() -> Blueprint {
        serde_json::from_value(serde_json::json!({
            "name": "Todo", "summary": "tasks", "template": "react-vite",
            "design": {"style": "clean", "palette": [{"name":"bg","hex":"#ffffff"},{"name":"ink","hex":"#111111"}], "typography": "system-ui", "sections": ["list"]},
            "images": [],
            "phases": [{"name": "Core", "goal": "add and tick", "files": ["src/App.tsx"], "acceptance": ["Enter adds a task"]}]
        })).unwrap()
    }

    #[test]
    fn the_planner_asks_for_json_for_the_template() {
        let m = planner("a todo list", Template::Static, Profile::Large);
        assert_eq!(m.len(), 2);
        assert!(m[0].content.contains("JSON") && m[0].content.contains("\"static\""));
        assert_eq!(m[1].content, "a todo list");
        let r = plan_repair(
            "a todo list",
            Template::Static,
            Profile::Large,
            "{}",
            &["name is empty".into()],
        );
        assert_eq!(r.len(), 4);
        assert!(r[3].content.contains("name is empty"));
    }

    #[test]
    fn a_small_models_first_repairs_are_edits_of_the_lines_tsc_names() {
        // Recorded: 92ccf79, the todo list's one real error.
        let app = "export default function App() {\n  const text = 'a'\n  setTodos([...todos, { id: Date.now(), title, completed: false }])\n}\n";
        let files = [("src/App.tsx".to_owned(), app.to_owned())];
        let err = "src/App.tsx(3,43): error TS18004: No value exists in scope for the shorthand property 'title'. Either declare one or provide an initializer.\n";
        let m = edit_fix(&bp(), Profile::Small, 0, &[err.into()], &files);
        assert!(
            m[0].content.contains("<<<<<<< SEARCH")
                && m[0].content.contains("Change only the lines")
        );
        let u = &m[1].content;
        assert!(u.contains("src/App.tsx line 3: `setTodos([...todos, { id: Date.now(), title, completed: false }])`"), "{u}");
        assert!(u.contains("<file path=\"src/App.tsx\">"));
        // What the model answers in that format is read as an edit of the file.
        let answer = "<edit path=\"src/App.tsx\">\n<<<<<<< SEARCH\n  setTodos([...todos, { id: Date.now(), title, completed: false }])\n=======\n  setTodos([...todos, { id: Date.now(), title: text, completed: false }])\n>>>>>>> REPLACE\n</edit>\n";
        let mut fa = super::super::pipeline::FileAnswer::new();
        fa.feed(answer);
        let events = fa.finish().unwrap();
        assert!(events.iter().any(|e| matches!(e, super::super::file_stream::StreamEvent::Edit { path, .. } if path.as_str() == "src/App.tsx")));
    }

    #[test]
    fn a_small_models_repair_is_a_rewrite_told_what_failed_without_the_old_file() {
        let persist = (
            "src/lib/persist.ts".to_owned(),
            "export function usePersistentState() {}".to_owned(),
        );
        let m = rewrite(
            &bp(),
            Profile::Small,
            0,
            &["TS1192: no default export".into()],
            &[persist],
            None,
        );
        let u = &m[1].content;
        assert!(m[0].content.contains("ONE file, src/App.tsx"));
        assert!(u.contains("Enter adds a task") && u.contains("TS1192: no default export"));
        assert!(u.contains("from the start"));
        assert!(u.contains("src/lib/persist.ts") && !u.contains("<file path=\"src/App.tsx\">"));
    }

    #[test]
    fn a_small_coder_is_told_the_package_for_a_qr_code() {
        let bp = Blueprint::from_request(
            "QR code maker: type text or a URL, see its QR code, download it as PNG.",
            Template::ReactVite,
        );
        let u = &coder(&bp, Profile::Small, 0, &[], &[], None)[1].content;
        assert!(
            u.contains("import { QRCodeCanvas } from 'qrcode.react'"),
            "{u}"
        );
        let u = &coder(&bp, Profile::Large, 0, &[], &[], None)[1].content;
        assert!(!u.contains("qrcode.react"), "{u}");
        assert!(request_hints("a square of squares").is_empty());
        assert!(
            request_hints("Unit converter: length, weight and temperature")[0]
                .contains("°C then °F")
        );
        assert!(
            request_hints("Kanban board: three columns")[0].contains("To do, In progress and Done")
        );
    }

    #[test]
    fn a_small_coder_is_told_what_kilns_checks_of_the_request_will_try() {
        let request = "Todo list: add tasks with Enter, tick them done, filter all/active/done; the list survives a reload.";
        let bp = Blueprint::from_request(request, Template::ReactVite);
        let u = coder(&bp, Profile::Small, 0, &[], &[], None)[1]
            .content
            .clone();
        let told = u
            .split_once("Kiln will try it in a browser; make sure that:\n")
            .unwrap()
            .1;
        for c in crate::agent::probes::for_request(request) {
            assert!(told.contains(&format!("- {}\n", c.name)), "{u}");
        }
        // The large profile's tester writes its own checks.
        let u = coder(&bp, Profile::Large, 0, &[], &[], None)[1]
            .content
            .clone();
        assert!(!u.contains("Kiln will try it"), "{u}");
    }

    #[test]
    fn a_small_models_fresh_try_reads_the_example_first_then_what_failed() {
        let ex = &crate::agent::examples::EXAMPLES[0];
        let m = rewrite(
            &bp(),
            Profile::Small,
            0,
            &["the page does not name \"done\"".into()],
            &[],
            Some(ex),
        );
        let u = &m[1].content;
        let (at_example, at_request, at_failure) = (
            u.find(ex.code).unwrap(),
            u.find("App: Todo").unwrap(),
            u.find("does not name").unwrap(),
        );
        assert!(at_example < at_request && at_request < at_failure, "{u}");
    }

    #[test]
    fn the_small_coder_reads_the_example_first_and_the_request_after_it() {
        let ex = &crate::agent::examples::EXAMPLES[0];
        let u = &coder(&bp(), Profile::Small, 0, &[], &[], Some(ex))[1].content;
        let (at_example, at_request) = (u.find(ex.code).unwrap(), u.find("App: Todo").unwrap());
        assert!(at_example < at_request, "{u}");
        assert!(u.contains("DIFFERENT app"));
        assert!(!coder(&bp(), Profile::Small, 0, &[], &[], None)[1]
            .content
            .contains("<example>"));
    }

    #[test]
    fn the_coder_prompt_carries_the_phase_acceptance_and_format() {
        let m = coder(
            &bp(),
            Profile::Large,
            0,
            &[("src/App.tsx".into(), "export {}".into())],
            &["dark mode".into()],
            None,
        );
        let u = &m[1].content;
        for needle in [
            "Phase 1 of 1",
            "Enter adds a task",
            "src/App.tsx",
            "dark mode",
            "#ffffff",
        ] {
            assert!(u.contains(needle), "{needle} missing");
        }
        assert!(m[0].content.contains("<file path="));
    }

    #[test]
    fn the_tester_prompt_gives_the_step_format_the_points_and_the_code() {
        let m = tester(
            &bp(),
            0,
            &[(
                "src/App.tsx".into(),
                "<input data-testid=\"new-task\"/>".into(),
            )],
        );
        assert!(m[0].content.contains("\"do\":\"fill\""));
        assert!(m[0].content.contains("reload"));
        assert!(m[1].content.contains("- Enter adds a task"));
        assert!(m[1].content.contains("data-testid=\"new-task\""));
        // The example in the prompt is itself a valid check.
        let example = &m[0].content[m[0].content.find("{\"checks\"").unwrap()..];
        let example = &example[..example.find("\nAnswer").unwrap()];
        let (ok, dropped) = super::super::checks::from_model(example, 0).unwrap();
        assert_eq!((ok.len(), dropped.len()), (1, 0));
    }

    #[test]
    fn a_small_model_is_asked_for_one_phase_and_one_file() {
        let small = planner("a todo list", Template::ReactVite, Profile::Small);
        assert!(small[0].content.contains("exactly 1 phase"));
        assert!(small[0].content.contains("ONE file, src/App.tsx"));
        assert!(!small[0].content.contains("src/components/"));
        let large = planner("a todo list", Template::ReactVite, Profile::Large);
        assert!(large[0].content.contains("1 to 3 small phases"));
        assert!(large[0].content.contains("src/components/"));
        let c = coder(&bp(), Profile::Small, 0, &[], &[], None);
        assert!(c[0].content.contains("No other files."));
    }

    #[test]
    fn quoted_files_respect_the_budget() {
        let big = "x".repeat(CONTEXT_BUDGET);
        let m = fixer(
            &bp(),
            Profile::Large,
            0,
            &["TS2304".into()],
            &[("a.ts".into(), big), ("b.ts".into(), "small".into())],
            None,
        );
        assert!(!m[1].content.contains("just asked"));
        let f = fixer(
            &bp(),
            Profile::Large,
            0,
            &[],
            &[],
            Some(("count by two", "{\"checks\":[]}")),
        );
        assert!(f[1].content.contains("asked: \"count by two\""));
        assert!(f[1].content.contains("<file path=\".kiln/checks.json\">"));
        assert!(m[1].content.contains("(file a.ts exists; not shown)"));
        assert!(m[1].content.contains("<file path=\"b.ts\">"));
        assert!(m[1].content.contains("TS2304"));
    }
}

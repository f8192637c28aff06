//! Acceptance checks: small browser tests, one per acceptance point of the blueprint, that the
//! agent writes after a phase and the sandbox runs in Chromium (`/opt/kiln/check.mjs`).
//!
//! Small models miss requirements far more often than they crash, so the fix loop works
//! against these checks, not only against build errors. The checks are a short list of
//! declarative steps rather than test code: a 1.5B model fills in `{"do":"fill",…}` reliably,
//! where it writes broken Playwright scripts. They live in the project as
//! [`CHECKS_PATH`], so the user sees what was verified and later changes are checked against
//! them too.

use serde::{Deserialize, Serialize};

pub const CHECKS_PATH: &str = ".kiln/checks.json";
pub const MAX_CHECKS_PER_PHASE: usize = 12;
pub const MAX_STEPS: usize = 20;
pub const MAX_WAIT_MS: u32 = 5000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CheckFile {
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// The acceptance point it verifies.
    pub name: String,
    /// Set by Kiln: the phase whose acceptance point this is.
    #[serde(default)]
    pub phase: usize,
    pub steps: Vec<CheckStep>,
}

/// One step. `target` is a Playwright selector: CSS (`[data-testid=add]`, `input`), `text=Add`,
/// or `role=button[name="Add"]`. Every check starts on a freshly opened app with empty storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum CheckStep {
    /// Opens a path of the app (default `/`); a check starts with the app open.
    Open {
        #[serde(default)]
        path: Option<String>,
    },
    /// Reloads the page (storage survives: the persistence check).
    Reload,
    Click {
        target: String,
    },
    Fill {
        target: String,
        value: String,
    },
    Press {
        key: String,
        #[serde(default)]
        target: Option<String>,
    },
    Select {
        target: String,
        value: String,
    },
    Drag {
        target: String,
        to: String,
    },
    Wait {
        ms: u32,
    },
    /// The text is visible (inside `target`, if given).
    See {
        text: String,
        #[serde(default)]
        target: Option<String>,
    },
    NotSee {
        text: String,
        #[serde(default)]
        target: Option<String>,
    },
    /// Exactly `equals` elements match `target`.
    Count {
        target: String,
        #[serde(deserialize_with = "lenient_u32")]
        equals: u32,
    },
    /// An input's value.
    Value {
        target: String,
        #[serde(deserialize_with = "lenient_string")]
        equals: String,
    },
    /// The page shows something (text, an image, a control) and raised no uncaught error:
    /// Kiln's own smoke check, run for every app (`smoke`).
    Renders,
    /// Every visible text field is filled and every visible button clicked (at most 12),
    /// and none of it raises an uncaught error (`smoke`).
    Explore,
    /// Each word is on the page: in its text, a label, a placeholder, a title, an option or
    /// a control's name (`mentions`, from the request's lists: `coverage`).
    Mentions {
        words: Vec<String>,
    },
}

// Small models write `"equals": "2"` for a count and `"equals": 100` for a value.
fn lenient_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| serde::de::Error::custom("equals must be a whole number"))
}

fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(serde::de::Error::custom("equals must be text")),
    }
}

impl CheckStep {
    /// How the step reads in a failure report for the fixer.
    pub fn describe(&self) -> String {
        match self {
            CheckStep::Open { path } => format!("open {}", path.as_deref().unwrap_or("/")),
            CheckStep::Reload => "reload the page".into(),
            CheckStep::Click { target } => format!("click {target}"),
            CheckStep::Fill { target, value } => format!("fill {target} with {value:?}"),
            CheckStep::Press { key, target } => match target {
                Some(t) => format!("press {key} in {t}"),
                None => format!("press {key}"),
            },
            CheckStep::Select { target, value } => format!("select {value:?} in {target}"),
            CheckStep::Drag { target, to } => format!("drag {target} onto {to}"),
            CheckStep::Wait { ms } => format!("wait {ms} ms"),
            CheckStep::See { text, target } => match target {
                Some(t) => format!("see {text:?} in {t}"),
                None => format!("see {text:?}"),
            },
            CheckStep::NotSee { text, target } => match target {
                Some(t) => format!("not see {text:?} in {t}"),
                None => format!("not see {text:?}"),
            },
            CheckStep::Count { target, equals } => format!("count {target} == {equals}"),
            CheckStep::Value { target, equals } => format!("value of {target} == {equals:?}"),
            CheckStep::Renders => "the page shows something and raises no error".into(),
            CheckStep::Explore => {
                "fill every text field and click every button, raising no error".into()
            }
            CheckStep::Mentions { words } => format!("find {} on the page", words.join(", ")),
        }
    }

    fn problems(&self) -> Option<String> {
        let strings: Vec<&str> = match self {
            CheckStep::Open { path } => path.iter().map(String::as_str).collect(),
            CheckStep::Reload
            | CheckStep::Wait { .. }
            | CheckStep::Renders
            | CheckStep::Explore => vec![],
            CheckStep::Mentions { words } => words.iter().map(String::as_str).collect(),
            CheckStep::Click { target } | CheckStep::Count { target, .. } => vec![target],
            CheckStep::Fill { target, value }
            | CheckStep::Select { target, value }
            | CheckStep::Value {
                target,
                equals: value,
            } => vec![target, value],
            CheckStep::Press { key, target } => {
                let mut v = vec![key.as_str()];
                v.extend(target.as_deref());
                v
            }
            CheckStep::Drag { target, to } => vec![target, to],
            CheckStep::See { text, target } | CheckStep::NotSee { text, target } => {
                let mut v = vec![text.as_str()];
                v.extend(target.as_deref());
                v
            }
        };
        if let CheckStep::Wait { ms } = self {
            if *ms > MAX_WAIT_MS {
                return Some(format!("wait is at most {MAX_WAIT_MS} ms"));
            }
        }
        if let CheckStep::Open { path: Some(p) } = self {
            if !p.starts_with('/') || p.contains("://") {
                return Some(format!("open path {p:?} must start with /"));
            }
        }
        if strings.iter().any(|s| s.len() > 300) {
            return Some("a selector or text is longer than 300 characters".into());
        }
        let needs_text = matches!(
            self,
            CheckStep::See { .. } | CheckStep::NotSee { .. } | CheckStep::Press { .. }
        );
        if needs_text && strings.first().is_some_and(|s| s.trim().is_empty()) {
            return Some("empty text".into());
        }
        let targets = match self {
            CheckStep::Click { target }
            | CheckStep::Fill { target, .. }
            | CheckStep::Select { target, .. }
            | CheckStep::Count { target, .. }
            | CheckStep::Value { target, .. } => vec![target.as_str()],
            CheckStep::Drag { target, to } => vec![target.as_str(), to.as_str()],
            _ => vec![],
        };
        if targets.iter().any(|t| t.trim().is_empty()) {
            return Some("empty target".into());
        }
        None
    }
}

impl Check {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.chars().count() > 300 {
            return Err("a check needs a name of 1 to 300 characters".into());
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(format!(
                "check {:?} needs 1 to {MAX_STEPS} steps",
                self.name
            ));
        }
        let asserts = self.steps.iter().any(|s| {
            matches!(
                s,
                CheckStep::See { .. }
                    | CheckStep::NotSee { .. }
                    | CheckStep::Count { .. }
                    | CheckStep::Value { .. }
                    | CheckStep::Renders
                    | CheckStep::Explore
                    | CheckStep::Mentions { .. }
            )
        });
        if !asserts {
            return Err(format!(
                "check {:?} asserts nothing (add see, not_see, count or value)",
                self.name
            ));
        }
        for (i, s) in self.steps.iter().enumerate() {
            if let Some(p) = s.problems() {
                return Err(format!("check {:?} step {}: {p}", self.name, i + 1));
            }
        }
        Ok(())
    }
}

/// Parses the tester's answer (JSON, possibly fenced or with prose around it). Invalid checks
/// are dropped with a reason rather than failing the lot: one bad check must not cost the
/// others. The phase index is stamped on each.
pub fn from_model(text: &str, phase: usize) -> Result<(Vec<Check>, Vec<String>), String> {
    let start = text.find('{').ok_or("no JSON object in the answer")?;
    let end = text.rfind('}').ok_or("no JSON object in the answer")?;
    if end < start {
        return Err("no JSON object in the answer".into());
    }
    let raw: serde_json::Value =
        serde_json::from_str(&text[start..=end]).map_err(|e| format!("invalid JSON: {e}"))?;
    let items = raw
        .get("checks")
        .and_then(|c| c.as_array())
        .ok_or("the answer has no \"checks\" array")?;
    let (mut ok, mut dropped) = (Vec::new(), Vec::new());
    for item in items.iter().take(MAX_CHECKS_PER_PHASE) {
        // The model writes what must hold at the end apart (`expect`, see `json_schema`).
        let mut item = item.clone();
        if let Some(serde_json::Value::Array(expect)) =
            item.as_object_mut().and_then(|o| o.remove("expect"))
        {
            match item.get_mut("steps") {
                Some(serde_json::Value::Array(steps)) => steps.extend(expect),
                _ => item["steps"] = serde_json::Value::Array(expect),
            }
        }
        match serde_json::from_value::<Check>(item) {
            Ok(mut c) => match c.validate() {
                Ok(()) => {
                    c.phase = phase;
                    ok.push(c);
                }
                Err(e) => dropped.push(e),
            },
            Err(e) => dropped.push(format!("unreadable check: {e}")),
        }
    }
    Ok((ok, dropped))
}

/// The smoke check Kiln runs first for every app, whatever the tester wrote: the app opens,
/// shows something and raises no uncaught error. A blank page or a crash on load is what
/// breaks an app outright; no model can get this check wrong.
pub fn smoke() -> Check {
    Check {
        name: "the app opens and shows its page without errors".into(),
        phase: 0,
        steps: vec![CheckStep::Renders],
    }
}

/// The second smoke check: every control can be used without the page raising an error (a
/// handler that throws is what "a button does nothing" usually is).
pub fn smoke_controls() -> Check {
    Check {
        name: "its fields and buttons can be used without errors".into(),
        phase: 0,
        steps: vec![CheckStep::Explore],
    }
}

/// Kiln's third check, where the request has lists: the page names each of their items
/// (`coverage::named_words`) — the filter buttons, the fields, the units a person looks for.
pub fn mentions(words: &[String]) -> Check {
    Check {
        name: format!(
            "the page names what the request lists: {}",
            words.join(", ")
        ),
        phase: 0,
        steps: vec![CheckStep::Mentions {
            words: words.to_vec(),
        }],
    }
}

/// The runner's flag for `mentions`: `--mentions=<words, comma-separated>`.
pub const MENTIONS_FLAG: &str = "--mentions=";

/// What the runner runs with `--smoke` (and `--mentions=` when `words` has any): the smoke
/// checks, the mentions check, then `file`'s, in this order.
pub fn with_smoke(file: &CheckFile, words: &[String]) -> CheckFile {
    let mut checks = vec![smoke(), smoke_controls()];
    if !words.is_empty() {
        checks.push(mentions(words));
    }
    checks.extend(file.checks.iter().cloned());
    CheckFile { checks }
}

/// The runner's flag that puts `smoke()` before the file's checks.
pub const SMOKE_FLAG: &str = "--smoke";

impl CheckFile {
    pub fn parse(bytes: &[u8]) -> Result<CheckFile, String> {
        let f: CheckFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        for c in &f.checks {
            c.validate()?;
        }
        Ok(f)
    }

    /// Replaces the checks of `phase` with `checks`, keeping the other phases' in order.
    pub fn set_phase(&mut self, phase: usize, checks: Vec<Check>) {
        self.checks.retain(|c| c.phase != phase);
        self.checks.extend(checks);
        self.checks.sort_by_key(|c| c.phase);
    }

    pub fn to_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// What the runner reports for one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CheckReport {
    pub name: String,
    pub passed: bool,
    /// 1-based index of the failing step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub error: Option<String>,
    /// The page's visible text when it failed (truncated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub page_text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub console_errors: Vec<String>,
}

/// The runner's whole answer on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunReport {
    pub results: Vec<CheckReport>,
}

/// One line per failed check, with what the check did, for the fixer.
pub fn failure_text(check: &Check, r: &CheckReport) -> String {
    let mut s = format!("Browser check \"{}\" failed", r.name);
    if let Some(i) = r.step {
        if let Some(step) = check.steps.get(i.saturating_sub(1)) {
            s += &format!(" at step {i} ({})", step.describe());
        }
    }
    s += &format!(": {}", r.error.as_deref().unwrap_or("failed"));
    let steps: Vec<String> = check.steps.iter().map(CheckStep::describe).collect();
    s += &format!("\n  The check does: {}", steps.join("; "));
    if let Some(t) = &r.page_text {
        let t: String = t.chars().take(600).collect();
        s += &format!("\n  Visible text then: {t:?}");
    }
    for e in r.console_errors.iter().take(5) {
        s += &format!(
            "\n  Console error: {}",
            e.chars().take(300).collect::<String>()
        );
    }
    let seen: Vec<&str> = r
        .error
        .iter()
        .chain(&r.console_errors)
        .map(String::as_str)
        .collect();
    if let Some(name) = seen.iter().find_map(|e| component_called_with_new(e)) {
        s += &format!(
            "\n  {name} is a React component, not a class: render it in the JSX as <{name} … />, \
             never new {name}(…)."
        );
    }
    s
}

/// `QRCodeCanvas is not a constructor`: a component called with `new` (recorded, a6c4162-5
/// and ce54a22-5: `new QRCodeCanvas({ value, size })` in a download handler, in three tries
/// of two runs). The name, where it reads as a component's.
fn component_called_with_new(error: &str) -> Option<&str> {
    let before = error.split(" is not a constructor").next()?;
    if before.len() == error.len() {
        return None;
    }
    let name = before
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()?;
    (name.starts_with(|c: char| c.is_ascii_uppercase()) && name.len() > 1).then_some(name)
}

/// The JSON schema for providers that support `response_format: json_schema`.
/// Tighter than validation, so a grammar-enforcing provider bounds the answer's length. One
/// object per step kind with every field it needs required (optional ones nullable, as strict
/// mode wants): with one loose object, small models left out `count`'s `equals` and lost
/// whole checks to it. Each check ends with `expect`, at least one assertion, which
/// `from_model` appends to its steps: a check that asserts nothing cannot be written.
pub fn json_schema() -> serde_json::Value {
    use serde_json::json;
    let str_ = json!({ "type": "string", "maxLength": 160 });
    let opt = json!({ "type": ["string", "null"], "maxLength": 160 });
    let kinds: [(&str, Vec<(&str, &serde_json::Value)>); 12] = [
        ("open", vec![("path", &opt)]),
        ("reload", vec![]),
        ("click", vec![("target", &str_)]),
        ("fill", vec![("target", &str_), ("value", &str_)]),
        ("press", vec![("key", &str_), ("target", &opt)]),
        ("select", vec![("target", &str_), ("value", &str_)]),
        ("drag", vec![("target", &str_), ("to", &str_)]),
        ("wait", vec![]),
        ("see", vec![("text", &str_), ("target", &opt)]),
        ("not_see", vec![("text", &str_), ("target", &opt)]),
        ("count", vec![("target", &str_)]),
        ("value", vec![("target", &str_), ("equals", &str_)]),
    ];
    let ms = json!({ "type": "integer", "minimum": 0, "maximum": 5000 });
    let n = json!({ "type": "integer", "minimum": 0, "maximum": 1000 });
    let steps: Vec<serde_json::Value> = kinds
        .iter()
        .map(|(kind, fields)| {
            let mut props = serde_json::Map::new();
            props.insert("do".into(), json!({ "const": kind }));
            for (name, schema) in fields {
                props.insert((*name).into(), (*schema).clone());
            }
            match *kind {
                "wait" => props.insert("ms".into(), ms.clone()),
                "count" => props.insert("equals".into(), n.clone()),
                _ => None,
            };
            let required: Vec<&String> = props.keys().collect();
            json!({ "type": "object", "properties": props, "required": required,
                "additionalProperties": false })
        })
        .collect();
    let asserts: Vec<serde_json::Value> = steps
        .iter()
        .filter(|s| {
            let kind = s["properties"]["do"]["const"].as_str().unwrap_or("");
            matches!(kind, "see" | "not_see" | "count" | "value")
        })
        .cloned()
        .collect();
    json!({
        "type": "object",
        "required": ["checks"],
        "additionalProperties": false,
        "properties": { "checks": { "type": "array", "maxItems": 6,
            "items": { "type": "object", "required": ["name", "steps", "expect"],
                "additionalProperties": false,
                "properties": { "name": str_,
                    "steps": { "type": "array", "maxItems": 10,
                        "items": { "anyOf": steps } },
                    "expect": { "type": "array", "minItems": 1, "maxItems": 4,
                        "items": { "anyOf": asserts } } } } } }
    })
}

/// How much of a command's output is kept for people and the fixer: its end, where the
/// errors are.
pub const TAIL_CHARS: usize = 3000;

/// The last `TAIL_CHARS` characters of `s`.
pub fn output_tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(TAIL_CHARS)..]
        .iter()
        .collect()
}

/// What a command run in the sandbox did (the check runner, a type-check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ran<'a> {
    pub output: &'a str,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: bool,
}

/// The runner's exit code when no browser can be started on the sandbox host.
pub const EXIT_NO_BROWSER: i32 = 3;

/// What the acceptance-check run says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunVerdict {
    /// One report per check, in the file's order.
    Reports(Vec<CheckReport>),
    /// The checks cannot say anything (no browser, the runner broke, out of memory): skipped.
    Unavailable(String),
    /// The app does not start or hangs the browser: the app's failure, for the fixer.
    AppDoesNotRun(String),
}

/// Interprets the check runner (`/opt/kiln/check.mjs`): it prints one JSON line (anything
/// else on its streams is noise) and exits 0 with a report per check, or 3 with
/// `{"error"}` when there is no browser.
pub fn interpret_run(ran: &Ran, expected: usize) -> RunVerdict {
    if ran.timed_out {
        return RunVerdict::AppDoesNotRun("the acceptance checks timed out: the app hangs".into());
    }
    let line = ran
        .output
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_default();
    match (ran.exit_code, serde_json::from_str::<RunReport>(line)) {
        (Some(0), Ok(report)) if report.results.len() == expected => {
            RunVerdict::Reports(report.results)
        }
        (Some(EXIT_NO_BROWSER), _) => RunVerdict::Unavailable(
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| output_tail(ran.output)),
        ),
        _ if ran.oom_killed => {
            RunVerdict::Unavailable("the sandbox ran out of memory running the browser".into())
        }
        _ => RunVerdict::Unavailable(format!(
            "the check runner failed: {}",
            output_tail(ran.output)
        )),
    }
}

/// The errors of a reported run, one per failed check, for the fixer.
pub fn failures(file: &CheckFile, reports: &[CheckReport]) -> Vec<String> {
    file.checks
        .iter()
        .zip(reports)
        .filter(|(_, r)| !r.passed)
        .map(|(c, r)| failure_text(c, r))
        .collect()
}

/// A type-check or syntax check: `None` when it passed, else what the fixer is told.
pub fn compile_error(ran: &Ran) -> Option<String> {
    if ran.timed_out {
        Some("the check timed out".into())
    } else if ran.exit_code != Some(0) {
        Some(output_tail(ran.output))
    } else {
        None
    }
}

/// A failed type-check's output as `profile` reads it: `None` when a diagnostic in it blocks
/// (or none can be read: the check itself broke), else the complaints let through, for the
/// people watching.
///
/// A name that does not exist blocks, unless it is only used as a type there (`useState<Item[]>`,
/// `(e: Expense)`): types are erased before the page runs, so the app works without it.
pub fn type_complaints(
    output: &str,
    files: &std::collections::BTreeMap<String, String>,
    profile: super::profile::Profile,
) -> Option<Vec<String>> {
    let found = super::autofix::parse_tsc(output);
    let type_only = |d: &super::autofix::Diagnostic| {
        matches!(d.code, 2304 | 2552)
            && profile == super::profile::Profile::Small
            && files
                .get(&d.file)
                .and_then(|t| t.lines().nth(d.line.saturating_sub(1)))
                .is_some_and(|line| super::autofix::type_position(line, d.column))
    };
    if found.is_empty()
        || found
            .iter()
            .any(|d| profile.blocks(d.code) && !type_only(d))
    {
        return None;
    }
    Some(
        found
            .iter()
            .map(|d| {
                format!(
                    "{}({},{}): TS{}: {}",
                    d.file, d.line, d.column, d.code, d.message
                )
            })
            .collect(),
    )
}

/// The dev server's answer to a start: `None` when it is ready, else why the app does not
/// start.
pub fn dev_server_failure(state: &str, log: &str) -> Option<String> {
    (state != "ready").then(|| {
        format!(
            "the app's dev server does not start ({state}): {}",
            output_tail(log)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_type_complaints_do_not_block_a_small_model_but_breakage_does() {
        use crate::agent::profile::Profile;
        // The baseline's Todo list (recorded): implicit any in every component.
        let todo = "src/components/TodoFilter.tsx(3,23): error TS7031: Binding element 'onFilterChange' implicitly has an 'any' type.\n\
                    src/components/TodoList.tsx(9,38): error TS7006: Parameter 'todo' implicitly has an 'any' type.\n";
        let none = std::collections::BTreeMap::new();
        let let_through = type_complaints(todo, &none, Profile::Small).unwrap();
        assert_eq!(let_through.len(), 2);
        assert!(let_through[0].starts_with("src/components/TodoFilter.tsx(3,23): TS7031"));
        assert_eq!(type_complaints(todo, &none, Profile::Large), None);
        let broken =
            format!("{todo}src/App.tsx(4,8): error TS2307: Cannot find module './Nope'.\n");
        assert_eq!(type_complaints(&broken, &none, Profile::Small), None);
        // Output with no diagnostic in it (tsc itself failed): blocks.
        assert_eq!(
            type_complaints(
                "npm ERR! could not determine executable",
                &none,
                Profile::Small
            ),
            None
        );
        // The baseline's expense tracker (recorded): a type never defined, used only as a type
        // argument and an annotation. The page ran; the small gate lets it through.
        let app = "import { usePersistentState } from './lib/persist'\n\nconst App = () => {\n  const [expenses, setExpenses] = usePersistentState<Expense[]>('expenses', [])\n  const addExpense = (expense: Expense) => {\n";
        let files = std::collections::BTreeMap::from([("src/App.tsx".to_owned(), app.to_owned())]);
        let tsc = "src/App.tsx(4,54): error TS2304: Cannot find name 'Expense'.\nsrc/App.tsx(5,32): error TS2304: Cannot find name 'Expense'.\n";
        assert_eq!(
            type_complaints(tsc, &files, Profile::Small).map(|c| c.len()),
            Some(2)
        );
        assert_eq!(type_complaints(tsc, &files, Profile::Large), None);
        // Used as a value, a missing name throws on load: it blocks.
        let value = "src/App.tsx(4,20): error TS2304: Cannot find name 'Expense'.\n";
        assert_eq!(type_complaints(value, &files, Profile::Small), None);
    }

    fn ran(output: &str, exit_code: Option<i32>) -> Ran<'_> {
        Ran {
            output,
            exit_code,
            timed_out: false,
            oom_killed: false,
        }
    }

    #[test]
    fn the_runners_report_and_exit_codes_are_interpreted() {
        let report = r#"{"results":[{"name":"a","passed":true},{"name":"b","passed":false,"error":"no button"}]}"#;
        let noisy = format!("chromium says hi\n{report}\nbye");
        match interpret_run(&ran(&noisy, Some(0)), 2) {
            RunVerdict::Reports(r) => {
                assert_eq!(r.len(), 2);
                assert!(r[0].passed && !r[1].passed);
            }
            other => panic!("{other:?}"),
        }
        // A report for other checks than those in the file says nothing about them.
        assert!(matches!(
            interpret_run(&ran(report, Some(0)), 3),
            RunVerdict::Unavailable(why) if why.starts_with("the check runner failed")
        ));
        assert_eq!(
            interpret_run(&ran(r#"{"error":"no chromium"}"#, Some(3)), 1),
            RunVerdict::Unavailable("no chromium".into())
        );
        assert_eq!(
            interpret_run(&ran("segfault", Some(3)), 1),
            RunVerdict::Unavailable("segfault".into())
        );
        let oom = Ran {
            oom_killed: true,
            ..ran("", None)
        };
        assert_eq!(
            interpret_run(&oom, 1),
            RunVerdict::Unavailable("the sandbox ran out of memory running the browser".into())
        );
        let hung = Ran {
            timed_out: true,
            ..ran(report, None)
        };
        assert!(matches!(
            interpret_run(&hung, 2),
            RunVerdict::AppDoesNotRun(_)
        ));
        assert!(matches!(
            interpret_run(&ran(report, Some(1)), 2),
            RunVerdict::Unavailable(_)
        ));
    }

    #[test]
    fn compile_checks_and_the_dev_server_say_what_failed() {
        assert_eq!(compile_error(&ran("fine", Some(0))), None);
        assert_eq!(
            compile_error(&ran("src/App.tsx(3,1): error TS2304", Some(2))),
            Some("src/App.tsx(3,1): error TS2304".into())
        );
        let slow = Ran {
            timed_out: true,
            ..ran("", None)
        };
        assert_eq!(compile_error(&slow), Some("the check timed out".into()));
        let long = "x".repeat(TAIL_CHARS + 10) + "END";
        let tail = compile_error(&ran(&long, Some(1))).unwrap();
        assert_eq!(tail.chars().count(), TAIL_CHARS);
        assert!(tail.ends_with("END"));
        assert_eq!(dev_server_failure("ready", "log"), None);
        assert_eq!(
            dev_server_failure("crashed", "boom"),
            Some("the app's dev server does not start (crashed): boom".into())
        );
    }

    const ANSWER: &str = r#"Here are the checks:
```json
{"checks": [
  {"name": "Enter adds a task", "steps": [
    {"do": "fill", "target": "[data-testid=new-task]", "value": "Buy milk"},
    {"do": "press", "key": "Enter"},
    {"do": "see", "text": "Buy milk"}]},
  {"name": "no assertion", "steps": [{"do": "click", "target": "text=Add"}]},
  {"name": "bad step", "steps": [{"do": "teleport"}]},
  {"name": "tasks survive a reload", "steps": [
    {"do": "fill", "target": "input", "value": "a"}, {"do": "press", "key": "Enter"},
    {"do": "reload"}, {"do": "count", "target": "li", "equals": 1}]}
]}
```"#;

    /// Every step the schema allows parses, with each field filled the simplest way; and every
    /// step kind has its object.
    #[test]
    fn each_step_object_of_the_schema_parses_as_that_step() {
        let schema = json_schema();
        let kinds = schema["properties"]["checks"]["items"]["properties"]["steps"]["items"]
            ["anyOf"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(kinds.len(), 12);
        for kind in kinds {
            let mut step = serde_json::Map::new();
            for field in kind["required"].as_array().unwrap() {
                let f = field.as_str().unwrap();
                let spec = &kind["properties"][f];
                let v = if f == "do" {
                    spec["const"].clone()
                } else if spec["type"] == "integer" {
                    serde_json::json!(2)
                } else {
                    serde_json::json!("x")
                };
                step.insert(f.into(), v);
            }
            let parsed: Result<CheckStep, _> = serde_json::from_value(step.clone().into());
            assert!(parsed.is_ok(), "{step:?}: {parsed:?}");
            // Nullable fields may be null.
            for (f, spec) in kind["properties"].as_object().unwrap() {
                if spec["type"].as_array().is_some() {
                    step.insert(f.clone(), serde_json::Value::Null);
                }
            }
            let parsed: Result<CheckStep, _> = serde_json::from_value(step.clone().into());
            assert!(parsed.is_ok(), "{step:?}: {parsed:?}");
        }
    }

    #[test]
    fn expect_steps_are_appended_after_the_actions() {
        let answer = r#"{"checks":[{"name":"Enter adds","steps":[
            {"do":"fill","target":"input","value":"a"},{"do":"press","key":"Enter","target":null}],
            "expect":[{"do":"count","target":"li","equals":1},{"do":"see","text":"a","target":null}]},
            {"name":"only expect","steps":[],"expect":[{"do":"see","text":"Todo","target":null}]}]}"#;
        let (ok, dropped) = from_model(answer, 1).unwrap();
        assert!(dropped.is_empty(), "{dropped:?}");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].steps.len(), 4);
        assert_eq!(
            ok[0].steps[2],
            CheckStep::Count {
                target: "li".into(),
                equals: 1
            }
        );
        assert_eq!(
            ok[1].steps,
            [CheckStep::See {
                text: "Todo".into(),
                target: None
            }]
        );
        let kinds = &json_schema()["properties"]["checks"]["items"]["properties"]["expect"]
            ["items"]["anyOf"];
        assert_eq!(kinds.as_array().unwrap().len(), 4);
    }

    #[test]
    fn valid_checks_are_kept_and_bad_ones_dropped_with_reasons() {
        let (ok, dropped) = from_model(ANSWER, 2).unwrap();
        assert_eq!(
            ok.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["Enter adds a task", "tasks survive a reload"]
        );
        assert!(ok.iter().all(|c| c.phase == 2));
        assert_eq!(dropped.len(), 2);
        assert!(dropped[0].contains("asserts nothing"), "{dropped:?}");
        assert!(dropped[1].contains("unreadable"), "{dropped:?}");
        assert!(from_model("no json here", 0).is_err());
        assert!(from_model(r#"{"tests": []}"#, 0).is_err());
    }

    #[test]
    fn the_checks_file_is_a_valid_project_path() {
        assert!(crate::path::ProjectPath::parse(CHECKS_PATH).is_ok());
    }

    #[test]
    fn steps_are_bounded() {
        let check = |steps: serde_json::Value| -> Result<(), String> {
            let c: Check =
                serde_json::from_value(serde_json::json!({"name": "n", "steps": steps})).unwrap();
            c.validate()
        };
        assert!(
            check(serde_json::json!([{"do":"wait","ms":60000},{"do":"see","text":"x"}])).is_err()
        );
        assert!(check(
            serde_json::json!([{"do":"open","path":"https://evil"},{"do":"see","text":"x"}])
        )
        .is_err());
        assert!(check(serde_json::json!([{"do":"see","text":" "}])).is_err());
        assert!(
            check(serde_json::json!([{"do":"click","target":""},{"do":"see","text":"x"}])).is_err()
        );
        assert!(
            check(serde_json::json!([{"do":"open","path":"/about"},{"do":"see","text":"x"}]))
                .is_ok()
        );
        let many: Vec<_> = (0..=MAX_STEPS)
            .map(|_| serde_json::json!({"do":"see","text":"x"}))
            .collect();
        assert!(check(serde_json::Value::Array(many)).is_err());
    }

    #[test]
    fn a_phase_replaces_only_its_own_checks_and_the_file_round_trips() {
        let (a, _) = from_model(ANSWER, 0).unwrap();
        let (b, _) = from_model(ANSWER, 1).unwrap();
        let mut f = CheckFile::default();
        f.set_phase(1, b.clone());
        f.set_phase(0, a.clone());
        f.set_phase(1, b[..1].to_vec());
        assert_eq!(f.checks.len(), 3);
        assert_eq!(
            f.checks.iter().map(|c| c.phase).collect::<Vec<_>>(),
            [0, 0, 1]
        );
        assert_eq!(CheckFile::parse(f.to_pretty().as_bytes()).unwrap(), f);
        assert!(CheckFile::parse(b"{\"checks\":[{\"name\":\"x\",\"steps\":[]}]}").is_err());
        let lenient: Check = serde_json::from_str(
            r#"{"name":"n","steps":[{"do":"count","target":"li","equals":"2"},{"do":"value","target":"input","equals":1.609}]}"#,
        )
        .unwrap();
        assert_eq!(
            lenient.steps[0],
            CheckStep::Count {
                target: "li".into(),
                equals: 2
            }
        );
        assert_eq!(
            lenient.steps[1],
            CheckStep::Value {
                target: "input".into(),
                equals: "1.609".into()
            }
        );
    }

    #[test]
    fn a_failure_reads_as_what_happened() {
        let (checks, _) = from_model(ANSWER, 0).unwrap();
        let r = CheckReport {
            name: "Enter adds a task".into(),
            passed: false,
            step: Some(3),
            error: Some("the text is not on the page".into()),
            page_text: Some("Tasks\nNothing yet".into()),
            console_errors: vec!["TypeError: x is undefined".into()],
        };
        let t = failure_text(&checks[0], &r);
        for needle in [
            "\"Enter adds a task\" failed at step 3 (see \"Buy milk\")",
            "fill [data-testid=new-task] with \"Buy milk\"; press Enter",
            "Nothing yet",
            "TypeError",
        ] {
            assert!(t.contains(needle), "{needle} missing in {t}");
        }
        assert!(!t.contains("React component"), "{t}");
    }

    #[test]
    fn a_component_called_with_new_is_explained() {
        // Recorded (ce54a22-5, the QR code maker): the smoke check's click on Download.
        let r = CheckReport {
            name: "its fields and buttons can be used without errors".into(),
            passed: false,
            step: Some(1),
            error: Some("using the page raised an error: QRCodeCanvas is not a constructor".into()),
            page_text: None,
            console_errors: vec!["QRCodeCanvas is not a constructor".into()],
        };
        let t = failure_text(&smoke_controls(), &r);
        assert!(
            t.contains("QRCodeCanvas is a React component, not a class: render it in the JSX as <QRCodeCanvas … />"),
            "{t}"
        );
        assert_eq!(
            component_called_with_new("TypeError: l.Foo is not a constructor"),
            Some("Foo")
        );
        assert_eq!(component_called_with_new("x is not a constructor"), None);
        assert_eq!(component_called_with_new("Foo is not a function"), None);
    }
}

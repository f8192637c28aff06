//! The plan of an app: what the planner model must return (as JSON), validated here before
//! anything is built from it.

use crate::path::ProjectPath;
use crate::sandbox::Template;
use serde::{Deserialize, Serialize};

pub const MAX_PHASES: usize = 6;
pub const MAX_FILES_PER_PHASE: usize = 12;
pub const MAX_IMAGES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Blueprint {
    /// A short product name, e.g. "Crumb & Co. Bakery".
    pub name: String,
    /// One or two sentences: what the app does for whom.
    pub summary: String,
    pub template: Template,
    pub design: DesignBrief,
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    /// Built in order; each small enough for a small model's context.
    pub phases: Vec<Phase>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DesignBrief {
    /// e.g. "warm, friendly, rounded cards, generous whitespace".
    pub style: String,
    pub palette: Vec<Swatch>,
    /// e.g. "Georgia for headings, system-ui for body".
    pub typography: String,
    /// Sections or pages, in order.
    #[serde(default)]
    pub sections: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Swatch {
    pub name: String,
    /// `#rrggbb`.
    pub hex: String,
}

/// An image the app shows. Becomes an SVG placeholder drawn from the spec (or a generated
/// image when an image API is configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ImageSpec {
    pub path: ProjectPath,
    pub description: String,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Phase {
    pub name: String,
    pub goal: String,
    /// The files this phase writes or changes.
    pub files: Vec<ProjectPath>,
    /// Concrete, checkable statements ("adding a task with Enter shows it in the list").
    #[serde(default)]
    pub acceptance: Vec<String>,
}

impl Blueprint {
    /// Every problem found, so one repair request can fix them all.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        let text = |errs: &mut Vec<String>, field: &str, v: &str, max: usize| {
            if v.trim().is_empty() {
                errs.push(format!("{field} is empty"));
            } else if v.chars().count() > max {
                errs.push(format!("{field} is longer than {max} characters"));
            }
        };
        text(&mut errs, "name", &self.name, 80);
        text(&mut errs, "summary", &self.summary, 600);
        text(&mut errs, "design.style", &self.design.style, 400);
        text(&mut errs, "design.typography", &self.design.typography, 200);
        if !(2..=8).contains(&self.design.palette.len()) {
            errs.push("design.palette needs 2 to 8 colours".into());
        }
        for (i, s) in self.design.palette.iter().enumerate() {
            if !is_hex_colour(&s.hex) {
                errs.push(format!(
                    "design.palette[{i}].hex {:?} is not #rrggbb",
                    s.hex
                ));
            }
        }
        if self.images.len() > MAX_IMAGES {
            errs.push(format!("at most {MAX_IMAGES} images"));
        }
        for (i, img) in self.images.iter().enumerate() {
            if !img.path.as_str().ends_with(".svg") {
                errs.push(format!("images[{i}].path must end in .svg"));
            }
            if !(16..=4096).contains(&img.width) || !(16..=4096).contains(&img.height) {
                errs.push(format!("images[{i}] must be 16 to 4096 pixels each way"));
            }
        }
        if self.phases.is_empty() || self.phases.len() > MAX_PHASES {
            errs.push(format!("1 to {MAX_PHASES} phases"));
        }
        for (i, ph) in self.phases.iter().enumerate() {
            text(&mut errs, &format!("phases[{i}].name"), &ph.name, 80);
            text(&mut errs, &format!("phases[{i}].goal"), &ph.goal, 1000);
            if ph.files.is_empty() || ph.files.len() > MAX_FILES_PER_PHASE {
                errs.push(format!(
                    "phases[{i}] must list 1 to {MAX_FILES_PER_PHASE} files"
                ));
            }
            if ph.acceptance.len() > 12 {
                errs.push(format!("phases[{i}] has more than 12 acceptance points"));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// Makes the first phase write the files that make the app appear (`src/App.tsx`, or
    /// `index.html` and `main.js`): a small model that plans components but forgets them
    /// leaves the template's placeholder page on screen.
    pub fn ensure_entry_files(&mut self) {
        let entry: &[&str] = match self.template {
            Template::ReactVite => &["src/App.tsx"],
            Template::Static => &["index.html", "main.js"],
        };
        let Some(first) = self.phases.first_mut() else {
            return;
        };
        for e in entry {
            let present = first.files.iter().any(|f| f.as_str() == *e);
            if !present && first.files.len() < MAX_FILES_PER_PHASE {
                if let Ok(p) = ProjectPath::parse(e) {
                    first.files.push(p);
                }
            }
        }
    }

    /// The small profile's layout: one phase that writes the template's entry files only,
    /// with every acceptance point of the plan (in order, each once). A small model asked for
    /// several files breaks what joins them (props, exports, imports); asked for phases, it
    /// spends the clock on calls.
    pub fn into_single_file(&mut self) {
        let entry: &[&str] = match self.template {
            Template::ReactVite => &["src/App.tsx"],
            Template::Static => &["index.html", "style.css", "main.js"],
        };
        let Some(first) = self.phases.first() else {
            return;
        };
        let mut acceptance: Vec<String> = Vec::new();
        for a in self.phases.iter().flat_map(|p| &p.acceptance) {
            if !acceptance.contains(a) {
                acceptance.push(a.clone());
            }
        }
        acceptance.truncate(12);
        let goals: Vec<&str> = self.phases.iter().map(|p| p.goal.as_str()).collect();
        let merged = Phase {
            name: first.name.clone(),
            goal: goals.join("; ").chars().take(1000).collect(),
            files: entry
                .iter()
                .filter_map(|e| ProjectPath::parse(e).ok())
                .collect(),
            acceptance,
        };
        self.phases = vec![merged];
    }

    /// The plan of a one-file app made from the request itself, with no model call: for the
    /// small profile, whose planner spent 25–90 s of the clock on a plan that paraphrased the
    /// request and added points nobody asked for ("a header with a background image"),
    /// while the coder never saw the person's own words. Those words are the summary and,
    /// a clause each, the acceptance points.
    pub fn from_request(request: &str, template: Template) -> Blueprint {
        let request: String = request.split_whitespace().collect::<Vec<_>>().join(" ");
        let (title, body) = match request
            .split_once(": ")
            .or_else(|| request.split_once(" — "))
        {
            Some((t, b)) if t.split(' ').count() <= 6 && !b.trim().is_empty() => (t, b),
            _ => ("", request.as_str()),
        };
        let name = if title.is_empty() {
            name_of(body)
        } else {
            title.to_owned()
        };
        let mut acceptance: Vec<String> = Vec::new();
        for clause in body.split([';', '\n']).flat_map(|c| c.split(". ")) {
            let clause = clause.trim().trim_end_matches('.').trim();
            if clause.chars().count() >= 3 && acceptance.len() < 12 {
                acceptance.push(clause.chars().take(300).collect());
            }
        }
        let mut bp = Blueprint {
            name: name.chars().take(80).collect(),
            summary: body.chars().take(600).collect(),
            template,
            design: DesignBrief {
                style: "clean and readable, generous spacing, rounded controls".into(),
                palette: [
                    ("ink", "#1f2937"),
                    ("accent", "#2563eb"),
                    ("surface", "#f8fafc"),
                ]
                .iter()
                .map(|(name, hex)| Swatch {
                    name: (*name).into(),
                    hex: (*hex).into(),
                })
                .collect(),
                typography: "system-ui".into(),
                sections: Vec::new(),
            },
            images: Vec::new(),
            phases: vec![Phase {
                name: "The app".into(),
                goal: body.chars().take(1000).collect(),
                files: Vec::new(),
                acceptance,
            }],
        };
        bp.into_single_file();
        bp
    }

    /// Parses the planner's answer: JSON, possibly wrapped in a code fence or prose.
    pub fn from_model(text: &str) -> Result<Blueprint, Vec<String>> {
        let start = text
            .find('{')
            .ok_or_else(|| vec!["no JSON object in the answer".to_owned()])?;
        let end = text
            .rfind('}')
            .ok_or_else(|| vec!["no JSON object in the answer".to_owned()])?;
        if end < start {
            return Err(vec!["no JSON object in the answer".into()]);
        }
        let mut bp: Blueprint = serde_json::from_str(&text[start..=end])
            .map_err(|e| vec![format!("invalid blueprint JSON: {e}")])?;
        bp.shorten_prose();
        bp.validate()?;
        Ok(bp)
    }

    /// Cuts over-long prose (names, goals, briefs) to its limit and drops unusable images: a
    /// wordy phase name is no reason to throw a plan away and pay for another.
    fn shorten_prose(&mut self) {
        fn cut(s: &mut String, max: usize) {
            if s.chars().count() > max {
                let mut t: String = s.chars().take(max - 1).collect();
                t.push('…');
                *s = t;
            }
        }
        cut(&mut self.name, 80);
        cut(&mut self.summary, 600);
        cut(&mut self.design.style, 400);
        cut(&mut self.design.typography, 200);
        for ph in &mut self.phases {
            cut(&mut ph.name, 80);
            cut(&mut ph.goal, 1000);
        }
        // Images are decoration: one the model got wrong is dropped, not the plan.
        self.images.retain(|i| i.path.as_str().ends_with(".svg"));
        self.images.truncate(MAX_IMAGES);
        for i in &mut self.images {
            i.width = i.width.clamp(16, 4096);
            i.height = i.height.clamp(16, 4096);
        }
    }

    /// The JSON schema given to providers that support `response_format: json_schema`.
    ///
    /// Tighter than `validate`: providers that enforce a schema as a grammar (llama.cpp) then
    /// bound the plan's length, and a small model cannot ramble on for thousands of tokens.
    pub fn json_schema() -> serde_json::Value {
        let s =
            |d: &str| serde_json::json!({ "type": "string", "description": d, "maxLength": 200 });
        let strings = |d: &str, n: usize| {
            serde_json::json!({ "type": "array", "maxItems": n,
            "items": { "type": "string", "maxLength": 160 }, "description": d })
        };
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "summary", "template", "design", "images", "phases"],
            "properties": {
                "name": s("short product name"),
                "summary": s("one or two sentences: what it does, for whom"),
                "template": { "type": "string", "enum": ["static", "react-vite"] },
                "design": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["style", "palette", "typography", "sections"],
                    "properties": {
                        "style": s("visual style"),
                        "palette": { "type": "array", "minItems": 2, "maxItems": 5, "items": {
                            "type": "object", "additionalProperties": false,
                            "required": ["name", "hex"],
                            "properties": { "name": s("role, e.g. primary"), "hex": { "type": "string", "pattern": "^#[0-9a-fA-F]{6}$" } } } },
                        "typography": s("fonts for headings and body"),
                        "sections": strings("sections or pages, in order", 6)
                    }
                },
                "images": { "type": "array", "maxItems": 3, "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["path", "description", "width", "height"],
                    "properties": {
                        "path": s("relative path ending in .svg, e.g. public/hero.svg"),
                        "description": s("what the image shows"),
                        "width": { "type": "integer" }, "height": { "type": "integer" } } } },
                "phases": { "type": "array", "minItems": 1, "maxItems": 3, "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["name", "goal", "files", "acceptance"],
                    "properties": {
                        "name": s("phase name"),
                        "goal": s("what this phase delivers"),
                        "files": { "type": "array", "minItems": 1, "maxItems": 6,
                            "items": { "type": "string", "maxLength": 80 },
                            "description": "relative paths this phase writes" },
                        "acceptance": strings("concrete, checkable behaviours", 5) } } }
            }
        })
    }
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// An SVG placeholder drawn from an image spec: the palette's first two colours, the
/// description as its title and caption.
pub fn placeholder_svg(spec: &ImageSpec, palette: &[Swatch]) -> String {
    let bg = palette.first().map_or("#e5e7eb", |s| s.hex.as_str());
    let fg = palette.get(1).map_or("#374151", |s| s.hex.as_str());
    let text: String = spec
        .description
        .chars()
        .take(60)
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect();
    let (w, h) = (spec.width, spec.height);
    let font = (w.min(h) / 12).clamp(10, 48);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{text}\">\n\
         <title>{text}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"{bg}\"/>\n\
         <circle cx=\"{cx}\" cy=\"{cy}\" r=\"{r}\" fill=\"{fg}\" opacity=\"0.25\"/>\n\
         <text x=\"50%\" y=\"50%\" text-anchor=\"middle\" dominant-baseline=\"middle\" font-family=\"system-ui, sans-serif\" font-size=\"{font}\" fill=\"{fg}\">{text}</text>\n\
         </svg>\n",
        cx = w / 2,
        cy = h / 2,
        r = w.min(h) / 3,
    )
}

/// A name for an app asked for without one: its first words, less "build me a".
fn name_of(request: &str) -> String {
    const FILLER: &[&str] = &[
        "build", "make", "create", "write", "me", "a", "an", "the", "simple",
    ];
    let words: Vec<&str> = request
        .split(|c: char| c.is_whitespace() || c == ',' || c == '.')
        .filter(|w| !w.is_empty())
        .skip_while(|w| FILLER.contains(&w.to_lowercase().as_str()))
        .take(4)
        .collect();
    let name = words.join(" ");
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => "App".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_becomes_a_one_file_plan_in_its_own_words() {
        let bp = Blueprint::from_request(
            "Todo list: add tasks with Enter, tick them done, delete them, filter \
             all/active/done; the list survives a reload.",
            Template::ReactVite,
        );
        assert_eq!(bp.validate(), Ok(()));
        assert_eq!(bp.name, "Todo list");
        assert!(bp.summary.starts_with("add tasks with Enter"));
        assert_eq!(bp.phases.len(), 1);
        let ph = &bp.phases[0];
        assert_eq!(
            ph.files.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["src/App.tsx"]
        );
        assert_eq!(
            ph.acceptance,
            [
                "add tasks with Enter, tick them done, delete them, filter all/active/done",
                "the list survives a reload"
            ]
        );
        // Without a title: a name from its first words; sentences are points of their own.
        let bp = Blueprint::from_request(
            "Build me a unit converter for length and weight. It converts live as you type.",
            Template::Static,
        );
        assert_eq!(bp.validate(), Ok(()));
        assert_eq!(bp.name, "Unit converter for length");
        assert_eq!(
            bp.phases[0].acceptance,
            [
                "Build me a unit converter for length and weight",
                "It converts live as you type"
            ]
        );
        assert_eq!(
            bp.phases[0]
                .files
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>(),
            ["index.html", "style.css", "main.js"]
        );
        // Nothing usable still makes a valid plan.
        assert_eq!(
            Blueprint::from_request("  ", Template::ReactVite).name,
            "App"
        );
    }

    #[test]
    fn the_single_file_layout_keeps_every_acceptance_point_in_one_phase() {
        let mut bp: Blueprint = serde_json::from_value(serde_json::json!({
            "name": "Todo", "summary": "tasks", "template": "react-vite",
            "design": {"style": "clean", "palette": [{"name":"bg","hex":"#ffffff"},{"name":"ink","hex":"#111111"}], "typography": "system-ui", "sections": []},
            "phases": [
                {"name": "Core", "goal": "add", "files": ["src/App.tsx", "src/components/List.tsx"], "acceptance": ["Enter adds a task", "a task can be ticked"]},
                {"name": "Filters", "goal": "filter", "files": ["src/components/Filter.tsx"], "acceptance": ["a task can be ticked", "Active hides done tasks"]}
            ]
        })).unwrap();
        bp.into_single_file();
        assert_eq!(bp.phases.len(), 1);
        let ph = &bp.phases[0];
        assert_eq!(
            ph.files.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["src/App.tsx"]
        );
        assert_eq!(
            ph.acceptance,
            [
                "Enter adds a task",
                "a task can be ticked",
                "Active hides done tasks"
            ]
        );
        assert_eq!(ph.goal, "add; filter");
        assert_eq!(bp.validate(), Ok(()));
    }

    pub fn sample() -> Blueprint {
        serde_json::from_value(serde_json::json!({
            "name": "Todo",
            "summary": "A todo list that survives reloads.",
            "template": "static",
            "design": {
                "style": "clean",
                "palette": [{"name": "bg", "hex": "#ffffff"}, {"name": "accent", "hex": "#ff6600"}],
                "typography": "system-ui",
                "sections": ["list"]
            },
            "images": [{"path": "public/hero.svg", "description": "a tidy desk", "width": 800, "height": 400}],
            "phases": [{
                "name": "Core",
                "goal": "Add, tick, delete, filter, persist",
                "files": ["index.html", "app.js", "style.css"],
                "acceptance": ["Enter adds a task", "reload keeps tasks"]
            }]
        }))
        .unwrap()
    }

    #[test]
    fn wordy_prose_is_shortened_rather_than_rejected() {
        let long = "a very long phase name ".repeat(10);
        let text = serde_json::json!({
            "name": "n", "summary": "s", "template": "static",
            "design": {"style": "s", "palette": [{"name":"a","hex":"#000000"},{"name":"b","hex":"#ffffff"}], "typography": "t", "sections": []},
            "phases": [{"name": long, "goal": "g", "files": ["index.html"]}]
        })
        .to_string();
        let bp = Blueprint::from_model(&text).unwrap();
        assert_eq!(bp.phases[0].name.chars().count(), 80);
        assert!(bp.phases[0].name.ends_with('…'));
    }

    #[test]
    fn the_first_phase_always_writes_the_entry_files() {
        let mut bp: Blueprint = serde_json::from_value(serde_json::json!({
            "name": "n", "summary": "s", "template": "react-vite",
            "design": {"style": "s", "palette": [{"name":"a","hex":"#000000"},{"name":"b","hex":"#ffffff"}], "typography": "t", "sections": []},
            "phases": [{"name": "p", "goal": "g", "files": ["src/components/List.tsx"]}]
        }))
        .unwrap();
        bp.ensure_entry_files();
        bp.ensure_entry_files();
        let files: Vec<&str> = bp.phases[0].files.iter().map(|f| f.as_str()).collect();
        assert_eq!(files, ["src/components/List.tsx", "src/App.tsx"]);
        bp.template = Template::Static;
        bp.ensure_entry_files();
        assert_eq!(bp.phases[0].files.len(), 4);
    }

    #[test]
    fn a_good_blueprint_validates() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut bp = sample();
        bp.name = " ".into();
        bp.design.palette[1].hex = "orange".into();
        bp.phases[0].files.clear();
        bp.images[0].width = 1;
        let errs = bp.validate().unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
    }

    #[test]
    fn model_answers_with_fences_or_prose_parse() {
        let json = serde_json::to_string(&sample()).unwrap();
        for wrapped in [
            json.clone(),
            format!("```json\n{json}\n```"),
            format!("Here you go:\n{json}\nEnjoy!"),
        ] {
            assert_eq!(Blueprint::from_model(&wrapped), Ok(sample()));
        }
        assert!(Blueprint::from_model("no json here").is_err());
        assert!(Blueprint::from_model("{\"name\": 1}").is_err());
        let traversal = json.replace("app.js", "../app.js");
        assert!(
            Blueprint::from_model(&traversal).is_err(),
            "paths are validated"
        );
    }

    #[test]
    fn placeholders_are_escaped_svg_of_the_right_size() {
        let mut spec = sample().images[0].clone();
        spec.description = "<script>alert(1)</script> & co".into();
        let svg = placeholder_svg(&spec, &sample().design.palette);
        assert!(
            svg.starts_with("<svg") && svg.contains("width=\"800\"") && svg.contains("#ff6600")
        );
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn the_schema_requires_what_the_type_requires() {
        let schema = Blueprint::json_schema();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in ["name", "summary", "template", "design", "phases"] {
            assert!(required.contains(&field));
        }
    }
}

//! The follow-up tool loop: after the first version, a change request is worked through one
//! tool call per model turn. Calls are plain JSON (small local models do not emit native
//! tool calls reliably, but follow a JSON schema), one object per answer.

use super::file_stream::apply_edit;
use super::llm::ChatMessage;
use super::npm::NpmInstall;
use crate::path::ProjectPath;
use crate::sandbox::Template;
use serde::{Deserialize, Serialize};

/// Model turns per follow-up before the loop is closed for it.
pub const MAX_TOOL_ROUNDS: u32 = 12;
/// A file read is cut here (bytes), so one read cannot fill a small model's context.
pub const MAX_READ: usize = 12 * 1024;
/// Search hits told to the model, over all files.
pub const MAX_HITS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToolCall {
    ListFiles,
    ReadFile {
        path: ProjectPath,
    },
    Search {
        query: String,
    },
    WriteFile {
        path: ProjectPath,
        content: String,
    },
    EditFile {
        path: ProjectPath,
        search: String,
        replace: String,
    },
    /// Only `npm install <packages>` is run (in the install step).
    Exec {
        command: String,
    },
    Finish {
        summary: String,
    },
}

/// Parses one tool call from a model answer (JSON, possibly fenced or with prose around it).
pub fn parse(text: &str) -> Result<ToolCall, String> {
    let start = text.find('{').ok_or("no JSON object in the answer")?;
    let end = text.rfind('}').ok_or("no JSON object in the answer")?;
    if end < start {
        return Err("no JSON object in the answer".into());
    }
    serde_json::from_str(&text[start..=end]).map_err(|e| format!("not a valid tool call: {e}"))
}

pub fn system(template: Template) -> String {
    format!(
        "You change an existing web app ({}) step by step with tools. Answer with exactly one \
         JSON object per turn, one of:\n\
         {{\"tool\":\"list_files\"}}\n\
         {{\"tool\":\"read_file\",\"path\":\"…\"}}\n\
         {{\"tool\":\"search\",\"query\":\"text to find\"}}\n\
         {{\"tool\":\"edit_file\",\"path\":\"…\",\"search\":\"exact existing lines\",\"replace\":\"new lines\"}}\n\
         {{\"tool\":\"write_file\",\"path\":\"…\",\"content\":\"the whole file\"}}\n\
         {{\"tool\":\"exec\",\"command\":\"npm install <package>\"}}\n\
         {{\"tool\":\"finish\",\"summary\":\"what you changed\"}}\n\
         Read a file before you edit it. Prefer edit_file for small changes. Finish when the \
         request is done.",
        template.as_str()
    )
}

/// The first messages of a follow-up: the request and the file list.
pub fn start(template: Template, request: &str, files: &[String]) -> Vec<ChatMessage> {
    vec![
        ChatMessage::system(system(template)),
        ChatMessage::user(format!(
            "Change request: {request}\nFiles: {}",
            files.join(", ")
        )),
    ]
}

/// The JSON schema of one call, for providers with structured output.
pub fn schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["tool"],
        "properties": {
            "tool": { "type": "string", "enum": ["list_files", "read_file", "search", "write_file", "edit_file", "exec", "finish"] },
            "path": { "type": "string" },
            "query": { "type": "string" },
            "content": { "type": "string" },
            "search": { "type": "string" },
            "replace": { "type": "string" },
            "command": { "type": "string" },
            "summary": { "type": "string" }
        }
    })
}

/// The working tree as the tool loop sees it. The room implements it over its store; tests
/// over a map.
pub trait ToolTree {
    /// A storage failure (the step fails and is retried).
    type Error;
    /// Every file's path and size in bytes.
    fn files(&self) -> Result<Vec<(ProjectPath, u64)>, Self::Error>;
    /// A file's text (lossy for binary files), `None` when there is no such file.
    fn read(&self, path: &ProjectPath) -> Result<Option<String>, Self::Error>;
    /// Writes a file as the agent; `Err` says why it was refused (told to the model).
    fn write(&mut self, path: &ProjectPath, content: &str) -> Result<(), String>;
}

/// What one tool round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// What the model is told.
    pub reply: String,
    /// The model called `finish`.
    pub finished: bool,
    /// An `npm install` to run before the check (only ever a valid one).
    pub command: Option<String>,
}

impl ToolResult {
    fn reply(reply: impl Into<String>) -> ToolResult {
        ToolResult {
            reply: reply.into(),
            finished: false,
            command: None,
        }
    }
}

/// One turn: the model's answer parsed and run against the tree. An answer that is no tool
/// call is told so, and the loop goes on.
pub fn answer<T: ToolTree>(tree: &mut T, text: &str) -> Result<ToolResult, T::Error> {
    match parse(text) {
        Ok(call) => run(tree, call),
        Err(e) => Ok(ToolResult::reply(format!(
            "Error: {e}. Answer with one JSON tool call."
        ))),
    }
}

/// Runs one tool call against the tree.
pub fn run<T: ToolTree>(tree: &mut T, call: ToolCall) -> Result<ToolResult, T::Error> {
    Ok(match call {
        ToolCall::ListFiles => {
            let files: Vec<String> = tree
                .files()?
                .into_iter()
                .map(|(path, size)| format!("{path} ({size} bytes)"))
                .collect();
            ToolResult::reply(files.join("\n"))
        }
        ToolCall::ReadFile { path } => ToolResult::reply(match tree.read(&path)? {
            Some(t) if t.len() > MAX_READ => {
                format!("{}\n… (truncated)", &t[..t.floor_char_boundary(MAX_READ)])
            }
            Some(t) => t,
            None => format!("no file {path}"),
        }),
        ToolCall::Search { query } => {
            let mut hits = Vec::new();
            'files: for (path, _) in tree.files()? {
                let Some(text) = tree.read(&path)? else {
                    continue;
                };
                for (n, line) in text.lines().enumerate() {
                    if hits.len() >= MAX_HITS {
                        break 'files;
                    }
                    if line.contains(&query) {
                        hits.push(format!("{path}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
            ToolResult::reply(if hits.is_empty() {
                "no matches".into()
            } else {
                hits.join("\n")
            })
        }
        ToolCall::WriteFile { path, content } => {
            ToolResult::reply(match tree.write(&path, &content) {
                Ok(()) => format!("wrote {path}"),
                Err(e) => format!("could not write {path}: {e}"),
            })
        }
        ToolCall::EditFile {
            path,
            search,
            replace,
        } => ToolResult::reply(match tree.read(&path)? {
            None => format!("no file {path}"),
            Some(current) => match apply_edit(&current, &search, &replace) {
                Ok(updated) => match tree.write(&path, &updated) {
                    Ok(()) => format!("edited {path}"),
                    Err(e) => format!("could not write {path}: {e}"),
                },
                Err(e) => format!("edit of {path} failed: {e}"),
            },
        }),
        ToolCall::Exec { command } => match NpmInstall::parse(&command) {
            Ok(_) => ToolResult {
                reply: format!("{command} will run before the check"),
                finished: false,
                command: Some(command),
            },
            Err(_) => ToolResult::reply("only `npm install <packages>` can be run"),
        },
        ToolCall::Finish { summary } => ToolResult {
            reply: summary,
            finished: true,
            command: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A tree in memory; writes over `limit` bytes are refused like the store's size cap.
    #[derive(Default)]
    struct Tree {
        files: BTreeMap<String, String>,
        limit: usize,
    }

    impl Tree {
        fn with(files: &[(&str, &str)]) -> Tree {
            Tree {
                files: files
                    .iter()
                    .map(|(p, c)| (p.to_string(), c.to_string()))
                    .collect(),
                limit: usize::MAX,
            }
        }
    }

    impl ToolTree for Tree {
        type Error = std::convert::Infallible;
        fn files(&self) -> Result<Vec<(ProjectPath, u64)>, Self::Error> {
            Ok(self
                .files
                .iter()
                .map(|(p, c)| (ProjectPath::parse(p).unwrap(), c.len() as u64))
                .collect())
        }
        fn read(&self, path: &ProjectPath) -> Result<Option<String>, Self::Error> {
            Ok(self.files.get(path.as_str()).cloned())
        }
        fn write(&mut self, path: &ProjectPath, content: &str) -> Result<(), String> {
            if content.len() > self.limit {
                return Err("too large".into());
            }
            self.files.insert(path.to_string(), content.to_owned());
            Ok(())
        }
    }

    fn turn(tree: &mut Tree, call: &str) -> ToolResult {
        answer(tree, call).unwrap()
    }

    #[test]
    fn reads_are_capped_on_a_char_boundary() {
        let big = "é".repeat(MAX_READ);
        let mut tree = Tree::with(&[("a.txt", &big), ("b.txt", "short")]);
        let read = turn(&mut tree, r#"{"tool":"read_file","path":"a.txt"}"#).reply;
        assert!(read.ends_with("\n… (truncated)"));
        assert!(read.len() <= MAX_READ + "\n… (truncated)".len());
        assert_eq!(
            turn(&mut tree, r#"{"tool":"read_file","path":"b.txt"}"#).reply,
            "short"
        );
        assert_eq!(
            turn(&mut tree, r#"{"tool":"read_file","path":"c.txt"}"#).reply,
            "no file c.txt"
        );
        assert_eq!(
            turn(&mut tree, r#"{"tool":"list_files"}"#).reply,
            format!("a.txt ({} bytes)\nb.txt (5 bytes)", big.len())
        );
    }

    #[test]
    fn search_hits_are_capped_over_all_files() {
        let many = "let count = 1\n".repeat(30);
        let mut tree = Tree::with(&[("a.js", &many), ("b.js", &many), ("c.js", "nothing")]);
        let hits = turn(&mut tree, r#"{"tool":"search","query":"count"}"#).reply;
        assert_eq!(hits.lines().count(), MAX_HITS);
        assert!(hits.starts_with("a.js:1: let count = 1"));
        assert!(hits.lines().last().unwrap().starts_with("b.js:10:"));
        assert_eq!(
            turn(&mut tree, r#"{"tool":"search","query":"zebra"}"#).reply,
            "no matches"
        );
    }

    #[test]
    fn only_npm_install_is_accepted_for_exec() {
        let mut tree = Tree::default();
        let ok = turn(
            &mut tree,
            r#"{"tool":"exec","command":"npm install zustand"}"#,
        );
        assert_eq!(ok.command.as_deref(), Some("npm install zustand"));
        assert!(!ok.finished);
        for refused in [
            "rm -rf /",
            "npm run build",
            "npm install --global x",
            "npm install a;b",
        ] {
            let r = turn(
                &mut tree,
                &format!(r#"{{"tool":"exec","command":"{refused}"}}"#),
            );
            assert_eq!(r.command, None, "{refused}");
            assert_eq!(r.reply, "only `npm install <packages>` can be run");
        }
    }

    #[test]
    fn writes_and_edits_change_the_tree_and_refusals_are_told() {
        let mut tree = Tree::with(&[("a.js", "let a = 1\n")]);
        let edit =
            r#"{"tool":"edit_file","path":"a.js","search":"let a = 1","replace":"let a = 2"}"#;
        assert_eq!(turn(&mut tree, edit).reply, "edited a.js");
        assert_eq!(tree.files["a.js"], "let a = 2\n");
        assert!(turn(&mut tree, edit)
            .reply
            .starts_with("edit of a.js failed"));
        let write = r#"{"tool":"write_file","path":"b.js","content":"x"}"#;
        assert_eq!(turn(&mut tree, write).reply, "wrote b.js");
        tree.limit = 0;
        assert_eq!(
            turn(
                &mut tree,
                r#"{"tool":"write_file","path":"c.js","content":"xy"}"#
            )
            .reply,
            "could not write c.js: too large"
        );
        assert!(!tree.files.contains_key("c.js"));
        let done = turn(&mut tree, r#"{"tool":"finish","summary":"counted by two"}"#);
        assert_eq!(
            (done.reply.as_str(), done.finished),
            ("counted by two", true)
        );
        let junk = turn(&mut tree, "I will now edit the file.");
        assert!(junk.reply.starts_with("Error: no JSON object"));
        assert!(!junk.finished);
    }

    #[test]
    fn tool_calls_parse_from_plain_or_fenced_json() {
        assert_eq!(parse(r#"{"tool":"list_files"}"#), Ok(ToolCall::ListFiles));
        assert_eq!(
            parse("```json\n{\"tool\":\"read_file\",\"path\":\"src/App.tsx\"}\n```"),
            Ok(ToolCall::ReadFile {
                path: ProjectPath::parse("src/App.tsx").unwrap()
            })
        );
        assert!(matches!(
            parse(r#"Sure: {"tool":"edit_file","path":"a.js","search":"x","replace":"y"}"#),
            Ok(ToolCall::EditFile { .. })
        ));
    }

    #[test]
    fn bad_calls_are_errors() {
        for bad in [
            "no json",
            r#"{"tool":"rm_rf"}"#,
            r#"{"tool":"read_file"}"#,
            r#"{"tool":"read_file","path":"../etc/passwd"}"#,
            r#"{"tool":"finish","summary":"x","extra":1}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_prompt_lists_every_tool() {
        let s = system(Template::Static);
        for t in [
            "list_files",
            "read_file",
            "search",
            "edit_file",
            "write_file",
            "exec",
            "finish",
        ] {
            assert!(s.contains(t), "{t}");
        }
        assert_eq!(
            start(Template::Static, "dark mode", &["a.js".into()]).len(),
            2
        );
    }
}

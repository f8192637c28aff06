//! The follow-up tool loop: after the first version, a change request is worked through one
//! tool call per model turn. Calls are plain JSON (small local models do not emit native
//! tool calls reliably, but follow a JSON schema), one object per answer.

use super::llm::ChatMessage;
use crate::path::ProjectPath;
use crate::sandbox::Template;
use serde::{Deserialize, Serialize};

/// Model turns per follow-up before the loop is closed for it.
pub const MAX_TOOL_ROUNDS: u32 = 12;

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

#[cfg(test)]
mod tests {
    use super::*;

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

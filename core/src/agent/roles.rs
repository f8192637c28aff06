//! Who the pipeline asks, and with which chat parameters: one table, so a request's token
//! budget, temperature and answer schema are decided (and tested) in one place.

use super::blueprint::Blueprint;
use super::llm::{ChatMessage, ChatRequest};
use super::{checks, tools};

/// The model roles (each has its own configured model; the tester runs on the coder's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Planner,
    Coder,
    Fixer,
    /// Writes acceptance checks.
    Tester,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Planner => "planner",
            Role::Coder => "coder",
            Role::Fixer => "fixer",
            Role::Tester => "tester",
        }
    }
}

/// The pipeline's kinds of model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// The blueprint (JSON).
    Plan,
    /// One turn of the follow-up tool loop (one JSON tool call).
    Edit,
    /// A phase's files (streamed file blocks).
    Code,
    /// A phase's acceptance checks (JSON).
    Test,
    /// Repairs after a failed check (streamed file blocks).
    Fix,
}

impl Ask {
    pub fn role(self) -> Role {
        match self {
            Ask::Plan => Role::Planner,
            Ask::Edit | Ask::Code => Role::Coder,
            Ask::Test => Role::Tester,
            Ask::Fix => Role::Fixer,
        }
    }

    /// Answers used whole (parsed once complete) rather than streamed file by file.
    pub fn is_whole(self) -> bool {
        matches!(self, Ask::Plan | Ask::Edit | Ask::Test)
    }

    /// The request for `model`: file-writing calls get room for whole files; JSON answers
    /// are short and held to their schema; everything runs cool (a small model at higher
    /// temperatures breaks the formats). A file-writing call that is tried again (`attempt`
    /// 1, 2, …) runs warmer: at the first temperature a small model that looped once loops
    /// the same way again.
    pub fn request(self, model: String, messages: Vec<ChatMessage>, attempt: u32) -> ChatRequest {
        let (max_tokens, temperature, json_schema) = match self {
            Ask::Plan => (
                1500,
                0.2,
                Some(("blueprint".into(), Blueprint::json_schema())),
            ),
            Ask::Edit => (4096, 0.1, Some(("tool_call".into(), tools::schema()))),
            Ask::Code => (8192, 0.2, None),
            Ask::Test => (2048, 0.1, Some(("checks".into(), checks::json_schema()))),
            Ask::Fix => (8192, 0.1, None),
        };
        let temperature = if self.is_whole() {
            temperature
        } else {
            (temperature + 0.25 * attempt.min(2) as f32).min(0.7)
        };
        ChatRequest {
            model,
            messages,
            max_tokens,
            temperature,
            json_schema,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_answers_have_their_schema_and_file_answers_room_for_files() {
        for (ask, role, schema, max_tokens) in [
            (Ask::Plan, Role::Planner, Some("blueprint"), 1500),
            (Ask::Edit, Role::Coder, Some("tool_call"), 4096),
            (Ask::Code, Role::Coder, None, 8192),
            (Ask::Test, Role::Tester, Some("checks"), 2048),
            (Ask::Fix, Role::Fixer, None, 8192),
        ] {
            let req = ask.request("m".into(), vec![ChatMessage::user("x")], 0);
            assert_eq!(ask.role(), role, "{ask:?}");
            assert_eq!(req.json_schema.as_ref().map(|(n, _)| n.as_str()), schema);
            assert_eq!(ask.is_whole(), schema.is_some(), "{ask:?}");
            assert_eq!(req.max_tokens, max_tokens, "{ask:?}");
            assert!(req.temperature <= 0.2, "{ask:?}");
            assert_eq!(req.model, "m");
            let again = ask.request("m".into(), vec![ChatMessage::user("x")], 1);
            let third = ask.request("m".into(), vec![ChatMessage::user("x")], 5);
            if ask.is_whole() {
                assert_eq!(again.temperature, req.temperature, "{ask:?}");
            } else {
                assert!(again.temperature > req.temperature, "{ask:?}");
                assert!(third.temperature > again.temperature && third.temperature <= 0.7);
            }
        }
    }
}

//! The WebSocket wire protocol between browsers and a project's room: JSON, one object per
//! frame, tagged by `type`.
//!
//! Broadcast events (`file_*`, `presence`, `version_created`, …) are appended to the room's
//! log before they are sent, each with the next `seq`; `hello {last_seq}` replays the log
//! after `last_seq`. Replies to one client (`state`, `edit_rejected`, `error`,
//! `resync_required`) are not logged: they carry the `seq` of the last event they reflect.

use crate::agent::blueprint::Blueprint;
use crate::path::ProjectPath;
use crate::sandbox::Template;
use crate::tree::FileMeta;
use serde::{Deserialize, Serialize};

/// client → room
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ClientMsg {
    /// Must come first. With `last_seq`, replay every event after it; without, send a
    /// `state` snapshot. Then the socket is live.
    Hello {
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        last_seq: Option<u64>,
    },
    /// A full snapshot of the room.
    GetState,
    /// Create (`base_rev` = the path's current rev, 0 if it never existed) or overwrite.
    Edit {
        path: ProjectPath,
        base_rev: u64,
        content: String,
    },
    Delete {
        path: ProjectPath,
        base_rev: u64,
    },
    Rename {
        from: ProjectPath,
        to: ProjectPath,
        base_rev: u64,
    },
    /// Build or change the app. While a generation runs, the prompt is folded into its next
    /// phase.
    Generate {
        prompt: String,
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional = nullable))]
        template: Option<Template>,
    },
    /// Stop the running generation.
    Cancel,
    /// Open a text file's document, or come back to it: `state_vector` is what you have
    /// (Yjs v1, base64; empty for nothing). The room answers `doc_sync` with what you lack;
    /// then send, as a `doc_update`, what the room's state vector says it lacks.
    DocSync {
        path: ProjectPath,
        #[serde(default)]
        #[cfg_attr(feature = "ts", ts(optional))]
        state_vector: Option<String>,
    },
    /// A change to a file's document `doc` (from `doc_sync`): a Yjs v1 update, base64.
    DocUpdate {
        path: ProjectPath,
        doc: u64,
        update: String,
    },
    /// Your cursor and selection in a file: a y-protocols awareness update (base64) for Yjs
    /// client `client_id`. Relayed to the others as is, never logged.
    Awareness {
        path: ProjectPath,
        client_id: u64,
        update: String,
    },
}

/// A room event as sent on the wire: `{"seq": N, "type": "…", …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Sequenced {
    pub seq: u64,
    #[serde(flatten)]
    pub event: ServerEvent,
}

/// How a file's `content` is encoded in an event: UTF-8 text as is, other bytes as base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Encoding {
    #[default]
    Utf8,
    Base64,
}

impl Encoding {
    pub fn is_utf8(&self) -> bool {
        *self == Encoding::Utf8
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PresenceUser {
    pub id: String,
    pub email: String,
    /// Open sockets of this user in the room (tabs, devices).
    pub connections: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VersionInfo {
    pub number: u64,
    pub message: String,
    pub author: String,
    pub parent: Option<u64>,
    pub file_count: u64,
    pub size: u64,
    pub created_at: i64,
}

/// room → client
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ServerEvent {
    /// Reply to `doc_sync`: what your state vector lacked (`update`), and the room's own
    /// `state_vector`, so you can send what it lacks. `doc` names this document: a file
    /// deleted or renamed and made again has a new one, and updates to an old one are refused.
    DocSync {
        path: ProjectPath,
        doc: u64,
        update: String,
        state_vector: String,
        rev: u64,
    },
    /// A change to a file's document, applied by the room: the file is now at `rev`, `size`
    /// bytes. Whole-file writes send one too (next to `file_edited`), so open documents merge
    /// them with what their person is typing.
    DocUpdate {
        path: ProjectPath,
        doc: u64,
        update: String,
        rev: u64,
        size: u64,
        by: String,
    },
    /// Your update was refused and changed nothing (`code`, `message` say why); your copy of
    /// the document has what the room does not: drop it and `doc_sync` from nothing.
    DocRejected {
        path: ProjectPath,
        doc: u64,
        code: String,
        message: String,
    },
    /// Someone's cursor and selection (relayed, not logged). `by` is who, as the room knows
    /// them: show that name, not one inside `update`.
    Awareness {
        path: ProjectPath,
        client_id: u64,
        update: String,
        by: String,
    },
    /// These Yjs clients' cursors are gone (their socket closed).
    AwarenessGone {
        client_ids: Vec<u64>,
    },
    /// A full snapshot: files (metadata; contents over REST), agent state, who is here, and
    /// `head_seq`, the last event it reflects.
    State {
        project_id: String,
        head_seq: u64,
        files: Vec<FileMeta>,
        agent: String,
        presence: Vec<PresenceUser>,
    },
    FileEdited {
        path: ProjectPath,
        rev: u64,
        content: String,
        #[serde(default, skip_serializing_if = "Encoding::is_utf8")]
        encoding: Encoding,
        by: String,
    },
    FileDeleted {
        path: ProjectPath,
        rev: u64,
        by: String,
    },
    FileRenamed {
        from: ProjectPath,
        to: ProjectPath,
        /// The tombstone rev left at `from`.
        from_rev: u64,
        /// The file's rev at `to`.
        rev: u64,
        by: String,
    },
    /// Your edit lost: this is the file as it is now (`content: null` if it does not exist).
    EditRejected {
        path: ProjectPath,
        current_rev: u64,
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Encoding::is_utf8")]
        encoding: Encoding,
    },
    Presence {
        users: Vec<PresenceUser>,
    },
    VersionCreated {
        version: VersionInfo,
    },
    /// The events you asked for are no longer in the log; a `state` follows.
    ResyncRequired {
        reason: String,
    },
    Error {
        code: String,
        message: String,
    },

    // --- generation progress (all broadcast) ---
    /// A person's prompt, as the room took it: it starts a generation, or `queued` waits
    /// for the running one. The chat shows these, so a reload keeps the conversation.
    Prompt {
        generation_id: String,
        prompt: String,
        /// The email of who sent it.
        by: String,
        queued: bool,
    },
    StateChange {
        generation_id: String,
        /// `planning`, `implementing`, `installing`, `checking`, `fixing`, `serving`,
        /// `snapshotting`, `done`, `failed`, `cancelled`.
        step: String,
        phase: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "ts", ts(optional))]
        reason: Option<String>,
    },
    Blueprint {
        blueprint: Blueprint,
    },
    PhaseDesigning {
        phase: usize,
        name: String,
        goal: String,
    },
    PhaseDesigned {
        phase: usize,
        files: Vec<String>,
    },
    FileStart {
        path: ProjectPath,
    },
    FileChunk {
        path: ProjectPath,
        chunk: String,
    },
    FileEnd {
        path: ProjectPath,
        size: u64,
    },
    FilesWritten {
        phase: usize,
        files: Vec<String>,
    },
    CommandOutput {
        command: String,
        output: String,
    },
    DepsInstalled {
        commands: Vec<String>,
    },
    /// The acceptance checks written for a phase (`.kiln/checks.json`); `dropped` says why
    /// any the model wrote were unusable.
    ChecksWritten {
        phase: usize,
        checks: Vec<String>,
        dropped: Vec<String>,
    },
    CheckResult {
        phase: usize,
        passed: bool,
        errors: Vec<String>,
        /// Each acceptance check's result, when the build passed and checks ran.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        checks: Vec<crate::agent::checks::CheckReport>,
    },
    ServerStarted {
        preview_url: String,
    },
    /// The project's published site changed: a build began, went live, failed, or the
    /// site was taken down.
    Site {
        site: crate::sites::Site,
    },
    /// One model call of a generation, as logged in `ai_calls`: what it cost, so the
    /// timeline can show tokens and cost per step.
    ModelCall {
        generation_id: String,
        /// `planner`, `coder`, `fixer`, `tester`.
        role: String,
        /// The step it was made for (see `state_change`).
        step: String,
        phase: usize,
        model: String,
        input_tokens: u64,
        output_tokens: u64,
        cost_micros: u64,
        latency_ms: u64,
        ok: bool,
    },
    GenerationComplete {
        generation_id: String,
        version: Option<u64>,
        preview_url: Option<String>,
        elapsed_ms: i64,
        llm_calls: u32,
        input_tokens: u64,
        output_tokens: u64,
        cost_micros: u64,
        /// Check errors still open when the fix rounds ran out.
        unresolved: Vec<String>,
    },
}

impl ServerEvent {
    /// Whether the event goes to every client through the log (`true`) or is a reply to one.
    pub fn is_broadcast(&self) -> bool {
        !matches!(
            self,
            ServerEvent::State { .. }
                | ServerEvent::DocSync { .. }
                | ServerEvent::DocRejected { .. }
                | ServerEvent::Awareness { .. }
                | ServerEvent::AwarenessGone { .. }
                | ServerEvent::EditRejected { .. }
                | ServerEvent::ResyncRequired { .. }
                | ServerEvent::Error { .. }
        )
    }

    /// An `error` event: its code is one of the API's (`ErrorCode`), so a socket and a
    /// REST call say the same thing the same way.
    pub fn error(code: crate::error::ErrorCode, message: impl Into<String>) -> ServerEvent {
        ServerEvent::Error {
            code: code.as_str().to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ProjectPath {
        ProjectPath::parse(s).unwrap()
    }

    #[test]
    fn client_messages_parse_from_their_wire_form() {
        let cases = [
            (
                r#"{"type":"hello","last_seq":42}"#,
                ClientMsg::Hello { last_seq: Some(42) },
            ),
            (r#"{"type":"hello"}"#, ClientMsg::Hello { last_seq: None }),
            (r#"{"type":"get_state"}"#, ClientMsg::GetState),
            (
                r#"{"type":"edit","path":"src/a.ts","base_rev":3,"content":"x"}"#,
                ClientMsg::Edit {
                    path: p("src/a.ts"),
                    base_rev: 3,
                    content: "x".into(),
                },
            ),
            (
                r#"{"type":"delete","path":"a","base_rev":1}"#,
                ClientMsg::Delete {
                    path: p("a"),
                    base_rev: 1,
                },
            ),
            (
                r#"{"type":"rename","from":"a","to":"b/c","base_rev":2}"#,
                ClientMsg::Rename {
                    from: p("a"),
                    to: p("b/c"),
                    base_rev: 2,
                },
            ),
        ];
        for (wire, want) in cases {
            assert_eq!(
                serde_json::from_str::<ClientMsg>(wire).unwrap(),
                want,
                "{wire}"
            );
            let back = serde_json::to_string(&want).unwrap();
            assert_eq!(serde_json::from_str::<ClientMsg>(&back).unwrap(), want);
        }
    }

    #[test]
    fn malformed_client_messages_are_errors() {
        for bad in [
            "",
            "{}",
            "[]",
            r#"{"type":"launch_missiles"}"#,
            r#"{"type":"hello","last_seq":-1}"#,
            r#"{"type":"hello","last_seq":"7"}"#,
            r#"{"type":"hello","last_seq":1,"extra":true}"#,
            r#"{"type":"edit","path":"../x","base_rev":0,"content":""}"#,
            r#"{"type":"edit","path":"/etc/passwd","base_rev":0,"content":""}"#,
            r#"{"type":"edit","path":"a","content":""}"#,
            r#"{"type":"rename","from":"a","to":"","base_rev":1}"#,
        ] {
            assert!(serde_json::from_str::<ClientMsg>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_events_carry_seq_and_type_at_top_level() {
        let ev = Sequenced {
            seq: 7,
            event: ServerEvent::FileEdited {
                path: p("index.html"),
                rev: 2,
                content: "<h1>hi</h1>".into(),
                encoding: Encoding::Utf8,
                by: "u_1".into(),
            },
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"seq": 7, "type": "file_edited", "path": "index.html",
                "rev": 2, "content": "<h1>hi</h1>", "by": "u_1"})
        );
        assert_eq!(serde_json::from_value::<Sequenced>(v).unwrap(), ev);
        assert!(ev.event.is_broadcast());
        assert!(!ServerEvent::error(crate::error::ErrorCode::Internal, "y").is_broadcast());
    }
}

//! Wire types between the edge and the sandbox-proxy: the service JWT's claims and the
//! `/v1/sandboxes` request/response bodies, including the exec NDJSON frames.
//!
//! Plain data only; the sandbox-proxy does the I/O and the edge mints the tokens.

use crate::ProjectPath;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Custom claims of the short-lived service JWT the edge sends with every sandbox-proxy call.
/// The standard `exp` (≤ 5 minutes after issue) is checked as well.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxClaims {
    /// The one project this token may act on.
    pub project_id: String,
    /// The org the project belongs to: the proxy caps how many sandboxes one org runs at
    /// once. Absent in tokens from before the cap (then the project counts as its own org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// Longest lifetime a service token may have, in seconds.
pub const MAX_TOKEN_TTL_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Template {
    /// React + TypeScript + Vite + Tailwind.
    ReactVite,
    /// Plain HTML/CSS/JS, served by a tiny static server.
    Static,
}

impl Template {
    pub fn as_str(self) -> &'static str {
        match self {
            Template::ReactVite => "react-vite",
            Template::Static => "static",
        }
    }
}

/// `POST /v1/sandboxes`. Idempotent per project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    pub project_id: String,
    pub template: Template,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub id: String,
    pub project_id: String,
    pub template: Template,
    /// `running` (namespaces and cgroup exist) or `stopped` (idle-reaped; files kept).
    pub state: String,
    /// The sandbox's own address inside its network namespace.
    pub address: String,
    /// `true` when this call created it.
    #[serde(default)]
    pub created: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileEncoding {
    #[default]
    Utf8,
    Base64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWrite {
    pub path: ProjectPath,
    pub content: String,
    #[serde(default)]
    pub encoding: FileEncoding,
}

/// `PUT /v1/sandboxes/{id}/files`: many files in one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFiles {
    pub files: Vec<FileWrite>,
}

/// What `PUT /v1/sandboxes/{id}/files` accepts: a [`WriteFiles`] (whose JSON is one) plus
/// options. A type of its own so that code building `WriteFiles` values keeps compiling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFilesRequest {
    pub files: Vec<FileWrite>,
    /// After writing, remove every file in the project that is not in `files` (a full
    /// sync of the working tree), except build and cache directories such as
    /// `node_modules/`, `.vite/` and `dist/` (the sandbox-proxy's SANDBOX.md lists them).
    #[serde(default)]
    pub prune: bool,
    /// Paths the prune keeps besides `files`: those an earlier call of the same sync wrote
    /// (a large tree is sent in several calls; the last one prunes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep: Vec<crate::path::ProjectPath>,
}

impl From<WriteFiles> for WriteFilesRequest {
    fn from(w: WriteFiles) -> Self {
        WriteFilesRequest {
            files: w.files,
            prune: false,
            keep: vec![],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesWritten {
    pub written: usize,
    pub bytes: u64,
    /// Files removed by `prune`.
    #[serde(default)]
    pub pruned: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: ProjectPath,
    pub size: u64,
    pub dir: bool,
}

/// `POST /v1/sandboxes/{id}/exec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    pub cmd: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Relative to `/work`; `None` is `/work` itself.
    #[serde(default)]
    pub cwd: Option<ProjectPath>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the exec NDJSON response. Output frames come as the command writes; exactly
/// one final frame ends the stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExecFrame {
    /// `data` is UTF-8 (lossy) text of one read from the pipe.
    Output {
        stream: Stream,
        data: String,
    },
    Exit {
        exit_code: i32,
    },
    Signal {
        signal: i32,
    },
    TimedOut {
        timed_out: bool,
    },
    OomKilled {
        oom_killed: bool,
    },
    /// The command could not be started at all.
    Error {
        error: String,
    },
}

impl ExecFrame {
    pub fn is_final(&self) -> bool {
        !matches!(self, ExecFrame::Output { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DevServerAction {
    Start,
    Restart,
    Stop,
    Status,
}

/// `POST /v1/sandboxes/{id}/dev-server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevServerRequest {
    pub action: DevServerAction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DevServerStatus {
    /// `stopped`, `starting`, `ready` or `exited`.
    pub state: String,
    pub port: u16,
    /// Path of the preview under the sandbox-proxy, with its signed token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub preview_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub exit_code: Option<i32>,
    /// The last lines of the server's output.
    pub log: String,
}

/// Files per `PUT …/files` call: the proxy bounds one request.
pub const WRITE_BATCH: usize = 200;

/// The calls that write `files` into a sandbox. With `prune`, the last call removes what is
/// not in the tree (deleted or renamed files would otherwise live on in the sandbox, be
/// served and be type-checked), keeping what the earlier calls wrote; an empty tree still
/// prunes.
pub fn write_batches(files: Vec<FileWrite>, prune: bool) -> Vec<WriteFilesRequest> {
    let mut batches: Vec<Vec<FileWrite>> = Vec::new();
    let mut files = files.into_iter().peekable();
    while files.peek().is_some() {
        batches.push(files.by_ref().take(WRITE_BATCH).collect());
    }
    if batches.is_empty() && prune {
        batches.push(vec![]);
    }
    let last = batches.len().saturating_sub(1);
    let mut written: Vec<ProjectPath> = Vec::new();
    batches
        .into_iter()
        .enumerate()
        .map(|(i, batch)| {
            let prunes = prune && i == last;
            let keep = if prunes {
                std::mem::take(&mut written)
            } else {
                vec![]
            };
            written.extend(batch.iter().map(|f| f.path.clone()));
            WriteFilesRequest {
                files: batch,
                prune: prunes,
                keep,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_written_in_bounded_batches_and_only_the_last_prunes_keeping_the_rest() {
        let files: Vec<FileWrite> = (0..WRITE_BATCH * 2 + 1)
            .map(|i| FileWrite {
                path: ProjectPath::parse(&format!("f{i}.txt")).unwrap(),
                content: String::new(),
                encoding: FileEncoding::Utf8,
            })
            .collect();
        let calls = write_batches(files, true);
        assert_eq!(
            calls.iter().map(|c| c.files.len()).collect::<Vec<_>>(),
            vec![WRITE_BATCH, WRITE_BATCH, 1]
        );
        assert_eq!(
            calls.iter().map(|c| c.prune).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert_eq!(
            calls[2].keep.len(),
            WRITE_BATCH * 2,
            "what the earlier calls wrote"
        );
        assert!(calls[0].keep.is_empty() && calls[1].keep.is_empty());
        let unpruned = write_batches(vec![], false);
        assert!(unpruned.is_empty());
        let empty = write_batches(vec![], true);
        assert_eq!(empty.len(), 1, "an empty tree still prunes");
        assert!(empty[0].prune && empty[0].files.is_empty());
    }

    #[test]
    fn exec_frames_have_the_documented_shape() {
        let cases = [
            (
                ExecFrame::Output {
                    stream: Stream::Stdout,
                    data: "hi\n".into(),
                },
                r#"{"stream":"stdout","data":"hi\n"}"#,
            ),
            (ExecFrame::Exit { exit_code: 3 }, r#"{"exit_code":3}"#),
            (ExecFrame::Signal { signal: 9 }, r#"{"signal":9}"#),
            (
                ExecFrame::TimedOut { timed_out: true },
                r#"{"timed_out":true}"#,
            ),
            (
                ExecFrame::OomKilled { oom_killed: true },
                r#"{"oom_killed":true}"#,
            ),
        ];
        for (frame, json) in cases {
            assert_eq!(serde_json::to_string(&frame).unwrap(), json);
            assert_eq!(serde_json::from_str::<ExecFrame>(json).unwrap(), frame);
        }
    }

    #[test]
    fn file_writes_validate_their_paths() {
        let bad = r#"{"files":[{"path":"../etc/passwd","content":"x"}]}"#;
        assert!(serde_json::from_str::<WriteFiles>(bad).is_err());
        let good = r#"{"files":[{"path":"src/App.tsx","content":"x"}]}"#;
        assert!(serde_json::from_str::<WriteFiles>(good).is_ok());
        // The edge's current body is a valid request that does not prune.
        let req: WriteFilesRequest = serde_json::from_str(good).unwrap();
        assert!(!req.prune);
        let pruning = r#"{"files":[],"prune":true}"#;
        assert!(
            serde_json::from_str::<WriteFilesRequest>(pruning)
                .unwrap()
                .prune
        );
        let old: FilesWritten = serde_json::from_str(r#"{"written":1,"bytes":2}"#).unwrap();
        assert_eq!(old.pruned, 0);
    }
}

/// What a command did.
#[derive(Debug, Clone, Default)]
pub struct ExecResult {
    pub output: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub oom_killed: bool,
}

impl ExecResult {
    pub fn ok(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// A failed sandbox call. `lost` when the proxy no longer knows the sandbox (it restarted
/// or its host was replaced): the caller re-creates it from the latest files.
#[derive(Debug, Clone)]
pub struct SandboxError {
    pub message: String,
    pub status: Option<u16>,
    pub lost: bool,
}

impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

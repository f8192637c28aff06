//! The room as the pipeline's [`Host`]: its working tree, broadcast and settings, the model
//! (`llm_client`), the sandbox (`sandbox_client`), the cost log and versions (`repo`,
//! `versions`). Effects only: `kiln_core::agent::driver` decides what to do with them.

use kiln_core::agent::driver::{CallRecord, Host, HostResult, AGENT};
use kiln_core::agent::llm::{CallError, CallResult, ChatRequest};
use kiln_core::agent::machine::Generation;
use kiln_core::agent::roles::Role;
use kiln_core::path::ProjectPath;
use kiln_core::protocol::ServerEvent;
use kiln_core::sandbox::{
    DevServerAction, DevServerStatus, ExecRequest, ExecResult, FileEncoding, FileWrite,
    SandboxError, Template, WriteFilesRequest,
};

use std::cell::RefCell;

use super::{load, save, CANCEL_KEY};
use crate::llm_client::LlmConfig;
use crate::repo::{AiCall, AiCalls, Credits};
use crate::room::{encode, now, ProjectRoom};
use crate::sandbox_client::SandboxClient;
use crate::versions;

/// What is left of generation `id`'s credit hold (meta `credit_hold`, `<id>:<micros>`).
pub fn held(room: &ProjectRoom, id: &str) -> u64 {
    room.store()
        .meta(HOLD_KEY)
        .ok()
        .flatten()
        .and_then(|v| {
            let (g, left) = v.split_once(':')?;
            (g == id).then(|| left.parse().ok()).flatten()
        })
        .unwrap_or(0)
}

pub fn set_held(room: &ProjectRoom, id: &str, left: u64) -> worker::Result<()> {
    room.store().set_meta(HOLD_KEY, &format!("{id}:{left}"))
}

const HOLD_KEY: &str = "credit_hold";

/// The project's sandbox client, as its org's (the proxy caps sandboxes per org), on the
/// host `fleet` places it on.
pub async fn sandbox_client(
    room: &ProjectRoom,
    project: &str,
) -> Result<SandboxClient, SandboxError> {
    let org = room.store().meta("org_id").ok().flatten();
    crate::fleet::client(room.env(), project, org, now()).await
}

pub struct RoomHost<'a> {
    pub room: &'a ProjectRoom,
    pub project: &'a str,
    llm: Option<LlmConfig>,
    /// Placed on first use in a step; dropped when its host stops answering, so the step's
    /// retry places the project again.
    sandbox: RefCell<Option<SandboxClient>>,
}

impl<'a> RoomHost<'a> {
    pub fn new(room: &'a ProjectRoom, project: &'a str) -> RoomHost<'a> {
        RoomHost {
            room,
            project,
            llm: LlmConfig::from_env(room.env()),
            sandbox: RefCell::new(None),
        }
    }

    async fn sb(&self) -> Result<SandboxClient, SandboxError> {
        if let Some(c) = self.sandbox.borrow().as_ref() {
            return Ok(c.clone());
        }
        let c = sandbox_client(self.room, self.project).await?;
        *self.sandbox.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    /// A call that failed without an HTTP answer may mean its host is gone (`fleet::check_host`).
    async fn checked<T>(
        &self,
        sb: &SandboxClient,
        r: Result<T, SandboxError>,
    ) -> Result<T, SandboxError> {
        match r {
            Err(e) if e.status.is_none() && sb.host().is_some() => {
                let e = crate::fleet::check_host(self.room.env(), sb, e, now()).await;
                if e.lost {
                    self.sandbox.replace(None);
                }
                Err(e)
            }
            r => r,
        }
    }
}

fn text(e: worker::Error) -> String {
    e.to_string()
}

impl Host for RoomHost<'_> {
    fn files(&self) -> HostResult<Vec<(ProjectPath, u64)>> {
        let files = self.room.store().list().map_err(text)?;
        Ok(files.into_iter().map(|f| (f.path, f.size)).collect())
    }

    fn read(&self, path: &ProjectPath) -> HostResult<Option<Vec<u8>>> {
        self.room.store().content(path).map_err(text)
    }

    /// The next rev, whatever it is: the agent owns the step.
    fn write(&self, path: &ProjectPath, content: &[u8]) -> HostResult<()> {
        let store = self.room.store();
        let slot = store.slot(path).map_err(text)?;
        let totals = store.totals().map_err(text)?;
        kiln_core::tree::check_fits(slot, content.len() as u64, totals).map_err(|r| r.message())?;
        self.room
            .apply_write(AGENT, path, slot.rev + 1, content)
            .map_err(text)?;
        Ok(())
    }

    fn delete(&self, path: &ProjectPath) -> HostResult<()> {
        let slot = self.room.store().slot(path).map_err(text)?;
        match kiln_core::tree::check_delete(slot, slot.rev) {
            Ok(rev) => self.room.apply_delete(AGENT, path, rev).map_err(text),
            Err(_) => Ok(()),
        }
    }

    fn tree_writes(&self) -> HostResult<Vec<FileWrite>> {
        let store = self.room.store();
        let mut files = Vec::new();
        for meta in store.list().map_err(text)? {
            let bytes = store.content(&meta.path).map_err(text)?.unwrap_or_default();
            let (content, enc) = encode(bytes);
            files.push(FileWrite {
                path: meta.path,
                content,
                encoding: if enc.is_utf8() {
                    FileEncoding::Utf8
                } else {
                    FileEncoding::Base64
                },
            });
        }
        Ok(files)
    }

    fn broadcast(&self, event: ServerEvent) -> HostResult<()> {
        self.room.broadcast(event).map_err(text)
    }

    fn config(&self, name: &str) -> Option<String> {
        self.room.env().var(name).ok().map(|v| v.to_string())
    }

    fn project(&self) -> &str {
        self.project
    }

    fn now(&self) -> i64 {
        now()
    }

    fn stored(&self) -> HostResult<Option<Generation>> {
        load(self.room).map_err(text)
    }

    fn save(&self, g: &Generation) -> HostResult<()> {
        save(self.room, g).map_err(text)
    }

    fn cancelled(&self, id: &str) -> bool {
        matches!(self.room.store().meta(CANCEL_KEY), Ok(Some(c)) if c == id)
    }

    fn memo(&self, key: &str) -> HostResult<Option<String>> {
        self.room.store().meta(key).map_err(text)
    }

    fn set_memo(&self, key: &str, value: &str) -> HostResult<()> {
        self.room.store().set_meta(key, value).map_err(text)
    }

    fn model(&self, role: Role, attempt: u32) -> Option<String> {
        self.llm.as_ref().map(|l| l.model(role, attempt))
    }

    async fn stream(
        &self,
        req: &ChatRequest,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<CallResult, CallError> {
        let Some(llm) = &self.llm else {
            return Err(CallError {
                reason: "no model configured (KILN_LLM_BASE_URL)".into(),
                retryable: false,
                retry_after_secs: None,
                status: None,
                latency_ms: 0,
            });
        };
        llm.stream(req, on_text).await
    }

    async fn log_call(&self, call: &CallRecord<'_>) -> HostResult<()> {
        let db = self.room.env().d1("DB").map_err(text)?;
        AiCalls(&db)
            .log(&AiCall {
                project: self.project,
                generation: call.generation,
                role: call.role.as_str(),
                model: call.model,
                usage: call.usage,
                cost_micros: call.cost_micros,
                latency_ms: call.latency_ms,
                error: call.error,
                created_at: now(),
            })
            .await
            .map_err(text)?;
        if call.cost_micros > 0 {
            if let Some(org) = self.room.store().meta("org_id").map_err(text)? {
                // The generation's hold pays first; only what is beyond it comes out of the
                // balance (clamped there at zero).
                let held = held(self.room, call.generation);
                let (from_hold, beyond) = kiln_core::credits::split_cost(call.cost_micros, held);
                if from_hold > 0 {
                    set_held(self.room, call.generation, held - from_hold).map_err(text)?;
                }
                if beyond > 0 {
                    Credits(&db)
                        .debit(&org, self.project, call.generation, beyond, now())
                        .await
                        .map_err(text)?;
                }
            }
        }
        Ok(())
    }

    async fn credit_left(&self) -> HostResult<Option<u64>> {
        let Some(org) = self.room.store().meta("org_id").map_err(text)? else {
            return Ok(None);
        };
        let db = self.room.env().d1("DB").map_err(text)?;
        let balance = Credits(&db).balance(&org).await.map_err(text)?;
        let generation = load(self.room)
            .ok()
            .flatten()
            .map(|g| g.id)
            .unwrap_or_default();
        Ok(Some(balance + held(self.room, &generation)))
    }

    fn has_sandbox(&self) -> bool {
        crate::fleet::configured(self.room.env())
    }

    async fn ensure_sandbox(&self, template: Template) -> Result<bool, SandboxError> {
        let sb = self.sb().await?;
        let r = sb.ensure(template).await;
        Ok(self.checked(&sb, r).await?.created)
    }

    async fn write_files(&self, files: WriteFilesRequest) -> Result<(), SandboxError> {
        let sb = self.sb().await?;
        let r = sb.write_files(files).await;
        self.checked(&sb, r).await
    }

    async fn exec(
        &self,
        req: &ExecRequest,
        on_output: &mut dyn FnMut(&str),
    ) -> Result<ExecResult, SandboxError> {
        let sb = self.sb().await?;
        let r = sb.exec(req, on_output).await;
        self.checked(&sb, r).await
    }

    async fn dev_server(&self, action: DevServerAction) -> Result<DevServerStatus, SandboxError> {
        let sb = self.sb().await?;
        let r = sb.dev_server(action).await;
        self.checked(&sb, r).await
    }

    async fn sandbox_files(&self) -> Result<Vec<ProjectPath>, SandboxError> {
        let sb = self.sb().await?;
        let r = sb.list_files().await;
        let files = self.checked(&sb, r).await?;
        Ok(files.into_iter().map(|f| f.path).collect())
    }

    async fn sandbox_read(&self, path: &ProjectPath) -> Result<Vec<u8>, SandboxError> {
        let sb = self.sb().await?;
        let r = sb.read_file(path).await;
        self.checked(&sb, r).await
    }

    async fn snapshot(&self, message: &str) -> HostResult<u64> {
        let v = versions::create(self.room, self.project, AGENT, message)
            .await
            .map_err(text)?;
        Ok(v.number)
    }
}

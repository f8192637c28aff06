//! `ProjectRoom`: one per project. The only writer of the project's working tree; fans
//! every change out to the project's sockets through a sequenced, persisted event log.
//!
//! The Worker authorises every request and forwards it here with the caller in
//! `x-kiln-user` / `x-kiln-email` / `x-kiln-role`; the room trusts those headers because
//! nothing but the Worker can reach a Durable Object.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_core::api::{GenerationStarted, Items, StartGeneration};
use kiln_core::error::{ErrorBody, ErrorCode};
use kiln_core::path::ProjectPath;
use kiln_core::protocol::{ClientMsg, Encoding, Sequenced, ServerEvent};
use kiln_core::room_api::{
    header, AccessChanged, NewVersion, NoRoute, RestoreVersion, RoomOp, SessionEnded,
};
use kiln_core::tree::{self, FileMeta, Refusal};
use kiln_core::{Action, Role};
use worker::{
    durable_object, DurableObject, Env, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use crate::conn::{presence, Conn};
use crate::docs::DocCache;
use crate::store::{LogLimits, RoomStore};
use crate::{export, generation, publish, versions};
use std::cell::Cell;
use std::rc::Rc;

/// How long after a person's typing the sandbox gets the tree.
const FOLLOW_DELAY_MS: i64 = 1_000;

/// Largest client frame: a 1 MiB file plus its JSON envelope and escaping.
const MAX_FRAME_BYTES: usize = 3 * 1024 * 1024;

#[durable_object]
pub struct ProjectRoom {
    state: State,
    env: Env,
    store: RoomStore,
    docs: DocCache,
    /// A publish job runs in this isolate (`publish::start`); shared with its view.
    publishing: Rc<Cell<bool>>,
    /// This instance has looked for a step its predecessor was cut off in.
    looked_for_cut_step: Cell<bool>,
}

/// The user on whose behalf the Worker forwarded a request.
pub struct Caller {
    pub user: String,
    pub session: String,
    pub email: String,
    pub role: Role,
    pub can_generate: bool,
}

impl DurableObject for ProjectRoom {
    fn new(state: State, env: Env) -> Self {
        let store = RoomStore::open(state.storage().sql())
            .unwrap_or_else(|e| panic!("cannot open the room's storage: {e}"));
        ProjectRoom {
            state,
            env,
            store,
            docs: DocCache::default(),
            publishing: Rc::default(),
            looked_for_cut_step: Cell::new(false),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let project = parts.next().unwrap_or_default().to_owned();
        let op = parts.next().unwrap_or_default().to_owned();
        if let Err(resp) = self.bind_project(&project) {
            return resp;
        }
        if !self.looked_for_cut_step.replace(true) {
            generation::resume_cut_step(self).await?;
        }
        // Projects never change org; the room keeps it for the per-org caps.
        if let Some(org) = req.headers().get(header::ORG)? {
            if self.store.meta("org_id")?.as_deref() != Some(org.as_str()) {
                self.store.set_meta("org_id", &org)?;
            }
        }
        let Some(caller) = caller(&req) else {
            return error(ErrorCode::Unauthorized, "no caller");
        };
        let method = req.method().to_string();
        let op = match RoomOp::route(&op, &method) {
            Ok(op) => op,
            Err(NoRoute::NotFound) => return error(ErrorCode::NotFound, "no such room route"),
            Err(NoRoute::MethodNotAllowed) => {
                return error(ErrorCode::MethodNotAllowed, "method not allowed")
            }
        };
        match op {
            RoomOp::State => Response::from_json(&self.state_event(&project)?),
            RoomOp::Socket => {
                publish::resume(self, &project)?;
                self.accept(caller)
            }
            RoomOp::Files => {
                // Through a `Value`: sorted keys, the bytes this answer always had.
                let items = serde_json::to_value(Items {
                    items: self.store.list()?,
                })?;
                Response::from_json(&items)
            }
            RoomOp::ReadFile => self.read_file(&req),
            RoomOp::WriteFile => {
                let body = req.bytes().await?;
                self.put_file(&req, &caller, &body).await
            }
            RoomOp::DeleteFile => self.delete_file_rest(&req, &caller).await,
            RoomOp::CreateVersion => {
                let body: NewVersion = req.json().await?;
                let v = versions::create(self, &project, &caller.user, &body.message).await?;
                Ok(Response::from_json(&v)?.with_status(201))
            }
            RoomOp::Restore => {
                let body: RestoreVersion = req.json().await?;
                match versions::restore(self, &project, &caller.user, body.number).await? {
                    Ok(v) => {
                        self.follow_people().await?;
                        Ok(Response::from_json(&v)?.with_status(201))
                    }
                    Err(resp) => Ok(resp),
                }
            }
            RoomOp::Generate => {
                let body: StartGeneration = req.json().await?;
                if let Err(secs) = self.generation_allowed(&caller.user).await? {
                    let mut resp = error(ErrorCode::RateLimited, rate_limited(secs))?;
                    resp.headers_mut().set("retry-after", &secs.to_string())?;
                    return Ok(resp);
                }
                match generation::start(self, body.prompt, body.template, &caller.email).await? {
                    Ok(id) => Ok(
                        Response::from_json(&GenerationStarted { generation_id: id })?
                            .with_status(202),
                    ),
                    Err(why) => error(why.code(), why.to_string()),
                }
            }
            RoomOp::Generation => match generation::load(self)? {
                Some(g) => Response::from_json(&g),
                None => error(ErrorCode::NotFound, "no generation yet"),
            },
            RoomOp::Cancel => {
                generation::cancel(self).await?;
                Ok(Response::empty()?.with_status(204))
            }
            // Rights changed elsewhere take effect on open sockets at once (the Worker tells
            // the room after the change is stored).
            RoomOp::Access => {
                let body: AccessChanged = req.json().await?;
                self.set_access(&body.user, body.role)?;
                Ok(Response::empty()?.with_status(204))
            }
            RoomOp::RevokeSession => {
                let body: SessionEnded = req.json().await?;
                self.close_where(|c| c.session == body.session, "signed out")?;
                Ok(Response::empty()?.with_status(204))
            }
            RoomOp::Deleted => {
                self.close_where(|_| true, "the project was deleted")?;
                generation::project_deleted(self, &project).await?;
                Ok(Response::empty()?.with_status(204))
            }
            RoomOp::Export => {
                let version = query(&req, "version").and_then(|v| v.parse().ok());
                export::zip(self, &project, version).await
            }
            RoomOp::Publish => {
                let job: kiln_core::sites::PublishJob = req.json().await?;
                publish::start(self, &project, job)?;
                Ok(Response::empty()?.with_status(202))
            }
            RoomOp::Unpublish => {
                let domain = publish::sites_domain(&self.env).map_err(worker::Error::from)?;
                let db = self.env.d1("DB")?;
                if let Some(site) = publish::Sites(&db).get(&project, &domain).await? {
                    self.broadcast(ServerEvent::Site { site })?;
                }
                Ok(Response::empty()?.with_status(204))
            }
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let Some(mut conn) = Conn::of(&ws) else {
            return Ok(());
        };
        if conn.revoked {
            let _ = ws.close(Some(4003), Some("access revoked"));
            return Ok(());
        }
        let text = match message {
            WebSocketIncomingMessage::String(s) => s,
            WebSocketIncomingMessage::Binary(_) => {
                return self.reply(
                    &ws,
                    ServerEvent::error(ErrorCode::InvalidMessage, "frames must be JSON text"),
                );
            }
        };
        if text.len() > MAX_FRAME_BYTES {
            return self.reply(
                &ws,
                ServerEvent::error(ErrorCode::PayloadTooLarge, "frame too large"),
            );
        }
        let msg: ClientMsg = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(e) => {
                return self.reply(
                    &ws,
                    ServerEvent::error(ErrorCode::InvalidMessage, e.to_string()),
                );
            }
        };
        if let ClientMsg::Hello { last_seq } = msg {
            return self.hello(&ws, &mut conn, last_seq);
        }
        if !conn.live {
            return self.reply(
                &ws,
                ServerEvent::error(ErrorCode::HelloRequired, "send hello first"),
            );
        }
        // Watching takes reading a document and showing where you are; the rest is writing.
        let reads = matches!(
            msg,
            ClientMsg::GetState | ClientMsg::DocSync { .. } | ClientMsg::Awareness { .. }
        );
        if !reads && !conn.role.allows(Action::WriteProject) {
            let text = format!("your role ({}) may watch but not write", conn.role);
            return self.reply(&ws, ServerEvent::error(ErrorCode::Forbidden, text));
        }
        if matches!(msg, ClientMsg::Generate { .. } | ClientMsg::Cancel) && !conn.can_generate {
            return self.reply(
                &ws,
                ServerEvent::error(
                    ErrorCode::Forbidden,
                    "this token's scopes do not allow generating",
                ),
            );
        }
        let by = conn.user.clone();
        match msg {
            ClientMsg::Hello { .. } => Ok(()),
            ClientMsg::GetState => {
                let project = self.store.meta("project_id")?.unwrap_or_default();
                let state = self.state_event(&project)?;
                self.reply(&ws, state)
            }
            ClientMsg::Edit {
                path,
                base_rev,
                content,
            } => match self.write_file(&by, &path, base_rev, content.as_bytes())? {
                Ok(_) => self.follow_people().await,
                Err(r) => self.reject(&ws, &path, r),
            },
            ClientMsg::Delete { path, base_rev } => match self.delete_file(&by, &path, base_rev)? {
                Ok(_) => self.follow_people().await,
                Err(r) => self.reject(&ws, &path, r),
            },
            ClientMsg::Generate { prompt, template } => {
                if prompt.trim().is_empty() || prompt.len() > 20_000 {
                    return self.reply(
                        &ws,
                        ServerEvent::error(
                            ErrorCode::InvalidMessage,
                            "prompt must be 1 to 20,000 bytes",
                        ),
                    );
                }
                if let Err(secs) = self.generation_allowed(&conn.user).await? {
                    return self.reply(
                        &ws,
                        ServerEvent::error(ErrorCode::RateLimited, rate_limited(secs)),
                    );
                }
                match generation::start(self, prompt, template, &conn.email).await? {
                    Ok(_) => Ok(()),
                    Err(why) => self.reply(&ws, ServerEvent::error(why.code(), why.to_string())),
                }
            }
            ClientMsg::Cancel => generation::cancel(self).await,
            ClientMsg::DocSync { path, state_vector } => {
                self.doc_sync(&ws, &path, state_vector.as_deref())
            }
            ClientMsg::DocUpdate { path, doc, update } => {
                if self.doc_update(&ws, &by, &path, doc, &update)? {
                    self.follow_people_soon().await?;
                }
                Ok(())
            }
            ClientMsg::Awareness {
                path,
                client_id,
                update,
            } => self.awareness(&ws, &mut conn, &path, client_id, &update),
            ClientMsg::Rename { from, to, base_rev } => {
                match self.rename_file(&by, &from, &to, base_rev)? {
                    Ok(_) => self.follow_people().await,
                    Err(r) => self.reject(&ws, &from, r),
                }
            }
        }
    }

    async fn alarm(&self) -> Result<Response> {
        let project = self.store.meta("project_id")?.unwrap_or_default();
        // The step below is the resumption: a request during it must not schedule another.
        self.looked_for_cut_step.set(true);
        publish::resume(self, &project)?;
        if self.store.meta("follow_due")?.is_some() {
            self.store.set_meta_opt("follow_due", None)?;
            self.follow_people().await?;
        }
        generation::run_step(self, &project).await?;
        Response::ok("")
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        self.leave(&ws)
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.leave(&ws)
    }
}

impl ProjectRoom {
    pub fn store(&self) -> &RoomStore {
        &self.store
    }

    /// A numeric setting (a Worker variable), or its default.
    fn number(&self, name: &str, default: u64) -> u64 {
        self.env
            .var(name)
            .ok()
            .and_then(|v| v.to_string().trim().parse().ok())
            .unwrap_or(default)
    }

    pub fn docs(&self) -> &DocCache {
        &self.docs
    }

    pub fn env(&self) -> &Env {
        &self.env
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The same room as an owned value, for work that outlives the request that began it
    /// (a publish job): the same storage, sockets and settings.
    pub fn view(&self) -> ProjectRoom {
        ProjectRoom {
            state: State::from(wasm_bindgen::JsCast::unchecked_into::<
                worker::worker_sys::DurableObjectState,
            >(
                AsRef::<wasm_bindgen::JsValue>::as_ref(self.state.as_raw()).clone(),
            )),
            env: self.env.clone(),
            store: self.store.clone(),
            docs: DocCache::default(),
            publishing: self.publishing.clone(),
            // A view serves no requests of its own.
            looked_for_cut_step: Cell::new(true),
        }
    }

    pub fn publishing(&self) -> bool {
        self.publishing.get()
    }

    pub fn set_publishing(&self, on: bool) {
        self.publishing.set(on);
    }

    /// A room serves exactly one project: the first request names it.
    fn bind_project(&self, project: &str) -> std::result::Result<(), Result<Response>> {
        match self.store.meta("project_id") {
            Ok(Some(bound)) if bound == project => Ok(()),
            Ok(Some(_)) => Err(error(
                ErrorCode::NotFound,
                "room belongs to another project",
            )),
            Ok(None) if !project.is_empty() => {
                self.store.set_meta("project_id", project).map_err(Err)
            }
            Ok(None) => Err(error(ErrorCode::NotFound, "no project")),
            Err(e) => Err(Err(e)),
        }
    }

    fn accept(&self, caller: Caller) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        let n = self
            .store
            .meta("conn_counter")?
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        self.store.set_meta("conn_counter", &n.to_string())?;
        self.state
            .accept_websocket_with_tags(&pair.server, &[caller.user.as_str()]);
        pair.server.serialize_attachment(&Conn {
            id: format!("c{n}"),
            user: caller.user,
            session: caller.session,
            email: caller.email,
            role: caller.role,
            live: false,
            revoked: false,
            can_generate: caller.can_generate,
            yjs_clients: vec![],
        })?;
        Response::from_websocket(pair.client)
    }

    /// Replays what the client missed (or sends a snapshot), then makes the socket live.
    /// No `await` in here: nothing can be broadcast between the replay and going live.
    fn hello(&self, ws: &WebSocket, conn: &mut Conn, last_seq: Option<u64>) -> Result<()> {
        let head = self.store.head_seq()?;
        let floor = self.store.log_floor()?;
        let project = self.store.meta("project_id")?.unwrap_or_default();
        match last_seq {
            Some(seen) if seen >= floor && seen <= head => {
                for body in self.store.events_after(seen)? {
                    ws.send_with_str(&body)?;
                }
            }
            Some(seen) => {
                let reason = if seen > head {
                    format!("last_seq {seen} is ahead of this room (head {head})")
                } else {
                    format!("events up to {floor} were compacted; you have {seen}")
                };
                self.reply(ws, ServerEvent::ResyncRequired { reason })?;
                self.reply(ws, self.state_event(&project)?)?;
            }
            None => self.reply(ws, self.state_event(&project)?)?,
        }
        if !conn.live {
            conn.live = true;
            ws.serialize_attachment(&*conn)?;
            self.broadcast(ServerEvent::Presence {
                users: presence(&self.state, None),
            })?;
        }
        Ok(())
    }

    /// The per-hour caps on new generations, for the project's org and for the person who
    /// asks (each a `RateLimiter`); `Err(seconds)` until one is free. A prompt folded into
    /// the running generation starts none, so it counts for neither.
    async fn generation_allowed(&self, user: &str) -> Result<std::result::Result<(), u64>> {
        if generation::load(self)?.is_some_and(|g| !g.step.is_terminal()) {
            return Ok(Ok(()));
        }
        let org = self.store.meta("org_id")?.unwrap_or_default();
        let var = |name: &str, default: u64| self.number(name, default);
        for (key, name, default) in [
            (format!("generations:org:{org}"), "GENERATIONS_PER_ORG", 200),
            (
                format!("generations:user:{user}"),
                "GENERATIONS_PER_USER",
                60,
            ),
        ] {
            let policy = kiln_core::limits::Policy {
                limit: var(&format!("KILN_LIMIT_{name}"), default) as u32,
                window_ms: var(&format!("KILN_LIMIT_{name}_WINDOW_SECS"), 3_600) as i64 * 1000,
                backoff: false,
            };
            let answer =
                crate::limiter::call(&self.env, &key, &crate::limiter::LimitOp::Hit { policy })
                    .await?;
            if !answer.allowed {
                return Ok(Err(kiln_core::limits::retry_after_secs(
                    answer.retry_after_ms,
                )));
            }
        }
        Ok(Ok(()))
    }

    /// After a person's typing, the running app follows within a second: at most one push
    /// of the tree per second however fast they type. Between generations only (the alarm
    /// is a generation's while one runs, and its steps sync the tree themselves).
    async fn follow_people_soon(&self) -> Result<()> {
        if self.store.meta("follow_due")?.is_some() {
            return Ok(());
        }
        if generation::load(self)?.is_some_and(|g| !g.step.is_terminal()) {
            return Ok(());
        }
        self.store.set_meta("follow_due", "1")?;
        self.state.storage().set_alarm(FOLLOW_DELAY_MS).await
    }

    /// After a person's change to the tree, the running app follows it.
    async fn follow_people(&self) -> Result<()> {
        let project = self.store.meta("project_id")?.unwrap_or_default();
        generation::follow_people(self, &project).await
    }

    /// A member's new role (or `None`: no longer a member) for their open sockets.
    fn set_access(&self, user: &str, role: Option<Role>) -> Result<()> {
        let Some(role) = role else {
            return self.close_where(
                |c| c.user == user,
                "your access to this project was removed",
            );
        };
        for ws in self.state.get_websockets_with_tag(user) {
            if let Some(mut conn) = Conn::of(&ws) {
                conn.role = role;
                ws.serialize_attachment(&conn)?;
            }
        }
        Ok(())
    }

    /// Closes every socket whose connection matches (code 4003: the client must not simply
    /// reconnect with the same rights), and tells the others who is left.
    fn close_where(&self, matches: impl Fn(&Conn) -> bool, reason: &str) -> Result<()> {
        let mut closed = false;
        for ws in self.state.get_websockets() {
            let Some(mut conn) = Conn::of(&ws) else {
                continue;
            };
            if !matches(&conn) {
                continue;
            }
            if !conn.yjs_clients.is_empty() {
                let gone = ServerEvent::AwarenessGone {
                    client_ids: std::mem::take(&mut conn.yjs_clients),
                };
                let _ = self.relay(Some(&conn.id), gone);
            }
            conn.live = false;
            conn.revoked = true;
            let _ = ws.serialize_attachment(&conn);
            let _ = self.reply(&ws, ServerEvent::error(ErrorCode::Forbidden, reason));
            let _ = ws.close(Some(4003), Some(reason));
            closed = true;
        }
        if closed {
            self.broadcast(ServerEvent::Presence {
                users: presence(&self.state, None),
            })?;
        }
        Ok(())
    }

    fn leave(&self, ws: &WebSocket) -> Result<()> {
        let _ = ws.close(Some(1000), Some("bye"));
        if let Some(conn) = Conn::of(ws).filter(|c| !c.yjs_clients.is_empty()) {
            self.relay(
                Some(&conn.id),
                ServerEvent::AwarenessGone {
                    client_ids: conn.yjs_clients.clone(),
                },
            )?;
        }
        if let Some(conn) = Conn::of(ws).filter(|c| c.live) {
            self.broadcast(ServerEvent::Presence {
                users: presence(&self.state, Some(&conn.id)),
            })?;
        }
        Ok(())
    }

    pub fn state_event(&self, project: &str) -> Result<ServerEvent> {
        Ok(ServerEvent::State {
            project_id: project.to_owned(),
            head_seq: self.store.head_seq()?,
            files: self.store.list()?,
            // The step of the running generation; `idle` between them.
            agent: generation::load(self)?
                .filter(|g| !g.step.is_terminal())
                .map_or("idle".into(), |g| g.step.name().to_owned()),
            presence: presence(&self.state, None),
        })
    }

    fn limits(&self) -> LogLimits {
        let var = |name: &str, default: u64| self.number(name, default);
        LogLimits {
            max_events: var("KILN_EVENT_LOG_MAX_EVENTS", 5_000).max(1),
            max_bytes: var("KILN_EVENT_LOG_MAX_BYTES", 64 * 1024 * 1024),
        }
    }

    /// Appends the event to the log, then sends it to every live socket.
    pub fn broadcast(&self, event: ServerEvent) -> Result<()> {
        let wire = self.store.append(event, self.limits())?;
        for ws in self.state.get_websockets() {
            if Conn::of(&ws).is_some_and(|c| c.live) && ws.send_with_str(&wire).is_err() {
                // Never drop an event silently: close the socket, so the client reconnects
                // with `hello {last_seq}` and gets what it missed from the log.
                worker::console_warn!("broadcast send failed; closing the socket for replay");
                let _ = ws.close(Some(1011), Some("send failed; reconnect with last_seq"));
            }
        }
        Ok(())
    }

    /// A reply to one socket, not logged; it carries the head seq it reflects.
    pub(crate) fn reply(&self, ws: &WebSocket, event: ServerEvent) -> Result<()> {
        let seq = self.store.head_seq()?;
        ws.send_with_str(serde_json::to_string(&Sequenced { seq, event })?)
    }

    fn reject(&self, ws: &WebSocket, path: &ProjectPath, refusal: Refusal) -> Result<()> {
        match refusal {
            Refusal::Stale { current_rev } => {
                let current = self.store.content(path)?;
                let (content, encoding) = match current {
                    Some(bytes) => {
                        let (c, e) = encode(bytes);
                        (Some(c), e)
                    }
                    None => (None, Encoding::Utf8),
                };
                self.reply(
                    ws,
                    ServerEvent::EditRejected {
                        path: path.clone(),
                        current_rev,
                        content,
                        encoding,
                    },
                )
            }
            other => self.reply(ws, ServerEvent::error(other.error_code(), other.message())),
        }
    }

    // --- the working tree: every change goes through these -----------------------------

    pub fn write_file(
        &self,
        by: &str,
        path: &ProjectPath,
        base_rev: u64,
        content: &[u8],
    ) -> Result<std::result::Result<FileMeta, Refusal>> {
        let slot = self.store.slot(path)?;
        let rev =
            match tree::check_write(slot, base_rev, content.len() as u64, self.store.totals()?) {
                Ok(rev) => rev,
                Err(r) => return Ok(Err(r)),
            };
        Ok(Ok(self.apply_write(by, path, rev, content)?))
    }

    /// Writes without a rev check (restore; limits were checked when the version was made).
    pub fn apply_write(
        &self,
        by: &str,
        path: &ProjectPath,
        rev: u64,
        content: &[u8],
    ) -> Result<FileMeta> {
        let sha256 = tree::sha256_hex(content);
        // An open document takes the write first (it checks itself against the stored file).
        let doc = self.doc_write(path, content)?;
        self.store.write(path, rev, content, &sha256, by, now())?;
        let (text, encoding) = encode(content.to_vec());
        self.broadcast(ServerEvent::FileEdited {
            path: path.clone(),
            rev,
            content: text,
            encoding,
            by: by.to_owned(),
        })?;
        if let Some((epoch, update)) = doc {
            self.broadcast(ServerEvent::DocUpdate {
                path: path.clone(),
                doc: epoch,
                update,
                rev,
                size: content.len() as u64,
                by: by.to_owned(),
            })?;
        }
        Ok(FileMeta {
            path: path.clone(),
            rev,
            size: content.len() as u64,
            sha256,
        })
    }

    pub fn delete_file(
        &self,
        by: &str,
        path: &ProjectPath,
        base_rev: u64,
    ) -> Result<std::result::Result<u64, Refusal>> {
        let rev = match tree::check_delete(self.store.slot(path)?, base_rev) {
            Ok(rev) => rev,
            Err(r) => return Ok(Err(r)),
        };
        self.apply_delete(by, path, rev)?;
        Ok(Ok(rev))
    }

    pub fn apply_delete(&self, by: &str, path: &ProjectPath, rev: u64) -> Result<()> {
        self.doc_drop(path)?;
        self.store.tombstone(path, rev, by, now())?;
        self.broadcast(ServerEvent::FileDeleted {
            path: path.clone(),
            rev,
            by: by.to_owned(),
        })
    }

    fn rename_file(
        &self,
        by: &str,
        from: &ProjectPath,
        to: &ProjectPath,
        base_rev: u64,
    ) -> Result<std::result::Result<(), Refusal>> {
        let (from_rev, rev) =
            match tree::check_rename(self.store.slot(from)?, self.store.slot(to)?, base_rev) {
                Ok(revs) => revs,
                Err(r) => return Ok(Err(r)),
            };
        let content = self.store.content(from)?.unwrap_or_default();
        let sha256 = tree::sha256_hex(&content);
        let t = now();
        self.doc_drop(from)?;
        self.doc_drop(to)?;
        self.store.write(to, rev, &content, &sha256, by, t)?;
        self.store.tombstone(from, from_rev, by, t)?;
        self.broadcast(ServerEvent::FileRenamed {
            from: from.clone(),
            to: to.clone(),
            from_rev,
            rev,
            by: by.to_owned(),
        })?;
        Ok(Ok(()))
    }

    // --- REST, forwarded by the Worker ----------------------------------------------------

    fn read_file(&self, req: &Request) -> Result<Response> {
        let path = match path_param(req) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        let Some(bytes) = self.store.content(&path)? else {
            return error(ErrorCode::NotFound, "no such file");
        };
        let slot = self.store.slot(&path)?;
        let sha = tree::sha256_hex(&bytes);
        let mut resp = Response::from_bytes(bytes)?;
        let h = resp.headers_mut();
        for (k, v) in tree::stored_file_headers(&path) {
            h.set(k, &v)?;
        }
        h.set("cache-control", "private, no-cache")?;
        h.set("etag", &format!("\"{}\"", slot.rev))?;
        h.set(header::REV, &slot.rev.to_string())?;
        h.set(header::SHA256, &sha)?;
        Ok(resp)
    }

    async fn put_file(&self, req: &Request, caller: &Caller, body: &[u8]) -> Result<Response> {
        let path = match path_param(req) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        let slot = self.store.slot(&path)?;
        let base_rev = match query(req, "base_rev") {
            Some(v) => match v.parse() {
                Ok(n) => n,
                Err(_) => {
                    return error(ErrorCode::InvalidParameter, "If-Match must be a rev number")
                }
            },
            // No If-Match: create only. Overwriting needs the rev the client saw.
            None if slot.exists => {
                return error(
                    ErrorCode::PreconditionRequired,
                    "the file exists: send If-Match with its current rev",
                )
            }
            None => slot.rev,
        };
        match self.write_file(&caller.user, &path, base_rev, body)? {
            Ok(meta) => {
                self.follow_people().await?;
                Ok(Response::from_json(&meta)?.with_status(if slot.exists { 200 } else { 201 }))
            }
            Err(r) => refusal_response(r),
        }
    }

    async fn delete_file_rest(&self, req: &Request, caller: &Caller) -> Result<Response> {
        let path = match path_param(req) {
            Ok(p) => p,
            Err(resp) => return resp,
        };
        let Some(base_rev) = query(req, "base_rev").and_then(|v| v.parse().ok()) else {
            if !self.store.slot(&path)?.exists {
                return error(ErrorCode::NotFound, "no such file");
            }
            return error(
                ErrorCode::PreconditionRequired,
                "send If-Match with the file's current rev",
            );
        };
        match self.delete_file(&caller.user, &path, base_rev)? {
            Ok(_) => {
                self.follow_people().await?;
                Ok(Response::empty()?.with_status(204))
            }
            Err(r) => refusal_response(r),
        }
    }
}

fn rate_limited(secs: u64) -> String {
    format!("too many new generations this hour; try again in {secs} s")
}

pub fn now() -> i64 {
    worker::Date::now().as_millis() as i64
}

/// Text stays text on the wire; other bytes travel as base64.
pub fn encode(bytes: Vec<u8>) -> (String, Encoding) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, Encoding::Utf8),
        Err(e) => (B64.encode(e.as_bytes()), Encoding::Base64),
    }
}

fn caller(req: &Request) -> Option<Caller> {
    let h = req.headers();
    Some(Caller {
        user: h.get(header::USER).ok()??,
        session: h.get(header::SESSION).ok()?.unwrap_or_default(),
        email: h.get(header::EMAIL).ok()?.unwrap_or_default(),
        role: Role::parse(&h.get(header::ROLE).ok()??)?,
        can_generate: h.get(header::CAN_GENERATE).ok()?.as_deref() != Some("false"),
    })
}

pub fn query(req: &Request, name: &str) -> Option<String> {
    req.url()
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn path_param(req: &Request) -> std::result::Result<ProjectPath, Result<Response>> {
    let raw = query(req, "path").unwrap_or_default();
    ProjectPath::parse(&raw).map_err(|e| error(ErrorCode::InvalidPath, e.to_string()))
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> Result<Response> {
    Ok(Response::from_json(&ErrorBody::new(code, message))?.with_status(code.status()))
}

fn refusal_response(r: Refusal) -> Result<Response> {
    let code = r.error_code();
    let mut body = ErrorBody::new(code, r.message());
    if let Refusal::Stale { current_rev } = r {
        body.error.current_rev = Some(current_rev);
    }
    // Through a `Value`: sorted keys, the bytes this answer always had.
    Ok(Response::from_json(&serde_json::to_value(body)?)?.with_status(code.status()))
}

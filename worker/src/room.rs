//! The Worker's client of a project's `ProjectRoom`. Every request carries the caller, whom
//! the Worker has already authenticated and authorised.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::ApiResult;
use kiln_core::api::Project;
use kiln_core::ids::ProjectId;
use kiln_core::room_api::{header, AccessChanged, RoomOp, SessionEnded};
use kiln_core::Role;
use serde::Serialize;
use worker::{Headers, Method, Request, RequestInit, Response, Url};

#[derive(Clone)]
pub struct RoomCall<'a> {
    pub op: RoomOp,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Vec<u8>>,
    /// Extra headers (the WebSocket upgrade).
    pub headers: Vec<(&'a str, String)>,
}

impl<'a> RoomCall<'a> {
    pub fn new(op: RoomOp) -> Self {
        RoomCall {
            op,
            query: vec![],
            body: None,
            headers: vec![],
        }
    }

    pub fn query(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// A body of `core::room_api` (or `core::api`) as JSON.
    pub fn json(self, body: &impl Serialize) -> ApiResult<Self> {
        let bytes = serde_json::to_vec(body).map_err(crate::error::ApiError::internal)?;
        Ok(self.body(bytes))
    }

    pub fn header(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub async fn send(self, ctx: &Ctx, caller: &Caller, project: &Project) -> ApiResult<Response> {
        self.header(header::ORG, project.org_id.as_str())
            .send_as(ctx, caller, &project.id, project.role)
            .await
    }

    /// The same, for a project named by id with the role the caller has there.
    pub async fn send_as(
        self,
        ctx: &Ctx,
        caller: &Caller,
        project: &ProjectId,
        role: Role,
    ) -> ApiResult<Response> {
        let mut url = Url::parse(&format!("https://room/{}/{}", project, self.op.path()))
            .map_err(crate::error::ApiError::internal)?;
        if !self.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.query {
                q.append_pair(k, v);
            }
        }
        let headers = Headers::new();
        headers.set(header::USER, caller.user.id.as_str())?;
        headers.set(header::EMAIL, &caller.user.email)?;
        headers.set(header::SESSION, caller.session.as_str())?;
        // A token without `write` watches, whatever its owner's role; without `generate` it
        // may not prompt (the room checks `x-kiln-can-generate` on the socket).
        let role = match &caller.token {
            Some(g) if !g.allows(kiln_core::Action::WriteProject) => Role::Client,
            _ => role,
        };
        headers.set(header::ROLE, role.as_str())?;
        if caller
            .token
            .as_ref()
            .is_some_and(|g| !g.allows(kiln_core::Action::Generate))
        {
            headers.set(header::CAN_GENERATE, "false")?;
        }
        for (k, v) in &self.headers {
            headers.set(k, v)?;
        }
        let mut init = RequestInit::new();
        let method = match self.op.method() {
            "PUT" => Method::Put,
            "POST" => Method::Post,
            "DELETE" => Method::Delete,
            _ => Method::Get,
        };
        init.with_method(method).with_headers(headers);
        if let Some(body) = self.body {
            init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
        }
        let req = Request::new_with_init(url.as_str(), &init)?;
        let stub = ctx
            .env
            .durable_object("PROJECT_ROOM")?
            .get_by_name(project.as_str())?;
        Ok(stub.fetch_with_request(req).await?)
    }
}

/// Tells the rooms of `projects` that `user`'s rights there changed (`None`: gone), so their
/// open sockets follow at once. Best effort per room: the change itself is already stored,
/// and a room that misses it still refuses the socket at its next reconnect.
pub async fn access_changed(
    ctx: &Ctx,
    caller: &Caller,
    projects: &[ProjectId],
    user: &kiln_core::ids::UserId,
    role: Option<Role>,
) {
    let body = AccessChanged {
        user: user.to_string(),
        role,
    };
    let Ok(call) = RoomCall::new(RoomOp::Access).json(&body) else {
        return;
    };
    let calls = projects
        .iter()
        .map(|p| call.clone().send_as(ctx, caller, p, Role::Owner));
    for result in futures::future::join_all(calls).await {
        if let Err(e) = result {
            worker::console_warn!("telling a room about an access change: {}", e.message);
        }
    }
}

/// Closes the sockets a session (or a personal token) opened, in every project it opened one
/// to.
pub async fn session_ended(
    ctx: &Ctx,
    caller: &Caller,
    session: &kiln_core::ids::SessionId,
    projects: &[ProjectId],
) {
    let body = SessionEnded {
        session: session.to_string(),
    };
    let Ok(call) = RoomCall::new(RoomOp::RevokeSession).json(&body) else {
        return;
    };
    let calls = projects
        .iter()
        .map(|p| call.clone().send_as(ctx, caller, p, Role::Client));
    for result in futures::future::join_all(calls).await {
        if let Err(e) = result {
            worker::console_warn!("closing a signed-out session's sockets: {}", e.message);
        }
    }
}

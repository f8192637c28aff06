//! The Worker's client of a project's `ProjectRoom`. Every request carries the caller, whom
//! the Worker has already authenticated and authorised.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::ApiResult;
use kiln_core::api::Project;
use kiln_core::ids::ProjectId;
use kiln_core::Role;
use worker::{Headers, Method, Request, RequestInit, Response, Url};

pub struct RoomCall<'a> {
    pub method: Method,
    pub op: &'a str,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<Vec<u8>>,
    /// Extra headers (the WebSocket upgrade).
    pub headers: Vec<(&'a str, String)>,
}

impl<'a> RoomCall<'a> {
    pub fn new(method: Method, op: &'a str) -> Self {
        RoomCall {
            method,
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

    pub fn header(mut self, k: &'a str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub async fn send(self, ctx: &Ctx, caller: &Caller, project: &Project) -> ApiResult<Response> {
        self.header("x-kiln-org", project.org_id.as_str())
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
        let mut url = Url::parse(&format!("https://room/{}/{}", project, self.op))
            .map_err(crate::error::ApiError::internal)?;
        if !self.query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &self.query {
                q.append_pair(k, v);
            }
        }
        let headers = Headers::new();
        headers.set("x-kiln-user", caller.user.id.as_str())?;
        headers.set("x-kiln-email", &caller.user.email)?;
        headers.set("x-kiln-session", caller.session.as_str())?;
        // A token without `write` watches, whatever its owner's role; without `generate` it
        // may not prompt (the room checks `x-kiln-can-generate` on the socket).
        let role = match &caller.token {
            Some(g) if !g.allows(kiln_core::Action::WriteProject) => Role::Client,
            _ => role,
        };
        headers.set("x-kiln-role", role.as_str())?;
        if caller
            .token
            .as_ref()
            .is_some_and(|g| !g.allows(kiln_core::Action::Generate))
        {
            headers.set("x-kiln-can-generate", "false")?;
        }
        for (k, v) in &self.headers {
            headers.set(k, v)?;
        }
        let mut init = RequestInit::new();
        init.with_method(self.method).with_headers(headers);
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
    let body = serde_json::json!({ "user": user, "role": role }).to_string();
    let calls = projects.iter().map(|p| {
        RoomCall::new(Method::Post, "access")
            .body(body.clone().into_bytes())
            .send_as(ctx, caller, p, Role::Owner)
    });
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
    let body = serde_json::json!({ "session": session }).to_string();
    let calls = projects.iter().map(|p| {
        RoomCall::new(Method::Post, "revoke-session")
            .body(body.clone().into_bytes())
            .send_as(ctx, caller, p, Role::Client)
    });
    for result in futures::future::join_all(calls).await {
        if let Err(e) = result {
            worker::console_warn!("closing a signed-out session's sockets: {}", e.message);
        }
    }
}

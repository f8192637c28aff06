//! The Worker's client of a project's `ProjectRoom`. Every request carries the caller, whom
//! the Worker has already authenticated and authorised.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::ApiResult;
use kiln_core::api::Project;
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
        let mut url = Url::parse(&format!("https://room/{}/{}", project.id, self.op))
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
        headers.set("x-kiln-role", project.role.as_str())?;
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
            .get_by_name(project.id.as_str())?;
        Ok(stub.fetch_with_request(req).await?)
    }
}

//! The live preview, through the edge: users only ever talk to Kiln's origin. The dev server
//! is started with base path `/v1/sandboxes/<project>/preview/`, so the Worker serves that
//! same path and forwards it (HTTP and WebSocket upgrades, e.g. Vite HMR) to the
//! sandbox-proxy with a project-scoped token, after the usual authorisation.

use crate::access;
use crate::auth::authenticate;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use kiln_core::{Action, ErrorCode};
use worker::{Fetch, Headers, Request, RequestInit, Response};

/// `/preview/:project/` → the preview's real base path.
pub fn redirect(id: &str) -> ApiResult<Response> {
    let mut resp = Response::empty()?.with_status(302);
    resp.headers_mut()
        .set("location", &format!("/v1/sandboxes/{id}/preview/"))?;
    Ok(resp)
}

pub async fn proxy(ctx: &Ctx, mut req: Request, id: &str, rest: &[&str]) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let project = access::project(ctx, &caller, id, Action::ReadProject).await?;
    let var = |n: &str| {
        ctx.env
            .secret(n)
            .map(|s| s.to_string())
            .or_else(|_| ctx.env.var(n).map(|v| v.to_string()))
            .ok()
    };
    let (Some(base), Some(secret)) = (var("KILN_SANDBOX_URL"), var("KILN_SANDBOX_JWT_SECRET"))
    else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "no sandbox-proxy configured",
        ));
    };
    let token = kiln_durable_objects::sandbox_client::token_for(&secret, project.id.as_str())
        .map_err(ApiError::internal)?;
    let url = req.url()?;
    let mut target = format!(
        "{}/v1/sandboxes/{}/preview/{}",
        base.trim_end_matches('/'),
        project.id,
        rest.join("/")
    );
    if let Some(q) = url.query() {
        target = format!("{target}?{q}");
    }
    // Forward the request's own headers, minus the user's credentials.
    let headers = Headers::new();
    for (k, v) in req.headers().entries() {
        if !matches!(k.as_str(), "cookie" | "authorization" | "host") {
            headers.set(&k, &v)?;
        }
    }
    headers.set("authorization", &format!("Bearer {token}"))?;
    let method = req.method();
    let mut init = RequestInit::new();
    init.with_method(method.clone()).with_headers(headers);
    if !matches!(method, worker::Method::Get | worker::Method::Head) {
        let body = req.bytes().await?;
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    let upstream = Request::new_with_init(&target, &init)?;
    // Returned unchanged: streamed bodies, and a 101 for WebSocket upgrades.
    Fetch::Request(upstream)
        .send()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("preview unreachable: {e}")))
}

//! Previews live on origins of their own (invariant 10): project `p_<hex>` is served at
//! `p-<hex>.<preview domain>`, never on Kiln's origin, so a generated app's scripts cannot
//! reach the API with the viewer's session, and two projects share no storage.
//!
//! A viewer gets in by a link: `POST /api/projects/:id/preview-link` (on the app's origin,
//! with the session) mints a single-use, two-minute token; opening it on the preview host
//! trades it for a host-only cookie bound to that project and session, then redirects to
//! the app's `/`. Every later request on the host is checked against that cookie, the
//! session and the membership, then forwarded to the sandbox-proxy with a project-scoped
//! token. The dev server's headers that could reach beyond its own app are dropped.

use crate::access;
use crate::auth::{authenticate_preview, issue_preview_grant, Caller, PREVIEW_GRANT_HOURS};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::json_sorted;
use crate::store::grants::{Grants, PREVIEW_LINKS};
use crate::store::sessions::Sessions;
use kiln_core::api::{PreviewLink, Project};
use kiln_core::ids::{hex, ProjectId};
use kiln_core::origin::{is_kiln_cookie, PREVIEW_COOKIE, STRIPPED_PREVIEW_HEADERS};
use kiln_core::tree::sha256_hex;
use kiln_core::{Action, ErrorCode};
use worker::{Fetch, Headers, Request, RequestInit, Response};

/// How long a preview link may wait to be opened.
pub const LINK_SECS: i64 = 120;
/// The one path on a preview host that Kiln keeps for itself.
const EXCHANGE_PATH: &str = "/__kiln/preview-auth";

/// `POST /api/projects/:id/preview-link` → `{url, expires_in}`.
/// A preview is opened in a person's browser, on their session (the route takes no token).
pub async fn link(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    crate::limits::tokens(ctx, &caller).await?;
    let url = mint_link(ctx, &caller, &project.id).await?;
    json_sorted(
        201,
        &PreviewLink {
            url,
            expires_in: LINK_SECS,
        },
    )
}

/// `GET /preview/:id/` on the app's origin: a fresh link for the caller, never the app.
pub async fn redirect(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    crate::limits::tokens(ctx, &caller).await?;
    let url = mint_link(ctx, &caller, &project.id).await?;
    see_other(&url)
}

async fn mint_link(ctx: &Ctx, caller: &Caller, project: &ProjectId) -> ApiResult<String> {
    let token = format!("pl_{}", hex(&crate::random::bytes::<24>()?));
    Grants(&ctx.db, PREVIEW_LINKS)
        .insert(
            &sha256_hex(token.as_bytes()),
            &caller.user.id,
            &caller.session,
            project,
            ctx.now + LINK_SECS * 1000,
        )
        .await?;
    Ok(format!(
        "{}{EXCHANGE_PATH}?token={token}",
        ctx.preview.origin_for(project)
    ))
}

/// The script Kiln adds to every page of a preview: it reports the app's errors and path
/// to the UI that frames it (by `postMessage` to Kiln's origin only).
const CAPTURE_PATH: &str = "/__kiln/capture.js";
const CAPTURE_JS: &str = include_str!("../../assets/capture.js");

/// Every request on a project's preview host.
pub async fn serve(ctx: &Ctx, req: Request, project: ProjectId) -> ApiResult<Response> {
    if req.path() == EXCHANGE_PATH {
        return exchange(ctx, &req, &project).await;
    }
    if req.path() == CAPTURE_PATH {
        let js = CAPTURE_JS.replace("__KILN_APP_ORIGIN__", &ctx.app_origins[0]);
        let mut resp = Response::ok(js)?;
        resp.headers_mut()
            .set("content-type", "text/javascript; charset=utf-8")?;
        resp.headers_mut().set("cache-control", "no-cache")?;
        return Ok(resp);
    }
    let caller = match authenticate_preview(ctx, &req, &project).await {
        Ok(c) => c,
        // A person who opened the bare preview URL: through the app, which knows them.
        Err(_) if is_navigation(&req) => {
            return see_other(&format!("{}/preview/{project}/", ctx.app_origins[0]))
        }
        Err(e) => return Err(e),
    };
    let project = access::project(ctx, &caller, project.as_str(), Action::ReadProject).await?;
    forward(ctx, req, &project).await
}

/// Trades a link's token for the host's cookie, then sends the browser to the app's `/`.
async fn exchange(ctx: &Ctx, req: &Request, project: &ProjectId) -> ApiResult<Response> {
    let bad = || {
        ApiError::unauthorized(
            "this preview link was used or has expired; open the preview from Kiln again",
        )
    };
    let token = crate::http::query_param(req, "token")?.ok_or_else(bad)?;
    let (user, session) = Grants(&ctx.db, PREVIEW_LINKS)
        .redeem(&sha256_hex(token.as_bytes()), project.as_str(), ctx.now)
        .await?
        .ok_or_else(bad)?;
    let user = Sessions(&ctx.db)
        .active_user(&session, &user, ctx.now)
        .await?
        .ok_or_else(bad)?;
    let caller = Caller {
        user,
        session,
        token: None,
    };
    access::project(ctx, &caller, project.as_str(), Action::ReadProject).await?;
    let grant = issue_preview_grant(ctx, &caller.user.id, &caller.session, project)?;
    let mut resp = see_other("/")?;
    // `SameSite=None` + `Partitioned`: the UI embeds the preview in a frame of another
    // site; the cookie is kept per top-level site, and `__Host-` pins it to this host.
    resp.headers_mut().set(
        "set-cookie",
        &format!(
            "{PREVIEW_COOKIE}={grant}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned; Max-Age={}",
            PREVIEW_GRANT_HOURS * 3600
        ),
    )?;
    resp.headers_mut().set("referrer-policy", "no-referrer")?;
    Ok(resp)
}

/// `GET /api/projects/:id/terminal` (WebSocket): a shell in the project's sandbox, for those
/// who may write the project. The upgrade is forwarded to the sandbox-proxy's pty with a
/// project-scoped token and its 101 returned as is.
pub async fn terminal(
    ctx: &Ctx,
    req: Request,
    (_caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            ErrorCode::UpgradeRequired,
            "this endpoint speaks WebSocket only",
        ));
    }
    let (base, token) = sandbox_access(ctx, &project).await?;
    let headers = Headers::new();
    for name in [
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
    ] {
        if let Some(v) = req.headers().get(name)? {
            headers.set(name, &v)?;
        }
    }
    headers.set("authorization", &format!("Bearer {token}"))?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Get).with_headers(headers);
    let target = format!("{base}/v1/sandboxes/{}/terminal", project.id);
    Fetch::Request(Request::new_with_init(&target, &init)?)
        .send()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("sandbox unreachable: {e}")))
}

/// `POST /api/projects/:id/dev-server/restart`: restarts the app's dev server (writers).
/// Answers its state and log; never the proxy's own preview URL and token.
pub async fn restart_dev_server(
    ctx: &Ctx,
    _req: Request,
    (_caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let (base, token) = sandbox_access(ctx, &project).await?;
    let headers = Headers::new();
    headers.set("authorization", &format!("Bearer {token}"))?;
    headers.set("content-type", "application/json")?;
    let body = serde_json::to_string(&kiln_core::sandbox::DevServerRequest {
        action: kiln_core::sandbox::DevServerAction::Restart,
    })
    .map_err(ApiError::internal)?;
    let mut init = RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let target = format!("{base}/v1/sandboxes/{}/dev-server", project.id);
    let mut resp = Fetch::Request(Request::new_with_init(&target, &init)?)
        .send()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("sandbox unreachable: {e}")))?;
    match resp.status_code() {
        200 => {}
        404 => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                "this project has no sandbox yet: build the app first",
            ))
        }
        s => {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!("the sandbox could not restart the dev server (HTTP {s})"),
            ))
        }
    }
    let mut status: kiln_core::sandbox::DevServerStatus = resp.json().await?;
    status.preview_url = None;
    crate::http::json(200, &status)
}

/// The base URL of the project's sandbox host (the fixed `KILN_SANDBOX_URL`, or the live
/// host the fleet placed it on) and a fresh token for this project. Only the room places a
/// project: a preview of one with no live host waits for the room's next step.
async fn sandbox_access(ctx: &Ctx, project: &Project) -> ApiResult<(String, String)> {
    let Some(secret) = ctx.secret("KILN_SANDBOX_JWT_SECRET") else {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "no sandbox-proxy configured",
        ));
    };
    let base = match ctx.secret("KILN_SANDBOX_URL") {
        Some(url) => url,
        None if ctx.secret("KILN_FLEET_SECRET").is_some() => {
            let ttl = kiln_durable_objects::fleet::ttl_ms(&ctx.env);
            kiln_durable_objects::fleet::Fleet(&ctx.db)
                .live_url(project.id.as_str(), ctx.now, ttl)
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::Unavailable,
                        "this project's sandbox has no live host right now: it moves at its next build step",
                    )
                })?
        }
        None => {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "no sandbox-proxy configured",
            ))
        }
    };
    let token = kiln_durable_objects::sandbox_client::token_for(
        &secret,
        project.id.as_str(),
        Some(project.org_id.as_str()),
    )
    .map_err(ApiError::internal)?;
    Ok((base.trim_end_matches('/').to_owned(), token))
}

async fn forward(ctx: &Ctx, mut req: Request, project: &Project) -> ApiResult<Response> {
    let (base, token) = sandbox_access(ctx, project).await?;
    let url = req.url()?;
    let mut target = format!("{base}/v1/sandboxes/{}/preview{}", project.id, url.path());
    if let Some(q) = url.query() {
        target = format!("{target}?{q}");
    }
    let headers = Headers::new();
    for (k, v) in req.headers().entries() {
        match k.as_str() {
            "authorization" | "host" => {}
            // The app's own cookies reach it; Kiln's grant does not.
            "cookie" => {
                let kept: Vec<&str> = v
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && !is_kiln_cookie(c))
                    .collect();
                if !kept.is_empty() {
                    headers.set("cookie", &kept.join("; "))?;
                }
            }
            _ => headers.set(&k, &v)?,
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
    let resp = Fetch::Request(upstream)
        .send()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unavailable, format!("preview unreachable: {e}")))?;
    let resp = if is_page(&method, &resp) {
        with_capture(resp).await?
    } else {
        resp
    };
    confine(ctx, resp)
}

fn is_page(method: &worker::Method, resp: &Response) -> bool {
    matches!(method, worker::Method::Get)
        && resp.status_code() == 200
        && resp
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|ct| ct.trim_start().starts_with("text/html"))
}

/// A page of the app with Kiln's capture script first in its `<head>` (pages are small;
/// they are read whole). The body is decoded here, so its length and encoding change.
async fn with_capture(mut resp: Response) -> ApiResult<Response> {
    let html = resp.text().await?;
    let tag = format!("<script src=\"{CAPTURE_PATH}\"></script>");
    let at = html
        .find("<head>")
        .map(|i| i + "<head>".len())
        .or_else(|| {
            html.find("<html")
                .and_then(|i| html[i..].find('>').map(|j| i + j + 1))
        })
        .unwrap_or(0);
    let page = format!("{}{tag}{}", &html[..at], &html[at..]);
    let upstream = resp.headers().clone();
    let headers = Headers::new();
    for (k, v) in upstream.entries() {
        if !matches!(
            k.as_str(),
            "content-length" | "content-encoding" | "etag" | "set-cookie"
        ) {
            headers.append(&k, &v)?;
        }
    }
    for c in upstream.get_all("set-cookie")? {
        headers.append("set-cookie", &c)?;
    }
    Ok(Response::ok(page)?.with_headers(headers))
}

/// The dev server's response, minus what could act beyond its own app, plus who may frame
/// it. The body (a stream) and a WebSocket upgrade pass through untouched.
fn confine(ctx: &Ctx, resp: Response) -> ApiResult<Response> {
    let upstream = resp.headers().clone();
    let (builder, body) = resp.into_parts();
    let headers = Headers::new();
    for (k, v) in upstream.entries() {
        if k == "set-cookie" || STRIPPED_PREVIEW_HEADERS.contains(&k.as_str()) {
            continue;
        }
        headers.append(&k, &v)?;
    }
    for c in upstream.get_all("set-cookie")? {
        if !is_kiln_cookie(&c) {
            headers.append("set-cookie", &c)?;
        }
    }
    // A second CSP header adds to the app's own: both are enforced.
    headers.append(
        "content-security-policy",
        &format!("frame-ancestors {}", ctx.app_origins.join(" ")),
    )?;
    Ok(builder.with_headers(headers).body(body))
}

fn is_navigation(req: &Request) -> bool {
    let h = req.headers();
    matches!(req.method(), worker::Method::Get)
        && h.get("sec-fetch-mode").ok().flatten().as_deref() == Some("navigate")
}

fn see_other(location: &str) -> ApiResult<Response> {
    let mut resp = Response::empty()?.with_status(302);
    resp.headers_mut().set("location", location)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

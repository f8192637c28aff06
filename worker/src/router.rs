//! The route table. It reads like the API: each path shape, the method it takes, and its
//! handler — as data (`routes()`), which drives dispatch and both misses: a path the table
//! knows under other methods is 405 (naming the methods it takes), anything else 404, both
//! as JSON errors. So a new route cannot be left out of the 405 answers.
//!
//! First the request's host decides which site it is for (invariant 10): a preview host
//! reaches only its project's preview, never `/api`; the app's host never serves a preview.

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::json;
use crate::routes::{
    self, auth, files, orgs, preview, projects, tokens, usage, versions, webhooks,
};
use futures::future::LocalBoxFuture;
use kiln_core::origin::{is_cross_site, Site};
use kiln_core::ErrorCode;
use worker::{Method, Request, Response};

pub async fn handle(req: Request, ctx: &Ctx) -> ApiResult<Response> {
    let url = req.url()?;
    let host = match req.headers().get("host")? {
        Some(h) => h,
        None => match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => String::new(),
        },
    };
    match ctx.preview.classify(&host) {
        Site::Preview(project) => return preview::serve(ctx, req, project).await,
        Site::PreviewUnknown => return Err(ApiError::not_found("preview")),
        Site::App => {}
    }
    refuse_cross_site(ctx, &req, &format!("{}://{host}", url.scheme()))?;
    // Everything that is not the API is the UI (its own paths, with a SPA fallback).
    let first = url
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    let ui = matches!(req.method(), Method::Get | Method::Head)
        && !matches!(first, "api" | "preview" | "v1" | "hooks");
    if ui {
        return routes::ui::serve(ctx, req).await;
    }
    app(req, ctx).await
}

/// Writes and WebSocket upgrades from another site's page are refused: they would ride the
/// viewer's cookie (CSRF, cross-site WebSocket hijacking). Kiln grants no CORS, so reads
/// from another site never see an answer anyway.
fn refuse_cross_site(ctx: &Ctx, req: &Request, own_origin: &str) -> ApiResult<()> {
    let h = req.headers();
    let upgrade = h
        .get("upgrade")?
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let safe = matches!(req.method(), Method::Get | Method::Head | Method::Options);
    if safe && !upgrade {
        return Ok(());
    }
    let mut allowed: Vec<&str> = ctx.app_origins.iter().map(String::as_str).collect();
    allowed.push(own_origin);
    let origin = h.get("origin")?;
    let site = h.get("sec-fetch-site")?;
    if is_cross_site(origin.as_deref(), site.as_deref(), &allowed) {
        return Err(ApiError::new(
            ErrorCode::CrossSiteRequest,
            format!(
                "requests from {} may not change anything here",
                origin.as_deref().unwrap_or("another site")
            ),
        ));
    }
    Ok(())
}

/// A route's handler: the path's `:params` in order, and what `*rest` matched.
type Handler =
    for<'a> fn(&'a Ctx, Request, &'a Params<'a>) -> LocalBoxFuture<'a, ApiResult<Response>>;

/// What a pattern captured from a path.
struct Params<'a> {
    named: Vec<&'a str>,
    rest: &'a [&'a str],
}

impl<'a> Params<'a> {
    fn at(&self, i: usize) -> &'a str {
        self.named[i]
    }
}

struct Route {
    method: Method,
    /// `/`-separated segments: literals, `:name` for one segment, a last `*name` for the
    /// remaining segments (none included).
    pattern: &'static str,
    handler: Handler,
}

/// Builds a `Route` from a method, pattern and handler body (`ctx`, `req`, `p` in scope).
macro_rules! route {
    ($method:ident $pattern:literal => |$ctx:ident, $req:ident, $p:ident| $body:expr) => {
        Route {
            method: Method::$method,
            pattern: $pattern,
            handler: |$ctx, $req, $p| Box::pin(async move { $body.await }),
        }
    };
}

/// Every API route. Order matters only where patterns overlap (`files` before `files/*`).
fn routes() -> Vec<Route> {
    vec![
        route!(Get "/api/health" => |_ctx, _req, _p| async { json(200, &serde_json::json!({ "ok": true })) }),
        route!(Post "/api/auth/register" => |ctx, req, _p| auth::register(ctx, req)),
        route!(Post "/api/auth/login" => |ctx, req, _p| auth::login(ctx, req)),
        route!(Post "/api/auth/logout" => |ctx, req, _p| auth::logout(ctx, req)),
        route!(Get "/api/me" => |ctx, req, _p| auth::me(ctx, req)),
        route!(Get "/api/tokens" => |ctx, req, _p| tokens::list(ctx, req)),
        route!(Post "/api/tokens" => |ctx, req, _p| tokens::create(ctx, req)),
        route!(Delete "/api/tokens/:id" => |ctx, req, p| tokens::revoke(ctx, req, p.at(0))),
        route!(Get "/api/orgs" => |ctx, req, _p| orgs::list(ctx, req)),
        route!(Post "/api/orgs" => |ctx, req, _p| orgs::create(ctx, req)),
        route!(Get "/api/orgs/:org" => |ctx, req, p| orgs::get(ctx, req, p.at(0))),
        route!(Get "/api/orgs/:org/members" => |ctx, req, p| orgs::members(ctx, req, p.at(0))),
        route!(Get "/api/orgs/:org/usage" => |ctx, req, p| usage::org(ctx, req, p.at(0))),
        route!(Post "/api/orgs/:org/members" => |ctx, req, p| orgs::invite(ctx, req, p.at(0))),
        route!(Patch "/api/orgs/:org/members/:user" => |ctx, req, p| orgs::update_member(ctx, req, p.at(0), p.at(1))),
        route!(Delete "/api/orgs/:org/members/:user" => |ctx, req, p| orgs::remove_member(ctx, req, p.at(0), p.at(1))),
        route!(Get "/api/orgs/:org/invitations" => |ctx, req, p| orgs::org_invitations(ctx, req, p.at(0))),
        route!(Delete "/api/orgs/:org/invitations/:id" => |ctx, req, p| orgs::revoke_invitation(ctx, req, p.at(0), p.at(1))),
        route!(Get "/api/invitations" => |ctx, req, _p| orgs::my_invitations(ctx, req)),
        route!(Post "/api/invitations/:id/accept" => |ctx, req, p| orgs::accept_invitation(ctx, req, p.at(0))),
        route!(Post "/api/invitations/:id/decline" => |ctx, req, p| orgs::decline_invitation(ctx, req, p.at(0))),
        route!(Get "/api/projects" => |ctx, req, _p| projects::list(ctx, req)),
        route!(Post "/api/projects" => |ctx, req, _p| projects::create(ctx, req)),
        route!(Get "/api/projects/:id" => |ctx, req, p| projects::get(ctx, req, p.at(0))),
        route!(Patch "/api/projects/:id" => |ctx, req, p| projects::update(ctx, req, p.at(0))),
        route!(Delete "/api/projects/:id" => |ctx, req, p| projects::delete(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/state" => |ctx, req, p| projects::room_state(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/ws" => |ctx, req, p| files::ws(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/ws-ticket" => |ctx, req, p| files::ws_ticket(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/preview-link" => |ctx, req, p| preview::link(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/terminal" => |ctx, req, p| preview::terminal(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/dev-server/restart" => |ctx, req, p| preview::restart_dev_server(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/files" => |ctx, req, p| files::list(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/files/*path" => |ctx, req, p| files::read(ctx, req, p.at(0), p.rest)),
        route!(Put "/api/projects/:id/files/*path" => |ctx, req, p| files::write(ctx, req, p.at(0), p.rest)),
        route!(Delete "/api/projects/:id/files/*path" => |ctx, req, p| files::delete(ctx, req, p.at(0), p.rest)),
        route!(Get "/api/projects/:id/versions" => |ctx, req, p| versions::list(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/versions" => |ctx, req, p| files::create_version(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/versions/:n/files" => |ctx, req, p| versions::files(ctx, req, p.at(0), p.at(1))),
        route!(Get "/api/projects/:id/versions/:n/files/*path" => |ctx, req, p| versions::file(ctx, req, p.at(0), p.at(1), p.rest)),
        route!(Get "/api/projects/:id/versions/:a/diff/:b" => |ctx, req, p| versions::diff(ctx, req, p.at(0), p.at(1), p.at(2))),
        route!(Post "/api/projects/:id/versions/:n/restore" => |ctx, req, p| files::restore(ctx, req, p.at(0), p.at(1))),
        route!(Get "/api/projects/:id/export.zip" => |ctx, req, p| files::export(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/generate" => |ctx, req, p| files::generate(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/generation" => |ctx, req, p| files::generation(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/cancel" => |ctx, req, p| files::cancel(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/usage" => |ctx, req, p| usage::project(ctx, req, p.at(0))),
        route!(Get "/api/projects/:id/webhooks" => |ctx, req, p| webhooks::list(ctx, req, p.at(0))),
        route!(Post "/api/projects/:id/webhooks" => |ctx, req, p| webhooks::create(ctx, req, p.at(0))),
        route!(Delete "/api/projects/:id/webhooks/:hook" => |ctx, req, p| webhooks::delete(ctx, req, p.at(0), p.at(1))),
        route!(Post "/api/projects/:id/webhooks/:hook/rotate" => |ctx, req, p| webhooks::rotate(ctx, req, p.at(0), p.at(1))),
        route!(Get "/api/projects/:id/webhooks/:hook/deliveries" => |ctx, req, p| webhooks::deliveries(ctx, req, p.at(0), p.at(1))),
        route!(Post "/api/projects/:id/webhooks/:hook/test" => |ctx, req, p| webhooks::test(ctx, req, p.at(0), p.at(1))),
        route!(Post "/hooks/:hook" => |ctx, req, p| webhooks::receive(ctx, req, p.at(0))),
        route!(Get "/preview/:id" => |ctx, req, p| preview::redirect(ctx, req, p.at(0))),
        route!(Get "/preview/:id/" => |ctx, req, p| preview::redirect(ctx, req, p.at(0))),
    ]
}

/// Matches `segments` against a pattern.
fn capture<'a>(pattern: &str, segments: &'a [&'a str]) -> Option<Params<'a>> {
    let mut named = Vec::new();
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.starts_with('*') {
            return Some(Params {
                named,
                rest: segments.get(i..)?,
            });
        }
        let segment = segments.get(i)?;
        if part.starts_with(':') {
            named.push(*segment);
        } else if part != segment {
            return None;
        }
    }
    (segments.len() == parts.len()).then_some(Params { named, rest: &[] })
}

async fn app(req: Request, ctx: &Ctx) -> ApiResult<Response> {
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    let mut allowed: Vec<Method> = Vec::new();
    for route in routes() {
        let Some(params) = capture(route.pattern, &segments) else {
            continue;
        };
        if route.method == method {
            return (route.handler)(ctx, req, &params).await;
        }
        if !allowed.contains(&route.method) {
            allowed.push(route.method);
        }
    }
    Err(unmatched(&method, &allowed))
}

/// 405 (naming the methods the path takes) for a path the table knows, 404 otherwise.
fn unmatched(method: &Method, allowed: &[Method]) -> ApiError {
    if allowed.is_empty() {
        return ApiError::new(ErrorCode::NotFound, "no such route");
    }
    let names: Vec<String> = allowed.iter().map(|m| m.to_string()).collect();
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "method {method} is not allowed here (allowed: {})",
            names.join(", ")
        ),
    )
}

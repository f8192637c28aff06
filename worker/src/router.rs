//! The route table. It reads like the API: each path shape, the method it takes, who may
//! call it (its `Guard`) and its handler — as data (`routes()`), which drives dispatch,
//! authorisation and both misses: the router authenticates and authorises by the guard before
//! the handler runs, and hands it what the guard established (the caller, the project or
//! org); a path the table knows under other methods is 405 (naming the methods it takes),
//! anything else 404, both as JSON errors. So a new route can neither skip authorisation nor
//! be left out of the 405 answers.
//!
//! First the request's host decides which site it is for (invariant 10): a preview host
//! reaches only its project's preview, never `/api`; the app's host never serves a preview.

use crate::access;
use crate::auth::{self, Caller};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::json;
use crate::routes::{
    self, auth as auth_routes, credits, files, fleet, notifications, orgs, preview, projects,
    sites, tokens, usage, versions, webhooks,
};
use futures::future::LocalBoxFuture;
use kiln_core::api::{Org, Project};
use kiln_core::origin::{is_cross_site, Site};
use kiln_core::sites::SiteHost;
use kiln_core::{Action, ErrorCode};
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
    match kiln_core::sites::classify(&ctx.sites, &host) {
        SiteHost::Site(slug) => return sites::serve(ctx, req, Some(slug)).await,
        SiteHost::Unknown => return sites::serve(ctx, req, None).await,
        SiteHost::Elsewhere => {}
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

/// Who may call a route. The router checks it before the handler runs (invariant 6: not a
/// member → 404, a role or token scope without the action → 403).
#[derive(Clone, Copy)]
enum Guard {
    /// Anyone: the account's front door, and webhook deliveries (their signature is the
    /// credential, checked by the handler over the raw body).
    Public,
    /// A signed-in person or a token whose scope covers the action.
    Caller(Action),
    /// A person's own session, never a token (tokens, orgs, invitations, socket tickets).
    Person,
    /// A member of the project in the path's first parameter whose role (and token) allows
    /// the action.
    Project(Action),
    /// The same, for a person's session only (preview links, socket tickets).
    PersonProject(Action),
    /// The same, authenticated by a socket ticket or the usual credentials (the upgrade).
    SocketProject(Action),
    /// A member of the org in the path's first parameter whose role allows the action.
    Org(Action),
    /// Kiln's operator: `Authorization: Bearer <KILN_ADMIN_TOKEN>` (unset: nobody).
    Operator,
}

/// What a route's guard established, handed to its handler.
struct Granted {
    caller: Option<Caller>,
    project: Option<Project>,
    org: Option<Org>,
}

impl Granted {
    fn caller(self) -> ApiResult<Caller> {
        self.caller
            .ok_or_else(|| ApiError::internal("route without a caller guard"))
    }

    fn project(self) -> ApiResult<(Caller, Project)> {
        match (self.caller, self.project) {
            (Some(c), Some(p)) => Ok((c, p)),
            _ => Err(ApiError::internal("route without a project guard")),
        }
    }

    fn org(self) -> ApiResult<(Caller, Org)> {
        match (self.caller, self.org) {
            (Some(c), Some(o)) => Ok((c, o)),
            _ => Err(ApiError::internal("route without an org guard")),
        }
    }
}

async fn check(guard: Guard, ctx: &Ctx, req: &Request, params: &Params<'_>) -> ApiResult<Granted> {
    let mut granted = Granted {
        caller: None,
        project: None,
        org: None,
    };
    let caller = match guard {
        Guard::Public => return Ok(granted),
        Guard::Operator => {
            operator(ctx, req)?;
            return Ok(granted);
        }
        Guard::Caller(action) => {
            let caller = auth::authenticate(ctx, req).await?;
            access::token_allows(&caller, action)?;
            caller
        }
        Guard::Person => auth::authenticate_person(ctx, req).await?,
        Guard::Project(action) => {
            let caller = auth::authenticate(ctx, req).await?;
            granted.project = Some(access::project(ctx, &caller, params.at(0), action).await?);
            caller
        }
        Guard::PersonProject(action) => {
            let caller = auth::authenticate_person(ctx, req).await?;
            granted.project = Some(access::project(ctx, &caller, params.at(0), action).await?);
            caller
        }
        Guard::SocketProject(action) => {
            let caller = auth::authenticate_ws(ctx, req, params.at(0)).await?;
            granted.project = Some(access::project(ctx, &caller, params.at(0), action).await?);
            caller
        }
        Guard::Org(action) => {
            let caller = auth::authenticate(ctx, req).await?;
            granted.org = Some(access::org(ctx, &caller, params.at(0), action).await?);
            caller
        }
    };
    granted.caller = Some(caller);
    Ok(granted)
}

/// The operator's token, compared in constant time; refused alike when it is wrong, missing
/// or not configured.
fn operator(ctx: &Ctx, req: &Request) -> ApiResult<()> {
    use subtle::ConstantTimeEq;
    let want = ctx
        .env
        .secret("KILN_ADMIN_TOKEN")
        .map(|s| s.to_string())
        .or_else(|_| ctx.env.var("KILN_ADMIN_TOKEN").map(|v| v.to_string()))
        .ok()
        .filter(|t| t.len() >= 32);
    let got = req.headers().get("authorization")?.unwrap_or_default();
    let got = got.strip_prefix("Bearer ").unwrap_or_default().trim();
    match want {
        Some(want) if bool::from(want.as_bytes().ct_eq(got.as_bytes())) => Ok(()),
        _ => Err(ApiError::forbidden(
            "this is the operator's route (KILN_ADMIN_TOKEN)",
        )),
    }
}

/// A route's handler: the path's `:params` in order, what `*rest` matched, and what its guard
/// established.
type Handler = for<'a> fn(
    &'a Ctx,
    Request,
    &'a Params<'a>,
    Granted,
) -> LocalBoxFuture<'a, ApiResult<Response>>;

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
    guard: Guard,
    /// `/`-separated segments: literals, `:name` for one segment, a last `*name` for the
    /// remaining segments (none included).
    pattern: &'static str,
    handler: Handler,
}

/// Builds a `Route` from a method, pattern, guard and handler body (`ctx`, `req`, `p` and
/// the guard's grant `g` in scope).
macro_rules! route {
    ($method:ident $pattern:literal, $guard:expr => |$ctx:ident, $req:ident, $p:ident, $g:ident| $body:expr) => {
        Route {
            method: Method::$method,
            guard: $guard,
            pattern: $pattern,
            handler: |$ctx, $req, $p, $g| Box::pin(async move { $body.await }),
        }
    };
}

/// Every API route. Order matters only where patterns overlap (`files` before `files/*`).
fn routes() -> Vec<Route> {
    use Action::*;
    use Guard::{Org as InOrg, Project as InProject, *};
    vec![
        route!(Get "/api/health", Public => |_ctx, _req, _p, _g| async { json(200, &serde_json::json!({ "ok": true })) }),
        route!(Post "/api/fleet/heartbeat", Public => |ctx, req, _p, _g| fleet::heartbeat(ctx, req)),
        route!(Post "/api/auth/register", Public => |ctx, req, _p, _g| auth_routes::register(ctx, req)),
        route!(Post "/api/auth/login", Public => |ctx, req, _p, _g| auth_routes::login(ctx, req)),
        route!(Post "/api/auth/logout", Person => |ctx, _req, _p, g| auth_routes::logout(ctx, g.caller()?)),
        route!(Get "/api/me", Caller(ReadOrg) => |ctx, _req, _p, g| auth_routes::me(ctx, g.caller()?)),
        route!(Get "/api/tokens", Person => |ctx, _req, _p, g| tokens::list(ctx, g.caller()?)),
        route!(Post "/api/tokens", Person => |ctx, req, _p, g| tokens::create(ctx, req, g.caller()?)),
        route!(Delete "/api/tokens/:id", Person => |ctx, _req, p, g| tokens::revoke(ctx, g.caller()?, p.at(0))),
        route!(Get "/api/orgs", Caller(ReadOrg) => |ctx, _req, _p, g| orgs::list(ctx, g.caller()?)),
        route!(Post "/api/orgs", Person => |ctx, req, _p, g| orgs::create(ctx, req, g.caller()?)),
        route!(Get "/api/orgs/:org", InOrg(ReadOrg) => |_ctx, _req, _p, g| orgs::get(g.org()?)),
        route!(Get "/api/orgs/:org/members", InOrg(ReadOrg) => |ctx, _req, _p, g| orgs::members(ctx, g.org()?)),
        route!(Get "/api/orgs/:org/usage", InOrg(ReadUsage) => |ctx, req, _p, g| usage::org(ctx, req, g.org()?)),
        route!(Get "/api/orgs/:org/credits", InOrg(ReadUsage) => |ctx, _req, _p, g| credits::get(ctx, g.org()?)),
        route!(Post "/api/orgs/:org/credits", Operator => |ctx, req, p, _g| credits::grant(ctx, req, p.at(0))),
        route!(Post "/api/orgs/:org/members", InOrg(ReadOrg) => |ctx, req, _p, g| orgs::invite(ctx, req, g.org()?)),
        route!(Patch "/api/orgs/:org/members/:user", InOrg(ReadOrg) => |ctx, req, p, g| orgs::update_member(ctx, req, g.org()?, p.at(1))),
        route!(Delete "/api/orgs/:org/members/:user", InOrg(ReadOrg) => |ctx, _req, p, g| orgs::remove_member(ctx, g.org()?, p.at(1))),
        route!(Get "/api/orgs/:org/invitations", InOrg(ManageMembers) => |ctx, _req, _p, g| orgs::org_invitations(ctx, g.org()?)),
        route!(Delete "/api/orgs/:org/invitations/:id", InOrg(ManageMembers) => |ctx, _req, p, g| orgs::revoke_invitation(ctx, g.org()?, p.at(1))),
        route!(Get "/api/invitations", Caller(ReadOrg) => |ctx, _req, _p, g| orgs::my_invitations(ctx, g.caller()?)),
        route!(Post "/api/invitations/:id/accept", Person => |ctx, _req, p, g| orgs::accept_invitation(ctx, g.caller()?, p.at(0))),
        route!(Post "/api/invitations/:id/decline", Person => |ctx, _req, p, g| orgs::decline_invitation(ctx, g.caller()?, p.at(0))),
        route!(Get "/api/projects", Caller(ReadProject) => |ctx, req, _p, g| projects::list(ctx, req, g.caller()?)),
        route!(Post "/api/projects", Caller(CreateProject) => |ctx, req, _p, g| projects::create(ctx, req, g.caller()?)),
        route!(Get "/api/projects/:id", InProject(ReadProject) => |_ctx, _req, _p, g| projects::get(g.project()?)),
        route!(Patch "/api/projects/:id", InProject(WriteProject) => |ctx, req, _p, g| projects::update(ctx, req, g.project()?)),
        route!(Delete "/api/projects/:id", InProject(DeleteProject) => |ctx, _req, _p, g| projects::delete(ctx, g.project()?)),
        route!(Get "/api/projects/:id/state", InProject(ReadProject) => |ctx, _req, _p, g| projects::room_state(ctx, g.project()?)),
        route!(Get "/api/projects/:id/ws", SocketProject(ReadProject) => |ctx, req, _p, g| files::ws(ctx, req, g.project()?)),
        route!(Post "/api/projects/:id/ws-ticket", PersonProject(ReadProject) => |ctx, _req, _p, g| files::ws_ticket(ctx, g.project()?)),
        route!(Post "/api/projects/:id/preview-link", PersonProject(ReadProject) => |ctx, _req, _p, g| preview::link(ctx, g.project()?)),
        route!(Get "/api/projects/:id/terminal", InProject(WriteProject) => |ctx, req, _p, g| preview::terminal(ctx, req, g.project()?)),
        route!(Post "/api/projects/:id/dev-server/restart", InProject(WriteProject) => |ctx, req, _p, g| preview::restart_dev_server(ctx, req, g.project()?)),
        route!(Get "/api/projects/:id/files", InProject(ReadProject) => |ctx, _req, _p, g| files::list(ctx, g.project()?)),
        route!(Get "/api/projects/:id/files/*path", InProject(ReadProject) => |ctx, _req, p, g| files::read(ctx, g.project()?, p.rest)),
        route!(Put "/api/projects/:id/files/*path", InProject(WriteProject) => |ctx, req, p, g| files::write(ctx, req, g.project()?, p.rest)),
        route!(Delete "/api/projects/:id/files/*path", InProject(WriteProject) => |ctx, req, p, g| files::delete(ctx, req, g.project()?, p.rest)),
        route!(Get "/api/projects/:id/versions", InProject(ReadProject) => |ctx, _req, _p, g| versions::list(ctx, g.project()?)),
        route!(Post "/api/projects/:id/versions", InProject(WriteProject) => |ctx, req, _p, g| files::create_version(ctx, req, g.project()?)),
        route!(Get "/api/projects/:id/versions/:n/files", InProject(ReadProject) => |ctx, _req, p, g| versions::files(ctx, g.project()?, p.at(1))),
        route!(Get "/api/projects/:id/versions/:n/files/*path", InProject(ReadProject) => |ctx, _req, p, g| versions::file(ctx, g.project()?, p.at(1), p.rest)),
        route!(Get "/api/projects/:id/versions/:a/diff/:b", InProject(ReadProject) => |ctx, _req, p, g| versions::diff(ctx, g.project()?, p.at(1), p.at(2))),
        route!(Post "/api/projects/:id/versions/:n/restore", InProject(WriteProject) => |ctx, _req, p, g| files::restore(ctx, g.project()?, p.at(1))),
        route!(Get "/api/projects/:id/export.zip", InProject(ReadProject) => |ctx, req, _p, g| files::export(ctx, req, g.project()?)),
        route!(Post "/api/projects/:id/generate", InProject(Generate) => |ctx, req, _p, g| files::generate(ctx, req, g.project()?)),
        route!(Get "/api/projects/:id/generation", InProject(ReadProject) => |ctx, _req, _p, g| files::generation(ctx, g.project()?)),
        route!(Post "/api/projects/:id/cancel", InProject(Generate) => |ctx, _req, _p, g| files::cancel(ctx, g.project()?)),
        route!(Post "/api/projects/:id/publish", InProject(Publish) => |ctx, req, _p, g| sites::publish(ctx, req, g.project()?)),
        route!(Get "/api/projects/:id/publish", InProject(ReadProject) => |ctx, _req, _p, g| sites::get(ctx, g.project()?)),
        route!(Delete "/api/projects/:id/publish", InProject(Publish) => |ctx, _req, _p, g| sites::unpublish(ctx, g.project()?)),
        route!(Get "/api/projects/:id/usage", InProject(ReadUsage) => |ctx, req, _p, g| usage::project(ctx, req, g.project()?)),
        route!(Get "/api/projects/:id/webhooks", InProject(ManageHooks) => |ctx, req, _p, g| webhooks::list(ctx, req, g.project()?)),
        route!(Post "/api/projects/:id/webhooks", InProject(ManageHooks) => |ctx, req, _p, g| webhooks::create(ctx, req, g.project()?)),
        route!(Delete "/api/projects/:id/webhooks/:hook", InProject(ManageHooks) => |ctx, req, p, g| webhooks::delete(ctx, req, g.project()?, p.at(1))),
        route!(Post "/api/projects/:id/webhooks/:hook/rotate", InProject(ManageHooks) => |ctx, req, p, g| webhooks::rotate(ctx, req, g.project()?, p.at(1))),
        route!(Get "/api/projects/:id/webhooks/:hook/deliveries", InProject(ManageHooks) => |ctx, req, p, g| webhooks::deliveries(ctx, req, g.project()?, p.at(1))),
        route!(Post "/api/projects/:id/webhooks/:hook/test", InProject(ManageHooks) => |ctx, req, p, g| webhooks::test(ctx, req, g.project()?, p.at(1))),
        route!(Get "/api/projects/:id/notifications", InProject(ManageHooks) => |ctx, _req, _p, g| notifications::list(ctx, g.project()?)),
        route!(Post "/api/projects/:id/notifications", InProject(ManageHooks) => |ctx, req, _p, g| notifications::create(ctx, req, g.project()?)),
        route!(Delete "/api/projects/:id/notifications/:target", InProject(ManageHooks) => |ctx, _req, p, g| notifications::delete(ctx, g.project()?, p.at(1))),
        route!(Get "/api/projects/:id/notifications/:target/attempts", InProject(ManageHooks) => |ctx, _req, p, g| notifications::attempts(ctx, g.project()?, p.at(1))),
        route!(Post "/hooks/:hook", Public => |ctx, req, p, _g| webhooks::receive(ctx, req, p.at(0))),
        route!(Get "/preview/:id", InProject(ReadProject) => |ctx, _req, _p, g| preview::redirect(ctx, g.project()?)),
        route!(Get "/preview/:id/", InProject(ReadProject) => |ctx, _req, _p, g| preview::redirect(ctx, g.project()?)),
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
            let granted = check(route.guard, ctx, &req, &params).await?;
            return (route.handler)(ctx, req, &params, granted).await;
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

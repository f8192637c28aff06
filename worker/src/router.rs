//! The route table. It reads like the API: each path shape, then the methods it takes.
//! A known path with another method is 405; anything else is 404 — both as JSON errors.
//!
//! First the request's host decides which site it is for (invariant 10): a preview host
//! reaches only its project's preview, never `/api`; the app's host never serves a preview.

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::json;
use crate::routes::{
    self, auth, files, orgs, preview, projects, tokens, usage, versions, webhooks,
};
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

async fn app(req: Request, ctx: &Ctx) -> ApiResult<Response> {
    use Method::*;
    let path = req.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method();
    let segments = segments.as_slice();
    match (segments, method) {
        (["api", "health"], Get) => json(200, &serde_json::json!({ "ok": true })),

        (["api", "auth", "register"], Post) => auth::register(ctx, req).await,
        (["api", "auth", "login"], Post) => auth::login(ctx, req).await,
        (["api", "auth", "logout"], Post) => auth::logout(ctx, req).await,
        (["api", "me"], Get) => auth::me(ctx, req).await,
        (["api", "tokens"], Get) => tokens::list(ctx, req).await,
        (["api", "tokens"], Post) => tokens::create(ctx, req).await,
        (["api", "tokens", id], Delete) => tokens::revoke(ctx, req, id).await,

        (["api", "orgs"], Get) => orgs::list(ctx, req).await,
        (["api", "orgs"], Post) => orgs::create(ctx, req).await,
        (["api", "orgs", org], Get) => orgs::get(ctx, req, org).await,
        (["api", "orgs", org, "members"], Get) => orgs::members(ctx, req, org).await,
        (["api", "orgs", org, "usage"], Get) => usage::org(ctx, req, org).await,
        (["api", "orgs", org, "members"], Post) => orgs::invite(ctx, req, org).await,
        (["api", "orgs", org, "invitations"], Get) => orgs::org_invitations(ctx, req, org).await,
        (["api", "orgs", org, "invitations", id], Delete) => {
            orgs::revoke_invitation(ctx, req, org, id).await
        }
        (["api", "invitations"], Get) => orgs::my_invitations(ctx, req).await,
        (["api", "invitations", id, "accept"], Post) => orgs::accept_invitation(ctx, req, id).await,
        (["api", "invitations", id, "decline"], Post) => {
            orgs::decline_invitation(ctx, req, id).await
        }
        (["api", "orgs", org, "members", user], Patch) => {
            orgs::update_member(ctx, req, org, user).await
        }
        (["api", "orgs", org, "members", user], Delete) => {
            orgs::remove_member(ctx, req, org, user).await
        }

        (["api", "projects"], Get) => projects::list(ctx, req).await,
        (["api", "projects"], Post) => projects::create(ctx, req).await,
        (["api", "projects", id], Get) => projects::get(ctx, req, id).await,
        (["api", "projects", id], Patch) => projects::update(ctx, req, id).await,
        (["api", "projects", id], Delete) => projects::delete(ctx, req, id).await,
        (["api", "projects", id, "state"], Get) => projects::room_state(ctx, req, id).await,
        (["api", "projects", id, "ws"], Get) => files::ws(ctx, req, id).await,
        (["api", "projects", id, "ws-ticket"], Post) => files::ws_ticket(ctx, req, id).await,
        (["api", "projects", id, "preview-link"], Post) => preview::link(ctx, req, id).await,
        (["api", "projects", id, "terminal"], Get) => preview::terminal(ctx, req, id).await,
        (["api", "projects", id, "dev-server", "restart"], Post) => {
            preview::restart_dev_server(ctx, req, id).await
        }
        (["api", "projects", id, "files"], Get) => files::list(ctx, req, id).await,
        (["api", "projects", id, "files", path @ ..], Get) => files::read(ctx, req, id, path).await,
        (["api", "projects", id, "files", path @ ..], Put) => {
            files::write(ctx, req, id, path).await
        }
        (["api", "projects", id, "files", path @ ..], Delete) => {
            files::delete(ctx, req, id, path).await
        }
        (["api", "projects", id, "versions"], Get) => versions::list(ctx, req, id).await,
        (["api", "projects", id, "versions"], Post) => files::create_version(ctx, req, id).await,
        (["api", "projects", id, "versions", n, "files"], Get) => {
            versions::files(ctx, req, id, n).await
        }
        (["api", "projects", id, "versions", n, "files", path @ ..], Get) => {
            versions::file(ctx, req, id, n, path).await
        }
        (["api", "projects", id, "versions", a, "diff", b], Get) => {
            versions::diff(ctx, req, id, a, b).await
        }
        (["api", "projects", id, "versions", n, "restore"], Post) => {
            files::restore(ctx, req, id, n).await
        }
        (["api", "projects", id, "export.zip"], Get) => files::export(ctx, req, id).await,
        (["api", "projects", id, "generate"], Post) => files::generate(ctx, req, id).await,
        (["api", "projects", id, "generation"], Get) => files::generation(ctx, req, id).await,
        (["api", "projects", id, "cancel"], Post) => files::cancel(ctx, req, id).await,

        (["api", "projects", id, "usage"], Get) => usage::project(ctx, req, id).await,
        (["api", "projects", id, "webhooks"], Get) => webhooks::list(ctx, req, id).await,
        (["api", "projects", id, "webhooks"], Post) => webhooks::create(ctx, req, id).await,
        (["api", "projects", id, "webhooks", hook], Delete) => {
            webhooks::delete(ctx, req, id, hook).await
        }
        (["api", "projects", id, "webhooks", hook, "rotate"], Post) => {
            webhooks::rotate(ctx, req, id, hook).await
        }
        (["api", "projects", id, "webhooks", hook, "deliveries"], Get) => {
            webhooks::deliveries(ctx, req, id, hook).await
        }
        (["hooks", hook], Post) => webhooks::receive(ctx, req, hook).await,

        (["preview", id] | ["preview", id, ""], Get) => preview::redirect(ctx, req, id).await,

        (segments, method) => Err(unmatched(segments, method)),
    }
}

/// 405 for a path the table knows under other methods, 404 otherwise.
fn unmatched(segments: &[&str], method: Method) -> ApiError {
    let known = matches!(
        segments,
        ["api", "health"]
            | ["api", "auth", "register" | "login" | "logout"]
            | ["api", "me"]
            | ["api", "tokens"]
            | ["api", "tokens", _]
            | ["api", "orgs"]
            | ["api", "orgs", _]
            | ["api", "orgs", _, "members"]
            | ["api", "orgs", _, "usage"]
            | ["api", "orgs", _, "members", _]
            | ["api", "orgs", _, "invitations"]
            | ["api", "orgs", _, "invitations", _]
            | ["api", "invitations"]
            | ["api", "invitations", _, "accept" | "decline"]
            | ["preview", _]
            | ["preview", _, ""]
            | ["api", "projects"]
            | ["api", "projects", _]
            | [
                "api",
                "projects",
                _,
                "state"
                    | "ws"
                    | "ws-ticket"
                    | "preview-link"
                    | "terminal"
                    | "files"
                    | "versions"
                    | "export.zip"
                    | "generate"
                    | "generation"
                    | "cancel"
            ]
            | ["api", "projects", _, "files", ..]
            | ["api", "projects", _, "dev-server", "restart"]
            | ["api", "projects", _, "webhooks" | "usage"]
            | ["api", "projects", _, "webhooks", _]
            | ["api", "projects", _, "webhooks", _, "rotate" | "deliveries"]
            | ["hooks", _]
            | ["api", "projects", _, "versions", _, "files", ..]
            | ["api", "projects", _, "versions", _, "diff", _]
            | ["api", "projects", _, "versions", _, "restore"]
    );
    if known {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed here"),
        )
    } else {
        ApiError::new(ErrorCode::NotFound, "no such route")
    }
}

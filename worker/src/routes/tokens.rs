//! Personal API tokens: made, listed and revoked by their owner from a signed-in session
//! (a token never manages tokens). The secret is shown once; D1 keeps its sha256.

use crate::access;
use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json};
use crate::store::sockets::SocketSessions;
use crate::store::tokens::{NewToken, Tokens};
use kiln_core::api::{CreateToken, Items, TokenCreated};
use kiln_core::ids::SessionId;
use kiln_core::{tokens, Action};
use worker::{Request, Response};

pub async fn create(ctx: &Ctx, mut req: Request, caller: Caller) -> ApiResult<Response> {
    let body: CreateToken = read_json(&mut req).await?;
    let (name, scopes) = tokens::validate(&body.name, &body.scopes, body.expires_in_days)
        .map_err(|(field, m)| ApiError::field(field, m))?;
    if body.org.is_some() && body.project.is_some() {
        return Err(ApiError::field(
            "project",
            "restrict a token to an org or to a project, not both",
        ));
    }
    // A restriction must name something its owner can see (else: not found, as anywhere).
    if let Some(org) = &body.org {
        access::org(ctx, &caller, org.as_str(), Action::ReadOrg).await?;
    }
    if let Some(project) = &body.project {
        access::project(ctx, &caller, project.as_str(), Action::ReadProject).await?;
    }
    let id = crate::random::id(SessionId::from_random)?;
    let secret = tokens::format_token(crate::random::bytes::<32>()?);
    let hash = kiln_core::tree::sha256_hex(secret.as_bytes());
    let info = Tokens(&ctx.db)
        .insert(
            &NewToken {
                id: &id,
                user: &caller.user.id,
                name: &name,
                hash: &hash,
                scopes: &scopes,
                org: body.org.as_ref(),
                project: body.project.as_ref(),
                expires_at: body
                    .expires_in_days
                    .map(|d| ctx.now + i64::from(d) * 86_400_000),
            },
            ctx.now,
        )
        .await?;
    json(
        201,
        &TokenCreated {
            token: secret,
            info,
        },
    )
}

pub async fn list(ctx: &Ctx, caller: Caller) -> ApiResult<Response> {
    let items = Tokens(&ctx.db).list(&caller.user.id).await?;
    json(200, &Items { items })
}

/// Revoked at once: the next request with it is 401, and its open sockets close.
pub async fn revoke(ctx: &Ctx, caller: Caller, id: &str) -> ApiResult<Response> {
    if !Tokens(&ctx.db).revoke(&caller.user.id, id, ctx.now).await? {
        return Err(ApiError::not_found("token"));
    }
    if let Some(token) = SessionId::parse(id) {
        let projects = SocketSessions(&ctx.db).projects(&token).await?;
        crate::room::session_ended(ctx, &caller, &token, &projects).await;
    }
    Ok(Response::empty()?.with_status(204))
}

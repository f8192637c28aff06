//! A project's live side, all through its room (invariant 1): the WebSocket, the working
//! tree over REST, making and restoring versions, and export.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json_sorted, query_param, read_json};
use crate::room::RoomCall;
use crate::store::grants::{Grants, WS_TICKETS};
use crate::store::sockets::SocketSessions;
use kiln_core::api::Project;
use kiln_core::api::{CreateVersion, StartGeneration, WsTicket};
use kiln_core::ids::hex;
use kiln_core::path::ProjectPath;
use kiln_core::room_api::{NewVersion, RestoreVersion, RoomOp};
use kiln_core::tree::MAX_FILE_BYTES;
use kiln_core::ErrorCode;
use worker::{Request, Response};

const TICKET_SECS: i64 = 60;

/// Tickets are for browsers (the route takes a person's session); a token authenticates the
/// upgrade itself.
pub async fn ws_ticket(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    crate::limits::tokens(ctx, &caller).await?;
    let ticket = format!("t_{}", hex(&crate::random::bytes::<24>()?));
    Grants(&ctx.db, WS_TICKETS)
        .insert(
            &ticket,
            &caller.user.id,
            &caller.session,
            &project.id,
            ctx.now + TICKET_SECS * 1000,
        )
        .await?;
    json_sorted(
        201,
        &WsTicket {
            ticket,
            expires_in: TICKET_SECS,
        },
    )
}

pub async fn ws(
    ctx: &Ctx,
    req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            ErrorCode::UpgradeRequired,
            "this endpoint speaks WebSocket only",
        ));
    }
    SocketSessions(&ctx.db)
        .record(&caller.session, &project.id)
        .await?;
    let mut call = RoomCall::new(RoomOp::Socket).header("upgrade", "websocket");
    for name in [
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
    ] {
        if let Some(v) = req.headers().get(name)? {
            call = call.header(name, v);
        }
    }
    call.send(ctx, &caller, &project).await
}

pub async fn list(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    RoomCall::new(RoomOp::Files)
        .send(ctx, &caller, &project)
        .await
}

pub async fn read(
    ctx: &Ctx,
    (caller, project): (Caller, Project),
    path: &[&str],
) -> ApiResult<Response> {
    let path = parse_path(path)?;
    RoomCall::new(RoomOp::ReadFile)
        .query("path", path.as_str())
        .send(ctx, &caller, &project)
        .await
}

pub async fn write(
    ctx: &Ctx,
    mut req: Request,
    (caller, project): (Caller, Project),
    path: &[&str],
) -> ApiResult<Response> {
    let path = parse_path(path)?;
    let base_rev = if_match(&req)?;
    let too_large = || {
        ApiError::new(
            ErrorCode::FileTooLarge,
            format!("a file may hold at most {MAX_FILE_BYTES} bytes"),
        )
    };
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_FILE_BYTES) {
        return Err(too_large());
    }
    let body = req.bytes().await?;
    if body.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut call = RoomCall::new(RoomOp::WriteFile)
        .query("path", path.as_str())
        .body(body);
    if let Some(rev) = base_rev {
        call = call.query("base_rev", rev.to_string());
    }
    call.send(ctx, &caller, &project).await
}

pub async fn delete(
    ctx: &Ctx,
    req: Request,
    (caller, project): (Caller, Project),
    path: &[&str],
) -> ApiResult<Response> {
    let path = parse_path(path)?;
    let mut call = RoomCall::new(RoomOp::DeleteFile).query("path", path.as_str());
    if let Some(rev) = if_match(&req)? {
        call = call.query("base_rev", rev.to_string());
    }
    call.send(ctx, &caller, &project).await
}

pub async fn create_version(
    ctx: &Ctx,
    mut req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let body: CreateVersion = read_json(&mut req).await?;
    let message = match body.message {
        Some(m) => {
            kiln_core::validate::description(m.trim()).map_err(|e| ApiError::field("message", e))?
        }
        None => String::new(),
    };
    let message = if message.is_empty() {
        "Snapshot".to_owned()
    } else {
        message
    };
    RoomCall::new(RoomOp::CreateVersion)
        .json(&NewVersion { message })?
        .send(ctx, &caller, &project)
        .await
}

pub async fn restore(
    ctx: &Ctx,
    (caller, project): (Caller, Project),
    number: &str,
) -> ApiResult<Response> {
    let number = parse_version(number)?;
    RoomCall::new(RoomOp::Restore)
        .json(&RestoreVersion { number })?
        .send(ctx, &caller, &project)
        .await
}

pub async fn generate(
    ctx: &Ctx,
    mut req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let body: StartGeneration = read_json(&mut req).await?;
    if body.prompt.trim().is_empty() || body.prompt.len() > 20_000 {
        return Err(ApiError::field("prompt", "must be 1 to 20,000 bytes"));
    }
    RoomCall::new(RoomOp::Generate)
        .json(&body)?
        .send(ctx, &caller, &project)
        .await
}

pub async fn generation(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    RoomCall::new(RoomOp::Generation)
        .send(ctx, &caller, &project)
        .await
}

pub async fn cancel(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    RoomCall::new(RoomOp::Cancel)
        .send(ctx, &caller, &project)
        .await
}

pub async fn export(
    ctx: &Ctx,
    req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let mut call = RoomCall::new(RoomOp::Export);
    if let Some(v) = query_param(&req, "version")? {
        call = call.query("version", parse_version(&v)?.to_string());
    }
    call.send(ctx, &caller, &project).await
}

/// The path part of the URL, percent-decoded exactly once, then parsed (invariant 5).
pub fn parse_path(segments: &[&str]) -> ApiResult<ProjectPath> {
    let joined = segments.join("/");
    let decoded = percent_encoding::percent_decode_str(&joined)
        .decode_utf8()
        .map_err(|_| ApiError::new(ErrorCode::InvalidPath, "path is not valid UTF-8"))?;
    ProjectPath::parse(&decoded).map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.to_string()))
}

pub fn parse_version(raw: &str) -> ApiResult<u64> {
    raw.parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found("version"))
}

/// `If-Match: 3` or `If-Match: "3"`.
fn if_match(req: &Request) -> ApiResult<Option<u64>> {
    match req.headers().get("if-match")? {
        None => Ok(None),
        Some(v) => {
            v.trim().trim_matches('"').parse().map(Some).map_err(|_| {
                ApiError::new(ErrorCode::InvalidParameter, "If-Match must be a file rev")
            })
        }
    }
}

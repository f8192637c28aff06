//! `POST /api/fleet/heartbeat`: a sandbox-proxy host says it is alive, where it is, how
//! full, and whether it drains (core::fleet). It authenticates with its own credential, an
//! HS256 JWT over `{host_id}` signed with `KILN_FLEET_SECRET`, so one host cannot beat for
//! another. Without `KILN_FLEET_SECRET` there is no fleet and the route answers 404.

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, UntrustedToken};
use kiln_core::fleet::{valid_host_id, Heartbeat, HeartbeatAck, HostClaims, DEFAULT_HEARTBEAT_MS};
use kiln_core::ErrorCode;
use kiln_durable_objects::fleet::Fleet;
use worker::{Request, Response};

pub async fn heartbeat(ctx: &Ctx, mut req: Request) -> ApiResult<Response> {
    let Some(secret) = ctx.secret("KILN_FLEET_SECRET") else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this Kiln has no sandbox fleet (KILN_FLEET_SECRET is not set)",
        ));
    };
    let host = host_of(&req, &secret)?;
    let beat: Heartbeat = read_json(&mut req).await?;
    if let Some(problem) = beat.problem() {
        return Err(ApiError::new(ErrorCode::InvalidField, problem));
    }
    Fleet(&ctx.db).beat(&host, &beat, ctx.now).await?;
    json(
        200,
        &HeartbeatAck {
            host_id: host,
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
        },
    )
}

/// The host id a valid credential names.
fn host_of(req: &Request, secret: &str) -> ApiResult<String> {
    let bad = || ApiError::unauthorized("a sandbox host credential is required");
    let raw = req
        .headers()
        .get("authorization")?
        .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned))
        .ok_or_else(bad)?;
    let untrusted = UntrustedToken::new(&raw).map_err(|_| bad())?;
    let token = Hs256
        .validator::<HostClaims>(&Hs256Key::new(secret.as_bytes()))
        .validate(&untrusted)
        .map_err(|_| bad())?;
    let id = token.claims().custom.host_id.clone();
    if !valid_host_id(&id) {
        return Err(bad());
    }
    Ok(id)
}

//! Sessions: a login creates a row in `sessions` and a JWT (HS256, `jti` = session id,
//! expiry 7 days) that the client sends as `Authorization: Bearer` or in the httpOnly
//! `kiln_session` cookie. A token is accepted only if its signature, algorithm and expiry
//! check out *and* its session row is still live, so logout revokes at once.

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{cookie, SESSION_COOKIE};
use crate::store::grants::{Grants, WS_TICKETS};
use crate::store::sessions::Sessions;
use crate::store::tokens::Tokens;
use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use kiln_core::api::{SessionClaims, User};
use kiln_core::ids::{ProjectId, SessionId, UserId};
use kiln_core::tokens::Grant;
use serde::{Deserialize, Serialize};
use worker::Request;

pub const SESSION_DAYS: i64 = 7;
/// Tolerated clock skew when checking `exp`.
const LEEWAY_SECS: i64 = 30;

/// An authenticated caller.
pub struct Caller {
    pub user: User,
    /// The session, or for a personal token its id (tokens are tied to things the way
    /// sessions are, and revoking one ends what it holds).
    pub session: SessionId,
    /// Set when a personal token authenticated the request: what it may reach and do.
    pub token: Option<Grant>,
}

pub struct IssuedSession {
    pub id: SessionId,
    pub token: String,
    pub expires_at: i64,
}

/// Mints a new session for `user`; the caller must also store `Sessions::insert`.
pub fn issue(ctx: &Ctx, user: &UserId) -> ApiResult<IssuedSession> {
    let id = crate::random::id(SessionId::from_random)?;
    let opts = time_options(ctx.now);
    let claims = Claims::new(SessionClaims {
        sub: user.clone(),
        jti: id.clone(),
    })
    .set_duration_and_issuance(&opts, Duration::days(SESSION_DAYS));
    let token = Hs256
        .token(&Header::empty().with_token_type("JWT"), &claims, &key(ctx)?)
        .map_err(|e| ApiError::internal(format!("signing token: {e}")))?;
    Ok(IssuedSession {
        id,
        token,
        expires_at: ctx.now + SESSION_DAYS * 86_400_000,
    })
}

/// Authenticates a request, or fails with 401. Applied before any work on every route that
/// needs a user.
pub async fn authenticate(ctx: &Ctx, req: &Request) -> ApiResult<Caller> {
    let raw = token_from(req)?.ok_or_else(|| ApiError::unauthorized("authentication required"))?;
    if kiln_core::tokens::looks_like_token(&raw) {
        return authenticate_token(ctx, &raw).await;
    }
    let claims = verify(ctx, &raw)?;
    let user = Sessions(&ctx.db)
        .active_user(&claims.jti, &claims.sub, ctx.now)
        .await?
        .ok_or_else(|| ApiError::unauthorized("session expired or revoked"))?;
    Ok(Caller {
        user,
        session: claims.jti,
        token: None,
    })
}

/// A personal token: looked up by its sha256, live (not revoked, not expired) or 401.
async fn authenticate_token(ctx: &Ctx, raw: &str) -> ApiResult<Caller> {
    let hash = kiln_core::tree::sha256_hex(raw.as_bytes());
    let found = Tokens(&ctx.db)
        .find(&hash, ctx.now)
        .await?
        .ok_or_else(|| ApiError::unauthorized("token unknown, revoked or expired"))?;
    // Last use to the minute is enough, and spares a write per request.
    if found.last_used_at.is_none_or(|t| ctx.now - t > 60_000) {
        Tokens(&ctx.db).touch(&found.id, ctx.now).await?;
    }
    Ok(Caller {
        user: found.user,
        session: found.id,
        token: Some(found.grant),
    })
}

/// For what only a signed-in person may do (manage tokens, sign out, answer invitations,
/// open previews): a personal token is refused.
pub async fn authenticate_person(ctx: &Ctx, req: &Request) -> ApiResult<Caller> {
    let caller = authenticate(ctx, req).await?;
    if caller.token.is_some() {
        return Err(ApiError::forbidden(
            "a personal token cannot do this: sign in to Kiln",
        ));
    }
    Ok(caller)
}

/// Authenticates a WebSocket upgrade: a single-use `?ticket=` (browsers cannot set headers
/// on a WebSocket) or, failing that, the cookie or bearer token like any request.
pub async fn authenticate_ws(ctx: &Ctx, req: &Request, project: &str) -> ApiResult<Caller> {
    let Some(ticket) = crate::http::query_param(req, "ticket")? else {
        return authenticate(ctx, req).await;
    };
    let bad = || ApiError::unauthorized("invalid, used or expired ticket");
    let (user, session) = Grants(&ctx.db, WS_TICKETS)
        .redeem(&ticket, project, ctx.now)
        .await?
        .ok_or_else(bad)?;
    let user = Sessions(&ctx.db)
        .active_user(&session, &user, ctx.now)
        .await?
        .ok_or_else(bad)?;
    Ok(Caller {
        user,
        session,
        token: None,
    })
}

fn verify(ctx: &Ctx, raw: &str) -> ApiResult<SessionClaims> {
    let bad = || ApiError::unauthorized("invalid token");
    let untrusted = UntrustedToken::new(raw).map_err(|_| bad())?;
    // The validator checks that the header's `alg` is HS256: `none` and others fail here.
    let token = Hs256
        .validator::<SessionClaims>(&key(ctx)?)
        .validate(&untrusted)
        .map_err(|_| bad())?;
    token
        .claims()
        .validate_expiration(&time_options(ctx.now))
        .map_err(|_| ApiError::unauthorized("token expired"))?;
    Ok(token.claims().custom.clone())
}

fn token_from(req: &Request) -> ApiResult<Option<String>> {
    if let Some(h) = req.headers().get("authorization")? {
        let token = h
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("Authorization must be 'Bearer <token>'"))?;
        return Ok(Some(token.trim().to_owned()));
    }
    let cookies = req.headers().get("cookie")?.unwrap_or_default();
    Ok(cookie(&cookies, SESSION_COOKIE)
        .filter(|v| !v.is_empty())
        .map(str::to_owned))
}

fn key(ctx: &Ctx) -> ApiResult<Hs256Key> {
    Ok(Hs256Key::new(jwt_secret(ctx)?.as_bytes()))
}

fn jwt_secret(ctx: &Ctx) -> ApiResult<String> {
    let secret = ctx
        .secret("KILN_JWT_SECRET")
        .ok_or_else(|| ApiError::internal("KILN_JWT_SECRET is not configured"))?;
    if secret.len() < 32 {
        return Err(ApiError::internal(
            "KILN_JWT_SECRET must be at least 32 characters",
        ));
    }
    Ok(secret)
}

// --- preview grants ------------------------------------------------------------------------

/// How long a preview cookie lasts (bounded by its session, which is checked on every use).
pub const PREVIEW_GRANT_HOURS: i64 = 12;

/// What a preview host's cookie says: this session may view this project's preview.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PreviewClaims {
    sub: UserId,
    jti: SessionId,
    prj: ProjectId,
}

/// Preview grants are signed with a key of their own, derived from the session secret, so a
/// grant can never pass as a session token on the API, nor a session token as a grant.
fn preview_key(ctx: &Ctx) -> ApiResult<Hs256Key> {
    let derived =
        kiln_core::tree::sha256_hex(format!("kiln preview grant\0{}", jwt_secret(ctx)?).as_bytes());
    Ok(Hs256Key::new(derived.as_bytes()))
}

/// Mints the cookie value a preview host accepts for `project`.
pub fn issue_preview_grant(
    ctx: &Ctx,
    user: &UserId,
    session: &SessionId,
    project: &ProjectId,
) -> ApiResult<String> {
    let claims = Claims::new(PreviewClaims {
        sub: user.clone(),
        jti: session.clone(),
        prj: project.clone(),
    })
    .set_duration_and_issuance(&time_options(ctx.now), Duration::hours(PREVIEW_GRANT_HOURS));
    Hs256
        .token(
            &Header::empty().with_token_type("JWT"),
            &claims,
            &preview_key(ctx)?,
        )
        .map_err(|e| ApiError::internal(format!("signing preview grant: {e}")))
}

/// Authenticates a request on `project`'s preview host by its preview cookie alone. Kiln's
/// session cookie and bearer tokens mean nothing here. The session must still be live and
/// the user still allowed to read the project, so revoking either ends the preview at once.
pub async fn authenticate_preview(
    ctx: &Ctx,
    req: &Request,
    project: &ProjectId,
) -> ApiResult<Caller> {
    let cookies = req.headers().get("cookie")?.unwrap_or_default();
    let raw = cookie(&cookies, kiln_core::origin::PREVIEW_COOKIE)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::unauthorized("open this preview from Kiln"))?;
    let bad = || {
        ApiError::unauthorized("this preview grant is not valid; open the preview from Kiln again")
    };
    let untrusted = UntrustedToken::new(raw).map_err(|_| bad())?;
    let token = Hs256
        .validator::<PreviewClaims>(&preview_key(ctx)?)
        .validate(&untrusted)
        .map_err(|_| bad())?;
    token
        .claims()
        .validate_expiration(&time_options(ctx.now))
        .map_err(|_| bad())?;
    let claims = token.claims().custom.clone();
    if &claims.prj != project {
        return Err(bad());
    }
    let user = Sessions(&ctx.db)
        .active_user(&claims.jti, &claims.sub, ctx.now)
        .await?
        .ok_or_else(bad)?;
    Ok(Caller {
        user,
        session: claims.jti,
        token: None,
    })
}

fn time_options(now_ms: i64) -> TimeOptions<impl Fn() -> DateTime<Utc>> {
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_default();
    TimeOptions::new(Duration::seconds(LEEWAY_SECS), move || now)
}

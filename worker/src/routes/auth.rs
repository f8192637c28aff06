use crate::auth::Caller;
use crate::auth::{self, IssuedSession};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json, session_cookie};
use crate::limits;
use crate::password;
use crate::store::orgs::Orgs;
use crate::store::sessions::Sessions;
use crate::store::sockets::SocketSessions;
use crate::store::users::Users;
use crate::store::{batch, is_unique_violation};
use kiln_core::api::{AuthResponse, Credentials, MeResponse, User};
use kiln_core::ids::{OrgId, UserId};
use kiln_core::validate::{self, Email};
use kiln_core::ErrorCode;
use worker::{Request, Response};

pub async fn register(ctx: &Ctx, mut req: Request) -> ApiResult<Response> {
    let body: Credentials = read_json(&mut req).await?;
    let email = Email::parse(&body.email).map_err(|m| ApiError::field("email", m))?;
    let pw = validate::password(&body.password).map_err(|m| ApiError::field("password", m))?;
    limits::register(ctx, &limits::client_ip(&req), email.as_str()).await?;
    let user = User {
        id: crate::random::id(UserId::from_random)?,
        email: email.as_str().to_owned(),
        created_at: ctx.now,
    };
    let hash = password::hash(pw, &pepper(ctx)?).await?;
    let session = auth::issue(ctx, &user.id)?;
    let org = crate::random::id(OrgId::from_random)?;

    // User, personal org, ownership and first session: all or nothing.
    let mut stmts = vec![Users(&ctx.db).insert(&user, &hash)?];
    stmts.extend(Orgs(&ctx.db).insert(
        &org,
        "Personal",
        Some(&user.id),
        &user.id,
        ctx.starting_credit(),
        ctx.now,
    )?);
    stmts.push(Sessions(&ctx.db).insert(&session.id, &user.id, ctx.now, session.expires_at)?);
    batch(&ctx.db, stmts).await.map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::new(
                ErrorCode::EmailTaken,
                "an account with this email already exists",
            )
        } else {
            ApiError::internal(e)
        }
    })?;
    respond_with_session(201, user, session)
}

pub async fn login(ctx: &Ctx, mut req: Request) -> ApiResult<Response> {
    let body: Credentials = read_json(&mut req).await?;
    let invalid = || ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password");
    let ip = limits::client_ip(&req);
    // Counted by the normalised email even when no account has it, so that probing unknown
    // emails is limited the same way and tells nothing.
    let key = body.email.trim().to_ascii_lowercase();
    limits::login_allowed(ctx, &ip, &key).await?;
    // A malformed email cannot match an account; still pay the KDF so timing tells nothing.
    let row = match Email::parse(&body.email) {
        Ok(email) => Users(&ctx.db).by_email(email.as_str()).await?,
        Err(_) => None,
    };
    let pepper = pepper(ctx)?;
    let verified = password::verify(
        &body.password,
        row.as_ref().map(|r| r.password_hash.as_str()),
        &pepper,
    )
    .await?;
    let row = match row {
        Some(row) if verified.ok => row,
        _ => {
            limits::login_failed(ctx, &ip, &key).await?;
            return Err(invalid());
        }
    };
    limits::login_succeeded(ctx, &ip, &key).await?;
    if verified.needs_upgrade {
        let new = password::hash(&body.password, &pepper).await?;
        Users(&ctx.db)
            .upgrade_hash(&row.id, &row.password_hash, &new)
            .await?;
    }
    let user = row.public();
    let session = auth::issue(ctx, &user.id)?;
    Sessions(&ctx.db)
        .insert(&session.id, &user.id, ctx.now, session.expires_at)?
        .run()
        .await?;
    respond_with_session(200, user, session)
}

fn pepper(ctx: &Ctx) -> ApiResult<password::Pepper> {
    password::Pepper::new(ctx.secret("KILN_PASSWORD_PEPPER"))
}

pub async fn logout(ctx: &Ctx, caller: Caller) -> ApiResult<Response> {
    Sessions(&ctx.db).revoke(&caller.session, ctx.now).await?;
    let projects = SocketSessions(&ctx.db).projects(&caller.session).await?;
    crate::room::session_ended(ctx, &caller, &caller.session, &projects).await;
    let mut resp = Response::empty()?.with_status(204);
    resp.headers_mut()
        .set("set-cookie", &session_cookie("", 0))?;
    Ok(resp)
}

pub async fn me(ctx: &Ctx, caller: Caller) -> ApiResult<Response> {
    let mut orgs = Orgs(&ctx.db).for_user(&caller.user.id).await?;
    if let Some(grant) = &caller.token {
        orgs.retain(|o| grant.reaches_org(&o.id));
    }
    json(
        200,
        &MeResponse {
            user: caller.user,
            orgs,
        },
    )
}

fn respond_with_session(status: u16, user: User, session: IssuedSession) -> ApiResult<Response> {
    let cookie = session_cookie(&session.token, auth::SESSION_DAYS * 86_400);
    let mut resp = json(
        status,
        &AuthResponse {
            user,
            token: session.token,
        },
    )?;
    resp.headers_mut().set("set-cookie", &cookie)?;
    Ok(resp)
}

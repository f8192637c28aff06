use crate::auth::{self, authenticate, IssuedSession};
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json, session_cookie};
use crate::password;
use crate::store::orgs::Orgs;
use crate::store::sessions::Sessions;
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
    let user = User {
        id: crate::random::id(UserId::from_random)?,
        email: email.as_str().to_owned(),
        created_at: ctx.now,
    };
    let hash = password::hash(pw).await?;
    let session = auth::issue(ctx, &user.id)?;
    let org = crate::random::id(OrgId::from_random)?;

    // User, personal org, ownership and first session: all or nothing.
    let mut stmts = vec![Users(&ctx.db).insert(&user, &hash)?];
    stmts.extend(Orgs(&ctx.db).insert(&org, "Personal", Some(&user.id), &user.id, ctx.now)?);
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
    // A malformed email cannot match an account; still pay the KDF so timing tells nothing.
    let row = match Email::parse(&body.email) {
        Ok(email) => Users(&ctx.db).by_email(email.as_str()).await?,
        Err(_) => None,
    };
    let ok = password::verify(
        &body.password,
        row.as_ref().map(|r| r.password_hash.as_str()),
    )
    .await?;
    let user = match row {
        Some(row) if ok => row.public(),
        _ => return Err(invalid()),
    };
    let session = auth::issue(ctx, &user.id)?;
    Sessions(&ctx.db)
        .insert(&session.id, &user.id, ctx.now, session.expires_at)?
        .run()
        .await?;
    respond_with_session(200, user, session)
}

pub async fn logout(ctx: &Ctx, req: Request) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    Sessions(&ctx.db).revoke(&caller.session, ctx.now).await?;
    let mut resp = Response::empty()?.with_status(204);
    resp.headers_mut()
        .set("set-cookie", &session_cookie("", 0))?;
    Ok(resp)
}

pub async fn me(ctx: &Ctx, req: Request) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let orgs = Orgs(&ctx.db).for_user(&caller.user.id).await?;
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

use crate::access;
use crate::auth::authenticate;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, no_content, read_json};
use crate::store::orgs::Orgs;
use crate::store::users::Users;
use crate::store::{batch, is_unique_violation};
use kiln_core::api::{AddMember, CreateOrg, Member, Org, UpdateMember};
use kiln_core::ids::{OrgId, UserId};
use kiln_core::role::{check_member_change, MemberChange, MemberRuleError};
use kiln_core::validate::{self, Email};
use kiln_core::{Action, ErrorCode, Role};
use worker::{Request, Response};

pub async fn create(ctx: &Ctx, mut req: Request) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let body: CreateOrg = read_json(&mut req).await?;
    let name = validate::name(&body.name).map_err(|m| ApiError::field("name", m))?;
    let id = crate::random::id(OrgId::from_random)?;
    let stmts = Orgs(&ctx.db).insert(&id, &name, None, &caller.user.id, ctx.now)?;
    batch(&ctx.db, stmts).await?;
    json(
        201,
        &Org {
            id,
            name,
            personal: false,
            role: Role::Owner,
            created_at: ctx.now,
        },
    )
}

pub async fn list(ctx: &Ctx, req: Request) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let orgs = Orgs(&ctx.db).for_user(&caller.user.id).await?;
    json(200, &serde_json::json!({ "items": orgs }))
}

pub async fn get(ctx: &Ctx, req: Request, org: &str) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let org = access::org(ctx, &caller, org, Action::ReadOrg).await?;
    json(200, &org)
}

pub async fn members(ctx: &Ctx, req: Request, org: &str) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let org = access::org(ctx, &caller, org, Action::ReadOrg).await?;
    let members: Vec<Member> = Orgs(&ctx.db).members(&org.id).await?;
    json(200, &serde_json::json!({ "items": members }))
}

pub async fn add_member(ctx: &Ctx, mut req: Request, org: &str) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let org = access::org(ctx, &caller, org, Action::ReadOrg).await?;
    let body: AddMember = read_json(&mut req).await?;
    let email = Email::parse(&body.email).map_err(|m| ApiError::field("email", m))?;
    check_rule(
        org.role,
        MemberChange::Add { role: body.role },
        false,
        usize::MAX,
    )?;
    let user = Users(&ctx.db)
        .by_email(email.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found("user with this email"))?
        .public();
    let st = Orgs(&ctx.db).insert_member(&org.id, &user.id, body.role, ctx.now)?;
    st.run().await.map_err(|e| {
        if is_unique_violation(&e) {
            ApiError::new(ErrorCode::AlreadyMember, "this user is already a member")
        } else {
            ApiError::internal(e)
        }
    })?;
    json(
        201,
        &Member {
            user_id: user.id,
            email: user.email,
            role: body.role,
            created_at: ctx.now,
        },
    )
}

pub async fn update_member(
    ctx: &Ctx,
    mut req: Request,
    org: &str,
    user: &str,
) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let org = access::org(ctx, &caller, org, Action::ReadOrg).await?;
    let body: UpdateMember = read_json(&mut req).await?;
    let (target, current) = target_member(ctx, &org, user).await?;
    let orgs = Orgs(&ctx.db);
    let owners = orgs.owner_count(&org.id).await?;
    let change = MemberChange::SetRole {
        from: current,
        to: body.role,
    };
    check_rule(org.role, change, target == caller.user.id, owners)?;
    if !orgs.set_role(&org.id, &target, body.role).await? {
        // The guard in the statement saw a concurrent change.
        return Err(last_owner());
    }
    let member = orgs
        .members(&org.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == target)
        .ok_or_else(|| ApiError::not_found("member"))?;
    json(200, &member)
}

pub async fn remove_member(ctx: &Ctx, req: Request, org: &str, user: &str) -> ApiResult<Response> {
    let caller = authenticate(ctx, &req).await?;
    let org = access::org(ctx, &caller, org, Action::ReadOrg).await?;
    let (target, current) = target_member(ctx, &org, user).await?;
    let orgs = Orgs(&ctx.db);
    let owners = orgs.owner_count(&org.id).await?;
    let change = MemberChange::Remove { role: current };
    check_rule(org.role, change, target == caller.user.id, owners)?;
    if !orgs.remove(&org.id, &target).await? {
        return Err(last_owner());
    }
    no_content()
}

async fn target_member(ctx: &Ctx, org: &Org, user: &str) -> ApiResult<(UserId, Role)> {
    let id = UserId::parse(user).ok_or_else(|| ApiError::not_found("member"))?;
    let role = Orgs(&ctx.db)
        .role(&org.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok((id, role))
}

fn check_rule(actor: Role, change: MemberChange, to_self: bool, owners: usize) -> ApiResult<()> {
    check_member_change(actor, change, to_self, owners).map_err(|e| match e {
        MemberRuleError::Forbidden => ApiError::forbidden(format!(
            "your role ({actor}) cannot make this membership change"
        )),
        MemberRuleError::LastOwner => last_owner(),
    })
}

fn last_owner() -> ApiError {
    ApiError::new(ErrorCode::LastOwner, "an org must keep at least one owner")
}

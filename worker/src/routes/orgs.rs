use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, json_sorted, no_content, read_json};
use crate::store::batch;
use crate::store::invitations::{Invitations, NewInvitation, Scope};
use crate::store::orgs::Orgs;
use crate::store::projects::Projects;
use kiln_core::api::{
    AddMember, CreateOrg, InvitationAccepted, InvitationSent, InvitationStatus, Items, Member, Org,
    UpdateMember,
};
use kiln_core::ids::{hex, OrgId, UserId};
use kiln_core::role::{check_member_change, MemberChange, MemberRuleError};
use kiln_core::validate::{self, Email};
use kiln_core::{ErrorCode, Role};
use worker::{Request, Response};

pub async fn create(ctx: &Ctx, mut req: Request, caller: Caller) -> ApiResult<Response> {
    let body: CreateOrg = read_json(&mut req).await?;
    let name = validate::name(&body.name).map_err(|m| ApiError::field("name", m))?;
    let id = crate::random::id(OrgId::from_random)?;
    let stmts = Orgs(&ctx.db).insert(
        &id,
        &name,
        None,
        &caller.user.id,
        ctx.starting_credit(),
        ctx.now,
    )?;
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

pub async fn list(ctx: &Ctx, caller: Caller) -> ApiResult<Response> {
    let mut orgs = Orgs(&ctx.db).for_user(&caller.user.id).await?;
    if let Some(grant) = &caller.token {
        orgs.retain(|o| grant.reaches_org(&o.id));
    }
    json_sorted(200, &Items { items: orgs })
}

pub async fn get((_caller, org): (Caller, Org)) -> ApiResult<Response> {
    json(200, &org)
}

pub async fn members(ctx: &Ctx, (_caller, org): (Caller, Org)) -> ApiResult<Response> {
    let members: Vec<Member> = Orgs(&ctx.db).members(&org.id).await?;
    json_sorted(200, &Items { items: members })
}

/// `POST /api/orgs/:org/members {email, role}`: an invitation, not a membership. The answer
/// is the same whether or not the email has an account (only an existing member, whom the
/// inviter can list anyway, is told apart).
pub async fn invite(
    ctx: &Ctx,
    mut req: Request,
    (caller, org): (Caller, Org),
) -> ApiResult<Response> {
    let body: AddMember = read_json(&mut req).await?;
    let email = Email::parse(&body.email).map_err(|m| ApiError::field("email", m))?;
    check_rule(
        org.role,
        MemberChange::Add { role: body.role },
        false,
        usize::MAX,
    )?;
    let members = Orgs(&ctx.db).members(&org.id).await?;
    if members.iter().any(|m| m.email == email.as_str()) {
        return Err(ApiError::new(
            ErrorCode::AlreadyMember,
            "this person is already a member",
        ));
    }
    let id = format!("i_{}", hex(&crate::random::bytes::<16>()?));
    let invitation = Invitations(&ctx.db)
        .upsert(NewInvitation {
            id: &id,
            org: &org.id,
            email: email.as_str(),
            role: body.role,
            invited_by: &caller.user.id,
            now: ctx.now,
            expires_at: ctx.now + INVITATION_DAYS * 86_400_000,
        })
        .await?;
    json_sorted(201, &InvitationSent { invitation })
}

const INVITATION_DAYS: i64 = 14;

/// `GET /api/orgs/:org/invitations` (owners and admins).
pub async fn org_invitations(ctx: &Ctx, (_caller, org): (Caller, Org)) -> ApiResult<Response> {
    let items = Invitations(&ctx.db)
        .pending_for_org(&org.id, ctx.now)
        .await?;
    json_sorted(200, &Items { items })
}

/// `DELETE /api/orgs/:org/invitations/:id` (owners and admins).
pub async fn revoke_invitation(
    ctx: &Ctx,
    (_caller, org): (Caller, Org),
    id: &str,
) -> ApiResult<Response> {
    if !Invitations(&ctx.db)
        .close(id, Scope::Org(&org.id), ctx.now)
        .await?
    {
        return Err(ApiError::not_found("invitation"));
    }
    no_content()
}

/// `GET /api/invitations`: the caller's open invitations.
pub async fn my_invitations(ctx: &Ctx, caller: Caller) -> ApiResult<Response> {
    let items = Invitations(&ctx.db)
        .pending_for_email(&caller.user.email, ctx.now)
        .await?;
    json_sorted(200, &Items { items })
}

/// `POST /api/invitations/:id/accept`: the caller joins the org with the invited role.
pub async fn accept_invitation(ctx: &Ctx, caller: Caller, id: &str) -> ApiResult<Response> {
    let mut invitation = Invitations(&ctx.db)
        .accept(id, &caller.user.email, &caller.user.id, ctx.now)
        .await?
        .ok_or_else(|| ApiError::not_found("invitation"))?;
    invitation.status = InvitationStatus::Accepted;
    let org = Orgs(&ctx.db)
        .get(&invitation.org_id, &caller.user.id)
        .await?
        .ok_or_else(|| ApiError::internal("accepted, but no membership"))?;
    json_sorted(200, &InvitationAccepted { invitation, org })
}

/// `POST /api/invitations/:id/decline`.
pub async fn decline_invitation(ctx: &Ctx, caller: Caller, id: &str) -> ApiResult<Response> {
    let scope = Scope::Invitee(&caller.user.email);
    if !Invitations(&ctx.db).close(id, scope, ctx.now).await? {
        return Err(ApiError::not_found("invitation"));
    }
    no_content()
}

pub async fn update_member(
    ctx: &Ctx,
    mut req: Request,
    (caller, org): (Caller, Org),
    user: &str,
) -> ApiResult<Response> {
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
    let projects = Projects(&ctx.db).ids_in_org(&org.id).await?;
    crate::room::access_changed(ctx, &caller, &projects, &target, Some(body.role)).await;
    let member = orgs
        .members(&org.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == target)
        .ok_or_else(|| ApiError::not_found("member"))?;
    json(200, &member)
}

pub async fn remove_member(
    ctx: &Ctx,
    (caller, org): (Caller, Org),
    user: &str,
) -> ApiResult<Response> {
    let (target, current) = target_member(ctx, &org, user).await?;
    let orgs = Orgs(&ctx.db);
    let owners = orgs.owner_count(&org.id).await?;
    let change = MemberChange::Remove { role: current };
    check_rule(org.role, change, target == caller.user.id, owners)?;
    if !orgs.remove(&org.id, &target).await? {
        return Err(last_owner());
    }
    let projects = Projects(&ctx.db).ids_in_org(&org.id).await?;
    crate::room::access_changed(ctx, &caller, &projects, &target, None).await;
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

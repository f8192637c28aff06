//! Authorisation, in one place (invariant 6): every route that touches an org or a project
//! calls one of these before doing any work. Not a member → 404 (existence is not leaked);
//! a member whose role lacks the action → 403.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::store::orgs::Orgs;
use crate::store::projects::Projects;
use kiln_core::api::{Org, Project};
use kiln_core::ids::{OrgId, ProjectId};
use kiln_core::tokens::{Grant, Scope};
use kiln_core::Action;

pub async fn project(ctx: &Ctx, caller: &Caller, id: &str, action: Action) -> ApiResult<Project> {
    let id = ProjectId::parse(id).ok_or_else(|| ApiError::not_found("project"))?;
    let project = Projects(&ctx.db)
        .get(&id, &caller.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    if let Some(grant) = &caller.token {
        if !grant.reaches_project(&project.org_id, &project.id) {
            return Err(ApiError::not_found("project"));
        }
        permit_token(grant, action)?;
    }
    permit(project.role, action)?;
    Ok(project)
}

pub async fn org(ctx: &Ctx, caller: &Caller, id: &str, action: Action) -> ApiResult<Org> {
    let id = OrgId::parse(id).ok_or_else(|| ApiError::not_found("org"))?;
    let org = Orgs(&ctx.db)
        .get(&id, &caller.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("org"))?;
    if let Some(grant) = &caller.token {
        if !grant.reaches_org(&org.id) {
            return Err(ApiError::not_found("org"));
        }
        permit_token(grant, action)?;
    }
    permit(org.role, action)?;
    Ok(org)
}

/// For routes outside a project or org (the account, lists): a token needs the scope.
pub fn token_allows(caller: &Caller, action: Action) -> ApiResult<()> {
    match &caller.token {
        Some(grant) => permit_token(grant, action),
        None => Ok(()),
    }
}

fn permit_token(grant: &Grant, action: Action) -> ApiResult<()> {
    if grant.allows(action) {
        return Ok(());
    }
    let scopes = kiln_core::tokens::scopes_to_string(&grant.scopes);
    Err(ApiError::forbidden(format!(
        "this token's scopes ({scopes}) do not allow this; it needs {}",
        Scope::for_action(action).as_str()
    )))
}

fn permit(role: kiln_core::Role, action: Action) -> ApiResult<()> {
    if role.allows(action) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "your role ({role}) does not allow this"
        )))
    }
}

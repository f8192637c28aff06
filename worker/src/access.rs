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
use kiln_core::Action;

pub async fn project(ctx: &Ctx, caller: &Caller, id: &str, action: Action) -> ApiResult<Project> {
    let id = ProjectId::parse(id).ok_or_else(|| ApiError::not_found("project"))?;
    let project = Projects(&ctx.db)
        .get(&id, &caller.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("project"))?;
    permit(project.role, action)?;
    Ok(project)
}

pub async fn org(ctx: &Ctx, caller: &Caller, id: &str, action: Action) -> ApiResult<Org> {
    let id = OrgId::parse(id).ok_or_else(|| ApiError::not_found("org"))?;
    let org = Orgs(&ctx.db)
        .get(&id, &caller.user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("org"))?;
    permit(org.role, action)?;
    Ok(org)
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

use crate::access;
use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, no_content, query_param, read_json};
use crate::room::RoomCall;
use crate::store::orgs::Orgs;
use crate::store::projects::{ListQuery, Projects};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use kiln_core::api::{CreateProject, Cursor, Page, Project, UpdateProject};
use kiln_core::ids::ProjectId;
use kiln_core::room_api::RoomOp;
use kiln_core::validate;
use kiln_core::{Action, ErrorCode};
use worker::{Request, Response};

const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

pub async fn create(ctx: &Ctx, mut req: Request, caller: Caller) -> ApiResult<Response> {
    let body: CreateProject = read_json(&mut req).await?;
    let name = validate::name(&body.name).map_err(|m| ApiError::field("name", m))?;
    let description = body
        .description
        .as_deref()
        .map(validate::description)
        .transpose()
        .map_err(|m| ApiError::field("description", m))?;
    let org_id = match body.org {
        Some(org) => org,
        None => Orgs(&ctx.db)
            .personal(&caller.user.id)
            .await?
            .ok_or_else(|| ApiError::internal("user has no personal org"))?,
    };
    let org = access::org(ctx, &caller, org_id.as_str(), Action::CreateProject).await?;
    let project = Project {
        id: crate::random::id(ProjectId::from_random)?,
        org_id: org.id,
        name,
        description,
        created_by: caller.user.id,
        created_at: ctx.now,
        updated_at: ctx.now,
        role: org.role,
    };
    Projects(&ctx.db).insert(&project).await?;
    json(201, &project)
}

pub async fn list(ctx: &Ctx, req: Request, caller: Caller) -> ApiResult<Response> {
    // A token restricted to one project lists that project; to one org, that org's.
    if let Some(project) = caller.token.as_ref().and_then(|g| g.project.clone()) {
        let p = access::project(ctx, &caller, project.as_str(), Action::ReadProject).await?;
        let wanted = query_param(&req, "org")?;
        let items = if wanted.is_none_or(|o| o == p.org_id.as_str()) {
            vec![p]
        } else {
            vec![]
        };
        return json(
            200,
            &Page {
                items,
                next_cursor: None,
            },
        );
    }
    let org_param = match (
        query_param(&req, "org")?,
        caller.token.as_ref().and_then(|g| g.org.clone()),
    ) {
        (None, Some(only)) => Some(only.to_string()),
        (given, _) => given,
    };
    let org = match org_param {
        Some(raw) => {
            // Checked like any org access: not a member → 404.
            let org = access::org(ctx, &caller, &raw, Action::ReadOrg).await?;
            Some(org.id)
        }
        None => None,
    };
    let after = query_param(&req, "cursor")?
        .map(|raw| decode_cursor(&raw))
        .transpose()?;
    let limit = match query_param(&req, "limit")? {
        None => DEFAULT_PAGE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    format!("limit must be an integer from 1 to {MAX_PAGE}"),
                )
            })?,
    };
    let (items, more) = Projects(&ctx.db)
        .list(ListQuery {
            user: &caller.user.id,
            org: org.as_ref(),
            after: after.as_ref(),
            limit,
        })
        .await?;
    let next_cursor = more
        .then(|| items.last())
        .flatten()
        .map(|p| encode_cursor(p.created_at, &p.id));
    json(200, &Page { items, next_cursor })
}

pub async fn get((_caller, project): (Caller, Project)) -> ApiResult<Response> {
    json(200, &project)
}

pub async fn update(
    ctx: &Ctx,
    mut req: Request,
    (_caller, mut project): (Caller, Project),
) -> ApiResult<Response> {
    let body: UpdateProject = read_json(&mut req).await?;
    if let Some(name) = body.name {
        project.name = validate::name(&name).map_err(|m| ApiError::field("name", m))?;
    }
    if let Some(description) = body.description {
        project.description = description
            .as_deref()
            .map(validate::description)
            .transpose()
            .map_err(|m| ApiError::field("description", m))?;
    }
    project.updated_at = ctx.now;
    Projects(&ctx.db)
        .update(
            &project.id,
            &project.name,
            project.description.as_deref(),
            ctx.now,
        )
        .await?;
    json(200, &project)
}

pub async fn delete(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    Projects(&ctx.db).soft_delete(&project.id, ctx.now).await?;
    // Its sockets close, its generation stops and its sandbox goes, now rather than later.
    if let Err(e) = RoomCall::new(RoomOp::Deleted)
        .send(ctx, &caller, &project)
        .await
    {
        worker::console_warn!(
            "telling the room of deleted project {}: {}",
            project.id,
            e.message
        );
    }
    no_content()
}

/// Asks the project's room for its live state: the room, not D1, owns it (invariant 1).
pub async fn room_state(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    RoomCall::new(RoomOp::State)
        .send(ctx, &caller, &project)
        .await
}

fn encode_cursor(created_at: i64, id: &ProjectId) -> String {
    let plain = Cursor {
        created_at,
        id: id.to_string(),
    }
    .encode_plain();
    B64URL.encode(plain)
}

fn decode_cursor(raw: &str) -> ApiResult<Cursor> {
    B64URL
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| Cursor::decode_plain(&s))
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidParameter, "cursor is not valid"))
}

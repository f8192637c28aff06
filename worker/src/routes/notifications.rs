//! A project's outgoing notifications, for its owners and admins: `POST
//! /api/projects/:id/notifications {url, events?}` (the secret shown once), `GET` the list,
//! `DELETE …/:target`, `GET …/:target/attempts` (every delivery attempt). Delivery is the
//! `kiln-notify` queue's (`crate::notify`).

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json};
use kiln_core::api::{CreateNotifyTarget, Items, NotifyTargetCreated, Project};
use kiln_core::notify::{check_destination, parse_events};
use kiln_durable_objects::repo::{Notifications, TargetRow};
use worker::{Request, Response};

/// Targets per project.
const MAX_TARGETS: usize = 10;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Loopback and private destinations only where the operator allows them (tests, a lab).
fn allow_private(ctx: &Ctx) -> bool {
    ctx.env
        .var("KILN_NOTIFY_ALLOW_PRIVATE")
        .is_ok_and(|v| v.to_string() == "1")
}

pub async fn create(
    ctx: &Ctx,
    mut req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let body: CreateNotifyTarget = read_json(&mut req).await?;
    let url = body.url.trim().to_owned();
    check_destination(&url, allow_private(ctx)).map_err(|m| ApiError::field("url", m))?;
    let events = parse_events(body.events.as_deref()).map_err(|m| ApiError::field("events", m))?;
    let store = Notifications(&ctx.db);
    if store.for_project(project.id.as_str()).await?.len() >= MAX_TARGETS {
        return Err(ApiError::new(
            kiln_core::ErrorCode::QuotaExceeded,
            format!("a project has at most {MAX_TARGETS} notification targets"),
        ));
    }
    let row = TargetRow {
        id: format!("nt_{}", hex(&crate::random::bytes::<16>()?)),
        project_id: project.id.to_string(),
        url,
        secret: format!("whsec_{}", hex(&crate::random::bytes::<32>()?)),
        events: serde_json::to_string(&events).map_err(ApiError::internal)?,
        created_at: ctx.now,
    };
    store.insert(&row, caller.user.id.as_str()).await?;
    json(
        201,
        &NotifyTargetCreated {
            secret: row.secret.clone(),
            target: row.info(),
        },
    )
}

pub async fn list(ctx: &Ctx, (_caller, project): (Caller, Project)) -> ApiResult<Response> {
    let rows = Notifications(&ctx.db)
        .for_project(project.id.as_str())
        .await?;
    json(
        200,
        &Items {
            items: rows.iter().map(TargetRow::info).collect::<Vec<_>>(),
        },
    )
}

/// The project's target `id`, or 404.
async fn target(ctx: &Ctx, project: &Project, id: &str) -> ApiResult<TargetRow> {
    Notifications(&ctx.db)
        .get(id)
        .await?
        .filter(|t| t.project_id == project.id.as_str())
        .ok_or_else(|| ApiError::not_found("notification target"))
}

pub async fn delete(
    ctx: &Ctx,
    (_caller, project): (Caller, Project),
    id: &str,
) -> ApiResult<Response> {
    let t = target(ctx, &project, id).await?;
    Notifications(&ctx.db).delete(&t.id, ctx.now).await?;
    Ok(Response::empty()?.with_status(204))
}

pub async fn attempts(
    ctx: &Ctx,
    (_caller, project): (Caller, Project),
    id: &str,
) -> ApiResult<Response> {
    let t = target(ctx, &project, id).await?;
    let items = Notifications(&ctx.db).attempts(&t.id, 100).await?;
    json(200, &Items { items })
}

//! What the models cost: `GET /api/orgs/:org/usage` and `GET /api/projects/:id/usage`, with
//! `from`, `to` (ms) and `group=day|agent|model|project`, summed from the cost log.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, query_param};
use kiln_core::api::Org;
use kiln_core::api::Project;
use kiln_core::usage::{aggregate, period, UsageGroup};
use kiln_core::ErrorCode;
use kiln_durable_objects::repo::AiCalls;
use worker::Request;
use worker::Response;

fn params(ctx: &Ctx, req: &Request) -> ApiResult<(i64, i64, UsageGroup)> {
    let bad = |m: String| ApiError::new(ErrorCode::InvalidParameter, m);
    let ms = |name: &str| -> ApiResult<Option<i64>> {
        query_param(req, name)?
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("{name} is a time in milliseconds")))
            })
            .transpose()
    };
    let (from, to) = period(ms("from")?, ms("to")?, ctx.now).map_err(bad)?;
    let group = match query_param(req, "group")? {
        None => UsageGroup::Day,
        Some(g) => UsageGroup::parse(&g)
            .ok_or_else(|| bad("group is one of day, agent, model, project".into()))?,
    };
    Ok((from, to, group))
}

pub async fn org(ctx: &Ctx, req: Request, (_caller, org): (Caller, Org)) -> ApiResult<Response> {
    let (from, to, group) = params(ctx, &req)?;
    let calls = AiCalls(&ctx.db).for_org(org.id.as_str(), from, to).await?;
    json(200, &aggregate(&calls, group, from, to))
}

pub async fn project(
    ctx: &Ctx,
    req: Request,
    (_caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let (from, to, group) = params(ctx, &req)?;
    let calls = AiCalls(&ctx.db)
        .for_project(project.id.as_str(), from, to)
        .await?;
    json(200, &aggregate(&calls, group, from, to))
}

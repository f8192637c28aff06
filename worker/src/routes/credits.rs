//! Credits: `GET /api/orgs/:org/credits` (what the org may still spend on priced models, and
//! its ledger) for those who may read its usage; `POST /api/orgs/:org/credits` grants more,
//! for the operator only (`KILN_ADMIN_TOKEN`), never for an org's own members.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json};
use kiln_core::api::{Credits as CreditsView, GrantCredits, Org};
use kiln_core::ids::OrgId;
use kiln_durable_objects::repo::Credits;
use worker::{Request, Response};

/// The ledger entries a page shows.
const ENTRIES: u32 = 100;

pub async fn get(ctx: &Ctx, (_caller, org): (Caller, Org)) -> ApiResult<Response> {
    let credits = Credits(&ctx.db);
    let view = CreditsView {
        balance_micros: credits.balance(org.id.as_str()).await?,
        entries: credits.entries(org.id.as_str(), ENTRIES).await?,
    };
    json(200, &view)
}

pub async fn grant(ctx: &Ctx, mut req: Request, org: &str) -> ApiResult<Response> {
    let org = OrgId::parse(org).ok_or_else(|| ApiError::not_found("org"))?;
    if !crate::store::orgs::Orgs(&ctx.db).exists(&org).await? {
        return Err(ApiError::not_found("org"));
    }
    let body: GrantCredits = read_json(&mut req).await?;
    body.validate()
        .map_err(|(field, why)| ApiError::field(field, why))?;
    let credits = Credits(&ctx.db);
    credits
        .grant(
            org.as_str(),
            body.amount_micros,
            body.reason.trim(),
            ctx.now,
        )
        .await?;
    let view = CreditsView {
        balance_micros: credits.balance(org.as_str()).await?,
        entries: credits.entries(org.as_str(), ENTRIES).await?,
    };
    json(200, &view)
}

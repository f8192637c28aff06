//! Published sites (core::sites): `POST|GET|DELETE /api/projects/:id/publish` on Kiln's
//! origin, and the sites themselves on hosts of their own (`<slug>.<KILN_SITES_URL host>`),
//! served from R2 by their manifest. A site is a model's code on the public web: it is
//! never served on Kiln's origin or a preview's, and no Kiln cookie is read or set there.

use crate::auth::Caller;
use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::{json, read_json};
use crate::room::RoomCall;
use kiln_core::api::Project;
use kiln_core::ids::hex;
use kiln_core::room_api::RoomOp;
use kiln_core::sites::{
    cache_control, content_type, etag, is_hashed_asset, not_modified, PublishJob, PublishRequest,
    Resolved, SiteManifest, Slug,
};
use kiln_core::ErrorCode;
use kiln_durable_objects::publish::{SiteRow, Sites};
use kiln_durable_objects::repo::{Blobs, Versions};
use worker::{Method, Request, Response};

/// A build that has said nothing for this long is taken to have lost its room; the next
/// look at the site starts it again (the room runs a job once at a time).
const STALE_BUILD_MS: i64 = 5 * 60 * 1000;

/// `POST /api/projects/:id/publish {version?, slug?}` → 202 with the site (state
/// `building`; the live site, if any, stays up until the build switches it).
pub async fn publish(
    ctx: &Ctx,
    mut req: Request,
    (caller, project): (Caller, Project),
) -> ApiResult<Response> {
    let body: PublishRequest = read_json(&mut req).await?;
    let pid = project.id.as_str();
    let version = match body.version {
        Some(n) => {
            Versions(&ctx.db).get(pid, n).await?.ok_or_else(|| {
                ApiError::field("version", format!("this project has no version {n}"))
            })?;
            n
        }
        None => Versions(&ctx.db)
            .list(pid)
            .await?
            .first()
            .map(|v| v.number)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Conflict,
                    "this project has no version yet: generate an app or save a version first",
                )
            })?,
    };
    let sites = Sites(&ctx.db);
    let existing = sites.row(pid).await?;
    let job = format!("pub_{}", hex(&crate::random::bytes::<12>()?));
    let slug = match body.slug {
        Some(raw) => {
            let slug = Slug::parse(&raw).map_err(|e| ApiError::field("slug", e))?;
            if sites
                .begin(pid, &slug, &job, version, ctx.now)
                .await?
                .is_err()
            {
                return Err(ApiError::new(
                    ErrorCode::AlreadyExists,
                    format!("the site name {slug:?} is taken; choose another"),
                ));
            }
            slug
        }
        None => claim_default(ctx, &sites, &project, existing.as_ref(), &job, version).await?,
    };
    RoomCall::new(RoomOp::Publish)
        .json(&PublishJob {
            id: job,
            version,
            slug,
            by: caller.user.id.as_str().to_owned(),
        })?
        .send(ctx, &caller, &project)
        .await
        .and_then(room_ok)?;
    let site = sites
        .get(pid, &ctx.sites)
        .await?
        .ok_or_else(|| ApiError::internal("the site row vanished"))?;
    json(202, &site)
}

/// The slug the project had, else its name as one, else (or when taken) one with a
/// random suffix.
async fn claim_default(
    ctx: &Ctx,
    sites: &Sites<'_>,
    project: &Project,
    existing: Option<&SiteRow>,
    job: &str,
    version: u64,
) -> ApiResult<Slug> {
    let pid = project.id.as_str();
    let base = existing
        .and_then(|r| Slug::parse(&r.slug).ok())
        .or_else(|| Slug::from_name(&project.name))
        .unwrap_or_else(|| Slug::parse("site").expect("a valid slug"));
    let mut candidates = vec![base.clone()];
    for _ in 0..4 {
        let suffix = hex(&crate::random::bytes::<3>()?);
        candidates.extend(base.with_suffix(&suffix));
    }
    // "site" alone is too short to stand: it always gets a suffix.
    for slug in candidates.into_iter().filter(|s| s.as_str() != "site") {
        if sites
            .begin(pid, &slug, job, version, ctx.now)
            .await?
            .is_ok()
        {
            return Ok(slug);
        }
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        "no free site name was found; give one as `slug`",
    ))
}

fn room_ok(resp: Response) -> ApiResult<Response> {
    if resp.status_code() >= 400 {
        return Err(ApiError::internal(format!(
            "the room refused the publish job (HTTP {})",
            resp.status_code()
        )));
    }
    Ok(resp)
}

/// `GET /api/projects/:id/publish` → the site, or 404 when it was never published.
pub async fn get(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    let sites = Sites(&ctx.db);
    let pid = project.id.as_str();
    let row = sites
        .row(pid)
        .await?
        .ok_or_else(|| ApiError::not_found("site (this project was never published)"))?;
    if row.state == "building" && ctx.now - row.updated_at > STALE_BUILD_MS {
        if let (Some(id), Some(v), Ok(slug)) = (
            row.job_id.clone(),
            row.building_version,
            Slug::parse(&row.slug),
        ) {
            let job = PublishJob {
                id,
                version: v as u64,
                slug,
                by: caller.user.id.as_str().to_owned(),
            };
            let _ = RoomCall::new(RoomOp::Publish)
                .json(&job)?
                .send(ctx, &caller, &project)
                .await;
        }
    }
    let site = row
        .site(&ctx.sites)
        .ok_or_else(|| ApiError::internal("a site row that does not parse"))?;
    json(200, &site)
}

/// `DELETE /api/projects/:id/publish` → the site, now `unpublished`: its host answers 404.
pub async fn unpublish(ctx: &Ctx, (caller, project): (Caller, Project)) -> ApiResult<Response> {
    let sites = Sites(&ctx.db);
    let pid = project.id.as_str();
    if !sites.unpublish(pid, ctx.now).await? {
        return Err(ApiError::not_found(
            "site (this project was never published)",
        ));
    }
    // The room tells the project's sockets; the site is down whether or not it can.
    if let Err(e) = RoomCall::new(RoomOp::Unpublish)
        .send(ctx, &caller, &project)
        .await
    {
        worker::console_warn!("telling {pid}'s room of the unpublish: {e:?}");
    }
    let site = sites
        .get(pid, &ctx.sites)
        .await?
        .ok_or_else(|| ApiError::internal("the site row vanished"))?;
    json(200, &site)
}

/// Every request on a site's host.
pub async fn serve(ctx: &Ctx, req: Request, slug: Option<Slug>) -> ApiResult<Response> {
    let head = match req.method() {
        Method::Get => false,
        Method::Head => true,
        _ => {
            let mut resp = page(405, "This site only answers GET and HEAD.")?;
            resp.headers_mut().set("allow", "GET, HEAD")?;
            return Ok(resp);
        }
    };
    let Some(slug) = slug else {
        return page(404, "There is no site here.");
    };
    let row = Sites(&ctx.db).by_slug(&slug).await?;
    // One read of the row: the whole answer comes from the manifest it names.
    let Some((key, previous)) = row.and_then(|r| Some((r.manifest_key?, r.previous_key))) else {
        return page(404, "There is no site here.");
    };
    let blobs = Blobs(ctx.env.bucket("ARTIFACTS")?);
    let manifest = load(&blobs, &key).await?;
    let path = req.path();
    let (status, name, file) = match manifest.resolve(&path) {
        Resolved::File(name, f) => (200, name.to_owned(), f.clone()),
        Resolved::Fallback(f) => (200, "index.html".to_owned(), f.clone()),
        Resolved::NotFound(custom) => {
            // A page loaded just before a republish asks for the old build's assets.
            let old = match previous {
                Some(prev) if is_hashed_asset(&path) => {
                    let m = load(&blobs, &prev).await?;
                    match m.resolve(&path) {
                        Resolved::File(name, f) => Some((name.to_owned(), f.clone())),
                        _ => None,
                    }
                }
                _ => None,
            };
            match (old, custom) {
                (Some((name, f)), _) => (200, name, f),
                (None, Some(f)) => (404, "404.html".to_owned(), f.clone()),
                (None, None) => return page(404, "This page does not exist on this site."),
            }
        }
    };
    let inm = req.headers().get("if-none-match")?;
    let mut resp = if status == 200 && not_modified(inm.as_deref(), &file) {
        Response::empty()?.with_status(304)
    } else if head {
        Response::empty()?.with_status(status)
    } else {
        Response::from_bytes(blobs.blob(&file.sha256).await?)?.with_status(status)
    };
    let h = resp.headers_mut();
    h.set("content-type", content_type(&name))?;
    h.set("cache-control", cache_control(&name))?;
    h.set("etag", &etag(&file))?;
    if head {
        h.set("content-length", &file.size.to_string())?;
    }
    site_headers(&mut resp)?;
    Ok(resp)
}

async fn load(blobs: &Blobs, key: &str) -> ApiResult<SiteManifest> {
    let bytes = blobs.read(key).await?;
    serde_json::from_slice(&bytes).map_err(ApiError::internal)
}

fn site_headers(resp: &mut Response) -> ApiResult<()> {
    let h = resp.headers_mut();
    h.set("x-content-type-options", "nosniff")?;
    h.set("referrer-policy", "strict-origin-when-cross-origin")?;
    Ok(())
}

/// Kiln's own page on a site host (nothing there, or a method it does not take).
fn page(status: u16, message: &str) -> ApiResult<Response> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Not found</title><style>body{{font:16px/1.5 system-ui,sans-serif;\
         display:grid;place-items:center;min-height:90vh;margin:0;color:#333}}\
         main{{text-align:center;padding:1rem}}h1{{font-size:1.5rem}}</style></head>\
         <body><main><h1>{status}</h1><p>{message}</p>\
         <p><small>Published with Kiln</small></p></main></body></html>"
    );
    let mut resp = Response::from_html(html)?.with_status(status);
    resp.headers_mut().set("cache-control", "no-store")?;
    site_headers(&mut resp)?;
    Ok(resp)
}

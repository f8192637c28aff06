//! Reading versions: they are immutable, so the Worker serves them straight from D1 and R2.

use crate::auth::Caller;
use std::collections::BTreeSet;

use crate::ctx::Ctx;
use crate::error::{ApiError, ApiResult};
use crate::http::json_sorted;
use crate::routes::files::{parse_path, parse_version};
use kiln_core::api::{Items, Project, VersionDiff};
use kiln_core::diff::{unified, Change, FileDiff};
use kiln_core::tree::Manifest;
use kiln_durable_objects::repo::{Blobs, Versions};
use worker::Response;

pub async fn list(ctx: &Ctx, (_caller, project): (Caller, Project)) -> ApiResult<Response> {
    let items = Versions(&ctx.db).list(project.id.as_str()).await?;
    json_sorted(200, &Items { items })
}

/// `GET /api/projects/:id/versions/:n/files`: the version's files (paths, sizes, hashes).
pub async fn files(
    ctx: &Ctx,
    (_caller, project): (Caller, Project),
    n: &str,
) -> ApiResult<Response> {
    let manifest = manifest(ctx, &project, parse_version(n)?).await?;
    let items: Vec<kiln_core::api::VersionFile> = manifest
        .files
        .into_iter()
        .map(|(path, e)| kiln_core::api::VersionFile {
            path,
            sha256: e.sha256,
            size: e.size,
        })
        .collect();
    json_sorted(200, &Items { items })
}

pub async fn file(
    ctx: &Ctx,
    (_caller, project): (Caller, Project),
    n: &str,
    path: &[&str],
) -> ApiResult<Response> {
    let path = parse_path(path)?;
    let manifest = manifest(ctx, &project, parse_version(n)?).await?;
    let entry = manifest
        .files
        .get(&path)
        .ok_or_else(|| ApiError::not_found("file in this version"))?;
    let bytes = blobs(ctx)?.blob(&entry.sha256).await?;
    let mut resp = Response::from_bytes(bytes)?;
    for (k, v) in kiln_core::tree::stored_file_headers(&path) {
        resp.headers_mut().set(k, &v)?;
    }
    resp.headers_mut()
        .set("etag", &format!("\"{}\"", entry.sha256))?;
    // Versions never change.
    resp.headers_mut()
        .set("cache-control", "private, max-age=31536000, immutable")?;
    Ok(resp)
}

pub async fn diff(
    ctx: &Ctx,
    (_caller, project): (Caller, Project),
    a: &str,
    b: &str,
) -> ApiResult<Response> {
    let (from, to) = (parse_version(a)?, parse_version(b)?);
    let old = manifest(ctx, &project, from).await?;
    let new = manifest(ctx, &project, to).await?;
    let blobs = blobs(ctx)?;
    let paths: BTreeSet<_> = old.files.keys().chain(new.files.keys()).collect();
    let mut files = Vec::new();
    for path in paths {
        let (before, after) = (old.files.get(path), new.files.get(path));
        let change = match (before, after) {
            (Some(x), Some(y)) if x.sha256 == y.sha256 => continue,
            (Some(_), Some(_)) => Change::Modified,
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (None, None) => continue,
        };
        let text = |e: Option<&kiln_core::tree::ManifestEntry>| {
            let blobs = blobs.clone();
            let sha = e.map(|e| e.sha256.clone());
            async move {
                match sha {
                    None => Ok::<_, ApiError>(Some(String::new())),
                    Some(sha) => Ok(String::from_utf8(blobs.blob(&sha).await?).ok()),
                }
            }
        };
        let diff = match (text(before).await?, text(after).await?) {
            (Some(x), Some(y)) => Some(unified(path.as_str(), &x, &y)),
            _ => None,
        };
        files.push(FileDiff {
            path: path.to_string(),
            change,
            diff,
        });
    }
    json_sorted(200, &VersionDiff { from, to, files })
}

async fn manifest(ctx: &Ctx, project: &Project, number: u64) -> ApiResult<Manifest> {
    let (_, key) = Versions(&ctx.db)
        .get(project.id.as_str(), number)
        .await?
        .ok_or_else(|| ApiError::not_found("version"))?;
    Ok(blobs(ctx)?.manifest(&key).await?)
}

fn blobs(ctx: &Ctx) -> ApiResult<Blobs> {
    Ok(Blobs(ctx.env.bucket("ARTIFACTS")?))
}

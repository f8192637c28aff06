//! The HTTP API. The route table reads like the API; handlers authenticate first, then act.

use crate::auth::{self, Auth, PREVIEW_QUERY};
use crate::devserver::{self, DevServer};
use crate::error::{ApiError, ApiResult};
use crate::files::FsError;
use crate::runtime::{Spec, WORK};
use crate::sandbox::{Manager, Sandbox};
use crate::{exec, preview};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use base64::Engine;
use kiln_core::sandbox::{
    CreateSandbox, DevServerAction, DevServerRequest, ExecRequest, FileEncoding, FilesWritten,
    SandboxInfo, WriteFilesRequest,
};
use kiln_core::{ErrorCode, ProjectPath};
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

pub struct AppState {
    pub mgr: Manager,
    pub auth: Auth,
    /// Set when this host is a member of the edge's fleet.
    pub fleet: Option<Arc<crate::fleet::Membership>>,
}

type St = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/host/drain", post(drain))
        .route("/v1/sandboxes", post(create))
        .route("/v1/sandboxes/{id}", get(info).delete(delete))
        .route("/v1/sandboxes/{id}/files", put(write_files).get(list_files))
        .route(
            "/v1/sandboxes/{id}/files/{*path}",
            get(read_file).delete(delete_file),
        )
        .route("/v1/sandboxes/{id}/exec", post(exec_cmd))
        .route("/v1/sandboxes/{id}/terminal", get(crate::terminal::handler))
        .route("/v1/sandboxes/{id}/dev-server", post(dev_server))
        .route("/v1/sandboxes/{id}/preview", any(preview_root))
        .route("/v1/sandboxes/{id}/preview/", any(preview_root))
        .route("/v1/sandboxes/{id}/preview/{*path}", any(preview_path))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn count(State(st): St, req: Request, next: axum::middleware::Next) -> Response {
    let t = Instant::now();
    let resp = next.run(req).await;
    st.mgr.metrics.requests.inc();
    st.mgr
        .metrics
        .request_micros
        .add(t.elapsed().as_micros() as u64);
    resp
}

/// `POST /v1/host/drain` with the host credential: no new sandbox comes here (the edge hears
/// it at once); running ones stay until the edge moves their projects.
async fn drain(State(st): St, headers: HeaderMap) -> ApiResult<Json<serde_json::Value>> {
    let Some(m) = &st.fleet else {
        return Err(ApiError::not_found(
            "this host is not a member of a fleet (--edge-url)",
        ));
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !m.is_own(bearer) {
        return Err(ApiError::unauthorized(
            "draining needs this host's credential",
        ));
    }
    m.drain();
    let told = m
        .beat(st.mgr.cfg.max_sandboxes, st.mgr.running_count())
        .await;
    Ok(Json(serde_json::json!({
        "draining": true,
        "edge_told": told.is_ok(),
        "running": st.mgr.running_count(),
    })))
}

async fn healthz(State(st): St) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "ok": true,
        "version": env!("CARGO_PKG_VERSION"),
        "cgroups": st.mgr.cgroups.hierarchy.name(),
        "running": st.mgr.running_count(),
    }))
}

async fn metrics(State(st): St) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.mgr
            .metrics
            .render(st.mgr.running_count(), st.mgr.known_count()),
    )
}

/// Reads a JSON body of at most `limit` bytes with JSON errors (413, 400).
async fn json_body<T: DeserializeOwned>(body: Body, limit: usize) -> ApiResult<T> {
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            ErrorCode::InvalidJson
        } else {
            ErrorCode::InvalidField
        };
        ApiError::new(code, e.to_string())
    })
}

fn sandbox_info(
    sb: &Sandbox,
    running: Option<&crate::sandbox::Running>,
    created: bool,
) -> SandboxInfo {
    SandboxInfo {
        id: sb.id.clone(),
        project_id: sb.id.clone(),
        template: sb.template,
        state: if running.is_some() {
            "running"
        } else {
            "stopped"
        }
        .into(),
        address: running
            .map(|r| r.place.net.sandbox_ip.to_string())
            .unwrap_or_default(),
        created,
    }
}

async fn create(State(st): St, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let claims = st.auth.claims(&headers)?;
    let req: CreateSandbox = json_body(body, 64 * 1024).await?;
    if req.project_id != claims.project_id {
        return Err(ApiError::forbidden("token is for another project"));
    }
    let (sb, created) = st
        .mgr
        .create(&req.project_id, req.template, &claims)
        .await?;
    let running = sb.running.lock().await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(sandbox_info(&sb, running.as_ref(), created))).into_response())
}

/// Authenticates for `id`, finds its sandbox and records the org the token names for it.
fn authed(st: &AppState, headers: &HeaderMap, id: &str) -> ApiResult<Arc<Sandbox>> {
    let claims = st.auth.require(headers, id)?;
    let sb = st.mgr.get(id)?;
    st.mgr.note_org(&sb, &claims);
    Ok(sb)
}

async fn info(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<SandboxInfo>> {
    let sb = authed(&st, &headers, &id)?;
    let running = sb.running.lock().await;
    Ok(Json(sandbox_info(&sb, running.as_ref(), false)))
}

async fn delete(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    authed(&st, &headers, &id)?;
    st.mgr.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn fs_error(e: FsError) -> ApiError {
    match e {
        FsError::NotFound => ApiError::not_found("no such file"),
        FsError::TooLarge => ApiError::new(ErrorCode::FileTooLarge, "file is too large"),
        FsError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
        FsError::NoSpace => ApiError::disk_quota_exceeded(
            "the project's disk quota is used up; delete files (or node_modules) to make room",
        ),
        FsError::Io(e) => ApiError::internal(e.to_string()),
    }
}

async fn write_files(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<FilesWritten>> {
    let sb = authed(&st, &headers, &id)?;
    let cfg = &st.mgr.cfg;
    let req: WriteFilesRequest = json_body(body, cfg.max_body_bytes).await?;
    let prune = req.prune;
    let also_keep = req.keep;
    if req.files.len() > cfg.max_files_per_call {
        return Err(ApiError::new(
            ErrorCode::TooManyFiles,
            format!("at most {} files per call", cfg.max_files_per_call),
        ));
    }
    // Decode and check everything before writing anything.
    let mut decoded: Vec<(ProjectPath, Vec<u8>)> = Vec::with_capacity(req.files.len());
    for f in req.files {
        let bytes = match f.encoding {
            FileEncoding::Utf8 => f.content.into_bytes(),
            FileEncoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(f.content.as_bytes())
                .map_err(|e| ApiError::bad_request(format!("{}: not base64: {e}", f.path)))?,
        };
        if bytes.len() > cfg.max_file_bytes {
            return Err(ApiError::new(
                ErrorCode::FileTooLarge,
                format!("{} is larger than {} bytes", f.path, cfg.max_file_bytes),
            ));
        }
        decoded.push((f.path, bytes));
    }
    st.mgr.touch(&sb);
    let _busy = sb.busy();
    let fs = st.mgr.fs(&sb).await?;
    let written = tokio::task::spawn_blocking(move || -> ApiResult<FilesWritten> {
        let mut bytes = 0u64;
        for (p, b) in &decoded {
            fs.write(p, b).map_err(|e| match e {
                FsError::Conflict(m) => ApiError::new(ErrorCode::Conflict, format!("{p}: {m}")),
                FsError::NoSpace => ApiError::disk_quota_exceeded(format!(
                    "{p}: the project's disk quota is used up; delete files (or node_modules) \
                     to make room"
                )),
                e => fs_error(e),
            })?;
            bytes += b.len() as u64;
        }
        let pruned = if prune {
            let keep = decoded
                .iter()
                .map(|(p, _)| p.as_str())
                .chain(also_keep.iter().map(|p| p.as_str()))
                .collect();
            fs.prune(&keep).map_err(fs_error)?
        } else {
            0
        };
        Ok(FilesWritten {
            written: decoded.len(),
            bytes,
            pruned,
        })
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(written))
}

async fn list_files(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let sb = authed(&st, &headers, &id)?;
    let _busy = sb.busy();
    let fs = st.mgr.fs(&sb).await?;
    let list = tokio::task::spawn_blocking(move || fs.list())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(fs_error)?;
    Ok(Json(serde_json::json!({ "files": list })))
}

fn parse_path(raw: &str) -> ApiResult<ProjectPath> {
    ProjectPath::parse(raw).map_err(|e| ApiError::invalid_path(e.to_string()))
}

async fn read_file(
    State(st): St,
    headers: HeaderMap,
    Path((id, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sb = authed(&st, &headers, &id)?;
    let path = parse_path(&path)?;
    let _busy = sb.busy();
    let fs = st.mgr.fs(&sb).await?;
    let max = st.mgr.cfg.max_file_bytes;
    let bytes = tokio::task::spawn_blocking(move || fs.read(&path, max))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(fs_error)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn delete_file(
    State(st): St,
    headers: HeaderMap,
    Path((id, path)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let sb = authed(&st, &headers, &id)?;
    let path = parse_path(&path)?;
    let _busy = sb.busy();
    let fs = st.mgr.fs(&sb).await?;
    tokio::task::spawn_blocking(move || fs.delete(&path))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(fs_error)?;
    Ok(StatusCode::NO_CONTENT)
}

fn valid_env_key(k: &str) -> bool {
    !k.is_empty()
        && !k.as_bytes()[0].is_ascii_digit()
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

async fn exec_cmd(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let sb = authed(&st, &headers, &id)?;
    let req: ExecRequest = json_body(body, 1 << 20).await?;
    if req.cmd.is_empty() || req.cmd.contains('\0') || req.args.iter().any(|a| a.contains('\0')) {
        return Err(ApiError::bad_request(
            "cmd must be non-empty; no NUL bytes in cmd or args",
        ));
    }
    if let Some((k, _)) = req
        .env
        .iter()
        .find(|(k, v)| !valid_env_key(k) || v.contains('\0'))
    {
        return Err(ApiError::bad_request(format!(
            "bad environment variable {k:?}"
        )));
    }
    let cfg = &st.mgr.cfg;
    let timeout = req
        .timeout_ms
        .map(std::time::Duration::from_millis)
        .unwrap_or(cfg.exec_timeout_default)
        .min(cfg.exec_timeout_max);
    let place = st.mgr.ensure_running(&sb).await?;
    let cwd = match &req.cwd {
        Some(p) => format!("{WORK}/{p}"),
        None => WORK.to_owned(),
    };
    let mut argv = vec![req.cmd];
    argv.extend(req.args);
    // Where the sandbox's own dev server answers, for tools run inside it (check.mjs).
    let mut env = vec![(
        "KILN_DEV_URL".to_owned(),
        format!("http://127.0.0.1:{}/", crate::devserver::PORT),
    )];
    env.extend(req.env);
    let spec = Spec {
        argv,
        cwd,
        env,
        tty: false,
    };
    let busy = sb.busy();
    let rx = exec::start(place, spec, timeout, st.mgr.metrics.clone());
    let stream = futures::stream::unfold((rx, busy), |(mut rx, busy)| async move {
        let frame = rx.recv().await?;
        let mut line = serde_json::to_vec(&frame).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), (rx, busy)))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

pub fn preview_base(id: &str) -> String {
    format!("/v1/sandboxes/{id}/preview/")
}

async fn dev_server(
    State(st): St,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<kiln_core::sandbox::DevServerStatus>> {
    let sb = authed(&st, &headers, &id)?;
    let req: DevServerRequest = json_body(body, 4096).await?;
    let preview_url = format!(
        "{}?{PREVIEW_QUERY}={}",
        preview_base(&id),
        st.auth.preview_token(&id)
    );
    match req.action {
        DevServerAction::Start => start_dev_server(&st, &sb, false, preview_url).await,
        DevServerAction::Restart => start_dev_server(&st, &sb, true, preview_url).await,
        DevServerAction::Status => {
            let running = sb.running.lock().await;
            Ok(Json(match running.as_ref().and_then(|r| r.dev.as_ref()) {
                Some(d) => d.status(Some(preview_url)),
                None => devserver::stopped_status(),
            }))
        }
        DevServerAction::Stop => {
            let mut running = sb.running.lock().await;
            if let Some(d) = running.as_mut().and_then(|r| r.dev.take()) {
                d.stop().await;
            }
            Ok(Json(devserver::stopped_status()))
        }
    }
}

/// Brings the sandbox up if needed, (re)starts its dev server and waits until its port
/// accepts connections, it exits, or the readiness timeout passes.
async fn start_dev_server(
    st: &AppState,
    sb: &Sandbox,
    restart: bool,
    preview_url: String,
) -> ApiResult<Json<kiln_core::sandbox::DevServerStatus>> {
    let place = st.mgr.ensure_running(sb).await?;
    let mut running = sb.running.lock().await;
    let r = running
        .as_mut()
        .ok_or_else(|| ApiError::unavailable("the sandbox stopped while starting"))?;
    if restart || r.dev.as_ref().is_some_and(|d| d.exited()) {
        if let Some(d) = r.dev.take() {
            d.stop().await;
        }
    }
    if r.dev.is_none() {
        // The app lives at `/` of an origin of its own (the edge gives each project's
        // preview its own host), so its own routes and absolute paths work unchanged.
        r.dev = Some(DevServer::start(&place, sb.template, "/")?);
    }
    let dev = r
        .dev
        .as_mut()
        .ok_or_else(|| ApiError::internal("dev server vanished"))?;
    let addr = (place.net.sandbox_ip, devserver::PORT).into();
    dev.wait_ready(addr, st.mgr.cfg.dev_server_ready_timeout)
        .await;
    Ok(Json(dev.status(Some(preview_url))))
}

async fn preview_root(State(st): St, Path(id): Path<String>, req: Request) -> ApiResult<Response> {
    preview_any(st, id, req).await
}

async fn preview_path(
    State(st): St,
    Path((id, _)): Path<(String, String)>,
    req: Request,
) -> ApiResult<Response> {
    preview_any(st, id, req).await
}

/// The running dev server's address; a sandbox stopped by the idle reaper (or never started
/// since the service restarted) is brought back with its dev server by a preview hit.
async fn dev_server_addr(st: &AppState, sb: &Sandbox) -> ApiResult<std::net::SocketAddr> {
    let addr = {
        let running = sb.running.lock().await;
        match running.as_ref() {
            Some(r) => match &r.dev {
                Some(d) if !d.exited() => Some((r.place.net.sandbox_ip, devserver::PORT).into()),
                _ => return Err(ApiError::unavailable("the dev server is not running")),
            },
            None => None,
        }
    };
    if let Some(a) = addr {
        return Ok(a);
    }
    let status = start_dev_server(st, sb, false, String::new()).await?;
    if status.state != "ready" {
        return Err(ApiError::unavailable(format!(
            "the dev server did not start: {}",
            status.log
        )));
    }
    let running = sb.running.lock().await;
    let ip = running
        .as_ref()
        .map(|r| r.place.net.sandbox_ip)
        .ok_or_else(|| ApiError::unavailable("the sandbox stopped"))?;
    Ok((ip, devserver::PORT).into())
}

/// A Vite reconnect ping (see [`preview::is_vite_ping`]): the page reloads once one
/// succeeds, and that reload is a preview hit that wakes and keeps up the sandbox. So a ping
/// never counts as use, never starts a sandbox or dev server, and is refused once the
/// sandbox has had no real use for longer than the HMR idle limit (by then the tab's HMR
/// socket was closed as idle): the client then keeps polling quietly and the reaper may stop
/// the sandbox. A dev server restarted by real use answers pings again, and the page reloads.
async fn preview_ping(st: &AppState, sb: &Sandbox, req: Request) -> ApiResult<Response> {
    let refuse = |why: String| {
        st.mgr.metrics.preview_pings_refused.inc();
        Err(ApiError::unavailable(why))
    };
    let addr: Option<std::net::SocketAddr> = {
        let running = sb.running.lock().await;
        running.as_ref().and_then(|r| {
            r.dev
                .as_ref()
                .filter(|d| !d.exited())
                .map(|_| (r.place.net.sandbox_ip, devserver::PORT).into())
        })
    };
    let Some(addr) = addr else {
        return refuse("the dev server is not running; a reconnect ping does not start it".into());
    };
    let limit = st.mgr.cfg.hmr_idle_timeout;
    if st.mgr.idle_for(sb) > limit {
        return refuse(format!(
            "the preview has not been used for over {} s; reload the page to wake it",
            limit.as_secs()
        ));
    }
    // Vite closes a ping socket at once; it must not hold the sandbox busy either.
    preview::forward(addr, req, ()).await
}

async fn preview_any(st: Arc<AppState>, id: String, mut req: Request) -> ApiResult<Response> {
    let t = Instant::now();
    st.mgr.metrics.preview_requests.inc();
    let from_query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| {
                kv.strip_prefix(PREVIEW_QUERY)
                    .and_then(|v| v.strip_prefix('='))
            })
            .map(str::to_owned)
    });
    let cookie_name = auth::preview_cookie_name(&id);
    // The edge proxies previews with its own project-scoped token; the dev server never
    // sees it.
    let from_edge = st.auth.require(req.headers(), &id).ok();
    req.headers_mut().remove(axum::http::header::AUTHORIZATION);
    let set_cookie = match (&from_query, auth::cookie(req.headers(), &cookie_name)) {
        _ if from_edge.is_some() => None,
        (Some(t), _) if st.auth.check_preview_token(t, &id) => Some(t.clone()),
        (_, Some(c)) if st.auth.check_preview_token(c, &id) => None,
        _ => return Err(ApiError::unauthorized("preview needs its token")),
    };
    let sb = st.mgr.get(&id)?;
    if let Some(claims) = &from_edge {
        st.mgr.note_org(&sb, claims);
    }
    preview::strip_prefix(&mut req, &preview_base(&id));
    let mut resp = if preview::is_vite_ping(req.headers()) {
        preview_ping(&st, &sb, req).await?
    } else {
        let addr = dev_server_addr(&st, &sb).await?;
        st.mgr.touch(&sb);
        preview::forward(addr, req, sb.busy()).await?
    };
    preview::confine(resp.headers_mut());
    if let Some(token) = set_cookie {
        let c = format!(
            "{cookie_name}={token}; Path={}; HttpOnly; SameSite=Lax; Max-Age={}",
            preview_base(&id).trim_end_matches('/'),
            auth::PREVIEW_TOKEN_TTL_SECS
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    st.mgr
        .metrics
        .preview_micros
        .add(t.elapsed().as_micros() as u64);
    Ok(resp)
}

//! Reverse proxy from `/v1/sandboxes/{id}/preview/*` to the sandbox's dev server, HTTP and
//! WebSocket upgrades (Vite HMR) alike. The path is forwarded unchanged: the dev server is
//! started with this prefix as its base.

use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;

/// Hop-by-hop headers that must not be forwarded (except the upgrade pair on upgrades).
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Forwards one request. `busy` is held for as long as an upgraded connection (HMR) lives, so
/// the idle reaper leaves a sandbox with an open preview alone.
pub async fn forward<G: Send + 'static>(
    upstream: SocketAddr,
    mut req: Request<Body>,
    busy: G,
) -> ApiResult<Response<Body>> {
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));

    let stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| {
            ApiError::new(
                kiln_core::ErrorCode::Unavailable,
                format!("dev server not reachable: {e}"),
            )
        })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| ApiError::internal(format!("upstream handshake: {e}")))?;
    tokio::spawn(conn.with_upgrades());

    let (mut parts, body) = req.into_parts();
    strip_token_from_query(&mut parts.uri);
    for h in HOP {
        parts.headers.remove(*h);
    }
    if let Some(u) = &upgrade {
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Ok(v) = HeaderValue::from_str(u) {
            parts.headers.insert(header::UPGRADE, v);
        }
    }
    let up_req = Request::from_parts(parts, body);
    let mut resp = sender
        .send_request(up_req)
        .await
        .map_err(|e| ApiError::unavailable(format!("dev server: {e}")))?;

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        if let Some(client_upgrade) = client_upgrade {
            tokio::spawn(async move {
                let _busy = busy;
                if let (Ok(c), Ok(u)) = (client_upgrade.await, upstream_upgrade.await) {
                    let mut c = TokioIo::new(c);
                    let mut u = TokioIo::new(u);
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
                }
            });
        }
        let (parts, _) = resp.into_parts();
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = resp.into_parts();
    for h in HOP {
        parts.headers.remove(*h);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// Removes `kiln_token=…` so the dev server never sees the preview token.
fn strip_token_from_query(uri: &mut axum::http::Uri) {
    let Some(q) = uri.query() else { return };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| !kv.starts_with(&format!("{}=", crate::auth::PREVIEW_QUERY)))
        .collect();
    let path = uri.path();
    let new = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    if let Ok(u) = new.parse() {
        *uri = u;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_token_is_not_forwarded() {
        let mut u: axum::http::Uri = "/v1/sandboxes/p/preview/?kiln_token=abc&x=1"
            .parse()
            .unwrap();
        strip_token_from_query(&mut u);
        assert_eq!(u.to_string(), "/v1/sandboxes/p/preview/?x=1");
        let mut u: axum::http::Uri = "/a?kiln_token=abc".parse().unwrap();
        strip_token_from_query(&mut u);
        assert_eq!(u.to_string(), "/a");
    }
}

//! Reverse proxy from `/v1/sandboxes/{id}/preview/*` to the sandbox's dev server, HTTP and
//! WebSocket upgrades (Vite HMR) alike. The prefix is stripped: the dev server serves the
//! app at `/`, because the edge gives each project's preview an origin of its own.

use crate::error::{ApiError, ApiResult};
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long an upgraded connection may carry no bytes before it is closed (see
/// [`set_upgrade_idle_timeout`]).
static UPGRADE_IDLE: OnceLock<Duration> = OnceLock::new();
const DEFAULT_UPGRADE_IDLE: Duration = Duration::from_secs(600);

/// Set once at start-up from the configuration (`--hmr-idle-secs`).
pub fn set_upgrade_idle_timeout(d: Duration) {
    let _ = UPGRADE_IDLE.set(d);
}

fn upgrade_idle_timeout() -> Duration {
    UPGRADE_IDLE.get().copied().unwrap_or(DEFAULT_UPGRADE_IDLE)
}

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
/// the idle reaper leaves a sandbox with an open preview alone; an upgraded connection idle
/// for the upgrade idle timeout is closed and lets go of it.
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
            let websocket = upgrade
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            tokio::spawn(async move {
                let _busy = busy;
                if let (Ok(c), Ok(u)) = (client_upgrade.await, upstream_upgrade.await) {
                    let mut c = TokioIo::new(c);
                    let mut u = TokioIo::new(u);
                    splice(&mut c, &mut u, upgrade_idle_timeout(), websocket).await;
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

/// Whether this is Vite's reconnect ping rather than a page, a module or the HMR socket.
///
/// Vite 7's client (checked in the `react-vite` layer's vite 7.3.8, `dist/client/client.mjs`:
/// `waitForSuccessfulPingInternal`), after its HMR socket closes ("server connection lost.
/// Polling for restart..."), opens `new WebSocket(url, "vite-ping")` to the HMR URL (query
/// dropped), that is an upgrade with `Sec-WebSocket-Protocol: vite-ping`; it tries again a
/// second after each failure while the page is visible (and waits while it is hidden), and
/// calls `location.reload()` once one opens. The dev server (`dist/node/chunks/config.js`)
/// accepts such an upgrade without its token check and closes it at once with 1000. A
/// refused upgrade is an `error` event to the client: it waits and polls again, no reload.
pub fn is_vite_ping(headers: &axum::http::HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == "vite-ping")
}

/// A WebSocket close frame from the server side (unmasked), status 1001 "going away".
const WS_CLOSE_GOING_AWAY: [u8; 4] = [0x88, 0x02, 0x03, 0xe9];

/// Copies bytes both ways until a side closes or fails, or no byte moved either way for
/// `idle`, then closes both; a WebSocket client is sent a close frame first. On a WebSocket,
/// the client's heartbeats (ping/pong frames, and the `{"type":"ping"}` Vite's client sends
/// every 30 s) are forwarded but do not count as traffic: otherwise an idle tab would never
/// be idle.
async fn splice<C, U>(client: &mut C, upstream: &mut U, idle: Duration, websocket: bool)
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut from_client = vec![0u8; 16 * 1024];
    let mut from_upstream = vec![0u8; 16 * 1024];
    let mut deadline = tokio::time::Instant::now() + idle;
    loop {
        // Each arm's read is cancel-safe.
        let ok = tokio::select! {
            r = client.read(&mut from_client) => match r {
                Ok(n) if n > 0 => {
                    if !(websocket && only_heartbeats(&from_client[..n])) {
                        deadline = tokio::time::Instant::now() + idle;
                    }
                    write_within(upstream, &from_client[..n], idle).await
                }
                _ => false,
            },
            r = upstream.read(&mut from_upstream) => match r {
                Ok(n) if n > 0 => {
                    deadline = tokio::time::Instant::now() + idle;
                    write_within(client, &from_upstream[..n], idle).await
                }
                _ => false,
            },
            _ = tokio::time::sleep_until(deadline) => {
                if websocket
                    && write_within(client, &WS_CLOSE_GOING_AWAY, Duration::from_secs(1)).await
                {
                    // The closing handshake: give the client a moment to answer.
                    let mut sink = [0u8; 256];
                    let _ = tokio::time::timeout(Duration::from_secs(1), client.read(&mut sink))
                        .await;
                }
                false
            }
        };
        if !ok {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), client.shutdown()).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), upstream.shutdown()).await;
}

/// Whether `buf` is one or more whole client frames that are all heartbeats. Anything else,
/// a frame split across reads included, counts as use: the mistake is then only that an idle
/// connection stays open a little longer.
fn only_heartbeats(mut buf: &[u8]) -> bool {
    const VITE_PING: &[u8] = br#"{"type":"ping"}"#;
    if buf.is_empty() {
        return false;
    }
    while !buf.is_empty() {
        let [b0, b1, ..] = *buf else { return false };
        let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0f);
        let (masked, len) = (b1 & 0x80 != 0, usize::from(b1 & 0x7f));
        if len >= 126 {
            return false; // long frames are never heartbeats
        }
        let head = 2 + if masked { 4 } else { 0 };
        let Some(frame) = buf.get(..head + len) else {
            return false;
        };
        let payload: Vec<u8> = if masked {
            let mask = &frame[2..6];
            frame[6..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect()
        } else {
            frame[2..].to_vec()
        };
        let heartbeat = match opcode {
            0x9 | 0xa => true,
            0x1 => fin && payload == VITE_PING,
            _ => false,
        };
        if !heartbeat {
            return false;
        }
        buf = &buf[head + len..];
    }
    true
}

/// A peer that does not read for `limit` is as idle as one that does not write.
async fn write_within<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8], limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, w.write_all(buf)).await,
        Ok(Ok(()))
    )
}

/// `/v1/sandboxes/{id}/preview/x?q` → `/x?q`: the dev server serves the app at `/`.
pub fn strip_prefix<B>(req: &mut Request<B>, base: &str) {
    let uri = req.uri();
    let rest = uri
        .path()
        .strip_prefix(base.trim_end_matches('/'))
        .unwrap_or(uri.path());
    let rest = if rest.starts_with('/') {
        rest.to_owned()
    } else {
        format!("/{rest}")
    };
    let new = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest,
    };
    if let Ok(u) = new.parse() {
        *req.uri_mut() = u;
    }
}

/// Drops what a dev server could send to act beyond its own app: Kiln's cookies, a service
/// worker scope wider than its script, wiping the origin's storage. The edge does the same;
/// this holds for anyone who reaches the proxy directly too.
pub fn confine(headers: &mut axum::http::HeaderMap) {
    for h in kiln_core::origin::STRIPPED_PREVIEW_HEADERS {
        headers.remove(*h);
    }
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            v.to_str()
                .map_or(true, |c| !kiln_core::origin::is_kiln_cookie(c))
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for c in cookies {
        headers.append(header::SET_COOKIE, c);
    }
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

    #[tokio::test]
    async fn an_idle_upgraded_connection_is_closed_and_a_busy_one_is_not() {
        let idle = Duration::from_millis(300);
        let (mut client, mut c_end) = tokio::io::duplex(1024);
        let (mut u_end, mut upstream) = tokio::io::duplex(1024);
        let task = tokio::spawn(async move { splice(&mut c_end, &mut u_end, idle, true).await });
        // Traffic every 100 ms for a second keeps it open.
        for i in 0..10u8 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if i % 2 == 0 {
                client.write_all(&[i]).await.unwrap();
                let mut b = [0u8; 1];
                upstream.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], i);
            } else {
                upstream.write_all(&[i]).await.unwrap();
                let mut b = [0u8; 1];
                client.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], i);
            }
        }
        assert!(!task.is_finished(), "closed while in use");
        // Then only Vite's heartbeats: they reach the dev server, yet the connection is idle.
        let ping = masked_text(br#"{"type":"ping"}"#);
        let mut hb = 0;
        while !task.is_finished() && hb < 20 {
            let _ = client.write_all(&ping).await;
            hb += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(hb < 10, "heartbeats kept it open ({hb} sent)");
        let mut seen = vec![0u8; ping.len()];
        upstream.read_exact(&mut seen).await.unwrap();
        assert_eq!(seen, ping);
        // The client gets a close frame and both ends are closed.
        let mut got = Vec::new();
        let t = tokio::time::timeout(Duration::from_secs(3), client.read_to_end(&mut got));
        drop(ping);
        t.await.expect("not closed when idle").unwrap();
        assert_eq!(got, WS_CLOSE_GOING_AWAY);
        let mut rest = Vec::new();
        upstream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(
            rest.len() % ping_len(),
            0,
            "only whole heartbeats were forwarded"
        );
        task.await.unwrap();
    }

    fn masked_text(payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn ping_len() -> usize {
        masked_text(br#"{"type":"ping"}"#).len()
    }

    #[test]
    fn heartbeats_are_told_from_use() {
        let ping = masked_text(br#"{"type":"ping"}"#);
        assert!(only_heartbeats(&ping));
        assert!(only_heartbeats(&[ping.clone(), ping.clone()].concat()));
        assert!(only_heartbeats(&[0x89, 0x00])); // a ping control frame
        assert!(!only_heartbeats(&masked_text(br#"{"type":"custom"}"#)));
        assert!(!only_heartbeats(&ping[..5]));
        assert!(!only_heartbeats(&[ping.clone(), vec![0x81]].concat()));
        assert!(!only_heartbeats(&[]));
    }

    #[test]
    fn vite_pings_are_told_from_hmr_sockets_and_pages() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = axum::http::HeaderMap::new();
            for (k, v) in pairs {
                m.append(*k, HeaderValue::from_static(v));
            }
            m
        };
        let up = ("upgrade", "websocket");
        assert!(is_vite_ping(&h(&[
            up,
            ("sec-websocket-protocol", "vite-ping")
        ])));
        assert!(is_vite_ping(&h(&[
            up,
            ("sec-websocket-protocol", "x, vite-ping")
        ])));
        assert!(!is_vite_ping(&h(&[
            up,
            ("sec-websocket-protocol", "vite-hmr")
        ])));
        assert!(!is_vite_ping(&h(&[up])));
        // Not an upgrade: an ordinary request whatever its headers say.
        assert!(!is_vite_ping(&h(&[(
            "sec-websocket-protocol",
            "vite-ping"
        )])));
    }

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

    #[test]
    fn the_app_is_served_at_its_root() {
        for (from, to) in [
            ("/v1/sandboxes/p/preview/", "/"),
            ("/v1/sandboxes/p/preview", "/"),
            (
                "/v1/sandboxes/p/preview/src/App.tsx?t=1",
                "/src/App.tsx?t=1",
            ),
        ] {
            let mut req = Request::builder().uri(from).body(()).unwrap();
            strip_prefix(&mut req, "/v1/sandboxes/p/preview/");
            assert_eq!(req.uri().to_string(), to);
        }
    }

    #[test]
    fn headers_reaching_beyond_the_app_are_dropped() {
        let mut h = axum::http::HeaderMap::new();
        h.insert("service-worker-allowed", HeaderValue::from_static("/"));
        h.insert("clear-site-data", HeaderValue::from_static("\"*\""));
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("kiln_session=x; Path=/"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("theme=dark"));
        confine(&mut h);
        assert!(h.get("service-worker-allowed").is_none() && h.get("clear-site-data").is_none());
        let cookies: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(cookies, vec![HeaderValue::from_static("theme=dark")]);
    }
}

//! `kiln-sandbox-proxy`: runs each project's untrusted code in an isolated container on a
//! Linux host and proxies its preview. The edge reaches it over HTTP(S) with a short-lived JWT
//! scoped to one project (invariant 7).
//!
//! This binary never links the `worker` crate and shares nothing with the edge but
//! `kiln-core`'s protocol types.

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};

const DEFAULT_LISTEN: &str = "127.0.0.1:8790";

fn router() -> Router {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }))
}

fn listen_addr() -> Result<SocketAddr, String> {
    let raw = std::env::var("KILN_SANDBOX_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    raw.parse()
        .map_err(|e| format!("KILN_SANDBOX_LISTEN={raw:?} is not an address: {e}"))
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("sandbox-proxy: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let addr = listen_addr()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    eprintln!("sandbox-proxy listening on {addr}");
    axum::serve(listener, router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn healthz_answers_ok_over_http() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router()).await });
        let reply = tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(r#""ok":true"#), "{reply}");
    }
}

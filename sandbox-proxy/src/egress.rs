//! The only way out of a sandbox: an HTTP CONNECT proxy on the sandbox's host-side veth
//! address that tunnels to allow-listed host names on port 443 (or 80), and refuses names that
//! resolve to loopback, private, link-local or CGNAT addresses (no DNS rebinding inward).

use crate::metrics::Metrics;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const MAX_HEAD: usize = 8192;

/// Starts the proxy for one sandbox: accepts only connections from `sandbox_ip`.
pub async fn start(
    bind: SocketAddr,
    sandbox_ip: Ipv4Addr,
    allow: Arc<Vec<String>>,
    metrics: Arc<Metrics>,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(bind).await?;
    Ok(tokio::spawn(async move {
        while let Ok((conn, peer)) = listener.accept().await {
            if peer.ip() != IpAddr::V4(sandbox_ip) {
                continue; // another sandbox's address: drop
            }
            let allow = allow.clone();
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let _ = handle(conn, &allow, &metrics).await;
            });
        }
    }))
}

async fn handle(mut conn: TcpStream, allow: &[String], metrics: &Metrics) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    let line = String::from_utf8_lossy(&head[..end]);
    let first = line.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "CONNECT" {
        return refuse(
            &mut conn,
            "405 Method Not Allowed",
            "only CONNECT is proxied",
        )
        .await;
    }
    let Some((host, port)) = parse_target(target) else {
        return refuse(&mut conn, "400 Bad Request", "bad CONNECT target").await;
    };
    if !(port == 443 || port == 80) || !allow.iter().any(|a| a == &host) {
        metrics.egress_denied.inc();
        return refuse(&mut conn, "403 Forbidden", "host not on the allow-list").await;
    }
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(a) => a.filter(|a| is_public(a.ip())).collect(),
        Err(_) => Vec::new(),
    };
    let Some(addr) = addrs.first() else {
        metrics.egress_denied.inc();
        return refuse(&mut conn, "502 Bad Gateway", "no public address").await;
    };
    let mut upstream = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(_) => return refuse(&mut conn, "502 Bad Gateway", "connect failed").await,
    };
    metrics.egress_tunnels.inc();
    conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    // Bytes the client sent after the head belong to the tunnel.
    if head.len() > end {
        upstream.write_all(&head[end..]).await?;
    }
    let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
    Ok(())
}

async fn refuse(conn: &mut TcpStream, status: &str, why: &str) -> std::io::Result<()> {
    let body = format!("{why}\n");
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes()).await
}

fn parse_target(t: &str) -> Option<(String, u16)> {
    let (host, port) = t.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// Not loopback, private (RFC 1918 / ULA), link-local, CGNAT, unspecified or multicast.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["104.16.0.35", "8.8.8.8", "2606:4700::6810:1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn connect_targets_parse() {
        assert_eq!(
            parse_target("Registry.npmjs.org:443"),
            Some(("registry.npmjs.org".into(), 443))
        );
        assert_eq!(parse_target("nohost"), None);
        assert_eq!(parse_target(":443"), None);
    }
}

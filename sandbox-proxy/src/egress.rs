//! The only way out of a sandbox: an HTTP CONNECT proxy on the sandbox's host-side veth
//! address that tunnels to allow-listed host names on port 443 (or 80), and refuses names that
//! resolve to loopback, private, link-local or CGNAT addresses (no DNS rebinding inward).
//!
//! One sandbox cannot starve the proxy for others: it may hold a bounded number of
//! connections, each must send its request head within a deadline, and the accept loop keeps
//! going through errors such as running out of file descriptors.

use crate::metrics::Metrics;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

const MAX_HEAD: usize = 8192;
/// Resolving and connecting upstream; beyond this the client gets a 504.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause after an accept error, doubled up to `MAX_BACKOFF` while errors go on.
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// What a connection over the cap gets before it is closed (written without waiting).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
content-length: 29\r\nconnection: close\r\n\r\ntoo many egress connections\r\n";

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time for a client to send its whole CONNECT request head (slowloris).
    pub head_timeout: Duration,
    /// Connections one sandbox may hold at once, tunnels included.
    pub max_conns: usize,
}

/// Starts the proxy for one sandbox: accepts only connections from `sandbox_ip`.
pub async fn start(
    bind: SocketAddr,
    sandbox_ip: Ipv4Addr,
    allow: Arc<Vec<String>>,
    metrics: Arc<Metrics>,
    limits: Limits,
) -> std::io::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(bind).await?;
    let slots = Arc::new(Semaphore::new(limits.max_conns));
    Ok(tokio::spawn(accept_loop(listener, move |conn, peer| {
        if peer.ip() != IpAddr::V4(sandbox_ip) {
            return; // another sandbox's address: drop
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.egress_busy.inc();
            // Best effort: a client that does not read gets the close alone.
            let _ = conn.try_write(BUSY);
            return;
        };
        let allow = allow.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let _ = handle(conn, &allow, &metrics, limits.head_timeout).await;
        });
    })))
}

/// Something that accepts connections; a trait so the loop can be tested with failing ones.
pub trait Accept {
    type Conn;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Conn, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    type Conn = TcpStream;
    fn accept(&self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send {
        TcpListener::accept(self)
    }
}

/// Accepts until the task is aborted. An error (EMFILE, ENFILE, ENOBUFS, a connection reset
/// before it was accepted, …) never ends the loop: after one, it pauses briefly, longer while
/// errors go on, so that a full fd table does not spin the CPU.
pub async fn accept_loop<L: Accept>(listener: L, mut on_conn: impl FnMut(L::Conn, SocketAddr)) {
    let mut backoff = MIN_BACKOFF;
    loop {
        match listener.accept().await {
            Ok((conn, peer)) => {
                backoff = MIN_BACKOFF;
                on_conn(conn, peer);
            }
            Err(e) => {
                if backoff == MIN_BACKOFF {
                    eprintln!("sandbox-proxy: egress accept: {e}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The request head, or `None` if the client closed, sent too much or took too long.
async fn read_head(conn: &mut TcpStream, timeout: Duration) -> Option<Vec<u8>> {
    let read = async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.ok()?;
            if n == 0 || head.len() + n > MAX_HEAD {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(head)
    };
    tokio::time::timeout(timeout, read).await.ok().flatten()
}

async fn handle(
    mut conn: TcpStream,
    allow: &[String],
    metrics: &Metrics,
    head_timeout: Duration,
) -> std::io::Result<()> {
    let Some(head) = read_head(&mut conn, head_timeout).await else {
        return Ok(());
    };
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
    let lookup = tokio::time::timeout(
        UPSTREAM_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    );
    let addrs: Vec<SocketAddr> = match lookup.await {
        Ok(Ok(a)) => a.filter(|a| is_public(a.ip())).collect(),
        _ => Vec::new(),
    };
    let Some(addr) = addrs.first() else {
        metrics.egress_denied.inc();
        return refuse(&mut conn, "502 Bad Gateway", "no public address").await;
    };
    let mut upstream = match tokio::time::timeout(UPSTREAM_TIMEOUT, TcpStream::connect(addr)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => return refuse(&mut conn, "502 Bad Gateway", "connect failed").await,
        Err(_) => return refuse(&mut conn, "504 Gateway Timeout", "connect timed out").await,
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
    // A client that never reads must not hold its slot.
    tokio::time::timeout(Duration::from_secs(5), conn.write_all(resp.as_bytes()))
        .await
        .unwrap_or(Ok(()))
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

/// Not loopback, private (RFC 1918 / ULA), link-local, CGNAT, benchmarking, unspecified or
/// multicast; and no IPv6 address that embeds an IPv4 one and may be translated to it on the
/// way (IPv4-mapped/-compatible, NAT64, 6to4, Teredo), since the embedded address may be any
/// of those.
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
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                // 198.18.0.0/15, benchmarking (RFC 2544): often lab or internal networks.
                || (o[0] == 198 && (o[1] & 0xfe) == 18))
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
                || (s[0] & 0xffc0) == 0xfe80
                // ::/96, IPv4-compatible (deprecated).
                || s[..6] == [0; 6]
                // 64:ff9b::/96 (NAT64, RFC 6052) and 64:ff9b:1::/48 (local NAT64, RFC 8215).
                || (s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1))
                // 2002::/16 (6to4) and 2001::/32 (Teredo).
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0))
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
            "198.18.0.1",
            "198.19.255.254",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:808:808::1",
            "2001:0:4136:e378::1",
            "::10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "104.16.0.35",
            "8.8.8.8",
            "198.17.255.255",
            "198.20.0.1",
            "2606:4700::6810:1",
            "2001:4860:4860::8888",
            "64:ff9c::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    async fn proxy(limits: Limits) -> (SocketAddr, Arc<Metrics>, JoinHandle<()>) {
        let metrics = Arc::new(Metrics::default());
        let allow = Arc::new(vec!["registry.example".to_owned()]);
        let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
        // Bind first to learn the port; start() binds again on it.
        let port = TcpListener::bind(bind)
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let h = start(addr, Ipv4Addr::LOCALHOST, allow, metrics.clone(), limits)
            .await
            .unwrap();
        (addr, metrics, h)
    }

    /// What the proxy sends before it closes, or `None` if it keeps the connection open
    /// for `wait`.
    async fn answer(conn: &mut TcpStream, wait: Duration) -> Option<String> {
        let mut out = Vec::new();
        match tokio::time::timeout(wait, conn.read_to_end(&mut out)).await {
            Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn a_slow_request_head_is_cut_off() {
        let limits = Limits {
            head_timeout: Duration::from_millis(300),
            max_conns: 8,
        };
        let (addr, _, h) = proxy(limits).await;
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"CONNECT registry.example:443 HTTP/1.1\r\n")
            .await
            .unwrap();
        let t = std::time::Instant::now();
        assert_eq!(
            answer(&mut slow, Duration::from_secs(5)).await.as_deref(),
            Some("")
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // A prompt client is still served (refused here: the name does not resolve).
        let mut ok = TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let a = answer(&mut ok, Duration::from_secs(5)).await.unwrap();
        assert!(a.starts_with("HTTP/1.1 403"), "{a}");
        h.abort();
    }

    #[tokio::test]
    async fn connections_over_the_cap_are_refused_at_once_and_slots_come_back() {
        let limits = Limits {
            head_timeout: Duration::from_secs(30),
            max_conns: 4,
        };
        let (addr, metrics, h) = proxy(limits).await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // Let the proxy accept them all before the fifth arrives.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut over = TcpStream::connect(addr).await.unwrap();
        let a = answer(&mut over, Duration::from_secs(2)).await;
        assert!(
            a.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 503")),
            "{a:?}"
        );
        assert_eq!(metrics.egress_busy.get(), 1);
        // The held ones are still open.
        for c in &mut held {
            assert_eq!(answer(c, Duration::from_millis(50)).await, None);
        }
        // Closing one frees its slot.
        drop(held.pop());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut again = TcpStream::connect(addr).await.unwrap();
        assert_eq!(answer(&mut again, Duration::from_millis(200)).await, None);
        h.abort();
    }

    /// Fails with EMFILE a few times, then hands out connections, then ends.
    struct Flaky {
        errors: std::sync::atomic::AtomicUsize,
        conns: std::sync::atomic::AtomicUsize,
    }

    impl Accept for Flaky {
        type Conn = usize;
        fn accept(&self) -> impl Future<Output = std::io::Result<(usize, SocketAddr)>> + Send {
            use std::sync::atomic::Ordering::SeqCst;
            let r = if self.errors.load(SeqCst) > 0 {
                self.errors.fetch_sub(1, SeqCst);
                Err(std::io::Error::from_raw_os_error(nix::libc::EMFILE))
            } else {
                Ok((self.conns.fetch_add(1, SeqCst), ([127, 0, 0, 1], 1).into()))
            };
            async move {
                if r.as_ref().is_ok_and(|(n, _)| *n >= 3) {
                    std::future::pending::<()>().await;
                }
                r
            }
        }
    }

    #[tokio::test]
    async fn the_accept_loop_survives_errors() {
        let flaky = Flaky {
            errors: 5.into(),
            conns: 0.into(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let t = std::time::Instant::now();
        let task = tokio::spawn(accept_loop(flaky, move |n, _| {
            let _ = tx.send(n);
        }));
        for want in 0..3 {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            assert_eq!(got.ok().flatten(), Some(want));
        }
        // Backed off between errors (10+20+40+80+160 ms), not spun.
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        task.abort();
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

//! `kiln-sandbox-proxy`: runs each project's untrusted code in an isolated container on a
//! Linux host and proxies its preview. The edge reaches it over HTTP with a short-lived JWT
//! scoped to one project (invariant 7). See docs/SANDBOX.md for the design.
//!
//! This crate never links the `worker` crate and shares nothing with the edge but
//! `kiln-core`'s protocol types. It must never run a project's code outside a sandbox.

pub mod api;
pub mod auth;
pub mod cgroups;
pub mod config;
pub mod devserver;
pub mod disk;
pub mod egress;
pub mod error;
pub mod exec;
pub mod files;
pub mod fleet;
pub mod metrics;
pub mod net;
pub mod preview;
pub mod runtime;
pub mod sandbox;
pub mod seccomp;
pub mod templates;
pub mod terminal;
#[cfg(feature = "tls")]
pub mod tls;

use std::sync::Arc;

/// Fills `buf` from the kernel's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// Prepares the host and serves until SIGINT/SIGTERM, then stops every sandbox and removes
/// what the service put on the host (files are kept).
pub async fn serve(cfg: config::Config) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("must run as root (namespaces, cgroups, nftables)".into());
    }
    let user = runtime::ensure_user(&cfg.sandbox_user).map_err(|e| format!("sandbox user: {e}"))?;
    let auth = auth::Auth::new(&cfg.jwt)?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    preview::set_upgrade_idle_timeout(cfg.hmr_idle_timeout);
    raise_fd_limit();
    let metrics = Arc::new(metrics::Metrics::default());
    let mgr = sandbox::Manager::start(cfg, user, metrics).await?;
    let fleet = mgr
        .cfg
        .fleet
        .clone()
        .map(|f| Arc::new(fleet::Membership::new(f)));
    let state = Arc::new(api::AppState {
        mgr,
        auth,
        fleet: fleet.clone(),
    });
    let beats = fleet.clone().map(|m| fleet::spawn(m, state.clone()));
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let reaper_state = state.clone();
    let reaper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(reaper_state.mgr.reaper_interval()).await;
            reaper_state.mgr.reap_idle().await;
        }
    });
    // Warm the shared node_modules layers in the background so the first create is fast.
    let warm = state.clone();
    tokio::spawn(async move {
        if let Err(e) = warm
            .mgr
            .layer(kiln_core::sandbox::Template::ReactVite)
            .await
        {
            eprintln!("sandbox-proxy: {e}");
        }
    });
    eprintln!(
        "sandbox-proxy listening on {addr} (cgroup {}, instance {})",
        state.mgr.cgroups.hierarchy.name(),
        state.mgr.cfg.instance
    );
    if let Some(f) = &state.mgr.cfg.fleet {
        eprintln!(
            "sandbox-proxy: a fleet member: beats to {} every {:?} as {}",
            f.edge_url, f.interval, f.public_url
        );
    }
    let app = api::router(state.clone());
    let result = match state.mgr.cfg.tls.clone() {
        #[cfg(feature = "tls")]
        Some((cert, key)) => {
            let tls = tls::listener(listener, &cert, &key)?;
            axum::serve(tls, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
        _ => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
        }
    }
    .map_err(|e| e.to_string());
    reaper.abort();
    if let (Some(m), Some(beats)) = (&fleet, beats) {
        // The edge hears at once that this host takes nothing new, rather than after its
        // beats stop.
        beats.abort();
        m.drain();
        if let Err(e) = m.beat(state.mgr.cfg.max_sandboxes, 0).await {
            eprintln!("sandbox-proxy: the last heartbeat: {e}");
        }
    }
    state.mgr.shutdown().await;
    eprintln!("sandbox-proxy stopped");
    result
}

/// Every sandbox's egress connections, previews and terminals are file descriptors of this
/// one process: take the whole hard limit rather than a shell's default soft one.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

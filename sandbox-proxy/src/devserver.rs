//! One dev server per sandbox (Vite for `react-vite`, a small static server for `static`).
//! Readiness is a successful TCP connect to its port from the host, not a log line. Its
//! output is kept (last 64 KiB) for the UI.

use crate::runtime::{Place, Spec};
use kiln_core::sandbox::{DevServerStatus, Template};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const PORT: u16 = 5173;
const LOG_MAX: usize = 64 * 1024;

#[derive(Default)]
struct Shared {
    log: Vec<u8>,
    exit_code: Option<i32>,
    exited: bool,
}

pub struct DevServer {
    pid: i32,
    shared: Arc<Mutex<Shared>>,
    ready: bool,
    waiter: tokio::task::JoinHandle<()>,
}

pub fn argv(template: Template) -> Vec<String> {
    let v: &[&str] = match template {
        Template::ReactVite => &[
            "node",
            "/work/node_modules/vite/bin/vite.js",
            "--clearScreen",
            "false",
        ],
        Template::Static => &["node", "/opt/kiln/static-server.mjs"],
    };
    v.iter().map(|s| s.to_string()).collect()
}

impl DevServer {
    pub fn start(place: &Place, template: Template, base: &str) -> std::io::Result<DevServer> {
        let spec = Spec {
            argv: argv(template),
            cwd: "/work".into(),
            env: vec![
                ("PORT".into(), PORT.to_string()),
                ("KILN_BASE".into(), base.to_owned()),
                ("NODE_ENV".into(), "development".into()),
            ],
            tty: false,
        };
        let (mut cmd, netns) = place.command(&spec)?;
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(false);
        let mut child = cmd.spawn()?;
        drop(netns);
        let pid = child.id().unwrap_or(0) as i32;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let out = child.stdout.take().map(|r| collect(r, shared.clone()));
        let err = child.stderr.take().map(|r| collect(r, shared.clone()));
        let s2 = shared.clone();
        let waiter = tokio::spawn(async move {
            let status = child.wait().await;
            for t in [out, err].into_iter().flatten() {
                let _ = t.await;
            }
            let mut s = s2.lock().unwrap_or_else(|e| e.into_inner());
            s.exited = true;
            s.exit_code = status.ok().and_then(|s| s.code());
        });
        Ok(DevServer {
            pid,
            shared,
            ready: false,
            waiter,
        })
    }

    /// Waits until the port accepts a connection, the server exits, or `timeout` passes.
    pub async fn wait_ready(&mut self, addr: SocketAddr, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline && !self.exited() {
            if let Ok(Ok(_)) = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(addr),
            )
            .await
            {
                self.ready = true;
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn exited(&self) -> bool {
        self.shared.lock().map(|s| s.exited).unwrap_or(true)
    }

    pub fn status(&self, preview_url: Option<String>) -> DevServerStatus {
        let s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let state = if s.exited {
            "exited"
        } else if self.ready {
            "ready"
        } else {
            "starting"
        };
        DevServerStatus {
            state: state.into(),
            port: PORT,
            preview_url: if s.exited { None } else { preview_url },
            exit_code: s.exit_code,
            log: String::from_utf8_lossy(&s.log).into_owned(),
        }
    }

    pub async fn stop(self) {
        crate::exec::kill_group(self.pid);
        let _ = self.waiter.await;
    }
}

pub fn stopped_status() -> DevServerStatus {
    DevServerStatus {
        state: "stopped".into(),
        port: PORT,
        preview_url: None,
        exit_code: None,
        log: String::new(),
    }
}

fn collect(
    mut r: impl AsyncRead + Unpin + Send + 'static,
    shared: Arc<Mutex<Shared>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
            s.log.extend_from_slice(&buf[..n]);
            if s.log.len() > LOG_MAX {
                let cut = s.log.len() - LOG_MAX;
                s.log.drain(..cut);
            }
        }
    })
}

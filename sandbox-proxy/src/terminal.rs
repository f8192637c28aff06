//! An interactive shell in the sandbox over a WebSocket, on a pty.
//!
//! Client → server: binary or text frames are keyboard input, except a text frame
//! `{"resize":{"cols":C,"rows":R}}`. Server → client: binary frames of terminal output. The
//! socket closes when the shell exits; closing the socket kills the shell.

use crate::api::AppState;
use crate::error::{ApiError, ApiResult};
use crate::runtime::{Place, Spec};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use nix::pty::{openpty, Winsize};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

#[derive(Deserialize)]
struct Resize {
    resize: Size,
}
#[derive(Deserialize)]
struct Size {
    cols: u16,
    rows: u16,
}

pub async fn handler(
    State(st): State<Arc<AppState>>,
    mut headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    // Browsers cannot set headers on a WebSocket: the edge may pass the token as `?token=`.
    if let Some(t) = q.get("token") {
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {t}")) {
            headers.insert(axum::http::header::AUTHORIZATION, v);
        }
    }
    let claims = st.auth.require(&headers, &id)?;
    let sb = st.mgr.get(&id)?;
    st.mgr.note_org(&sb, &claims);
    let place = st.mgr.ensure_running(&sb).await?;
    let busy = sb.busy();
    Ok(ws.on_upgrade(move |socket| async move {
        let _busy = busy;
        if let Err(e) = session(socket, place).await {
            eprintln!("sandbox-proxy: terminal: {}", e.message);
        }
    }))
}

fn set_size(master: &OwnedFd, cols: u16, rows: u16) {
    let ws = Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which outlives the call.
    unsafe {
        nix::libc::ioctl(master.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws);
    }
}

async fn session(mut socket: WebSocket, place: Place) -> Result<(), ApiError> {
    let pty = openpty(
        Some(&Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }),
        None,
    )
    .map_err(|e| ApiError::internal(format!("openpty: {e}")))?;
    let spec = Spec {
        argv: vec!["bash".into(), "-i".into()],
        cwd: crate::runtime::WORK.into(),
        env: vec![("TERM".into(), "xterm-256color".into())],
        tty: true,
    };
    let (mut cmd, netns) = place.command(&spec)?;
    cmd.stdin(std::process::Stdio::from(pty.slave.try_clone()?))
        .stdout(std::process::Stdio::from(pty.slave.try_clone()?))
        .stderr(std::process::Stdio::from(pty.slave.try_clone()?));
    let mut child = cmd.spawn()?;
    drop(netns);
    drop(pty.slave);
    let pid = child.id().unwrap_or(0) as i32;
    let master = pty.master;

    // Blocking reader thread: pty output → channel.
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(32);
    let mut reader = std::fs::File::from(master.try_clone()?);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut writer = std::fs::File::from(master.try_clone()?);

    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(bytes) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() { break; }
                }
                None => break, // the shell and everything on the pty exited (EIO)
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => { let _ = writer.write_all(&b); }
                Some(Ok(Message::Text(t))) => {
                    match serde_json::from_str::<Resize>(t.as_str()) {
                        Ok(r) => set_size(&master, r.resize.cols, r.resize.rows),
                        Err(_) => { let _ = writer.write_all(t.as_bytes()); }
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            },
            _ = child.wait() => {
                // Drain what is left, then close.
                while let Ok(bytes) = out_rx.try_recv() {
                    let _ = socket.send(Message::Binary(bytes.into())).await;
                }
                break;
            }
        }
    }
    crate::exec::kill_group(pid);
    let _ = child.wait().await;
    let _ = socket.send(Message::Close(None)).await;
    Ok(())
}

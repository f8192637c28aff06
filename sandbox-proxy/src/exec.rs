//! Running one command in a sandbox with streamed output and a wall-clock limit.

use crate::metrics::Metrics;
use crate::runtime::{Place, Spec};
use kiln_core::sandbox::{ExecFrame, Stream};
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Starts `spec` and returns its frames: output as it arrives, then exactly one final frame.
/// Dropping the receiver (the client went away) kills the command.
pub fn start(
    place: Place,
    spec: Spec,
    timeout: Duration,
    metrics: Arc<Metrics>,
) -> mpsc::Receiver<ExecFrame> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        metrics.execs.inc();
        let final_frame = run(&place, spec, timeout, &tx, &metrics).await;
        let _ = tx.send(final_frame).await;
    });
    rx
}

async fn run(
    place: &Place,
    spec: Spec,
    timeout: Duration,
    tx: &mpsc::Sender<ExecFrame>,
    metrics: &Metrics,
) -> ExecFrame {
    let ooms_before = place.cgroup.oom_kills();
    let (mut cmd, netns) = match place.command(&spec) {
        Ok(c) => c,
        Err(e) => {
            return ExecFrame::Error {
                error: e.to_string(),
            }
        }
    };
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let spawned = cmd.spawn();
    drop(netns);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return ExecFrame::Error {
                error: format!("cannot start: {e}"),
            }
        }
    };
    let pid = child.id().unwrap_or(0) as i32;
    let out = child
        .stdout
        .take()
        .map(|r| pump(r, Stream::Stdout, tx.clone()));
    let err = child
        .stderr
        .take()
        .map(|r| pump(r, Stream::Stderr, tx.clone()));

    let status = tokio::select! {
        s = child.wait() => Some(s),
        _ = tokio::time::sleep(timeout) => None,
        _ = tx.closed() => None,
    };
    let status = match status {
        Some(s) => s,
        None => {
            kill_group(pid);
            let _ = child.wait().await;
            for t in [out, err].into_iter().flatten() {
                let _ = t.await;
            }
            metrics.exec_timeouts.inc();
            return ExecFrame::TimedOut { timed_out: true };
        }
    };
    for t in [out, err].into_iter().flatten() {
        let _ = t.await;
    }
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return ExecFrame::Error {
                error: e.to_string(),
            }
        }
    };
    if place.cgroup.oom_kills() > ooms_before && !status.success() {
        metrics.exec_oom_kills.inc();
        return ExecFrame::OomKilled { oom_killed: true };
    }
    final_frame(status)
}

/// bwrap reports a command killed by signal N as exit status 128 + N.
pub fn final_frame(status: std::process::ExitStatus) -> ExecFrame {
    match (status.code(), status.signal()) {
        (Some(c), _) if c > 128 && c <= 128 + 64 => ExecFrame::Signal { signal: c - 128 },
        (Some(c), _) => ExecFrame::Exit { exit_code: c },
        (None, Some(s)) => ExecFrame::Signal { signal: s },
        (None, None) => ExecFrame::Exit { exit_code: -1 },
    }
}

pub fn kill_group(pid: i32) {
    if pid > 0 {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn pump(
    mut r: impl AsyncRead + Unpin + Send + 'static,
    stream: Stream,
    tx: mpsc::Sender<ExecFrame>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut carry: Vec<u8> = Vec::new();
        loop {
            let n = match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            carry.extend_from_slice(&buf[..n]);
            // Do not split a UTF-8 sequence across frames.
            let cut = utf8_boundary(&carry);
            if cut == 0 {
                continue;
            }
            let data = String::from_utf8_lossy(&carry[..cut]).into_owned();
            carry.drain(..cut);
            if tx.send(ExecFrame::Output { stream, data }).await.is_err() {
                break;
            }
        }
        if !carry.is_empty() {
            let data = String::from_utf8_lossy(&carry).into_owned();
            let _ = tx.send(ExecFrame::Output { stream, data }).await;
        }
    })
}

/// The longest prefix that does not end inside a UTF-8 sequence (invalid bytes count as
/// complete: they become U+FFFD).
fn utf8_boundary(b: &[u8]) -> usize {
    let n = b.len();
    for back in 1..=3.min(n) {
        let c = b[n - back];
        if c & 0xc0 == 0x80 {
            continue; // continuation byte: look further back
        }
        let need = if c >= 0xf0 {
            4
        } else if c >= 0xe0 {
            3
        } else if c >= 0xc0 {
            2
        } else {
            1
        };
        return if need > back { n - back } else { n };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_on_utf8_boundaries() {
        let s = "aé€😀".as_bytes();
        assert_eq!(utf8_boundary(s), s.len());
        assert_eq!(utf8_boundary(&s[..s.len() - 1]), s.len() - 4);
        assert_eq!(utf8_boundary(&s[..2]), 1);
        assert_eq!(utf8_boundary(b"abc"), 3);
    }

    #[test]
    fn signals_reported_by_bwrap_become_signal_frames() {
        let st = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(final_frame(st(0)), ExecFrame::Exit { exit_code: 0 });
        assert_eq!(final_frame(st(2)), ExecFrame::Exit { exit_code: 2 });
        assert_eq!(final_frame(st(137)), ExecFrame::Signal { signal: 9 });
        assert_eq!(
            final_frame(std::process::ExitStatus::from_raw(15)),
            ExecFrame::Signal { signal: 15 }
        );
    }
}

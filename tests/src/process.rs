//! Child processes that cannot outlive the test: each runs in its own process group, and a
//! watchdog (`sh` reading our end of a pipe) kills that group when the test process exits,
//! however it exits — the pipe closes and the watchdog's `cat` returns.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Group {
    child: Option<Child>,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Group {
    /// Spawns `cmd` as a process-group leader. If the test process dies, the group is killed
    /// and `cleanup_dir` (if any) removed.
    pub fn spawn(cmd: &mut Command, cleanup_dir: Option<&Path>) -> Group {
        let child = cmd.process_group(0).spawn().expect("spawn child process");
        let pgid = child.id();
        let cleanup = cleanup_dir
            .map(|d| format!("; rm -rf '{}'", d.display()))
            .unwrap_or_default();
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat >/dev/null; kill -TERM -{pgid} 2>/dev/null; sleep 2; kill -KILL -{pgid} 2>/dev/null{cleanup}"
            ))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watchdog");
        let stdin = watchdog.stdin.take().expect("watchdog stdin");
        Group {
            child: Some(child),
            watchdog: Some((watchdog, stdin)),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Sends a signal to the leader only (as a terminal's Ctrl-C reaches the foreground job).
    pub fn signal_leader(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status();
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn wait_timeout(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether any process of the group is still alive.
    pub fn group_alive(&self) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{}", self.pid())])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stops the whole group (TERM, then KILL after 10 s) and retires the watchdog without
    /// letting it clean up, so state directories survive for a restart.
    /// Kills the whole group at once (SIGKILL), as a crash would: nothing gets to clean up.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_ref() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
        }
        self.stop();
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill")
                .args(["-TERM", "--", &group])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill")
                .args(["-KILL", "--", &group])
                .stderr(Stdio::null())
                .status();
            let _ = child.wait();
        }
        if let Some((mut dog, _stdin)) = self.watchdog.take() {
            let _ = dog.kill();
            let _ = dog.wait();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.stop();
    }
}

//! Starting a process inside a sandbox: bubblewrap run as the unprivileged sandbox user, from
//! a child that first joins the sandbox's network namespace and cgroup.
//!
//! Layers, outermost first: the host user `kiln-sandbox` (never root); the sandbox's netns
//! (nft allows only the egress proxy); the sandbox's cgroup (memory, pids, CPU); bwrap's new
//! user, mount, pid, ipc, uts and cgroup namespaces with a read-only system (`/usr` and a
//! short list of `/etc` entries), the project at `/work` and tmpfs `/tmp` and `$HOME`.

use crate::cgroups::Cgroup;
use crate::net::SandboxNet;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

pub const WORK: &str = "/work";
pub const HOME: &str = "/home/user";
pub const LIB_MOUNT: &str = "/opt/kiln";

/// `/etc` entries a sandbox sees (read-only); the rest of the host's `/etc` stays hidden.
const ETC: &[&str] = &[
    // Chromium (acceptance checks) lays text out with fontconfig.
    "fonts",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "alternatives",
    "passwd",
    "group",
    "hosts",
    "nsswitch.conf",
    "localtime",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "mime.types",
    "os-release",
    "bash.bashrc",
    "profile",
    "inputrc",
    "terminfo",
];

#[derive(Debug, Clone, Copy)]
pub struct SandboxUser {
    pub uid: u32,
    pub gid: u32,
}

/// Looks up the sandbox user, creating it (system user, no home, no shell) if missing.
pub fn ensure_user(name: &str) -> io::Result<SandboxUser> {
    let find = || nix::unistd::User::from_name(name).map_err(io::Error::from);
    let user = match find()? {
        Some(u) => u,
        None => {
            let st = std::process::Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    name,
                ])
                .status()?;
            // Another service on this host may have created it meanwhile.
            match find()? {
                Some(u) => u,
                None if !st.success() => {
                    return Err(io::Error::other(format!("useradd {name} failed")))
                }
                None => return Err(io::Error::other(format!("user {name} missing"))),
            }
        }
    };
    if user.uid.is_root() {
        return Err(io::Error::other("the sandbox user must not be root"));
    }
    Ok(SandboxUser {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// Where a sandbox runs: its network, cgroup and files.
#[derive(Debug, Clone)]
pub struct Place {
    pub net: SandboxNet,
    pub cgroup: Cgroup,
    pub user: SandboxUser,
    pub project_dir: PathBuf,
    /// The project's overlay of its template's shared `node_modules`, mounted at
    /// `/work/node_modules`.
    pub node_modules: Option<PathBuf>,
    /// The service's helper scripts, mounted read-only at `/opt/kiln`.
    pub lib_dir: PathBuf,
    /// Their `node_modules` layer, mounted read-only at `/opt/kiln/node_modules`.
    pub tools: Option<PathBuf>,
    pub egress_port: u16,
    /// The seccomp filter's BPF bytes (see `seccomp.rs`).
    pub seccomp: std::sync::Arc<Vec<u8>>,
    /// Size of each tmpfs (`/tmp`, `$HOME`).
    pub tmpfs_bytes: u64,
    /// Whether npm runs packages' install scripts (the template's choice, see
    /// `templates::runs_install_scripts`).
    pub install_scripts: bool,
}

/// The fd number the seccomp program is read from in the child.
const SECCOMP_FD: i32 = 255;

/// File descriptors the child needs until it is spawned (the netns, the seccomp pipe).
pub struct Keep(
    #[allow(dead_code)] std::fs::File,
    #[allow(dead_code)] std::os::fd::OwnedFd,
);

pub struct Spec {
    pub argv: Vec<String>,
    /// Absolute path inside the sandbox.
    pub cwd: String,
    pub env: Vec<(String, String)>,
    /// Give the process the slave side of a pty as its controlling terminal (fds 0-2 must be
    /// the pty already).
    pub tty: bool,
}

impl Place {
    pub fn base_env(&self) -> Vec<(String, String)> {
        let proxy = format!("http://{}:{}", self.net.host_ip, self.egress_port);
        let mut env: Vec<(String, String)> = [
            (
                "PATH",
                "/work/node_modules/.bin:/usr/local/bin:/usr/bin:/bin",
            ),
            ("HOME", HOME),
            ("USER", "user"),
            ("LANG", "C.UTF-8"),
            ("NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/ca-certificates.crt"),
            ("NO_PROXY", "localhost,127.0.0.1"),
            ("npm_config_update_notifier", "false"),
            ("npm_config_fund", "false"),
            ("npm_config_audit", "false"),
            ("npm_config_fetch_retries", "1"),
            ("npm_config_fetch_timeout", "60000"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if !self.install_scripts {
            // A dependency's preinstall/install/postinstall scripts are code from the
            // registry that nobody reviewed; npm and npx read this for every command.
            env.push(("npm_config_ignore_scripts".into(), "true".into()));
        }
        for k in [
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "https_proxy",
            "http_proxy",
            "npm_config_proxy",
            "npm_config_https_proxy",
        ] {
            env.push((k.into(), proxy.clone()));
        }
        env
    }

    /// The bwrap command line (without the program).
    pub fn bwrap_args(&self, spec: &Spec) -> Vec<String> {
        let mut a: Vec<String> = Vec::with_capacity(80);
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| s.to_string()));
        push(&[
            "--unshare-user",
            // No nested user namespaces: their kernel surface is the usual way out.
            "--disable-userns",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--hostname",
            "sandbox",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/lib",
            "/lib",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/bin",
            "/bin",
            "--symlink",
            "usr/sbin",
            "/sbin",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--die-with-parent",
        ]);
        let size = self.tmpfs_bytes.to_string();
        for dir in ["/tmp", HOME] {
            push(&["--size", &size, "--tmpfs", dir]);
        }
        for e in ETC {
            let host = Path::new("/etc").join(e);
            if host.exists() {
                let h = host.to_string_lossy().into_owned();
                push(&["--ro-bind", &h, &h]);
            }
        }
        let project = self.project_dir.to_string_lossy().into_owned();
        push(&["--bind", &project, WORK]);
        if let Some(nm) = &self.node_modules {
            let nm = nm.to_string_lossy().into_owned();
            push(&["--bind", &nm, "/work/node_modules"]);
        }
        let lib = self.lib_dir.to_string_lossy().into_owned();
        push(&["--ro-bind", &lib, LIB_MOUNT]);
        if let Some(tools) = &self.tools {
            let tools = tools.to_string_lossy().into_owned();
            push(&["--ro-bind", &tools, &format!("{LIB_MOUNT}/node_modules")]);
        }
        // Everything but /work, /tmp and $HOME is read-only, including bwrap's own root.
        push(&["--remount-ro", "/", "--chdir", &spec.cwd, "--clearenv"]);
        for (k, v) in self.base_env().iter().chain(spec.env.iter()) {
            push(&["--setenv", k, v]);
        }
        push(&["--seccomp", &SECCOMP_FD.to_string()]);
        if !spec.tty {
            // A new session: the command cannot reach a terminal of ours (TIOCSTI).
            push(&["--new-session"]);
        }
        push(&["--"]);
        a.extend(spec.argv.iter().cloned());
        a
    }

    /// A command that runs `spec` in this sandbox. The returned file (the netns) must live
    /// until the command is spawned.
    pub fn command(&self, spec: &Spec) -> io::Result<(tokio::process::Command, Keep)> {
        let netns = std::fs::File::open(self.net.netns_path())?;
        let netns_fd = netns.as_raw_fd();
        // The filter goes through a pipe (it fits its buffer), dup'ed to SECCOMP_FD in the child.
        let (seccomp_r, seccomp_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        std::fs::File::from(seccomp_w).write_all(&self.seccomp)?;
        let seccomp_fd = seccomp_r.as_raw_fd();
        let cgroup = self.cgroup.clone();
        let SandboxUser { uid, gid } = self.user;
        let tty = spec.tty;
        let mut cmd = tokio::process::Command::new("bwrap");
        cmd.args(self.bwrap_args(spec))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .kill_on_drop(true);
        if tty {
            // setsid() below makes the session and group.
        } else {
            cmd.process_group(0).stdin(Stdio::null());
        }
        // SAFETY: the closure runs in the forked child before exec and only makes raw
        // syscalls (setns, open/write on pre-built paths, setsid/ioctl, setgroups/setresgid/
        // setresuid); it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::dup2(seccomp_fd, SECCOMP_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                let fd = BorrowedFd::borrow_raw(netns_fd);
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)?;
                cgroup.attach_self()?;
                if tty {
                    nix::unistd::setsid()?;
                    if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 0) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                nix::unistd::setgroups(&[])?;
                let g = nix::unistd::Gid::from_raw(gid);
                let u = nix::unistd::Uid::from_raw(uid);
                nix::unistd::setresgid(g, g, g)?;
                nix::unistd::setresuid(u, u, u)?;
                Ok(())
            });
        }
        Ok((cmd, Keep(netns, seccomp_r)))
    }
}

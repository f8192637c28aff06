//! Test harness: runs the real `kiln-sandbox-proxy` binary as root on a free loopback port,
//! with its own instance tag and subnet so test binaries never share host resources, and
//! talks to it over HTTP. Needs root (namespaces, cgroups, nftables), as CI has.
#![allow(dead_code)]

pub mod ws;

use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::prelude::*;
use kiln_core::sandbox::{ExecFrame, SandboxClaims};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const SECRET: &str = "test-secret-test-secret-test-secret!";

pub struct Service {
    pub base: String,
    pub port: u16,
    pub instance: String,
    pub state_dir: PathBuf,
    pub pid: i32,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn state_dir_for(instance: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/kiln-sandbox-tests/{instance}"))
}

/// Starts the service and waits until it answers. `die_with_parent` ties it to the calling
/// thread (see [`shared`]).
pub fn spawn(instance: &str, octet: u8, extra: &[(&str, &str)], fresh: bool) -> (Child, Service) {
    let port = free_port();
    let state_dir = state_dir_for(instance);
    if fresh {
        let _ = std::fs::remove_dir_all(&state_dir);
    }
    std::fs::create_dir_all(&state_dir).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.with_extension("log"))
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln-sandbox-proxy"));
    cmd.env("KILN_SANDBOX_LISTEN", format!("127.0.0.1:{port}"))
        .env("KILN_SANDBOX_STATE_DIR", &state_dir)
        .env("KILN_SANDBOX_INSTANCE", instance)
        .env("KILN_SANDBOX_SUBNET_OCTET", octet.to_string())
        .env("KILN_SANDBOX_JWT_SECRET", SECRET)
        .env("KILN_SANDBOX_MEMORY_MB", "768")
        .env("KILN_SANDBOX_PIDS_MAX", "384")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start kiln-sandbox-proxy");
    let svc = Service {
        base: format!("http://127.0.0.1:{port}"),
        port,
        instance: instance.to_owned(),
        state_dir,
        pid: child.id() as i32,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while svc.get("/healthz", None).map(|r| r.status) != Some(200) {
        let log = || std::fs::read_to_string(svc.log_path()).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "service did not start: {}",
            log()
        );
        if let Ok(Some(st)) = child.try_wait() {
            panic!("service exited with {st}: {}", log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, svc)
}

/// One service per test binary, started on a thread that lives as long as the process: when
/// the process exits, the service gets SIGTERM and removes what it made.
pub fn shared(instance: &'static str, octet: u8) -> &'static Service {
    static SVC: OnceLock<Service> = OnceLock::new();
    SVC.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let (_child, svc) = spawn(instance, octet, &[], true);
            tx.send(svc).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
}

pub fn token(project: &str, secs: i64) -> String {
    token_with(SECRET.as_bytes(), project, secs)
}

pub fn token_with(secret: &[u8], project: &str, secs: i64) -> String {
    mint(secret, project, None, secs)
}

/// A token that names the project's org, as the edge's do (the per-org cap).
pub fn org_token(project: &str, org: &str, secs: i64) -> String {
    mint(SECRET.as_bytes(), project, Some(org), secs)
}

fn mint(secret: &[u8], project: &str, org: Option<&str>, secs: i64) -> String {
    let claims = Claims::new(SandboxClaims {
        project_id: project.into(),
        org_id: org.map(str::to_owned),
    })
    .set_duration(&TimeOptions::default(), chrono::Duration::seconds(secs));
    Hs256
        .token(&Header::empty(), &claims, &Hs256Key::new(secret))
        .unwrap()
}

pub fn project_id(tag: &str) -> String {
    let mut r = [0u8; 6];
    kiln_sandbox_proxy::random_bytes(&mut r).unwrap();
    format!("p_{tag}_{}", kiln_sandbox_proxy::files::hex(&r))
}

impl Service {
    pub fn log_path(&self) -> PathBuf {
        self.state_dir.with_extension("log")
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        cookie: Option<&str>,
    ) -> Option<Reply> {
        let mut req = ureq::request(method, &format!("{}{path}", self.base))
            .timeout(Duration::from_secs(120));
        if let Some(t) = token {
            req = req.set("authorization", &format!("Bearer {t}"));
        }
        if let Some(c) = cookie {
            req = req.set("cookie", c);
        }
        let res = match body {
            Some(b) => req.set("content-type", "application/json").send_string(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(_) => return None,
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                resp.all(&n)
                    .into_iter()
                    .map(|v| (n.clone(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut body = String::new();
        let _ = resp.into_reader().read_to_string(&mut body);
        Some(Reply {
            status,
            body,
            headers,
        })
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Option<Reply> {
        self.call("GET", path, token, None, None)
    }

    pub fn must(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> Reply {
        self.call(method, path, Some(token), body, None)
            .unwrap_or_else(|| panic!("{method} {path}: no response"))
    }

    /// Creates a sandbox for a new project; returns (project id, token).
    pub fn create(&self, tag: &str, template: &str) -> (String, String) {
        let id = project_id(tag);
        let t = token(&id, 240);
        let r = self.try_create(&id, &t, template);
        assert_eq!(r.status, 201, "create: {}", r.body);
        (id, t)
    }

    /// Creates a sandbox for a new project of `org`; returns (project id, token).
    pub fn create_in_org(&self, tag: &str, template: &str, org: &str) -> (String, String) {
        let id = project_id(tag);
        let t = org_token(&id, org, 240);
        let r = self.try_create(&id, &t, template);
        assert_eq!(r.status, 201, "create in {org}: {}", r.body);
        (id, t)
    }

    /// `POST /v1/sandboxes` for project `id`, whatever the answer.
    pub fn try_create(&self, id: &str, token: &str, template: &str) -> Reply {
        let body = serde_json::json!({"project_id": id, "template": template}).to_string();
        self.must("POST", "/v1/sandboxes", token, Some(&body))
    }

    pub fn write(&self, id: &str, token: &str, files: &[(&str, &str)]) -> Reply {
        let files: Vec<_> = files
            .iter()
            .map(|(p, c)| serde_json::json!({"path": p, "content": c}))
            .collect();
        let body = serde_json::json!({ "files": files }).to_string();
        self.must(
            "PUT",
            &format!("/v1/sandboxes/{id}/files"),
            token,
            Some(&body),
        )
    }

    /// Runs a command to completion; returns (stdout, stderr, final frame).
    pub fn exec(
        &self,
        id: &str,
        token: &str,
        cmd: &str,
        args: &[&str],
        timeout_ms: u64,
    ) -> (String, String, ExecFrame) {
        let frames = self.exec_frames(id, token, cmd, args, timeout_ms);
        let (mut out, mut err) = (String::new(), String::new());
        let mut last = None;
        for f in frames {
            match f {
                ExecFrame::Output {
                    stream: kiln_core::sandbox::Stream::Stdout,
                    data,
                } => out += &data,
                ExecFrame::Output { data, .. } => err += &data,
                f => last = Some(f),
            }
        }
        (out, err, last.expect("no final frame"))
    }

    pub fn exec_frames(
        &self,
        id: &str,
        token: &str,
        cmd: &str,
        args: &[&str],
        timeout_ms: u64,
    ) -> Vec<ExecFrame> {
        let reader = self.exec_stream(id, token, cmd, args, timeout_ms);
        reader
            .lines()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect()
    }

    pub fn exec_stream(
        &self,
        id: &str,
        token: &str,
        cmd: &str,
        args: &[&str],
        timeout_ms: u64,
    ) -> BufReader<Box<dyn Read + Send + Sync>> {
        let body =
            serde_json::json!({"cmd": cmd, "args": args, "timeout_ms": timeout_ms}).to_string();
        let resp = ureq::post(&format!("{}/v1/sandboxes/{id}/exec", self.base))
            .set("authorization", &format!("Bearer {token}"))
            .set("content-type", "application/json")
            .timeout(Duration::from_secs(300))
            .send_string(&body)
            .unwrap_or_else(|e| panic!("exec {cmd}: {e}"));
        BufReader::new(resp.into_reader())
    }

    /// `bash -c script` in the sandbox.
    pub fn sh(&self, id: &str, token: &str, script: &str) -> (String, String, ExecFrame) {
        self.exec(id, token, "bash", &["-c", script], 30_000)
    }
}

/// Host resources of an instance that exist right now (netns, veths, nft table, cgroups,
/// mounts under its state dir).
pub fn host_leftovers(instance: &str) -> Vec<String> {
    let mut found = Vec::new();
    let out = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let ns_prefix = format!("kiln-{instance}-");
    for l in out("ip", &["netns", "list"]).lines() {
        if l.starts_with(&ns_prefix) {
            found.push(format!("netns {l}"));
        }
    }
    let veth = format!("kiln{instance}h");
    let peer = format!("kiln{instance}p");
    for l in out("ip", &["-o", "link", "show"]).lines() {
        if let Some(name) = l.split(": ").nth(1) {
            let name = name.split('@').next().unwrap_or(name);
            // A prefix and a slot number: instance `a` must not claim instance `ap`'s veths.
            let ours = |prefix: &str| {
                name.strip_prefix(prefix)
                    .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            };
            if ours(&veth) || ours(&peer) {
                found.push(format!("link {name}"));
            }
        }
    }
    if out("nft", &["list", "tables"])
        .lines()
        .any(|l| l.trim() == format!("table inet kiln_{instance}"))
    {
        found.push(format!("nft table kiln_{instance}"));
    }
    for c in ["memory", "pids", "cpu", "unified", ""] {
        let p = PathBuf::from("/sys/fs/cgroup")
            .join(c)
            .join(format!("kiln-{instance}"));
        if p.exists() {
            found.push(format!("cgroup {}", p.display()));
        }
    }
    let sd = state_dir_for(instance).to_string_lossy().into_owned();
    for l in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
    {
        if l.contains(&sd) {
            found.push(format!("mount {l}"));
        }
    }
    // Loop devices backing the projects' disk images.
    for l in out("losetup", &["-a"]).lines() {
        if l.contains(&format!("({sd}/")) {
            found.push(format!("loop {l}"));
        }
    }
    found
}

/// Where a project's files are on the host (on its disk image).
pub fn project_dir(svc: &Service, id: &str) -> PathBuf {
    svc.state_dir.join("disks").join(id).join("project")
}

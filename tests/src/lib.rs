//! End-to-end harness: starts Kiln's real Worker in workerd (`wrangler dev --local`) on a fresh
//! state directory and a free loopback port, and drives it over HTTP from outside.
//!
//! The Worker must have been built first (`./kiln build`; `./kiln test` does it).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod faults;
pub mod llm;
pub mod load;
pub mod process;
pub mod sandbox;
pub mod ws;
use process::Group;

/// The session secret the test server runs with, so tests can mint expired tokens.
pub const TEST_JWT_SECRET: &str = "e2e-test-secret-0123456789abcdef0123456789abcdef";
/// The password pepper the test server runs with.
pub const TEST_PEPPER: &str = "e2e-test-pepper-0123456789abcdef0123456789abcdef";

/// Rate limits for tests that are not about rate limits: every test registers its users from
/// 127.0.0.1. A test of the limits starts its own server with its own values.
const GENEROUS_LIMITS: &[(&str, &str)] = &[
    ("KILN_LIMIT_REGISTER_PER_IP", "1000000"),
    ("KILN_LIMIT_REGISTER_PER_EMAIL", "1000000"),
    ("KILN_LIMIT_LOGIN_FAILS_PER_IP", "1000000"),
    ("KILN_LIMIT_TOKENS_PER_USER", "1000000"),
    ("KILN_LIMIT_GENERATIONS_PER_ORG", "1000000"),
    ("KILN_LIMIT_GENERATIONS_PER_USER", "1000000"),
];

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A running Kiln (wrangler dev + workerd) on a loopback port.
pub struct Kiln {
    pub url: String,
    pub port: u16,
    pub state_dir: PathBuf,
    /// Whether the state directory was made by the harness (and is removed with it).
    owned: bool,
    vars: Vec<(String, String)>,
    server: Mutex<Group>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Kiln {
    /// Starts on a fresh, empty state directory with migrations applied.
    pub fn start() -> Kiln {
        Self::start_with(&[])
    }

    /// Starts with extra Worker variables (`--var NAME:VALUE`), e.g. small log limits.
    pub fn start_with(vars: &[(&str, &str)]) -> Kiln {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("kiln-e2e-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create state dir");
        Self::launch(&dir, true, vars)
    }

    /// Starts on an existing state directory (to test that state survives a restart). The
    /// directory is kept when the server stops.
    pub fn start_on(state_dir: &Path) -> Kiln {
        Self::launch(state_dir, false, &[])
    }

    fn launch(state_dir: &Path, owned: bool, vars: &[(&str, &str)]) -> Kiln {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let root = repo_root();
        let wrangler = root.join("node_modules/.bin/wrangler");
        assert!(
            wrangler.exists() && root.join("worker/build/index.js").exists(),
            "the Worker is not built: run ./kiln build (./kiln test does it)"
        );
        let status = Command::new(&wrangler)
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(state_dir)
            .current_dir(&root)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run wrangler d1 migrations apply");
        assert!(status.success(), "applying D1 migrations failed");

        // A port picked free can be taken by another process before wrangler binds it (tests
        // run in parallel): then start again on other ports, a few times.
        for attempt in 1.. {
            let kiln = Self::spawn_on(state_dir, owned, &vars, &wrangler, &root, free_port());
            match kiln.wait_ready() {
                Ok(()) => return kiln,
                Err(log) if attempt < 4 && log.contains("Address already in use") => {
                    kiln.stop();
                    // Its state directory is reused by the next attempt.
                    std::mem::forget(kiln);
                }
                Err(log) => panic!("{log}"),
            }
        }
        unreachable!()
    }

    fn spawn_on(
        state_dir: &Path,
        owned: bool,
        vars: &[(String, String)],
        wrangler: &Path,
        root: &Path,
        port: u16,
    ) -> Kiln {
        let log = std::fs::File::create(state_dir.join("wrangler.log")).expect("log file");
        let mut all_vars: Vec<(String, String)> = vec![
            ("KILN_JWT_SECRET".into(), TEST_JWT_SECRET.into()),
            ("KILN_PASSWORD_PEPPER".into(), TEST_PEPPER.into()),
            (
                "KILN_PREVIEW_URL".into(),
                format!("http://preview.localhost:{port}"),
            ),
            (
                "KILN_SITES_URL".into(),
                format!("http://sites.localhost:{port}"),
            ),
            (
                "KILN_APP_ORIGINS".into(),
                format!("http://127.0.0.1:{port},http://localhost:{port}"),
            ),
        ];
        for (k, v) in GENEROUS_LIMITS {
            all_vars.push((k.to_string(), v.to_string()));
        }
        // A test's own values win.
        all_vars.retain(|(k, _)| !vars.iter().any(|(vk, _)| vk == k));
        all_vars.extend(vars.iter().cloned());
        let server = Group::spawn(
            Command::new(wrangler)
                .args([
                    "dev",
                    "--local",
                    "--ip",
                    "127.0.0.1",
                    "--show-interactive-dev-session=false",
                ])
                .args(["--port", &port.to_string()])
                .args(["--inspector-port", &free_port().to_string()])
                .arg("--persist-to")
                .arg(state_dir)
                .args(
                    all_vars
                        .iter()
                        .flat_map(|(k, v)| ["--var".to_owned(), format!("{k}:{v}")]),
                )
                .current_dir(root)
                .env("WRANGLER_SEND_METRICS", "false")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log),
            owned.then_some(state_dir),
        );
        let kiln = Kiln {
            url: format!("http://127.0.0.1:{port}"),
            port,
            state_dir: state_dir.to_path_buf(),
            owned,
            vars: vars.to_vec(),
            server: Mutex::new(server),
        };
        kiln
    }

    /// Ready, or why not (with the server's log).
    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Ok(resp) = ureq::get(&format!("{}/api/health", self.url))
                .timeout(Duration::from_secs(5))
                .call()
            {
                // The answer may come from another server on this port, if ours lost the
                // race to bind it: ours then exits at once, saying so.
                if resp.status() == 200 {
                    std::thread::sleep(Duration::from_millis(300));
                    let exited = self.server.lock().unwrap().exited();
                    let log = self.log();
                    if exited.is_some() || log.contains("Address already in use") {
                        return Err(format!("wrangler dev exited ({exited:?}):\n{log}"));
                    }
                    return Ok(());
                }
            }
            if let Some(status) = self.server.lock().unwrap().exited() {
                return Err(format!("wrangler dev exited ({status}):\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "Kiln did not become ready in 90 s:\n{}",
            self.log()
        ))
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.state_dir.join("wrangler.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Stops the server (its whole process group) and waits for it to exit.
    pub fn stop(&self) {
        self.server.lock().unwrap().stop();
    }

    /// Kills wrangler dev and its workerd at once (SIGKILL), as a crash would.
    pub fn crash(&self) {
        self.server.lock().unwrap().kill();
    }

    /// Stops the server and starts it again on the same state and port-free config, as after
    /// a crash or a deploy. Returns the new instance (its URL may differ).
    pub fn restart(self) -> Kiln {
        self.stop();
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let next = Kiln::launch(&self.state_dir, self.owned, &vars);
        // `self` must not delete the directory the new instance uses.
        std::mem::forget(self);
        next
    }

    /// Runs one SQL statement on this server's local D1 (`wrangler d1 execute --local`);
    /// returns its result rows.
    pub fn d1(&self, sql: &str) -> Vec<Value> {
        let run = || {
            Command::new(repo_root().join("node_modules/.bin/wrangler"))
                .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
                .arg(&self.state_dir)
                .args(["--command", sql])
                .current_dir(repo_root())
                .env("WRANGLER_SEND_METRICS", "false")
                .env("CI", "true")
                .output()
                .expect("run wrangler d1 execute")
        };
        // The running server holds the same SQLite file: a write of its at that moment can
        // make this one find the database busy. A few bounded tries.
        let mut out = run();
        for _ in 0..4 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
            out = run();
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "wrangler d1 execute {sql:?} failed: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("wrangler d1 execute: not JSON ({e}): {stdout}"));
        v[0]["results"].as_array().cloned().unwrap_or_default()
    }

    /// The host of a project's preview (`p_<hex>` → `p-<hex>.preview.localhost:<port>`).
    pub fn preview_host(&self, project: &str) -> String {
        format!(
            "{}.preview.localhost:{}",
            project.replacen('_', "-", 1),
            self.port
        )
    }

    /// A request to another host of this server (a preview host): sent to 127.0.0.1 with
    /// that `Host` header, as a browser resolving `*.localhost` would.
    pub fn on_host(
        &self,
        host: &str,
        method: &str,
        path: &str,
        headers: &[(String, String)],
    ) -> Resp {
        let mut all = vec![("host".to_owned(), host.to_owned())];
        all.extend(headers.iter().cloned());
        self.raw(method, path, &all, None)
    }

    /// Opens a project's preview as a browser would: a preview link from the API (with
    /// `token`), then the link on the preview host. Returns the `Cookie` header value the
    /// preview host set.
    pub fn open_preview(&self, project: &str, token: &str) -> String {
        let link = self
            .post(
                &format!("/api/projects/{project}/preview-link"),
                Some(token),
                serde_json::json!({}),
            )
            .expect(201);
        let url = link["url"].as_str().expect("url").to_owned();
        let (host, path) = split_url(&url);
        assert_eq!(host, self.preview_host(project), "{url}");
        let resp = self.on_host(&host, "GET", &path, &[]);
        assert_eq!(resp.status, 302, "{}", resp.text);
        assert_eq!(resp.header("location"), Some("/"));
        let set = resp.header("set-cookie").expect("a preview cookie");
        set.split(';').next().unwrap().to_owned()
    }

    /// Opens a WebSocket to a project's room.
    pub fn ws(&self, project: &str, auth: ws::Auth<'_>) -> Result<ws::Socket, ws::Refused> {
        ws::Socket::connect(&self.url, project, auth)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send("GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send("POST", path, token, Some(body))
    }

    pub fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Resp {
        self.send("PATCH", path, token, Some(body))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        self.send("DELETE", path, token, None)
    }

    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let mut headers = vec![];
        if let Some(t) = token {
            headers.push(("authorization".to_owned(), format!("Bearer {t}")));
        }
        self.raw(method, path, &headers, bytes.as_deref())
    }

    /// A request whose response body is bytes (files, ZIPs): (status, body).
    pub fn raw_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
    ) -> (u16, Vec<u8>) {
        let mut req = agent().request(method, &format!("{}{path}", self.url));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error: {e}"),
        };
        let status = resp.status();
        let mut body = vec![];
        resp.into_reader()
            .take(256 * 1024 * 1024)
            .read_to_end(&mut body)
            .expect("read body");
        (status, body)
    }

    /// Any request: `body` is sent as `application/json` unless `headers` say otherwise.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = agent().request(method, &format!("{}{path}", self.url));
        let mut has_ct = false;
        for (k, v) in headers {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            req = req.set(k, v);
        }
        if body.is_some() && !has_ct {
            req = req.set("content-type", "application/json");
        }
        let retry = (method == "GET").then(|| req.clone());
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        // A read that got no answer at all (seen once under load, on a pooled connection
        // through wrangler's local proxy) is asked once more; a second silence fails the test,
        // with the server's log.
        let result = match (result, retry) {
            (Err(ureq::Error::Transport(e)), Some(again)) => {
                eprintln!("{method} {path}: {e}; asking once more");
                again.call()
            }
            (result, _) => result,
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => {
                let log = self.log();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("{method} {path}: transport error: {e}\nserver log (end):\n{tail}")
            }
        };
        Resp::read(resp)
    }
}

impl Drop for Kiln {
    fn drop(&mut self) {
        self.stop();
        if self.owned {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

/// One server shared by the tests of a test binary; killed when the binary exits.
pub fn shared() -> &'static Kiln {
    static SHARED: OnceLock<Kiln> = OnceLock::new();
    SHARED.get_or_init(Kiln::start)
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::AgentBuilder::new()
            .redirects(0)
            .timeout(Duration::from_secs(60))
            .build()
    })
}

/// A free loopback port (for a server a test starts).
///
/// Never one the kernel would hand out for `bind(…:0)`: a port picked that way is released
/// before the server binds it, and any process (wrangler and workerd open many) can get the
/// same one meanwhile, so two test servers could end up behind one port. Ports here come from
/// below the ephemeral range, each at most once per test process, from a start that differs by
/// process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.clamp(12_000, 32_768));
    let span = high - low;
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = (low + (start + n) % span) as u16;
        // The one port in this range that Chromium refuses to load (ERR_UNSAFE_PORT).
        if port == 10080 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}")
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    fn read(resp: ureq::Response) -> Resp {
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|name| {
                resp.all(&name)
                    .into_iter()
                    .map(|v| (name.clone(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let text = resp.into_string().unwrap_or_default();
        Resp {
            status,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the status and, for errors, the JSON error code; returns the body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if self.text.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts an error response of exactly this status and code, in the documented shape.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "body: {}", self.text);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error without message: {}",
            self.text
        );
        body
    }
}

/// A registered user and their session.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password: String,
    pub token: String,
    pub personal_org: String,
}

impl User {
    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// A unique email for this test process.
pub fn unique_email(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}-{}-{n}-{nanos}@example.test", std::process::id())
}

pub fn register(kiln: &Kiln, tag: &str) -> User {
    let email = unique_email(tag);
    let password = format!("pw-{email}");
    let body = kiln
        .post(
            "/api/auth/register",
            None,
            serde_json::json!({ "email": email, "password": password }),
        )
        .expect(201);
    let token = body["token"].as_str().expect("token").to_owned();
    let me = kiln.get("/api/me", Some(&token)).expect(200);
    let personal_org = me["orgs"][0]["id"]
        .as_str()
        .expect("personal org")
        .to_owned();
    User {
        id: body["user"]["id"].as_str().expect("id").to_owned(),
        email,
        password,
        token,
        personal_org,
    }
}

/// Makes `user` a member of `org` with `role`: `inviter` invites, `user` accepts.
pub fn join_org(kiln: &Kiln, inviter: &User, org: &str, user: &User, role: &str) {
    let inv = kiln
        .post(
            &format!("/api/orgs/{org}/members"),
            inviter.token(),
            serde_json::json!({ "email": user.email, "role": role }),
        )
        .expect(201);
    let id = inv["invitation"]["id"].as_str().expect("invitation id");
    kiln.post(
        &format!("/api/invitations/{id}/accept"),
        user.token(),
        serde_json::json!({}),
    )
    .expect(200);
}

/// `http://host:port/path?q` → (`host:port`, `/path?q`).
pub fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// Runs one of the browser scripts in `tests/browser/` (node + playwright-core, Debian's
/// Chromium) with `cfg` as its argument and returns the JSON report it prints.
pub fn browser_script(script: &str, cfg: &serde_json::Value) -> serde_json::Value {
    let out = std::process::Command::new("node")
        .arg(repo_root().join("tests/browser").join(script))
        .arg(cfg.to_string())
        .current_dir(repo_root())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{script}: no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Where the browser tests save their screenshots.
pub fn screenshot_dir() -> PathBuf {
    let dir = repo_root().join("target/ui-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

//! One tenant's abuse stays with that tenant: a sandbox cannot fill the host's disk, starve
//! other sandboxes' egress, run packages' install scripts, or stay up through an idle HMR
//! socket or Vite's reconnect pings; one org cannot take every sandbox on the host; and a
//! sync can remove what the working tree no longer has.

mod common;

use common::{org_token, project_id, spawn, token, ws, Reply, Service};
use kiln_core::sandbox::ExecFrame;
use std::io::{BufRead, Read};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const DISK_MB: u64 = 96;

/// A service with a small disk quota and tmpfs.
fn svc() -> &'static Service {
    static SVC: OnceLock<Service> = OnceLock::new();
    SVC.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let disk = DISK_MB.to_string();
            let extra = [
                ("KILN_SANDBOX_DISK_MB", disk.as_str()),
                ("KILN_SANDBOX_TMPFS_MB", "32"),
            ];
            let (_child, svc) = spawn("q", 86, &extra, true);
            tx.send(svc).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv().unwrap()
    })
}

fn free_bytes(p: &std::path::Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(p).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

fn exec_env(
    s: &Service,
    id: &str,
    t: &str,
    script: &str,
    env: serde_json::Value,
) -> (String, ExecFrame) {
    let body = serde_json::json!({
        "cmd": "bash", "args": ["-c", script], "timeout_ms": 60_000, "env": env,
    })
    .to_string();
    let r = s.must("POST", &format!("/v1/sandboxes/{id}/exec"), t, Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let mut out = String::new();
    let mut last = None;
    for l in r.body.lines() {
        match serde_json::from_str::<ExecFrame>(l).unwrap() {
            ExecFrame::Output { data, .. } => out += &data,
            f => last = Some(f),
        }
    }
    (out, last.expect("no final frame"))
}

#[test]
fn a_full_disk_quota_stops_writes_in_the_sandbox_and_the_api_but_not_on_the_host() {
    let s = svc();
    let (id, t) = s.create("disk", "react-vite");
    let before = free_bytes(&s.state_dir);
    // Three times the quota, into the project and into the node_modules overlay.
    let (out, _, end) = s.sh(
        &id,
        &t,
        "dd if=/dev/zero of=/work/fill bs=1M count=300 conv=fsync 2>&1; echo EXIT=$?; \
         dd if=/dev/zero of=/work/node_modules/fill bs=1M count=300 conv=fsync 2>&1; \
         echo EXIT=$?; sync",
    );
    assert_eq!(end, ExecFrame::Exit { exit_code: 0 }, "{out}");
    assert!(out.contains("No space left on device"), "{out}");
    assert!(
        !out.contains("EXIT=0"),
        "a write past the quota succeeded: {out}"
    );
    let after = free_bytes(&s.state_dir);
    let used = before.saturating_sub(after);
    // Other work on this host may write meanwhile: allow some slack, far below 600 MB.
    assert!(
        used < (DISK_MB + 48) << 20,
        "the host lost {} MiB for a {DISK_MB} MiB quota",
        used >> 20
    );

    // The file API says why instead of failing with a 500.
    let big = "x".repeat(1 << 20);
    let r = s.write(&id, &t, &[("more.txt", &big)]);
    assert_eq!(r.status, 507, "{}", r.body);
    assert_eq!(
        r.json()["error"]["code"],
        "disk_quota_exceeded",
        "{}",
        r.body
    );

    // Making room makes writes work again.
    let (_, _, end) = s.sh(&id, &t, "rm -f /work/fill /work/node_modules/fill");
    assert_eq!(end, ExecFrame::Exit { exit_code: 0 });
    let r = s.write(&id, &t, &[("more.txt", &big)]);
    assert_eq!(r.status, 200, "{}", r.body);

    // A tmpfs has its own size.
    let (out, _, _) = s.sh(
        &id,
        &t,
        "{ head -c 64M /dev/zero > /tmp/fill; } 2>&1; echo EXIT=$?; rm -f /tmp/fill",
    );
    assert!(
        out.contains("No space left") && !out.contains("EXIT=0"),
        "{out}"
    );

    // Deleting the sandbox removes the image and its loop device.
    let image = s.state_dir.join("disks").join(format!("{id}.img"));
    assert!(image.exists());
    let r = s.must("DELETE", &format!("/v1/sandboxes/{id}"), &t, None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(!image.exists());
    assert!(!common::project_dir(s, &id).exists());
    let loops = common::host_leftovers("q")
        .into_iter()
        .filter(|l| l.starts_with("loop") && l.contains(&id))
        .collect::<Vec<_>>();
    assert!(loops.is_empty(), "{loops:?}");
}

#[test]
fn npm_install_scripts_do_not_run_unless_asked_for() {
    let s = svc();
    let (id, t) = s.create("scripts", "static");
    let evil = serde_json::json!({
        "name": "evil", "version": "1.0.0",
        "scripts": {"postinstall": "node -e \"require('fs').writeFileSync(process.env.MARK, 'x')\""},
    })
    .to_string();
    let app = r#"{"name":"app","version":"1.0.0"}"#;
    let w = s.write(
        &id,
        &t,
        &[
            ("pkg/package.json", &evil),
            ("app/package.json", app),
            ("control/package.json", app),
        ],
    );
    assert_eq!(w.status, 200, "{}", w.body);
    let install = "cd /work && npm pack ./pkg --silent >/dev/null && cd $DIR && \
                   npm install --offline --no-audit --no-fund /work/evil-1.0.0.tgz 2>&1; \
                   echo EXIT=$?; test -e $MARK && echo RAN || echo SKIPPED";
    let (out, _) = exec_env(
        s,
        &id,
        &t,
        install,
        serde_json::json!({"DIR": "/work/app", "MARK": "/work/app-pwned"}),
    );
    assert!(out.contains("EXIT=0"), "install failed: {out}");
    assert!(out.contains("SKIPPED"), "the postinstall script ran: {out}");
    assert!(
        std::fs::read_dir(common::project_dir(s, &id).join("app/node_modules/evil")).is_ok(),
        "the package was not installed: {out}"
    );
    // The same install with scripts switched back on runs it: the check above can fail.
    let (out, _) = exec_env(
        s,
        &id,
        &t,
        install,
        serde_json::json!({
            "DIR": "/work/control", "MARK": "/work/control-pwned",
            "npm_config_ignore_scripts": "false",
        }),
    );
    assert!(out.contains("EXIT=0") && out.contains("RAN"), "{out}");
}

/// Sandbox A opens 10,000 connections to its egress proxy and holds them; sandbox B still
/// reaches the registry through its own, and A holds no more than its cap.
#[test]
fn ten_thousand_connections_from_one_sandbox_leave_another_sandboxs_egress_alone() {
    let s = svc();
    let (a, ta) = s.create("flood", "static");
    let (b, tb) = s.create("calm", "static");
    let flood = r#"
const net = require('net');
const u = new URL(process.env.HTTPS_PROXY);
const N = 10000, PARALLEL = 256;
let started = 0, pending = 0, connected = 0, failed = 0, closed = 0;
const socks = [];
function report(tag) {
  const open = socks.filter(s => !s.destroyed && !s.readableEnded).length;
  console.log(JSON.stringify({tag, connected, failed, closed, open}));
}
function more() {
  while (pending < PARALLEL && started < N) {
    started++; pending++;
    const s = net.connect(+u.port, u.hostname);
    let settled = false;
    const settle = (ok) => {
      if (settled) return;
      settled = true; pending--; ok ? connected++ : failed++;
      if (started === N && pending === 0) {
        setTimeout(() => { report('ready'); setTimeout(() => { report('end'); process.exit(0); }, 8000); }, 500);
      } else more();
    };
    s.on('data', () => {});
    s.on('connect', () => settle(true));
    s.on('error', () => settle(false));
    s.on('close', () => { closed++; settle(false); });
    socks.push(s);
  }
}
more();
"#;
    let w = s.write(&a, &ta, &[("flood.js", flood)]);
    assert_eq!(w.status, 200, "{}", w.body);
    let mut stream = s.exec_stream(&a, &ta, "node", &["flood.js"], 120_000);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(100);
    while !text.contains("\"ready\"") {
        assert!(Instant::now() < deadline, "flood did not finish: {text}");
        let mut line = String::new();
        if stream.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("flood ended early: {text}");
        }
        if let Ok(ExecFrame::Output { data, .. }) = serde_json::from_str(&line) {
            text += &data;
        }
    }
    // While A holds what it holds, B tunnels to the registry.
    let (out, err, _) = s.sh(
        &b,
        &tb,
        "curl -sS -m 30 -o /dev/null -w '%{http_code}' https://registry.npmjs.org/react",
    );
    assert_eq!(out.trim(), "200", "B's egress: {out} {err}");
    let mut rest = String::new();
    for line in stream.lines() {
        let Ok(line) = line else { break };
        if let Ok(ExecFrame::Output { data, .. }) = serde_json::from_str(&line) {
            rest += &data;
        }
    }
    let ready: serde_json::Value = text
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    // The proxy closed everything over its cap (64) at once; A could not hold thousands.
    let open = ready["open"].as_u64().unwrap_or(u64::MAX);
    assert!(open <= 128, "A held {open} connections: {text}{rest}");
    assert!(
        ready["connected"].as_u64().unwrap_or(0) + ready["failed"].as_u64().unwrap_or(0) == 10_000,
        "{text}"
    );
    let m = s.get("/metrics", None).unwrap().body;
    let busy: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("kiln_egress_busy_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    assert!(busy >= 9_000, "refused over the cap: {busy}");
    // A's own proxy is alive once its sockets are gone.
    let (out, err, _) = s.sh(
        &a,
        &ta,
        "curl -sS -m 30 -o /dev/null -w '%{http_code}' https://registry.npmjs.org/react",
    );
    assert_eq!(out.trim(), "200", "A's egress afterwards: {out} {err}");
}

#[test]
fn a_prune_sync_removes_files_not_in_the_tree_but_keeps_build_and_cache_dirs() {
    let s = svc();
    let (id, t) = s.create("prune", "static");
    let (_, _, end) = s.sh(
        &id,
        &t,
        "mkdir -p old dist node_modules/x .vite && touch stale.txt old/a.js dist/index.html \
         node_modules/x/index.js .vite/dep.js && ln -s /etc/hostname link",
    );
    assert_eq!(end, ExecFrame::Exit { exit_code: 0 });
    let list = |s: &Service| -> Vec<String> {
        let r = s.must("GET", &format!("/v1/sandboxes/{id}/files"), &t, None);
        let mut v: Vec<String> = r.json()["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    // Without `prune` (the edge's calls today) nothing is removed.
    let w = s.write(&id, &t, &[("index.html", "<h1>v2</h1>")]);
    assert_eq!(w.status, 200, "{}", w.body);
    assert_eq!(w.json()["pruned"], 0);
    assert!(list(s).contains(&"stale.txt".to_owned()));

    let body = serde_json::json!({
        "files": [
            {"path": "index.html", "content": "<h1>v3</h1>"},
            {"path": "src/main.js", "content": "console.log(1)"},
        ],
        "prune": true,
        // Written by an earlier call of the same sync.
        "keep": ["style.css"],
    })
    .to_string();
    let r = s.must("PUT", &format!("/v1/sandboxes/{id}/files"), &t, Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    // stale.txt, old/a.js, link and the template's main.js, store.js (style.css is kept)
    assert_eq!(r.json()["pruned"], 5, "{}", r.body);
    assert_eq!(
        list(s),
        vec![
            ".vite",
            "dist",
            "dist/index.html",
            "index.html",
            "node_modules",
            "src",
            "src/main.js",
            "style.css"
        ]
    );
    let (out, _, _) = s.sh(&id, &t, "cat index.html; echo; ls node_modules/x; ls .vite");
    assert_eq!(out, "<h1>v3</h1>\nindex.js\ndep.js\n");
}

/// An HMR socket that carries nothing closes after the limit and stops holding the sandbox
/// up: the idle reaper stops it although the client never closed its end.
#[test]
fn an_idle_hmr_socket_is_closed_and_the_sandbox_is_reaped() {
    let (_child, s) = spawn(
        "h",
        87,
        &[
            ("KILN_SANDBOX_HMR_IDLE_SECS", "3"),
            ("KILN_SANDBOX_IDLE_SECS", "4"),
        ],
        true,
    );
    let (id, t) = s.create("hmr", "react-vite");
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/dev-server"),
        &t,
        Some(r#"{"action":"start"}"#),
    );
    assert_eq!(r.json()["state"], "ready", "{}", r.body);
    let url = r.json()["preview_url"].as_str().unwrap().to_owned();
    let mut hmr = ws::connect(s.port, &url, &[("sec-websocket-protocol", "vite-hmr")]);
    assert_eq!(hmr.status(), 101, "{}", hmr.head);
    hmr.read_until("connected").expect("vite's hello over HMR");
    let opened = Instant::now();
    // Nothing more is sent; the proxy closes the socket (a close frame, then EOF).
    assert!(hmr.recv().is_none(), "a frame on an idle socket");
    let closed = opened.elapsed();
    assert!(
        closed >= Duration::from_secs(2) && closed < Duration::from_secs(20),
        "closed after {closed:?}"
    );
    let state = |s: &Service| {
        s.must("GET", &format!("/v1/sandboxes/{id}"), &token(&id, 60), None)
            .json()["state"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while state(&s) != "stopped" {
        assert!(
            Instant::now() < deadline,
            "the sandbox stayed up after its HMR socket went idle"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(hmr);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// The sandbox's `state` (`running`/`stopped`); asking does not count as use.
fn state(s: &Service, id: &str, t: &str) -> String {
    s.must("GET", &format!("/v1/sandboxes/{id}"), t, None)
        .json()["state"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn error_code(r: &Reply) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_owned()
}

fn exec_true(s: &Service, id: &str, t: &str) -> Reply {
    s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/exec"),
        t,
        Some(r#"{"cmd":"true"}"#),
    )
}

fn wait_stopped(s: &Service, who: &[(&str, &str)], within: Duration) {
    let deadline = Instant::now() + within;
    for (id, t) in who {
        while state(s, id, t) != "stopped" {
            assert!(Instant::now() < deadline, "{id} was not stopped when idle");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// One org cannot take the host: at its cap (2 here) its next sandbox is a 429
/// `quota_exceeded` (on create, exec, dev server and preview alike) while another org still
/// starts one; its running sandboxes are never refused; one deleted or stopped by the reaper
/// no longer counts; two concurrent starts for its last place cannot both get it.
#[test]
fn an_org_at_its_cap_gets_429_while_other_orgs_still_start_sandboxes() {
    let (_child, s) = spawn(
        "o",
        89,
        &[
            ("KILN_SANDBOX_MAX_PER_ORG", "2"),
            ("KILN_SANDBOX_IDLE_SECS", "15"),
        ],
        true,
    );
    let (a1, ta1) = s.create_in_org("a1", "static", "org-a");
    let (a2, ta2) = s.create_in_org("a2", "static", "org-a");
    assert_eq!(
        (state(&s, &a1, &ta1), state(&s, &a2, &ta2)),
        ("running".into(), "running".into())
    );
    let a3 = project_id("a3");
    let ta3 = org_token(&a3, "org-a", 240);
    let r = s.try_create(&a3, &ta3, "static");
    assert_eq!(
        (r.status, error_code(&r).as_str()),
        (429, "quota_exceeded"),
        "{}",
        r.body
    );
    let msg = r.json()["error"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(msg.contains("already runs 2 sandboxes"), "{msg}");
    // Refused before anything was made for it.
    assert!(!s.state_dir.join("disks").join(format!("{a3}.img")).exists());
    assert_eq!(
        s.must("GET", &format!("/v1/sandboxes/{a3}"), &ta3, None)
            .status,
        404
    );

    // Another org, and a project whose token names no org (it is its own), still start.
    let (b1, tb1) = s.create_in_org("b1", "static", "org-b");
    let (solo, tsolo) = s.create("solo", "static");
    // A's running sandboxes keep working.
    let r = exec_true(&s, &a1, &ta1);
    assert!(
        r.status == 200 && r.body.contains(r#""exit_code":0"#),
        "{}",
        r.body
    );

    // Deleting one makes room for one: of two concurrent starts for that place, one wins.
    assert_eq!(
        s.must("DELETE", &format!("/v1/sandboxes/{a1}"), &ta1, None)
            .status,
        204
    );
    let a4 = project_id("a4");
    let ta4 = org_token(&a4, "org-a", 240);
    let (r3, r4) = std::thread::scope(|sc| {
        let h3 = sc.spawn(|| s.try_create(&a3, &ta3, "static"));
        let h4 = sc.spawn(|| s.try_create(&a4, &ta4, "static"));
        (h3.join().unwrap(), h4.join().unwrap())
    });
    let mut statuses = [r3.status, r4.status];
    statuses.sort();
    assert_eq!(statuses, [201, 429], "{} / {}", r3.body, r4.body);
    let (won, twon) = if r3.status == 201 {
        (&a3, &ta3)
    } else {
        (&a4, &ta4)
    };

    // Sandboxes the reaper stopped no longer count: A starts another one.
    wait_stopped(
        &s,
        &[(&a2, &ta2), (won, twon), (&b1, &tb1), (&solo, &tsolo)],
        Duration::from_secs(60),
    );
    let (_a5, _) = s.create_in_org("a5", "static", "org-a");
    // Bringing a stopped sandbox back counts as a start: a2 fits, then `won` does not, by
    // exec, dev server or preview, and stays stopped.
    let r = exec_true(&s, &a2, &ta2);
    assert!(
        r.status == 200 && r.body.contains(r#""exit_code":0"#),
        "{}",
        r.body
    );
    let refused = [
        exec_true(&s, won, twon),
        s.must(
            "POST",
            &format!("/v1/sandboxes/{won}/dev-server"),
            twon,
            Some(r#"{"action":"start"}"#),
        ),
        s.must("GET", &format!("/v1/sandboxes/{won}/preview/"), twon, None),
    ];
    for r in &refused {
        assert_eq!(
            (r.status, error_code(r).as_str()),
            (429, "quota_exceeded"),
            "{}",
            r.body
        );
    }
    assert_eq!(state(&s, won, twon), "stopped");
    let m = s.get("/metrics", None).unwrap().body;
    let n: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("kiln_sandbox_org_quota_refused_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(n >= 5.0, "{m}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid),
        nix::sys::signal::Signal::SIGTERM,
    );
}

/// One `vite-ping` upgrade, as Vite's client polls after its HMR socket closed; the status
/// and the JSON body of a refusal.
fn vite_ping(s: &Service, path: &str, cookie: &str) -> (u16, serde_json::Value) {
    let mut w = ws::connect(
        s.port,
        path,
        &[("cookie", cookie), ("sec-websocket-protocol", "vite-ping")],
    );
    let len = w
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = w.stream.read_exact(&mut body);
    (
        w.status(),
        serde_json::from_slice(&body).unwrap_or_default(),
    )
}

/// Vite's client, once its HMR socket is gone, polls with `vite-ping` WebSockets and reloads
/// the page when one opens, and that reload is a preview hit. Pings are not use: past the
/// HMR idle limit they are refused, the reaper stops the sandbox although the tab keeps
/// polling, a ping does not start it again, and a real page request still does.
#[test]
fn vite_reconnect_pings_do_not_keep_an_idle_sandbox_up() {
    let (_child, s) = spawn(
        "v",
        90,
        &[
            ("KILN_SANDBOX_HMR_IDLE_SECS", "3"),
            ("KILN_SANDBOX_IDLE_SECS", "6"),
        ],
        true,
    );
    let (id, t) = s.create("ping", "react-vite");
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/dev-server"),
        &t,
        Some(r#"{"action":"start"}"#),
    );
    assert_eq!(r.json()["state"], "ready", "{}", r.body);
    let url = r.json()["preview_url"].as_str().unwrap().to_owned();
    let page = s.call("GET", &url, None, None, None).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let used = Instant::now();
    let cookie = page
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let root = format!("/v1/sandboxes/{id}/preview/");
    // Right after real use a ping reaches Vite, which accepts it (the case pings are for: a
    // dev server that restarted).
    let (status, body) = vite_ping(&s, &root, &cookie);
    assert_eq!(status, 101, "{body}");

    // Polling twice a second: refused from the HMR idle limit on, never answered again, and
    // the sandbox is stopped meanwhile.
    let mut refused_at = None;
    let deadline = Instant::now() + Duration::from_secs(45);
    while state(&s, &id, &t) != "stopped" {
        assert!(Instant::now() < deadline, "pings kept the sandbox up");
        let (status, body) = vite_ping(&s, &root, &cookie);
        match status {
            101 => assert!(refused_at.is_none(), "a ping was answered after a refusal"),
            503 => {
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
                refused_at.get_or_insert(used.elapsed());
            }
            other => panic!("ping: {other} {body}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let refused_at = refused_at.expect("no ping was refused before the sandbox stopped");
    assert!(
        refused_at >= Duration::from_secs(2) && refused_at < Duration::from_secs(20),
        "first refusal {refused_at:?} after the page"
    );
    // A ping does not bring a stopped sandbox back.
    let (status, body) = vite_ping(&s, &root, &cookie);
    assert_eq!(
        (status, &body["error"]["code"]),
        (503, &"unavailable".into()),
        "{body}"
    );
    assert_eq!(state(&s, &id, &t), "stopped");
    // A real preview request does, and pings are answered again after it.
    let again = s.call("GET", &root, None, None, Some(&cookie)).unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(state(&s, &id, &t), "running");
    let (status, body) = vite_ping(&s, &root, &cookie);
    assert_eq!(status, 101, "{body}");
    let m = s.get("/metrics", None).unwrap().body;
    assert!(!m.contains("kiln_preview_pings_refused_total 0\n"), "{m}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(s.pid),
        nix::sys::signal::Signal::SIGTERM,
    );
}

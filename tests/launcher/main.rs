//! `./kiln up` itself: brings Kiln to ready, serves the API, persists state across runs, and
//! stops every child on SIGINT/SIGTERM, or when `wrangler dev` exits on its own.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kiln_e2e::process::Group;
use kiln_e2e::{free_port, repo_root};
use serde_json::json;

/// One `./kiln up` at a time: two starting at once share the checkout's `.dev.vars`,
/// builds and stamps, which a person never does.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Up {
    group: Group,
    url: String,
    sandbox_url: String,
    sandbox_port: u16,
}

/// Runs `./kiln up` on `port` and `state` (its sandbox-proxy as `instance` on subnet octet
/// `octet`, so two tests never share one), and waits for its ready line.
fn kiln_up(port: u16, state: &std::path::Path, instance: &str, octet: u8) -> Up {
    kiln_up_with(port, state, instance, octet, &[])
}

/// `kiln_up` with more of `up`'s environment.
fn kiln_up_with(
    port: u16,
    state: &std::path::Path,
    instance: &str,
    octet: u8,
    env: &[(&str, &str)],
) -> Up {
    let sandbox_port = free_port();
    // What `up` says on stderr, kept beside the state for when it does not come up.
    let err_log = std::env::temp_dir().join(format!("kiln-up-{instance}-{port}.err"));
    let mut group = Group::spawn(
        Command::new(repo_root().join("kiln"))
            .arg("up")
            .env("KILN_PORT", port.to_string())
            .env("KILN_STATE_DIR", state)
            .env("KILN_SANDBOX_INSTANCE", instance)
            .env("KILN_SANDBOX_SUBNET_OCTET", octet.to_string())
            .env("KILN_SANDBOX_PORT", sandbox_port.to_string())
            // Building llama.cpp and fetching 1.1 GB of weights is no part of a test run; the
            // embedded model is shown in docs/BENCHMARKS.md.
            .env("KILN_LOCAL_MODEL", "off")
            .env_remove("KILN_LLM_BASE_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_log).expect("stderr log")),
        None,
    );
    let stdout = group
        .child_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let want = format!("Kiln is ready at http://127.0.0.1:{port}");
    // Generous: on a cold machine `up` installs the toolchain before it builds.
    loop {
        match rx.recv_timeout(Duration::from_secs(1800)) {
            Ok(line) if line.trim() == want => break,
            Ok(_) => continue,
            Err(e) => panic!(
                "no ready line from ./kiln up: {e}\n{}",
                std::fs::read_to_string(&err_log).unwrap_or_default()
            ),
        }
    }
    Up {
        group,
        url: format!("http://127.0.0.1:{port}"),
        sandbox_url: format!("http://127.0.0.1:{sandbox_port}"),
        sandbox_port,
    }
}

fn call(method: &str, url: &str, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let req = ureq::request(method, url).set("content-type", "application/json");
    let res = match body {
        Some(b) => req.send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    (resp.status(), resp.into_json().expect("JSON body"))
}

#[test]
fn kiln_up_serves_persists_and_stops_cleanly() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let state = std::env::temp_dir().join(format!("kiln-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let port = free_port();

    let mut up = kiln_up(port, &state, "lt", 213);
    let (status, body) = call("GET", &format!("{}/api/me", up.url), None);
    assert_eq!(status, 401);
    // The sandbox-proxy that runs generated apps is up too (the tests run as root).
    let (status, _) = call("GET", &format!("{}/healthz", up.sandbox_url), None);
    assert_eq!(status, 200);
    assert_eq!(body["error"]["code"], "unauthorized");
    let creds = json!({ "email": "persist@example.test", "password": "persist-password" });
    let (status, _) = call(
        "POST",
        &format!("{}/api/auth/register", up.url),
        Some(creds.clone()),
    );
    assert_eq!(status, 201);

    // Ctrl-C: the launcher stops, and with it every process it started.
    up.group.signal_leader("INT");
    assert!(
        up.group.wait_timeout(Duration::from_secs(30)).is_some(),
        "kiln up did not exit on SIGINT"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !up.group.group_alive(),
        "children of kiln up survived SIGINT"
    );
    assert!(
        ureq::get(&format!("{}/api/health", up.url)).call().is_err(),
        "the port still answers after SIGINT"
    );
    assert!(
        ureq::get(&format!("{}/healthz", up.sandbox_url))
            .call()
            .is_err(),
        "the sandbox-proxy still answers after SIGINT"
    );

    // Same state dir: the account is still there. SIGTERM stops it as well.
    let mut again = kiln_up(port, &state, "lt", 213);
    let (status, body) = call(
        "POST",
        &format!("{}/api/auth/login", again.url),
        Some(creds),
    );
    assert_eq!(status, 200, "{body}");
    again.group.signal_leader("TERM");
    assert!(
        again.group.wait_timeout(Duration::from_secs(30)).is_some(),
        "kiln up did not exit on SIGTERM"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !again.group.group_alive(),
        "children of kiln up survived SIGTERM"
    );
    let _ = std::fs::remove_dir_all(&state);
}

/// Every live process below `root` (its children, theirs, …), from /proc: children that
/// `setsid` moved into sessions of their own are still found by their parent.
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces and parentheses.
        let Some((comm, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.first() == Some(&"Z") {
            continue;
        }
        if let Some(ppid) = fields.get(1).and_then(|f| f.parse::<u32>().ok()) {
            let name = comm.split_once('(').map_or("", |(_, n)| n).to_owned();
            parent_of.push((pid, ppid, name));
        }
    }
    let mut found: Vec<(u32, String)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, name) in &parent_of {
            if *ppid == p && !found.iter().any(|(f, _)| f == pid) {
                found.push((*pid, name.clone()));
                frontier.push(*pid);
            }
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

#[test]
fn kiln_up_stops_every_child_when_wrangler_exits_on_its_own() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let state = std::env::temp_dir().join(format!("kiln-up-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let port = free_port();
    let mut up = kiln_up(port, &state, "lw", 216);
    let children = descendants(up.group.pid());
    let wrangler: Vec<u32> = children
        .iter()
        .filter(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("wrangler") && c.contains("\0dev\0"))
        })
        .map(|(pid, _)| *pid)
        .collect();
    assert!(!wrangler.is_empty(), "no wrangler dev among {children:?}");
    assert!(
        // comm is cut at 15 bytes: "kiln-sandbox-pr".
        children.iter().any(|(_, n)| n.starts_with("kiln-sandbox")),
        "no sandbox-proxy among {children:?}"
    );
    // wrangler dies (as on a crash, with the workerd it started) while `up` waits for it.
    for pid in &wrangler {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
    }
    let status = up.group.wait_timeout(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<&(u32, String)> = children.iter().filter(|(pid, _)| alive(*pid)).collect();
    // Whatever survived is stopped here, so a failure leaves no root sandbox-proxy behind.
    for (pid, _) in &left {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let _ = std::fs::remove_dir_all(&state);
    let status = status.expect("kiln up did not exit after wrangler dev died");
    assert!(!status.success(), "wrangler's failure is up's: {status:?}");
    assert!(
        left.is_empty(),
        "children of kiln up left running: {left:?}"
    );
    assert!(
        ureq::get(&format!("{}/healthz", up.sandbox_url))
            .call()
            .is_err(),
        "the sandbox-proxy still answers"
    );
}

#[test]
fn kiln_up_with_three_sandbox_hosts_starts_a_fleet_that_joins_the_edge() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let state = std::env::temp_dir().join(format!("kiln-up-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let port = free_port();
    let mut up = kiln_up_with(port, &state, "lf", 221, &[("KILN_SANDBOX_HOSTS", "3")]);
    let urls: Vec<String> = (0..3)
        .map(|i| format!("http://127.0.0.1:{}", up.sandbox_port + 20 * i))
        .collect();
    for url in &urls {
        let (status, _) = call("GET", &format!("{url}/healthz"), None);
        assert_eq!(status, 200, "{url}");
    }
    // Each host beats to the edge with the credential it signed for its id: the edge's
    // table of hosts (D1, read as the operator would) lists all three at their URLs.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let hosts = loop {
        let out = Command::new(repo_root().join("node_modules/.bin/wrangler"))
            .current_dir(repo_root())
            .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
            .arg(&state)
            .args([
                "--command",
                "SELECT id, url, draining FROM sandbox_hosts ORDER BY id",
            ])
            .env("WRANGLER_SEND_METRICS", "false")
            .output()
            .expect("wrangler d1 execute");
        let rows: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        let rows = rows[0]["results"].as_array().cloned().unwrap_or_default();
        if rows.len() == 3 || std::time::Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let got: Vec<(String, String)> = hosts
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap_or("").into(),
                h["url"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = (0..3)
        .map(|i| (format!("host-{i}"), urls[i].clone()))
        .collect();
    assert_eq!(got, want);
    assert!(hosts.iter().all(|h| h["draining"] == 0));
    up.group.signal_leader("TERM");
    assert!(
        up.group.wait_timeout(Duration::from_secs(30)).is_some(),
        "kiln up did not exit on SIGTERM"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !up.group.group_alive(),
        "children of kiln up survived SIGTERM"
    );
    for url in &urls {
        assert!(
            ureq::get(&format!("{url}/healthz")).call().is_err(),
            "{url} still answers"
        );
    }
    let _ = std::fs::remove_dir_all(&state);
}

//! `./kiln up` itself: brings Kiln to ready, serves the API, persists state across runs, and
//! stops every child on SIGINT/SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use kiln_e2e::process::Group;
use kiln_e2e::{free_port, repo_root};
use serde_json::json;

struct Up {
    group: Group,
    url: String,
    sandbox_url: String,
}

/// Runs `./kiln up` on `port` and `state`, and waits for its ready line.
fn kiln_up(port: u16, state: &std::path::Path) -> Up {
    let sandbox_port = free_port();
    let mut group = Group::spawn(
        Command::new(repo_root().join("kiln"))
            .arg("up")
            .env("KILN_PORT", port.to_string())
            .env("KILN_STATE_DIR", state)
            .env("KILN_SANDBOX_INSTANCE", "lt")
            .env("KILN_SANDBOX_SUBNET_OCTET", "213")
            .env("KILN_SANDBOX_PORT", sandbox_port.to_string())
            // Building llama.cpp and fetching 1.1 GB of weights is no part of a test run; the
            // embedded model is shown in docs/BENCHMARKS.md.
            .env("KILN_LOCAL_MODEL", "off")
            .env_remove("KILN_LLM_BASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
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
            Err(e) => panic!("no ready line from ./kiln up: {e}"),
        }
    }
    Up {
        group,
        url: format!("http://127.0.0.1:{port}"),
        sandbox_url: format!("http://127.0.0.1:{sandbox_port}"),
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
    let state = std::env::temp_dir().join(format!("kiln-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let port = free_port();

    let mut up = kiln_up(port, &state);
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
    let mut again = kiln_up(port, &state);
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

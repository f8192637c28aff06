//! Lifecycle: capacity, delete, crash recovery, idle stop, clean shutdown, and that nothing of
//! the service (netns, veth, nft, cgroup, mount) is left on the host afterwards.

mod common;

use common::{host_leftovers, spawn, token};
use std::time::{Duration, Instant};

fn stop(mut child: std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "service exited with {st}");
}

#[test]
fn nothing_is_left_behind_after_delete_crash_and_shutdown() {
    let inst = "c";
    let (child, s) = spawn(inst, 84, &[("KILN_SANDBOX_MAX_SANDBOXES", "2")], true);
    let (a, ta) = s.create("a", "static");
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{a}/dev-server"),
        &ta,
        Some(r#"{"action":"start"}"#),
    );
    assert_eq!(r.json()["state"], "ready", "{}", r.body);
    // B has a node_modules overlay: a host mount that a crash leaves behind.
    let (b, tb) = s.create("b", "react-vite");
    assert_eq!(s.write(&b, &tb, &[("keep.txt", "kept")]).status, 200);

    // Capacity: a third sandbox is a clear 503.
    let c = common::project_id("c");
    let body = serde_json::json!({"project_id": c, "template": "static"}).to_string();
    let r = s.must("POST", "/v1/sandboxes", &token(&c, 60), Some(&body));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{}",
        r.body
    );

    // DELETE leaves nothing of A: one sandbox's network remains (B's), A's files are gone.
    assert_eq!(
        s.must("DELETE", &format!("/v1/sandboxes/{a}"), &ta, None)
            .status,
        204
    );
    assert_eq!(
        s.must("GET", &format!("/v1/sandboxes/{a}"), &ta, None)
            .status,
        404
    );
    assert!(!s.state_dir.join("projects").join(&a).exists());
    assert!(!common::project_dir(&s, &a).exists());
    assert!(!s.state_dir.join("disks").join(format!("{a}.img")).exists());
    let netns: Vec<String> = host_leftovers(inst)
        .into_iter()
        .filter(|l| l.starts_with("netns"))
        .collect();
    assert_eq!(netns.len(), 1, "{netns:?}");
    let m = s.get("/metrics", None).unwrap().body;
    assert!(m.contains("kiln_sandboxes_running 1"), "{m}");
    assert!(m.contains("kiln_sandboxes_created_total 2"), "{m}");

    // A crash leaves B's namespaces behind…
    let mut child = child;
    child.kill().unwrap();
    child.wait().unwrap();
    let left = host_leftovers(inst);
    assert!(left.iter().any(|l| l.starts_with("netns")), "{left:?}");
    assert!(left.iter().any(|l| l.starts_with("mount")), "{left:?}");
    // …which the next start cleans up, keeping B's files.
    let (child, s) = spawn(inst, 84, &[], false);
    let left: Vec<String> = host_leftovers(inst)
        .into_iter()
        .filter(|l| {
            ["netns", "link", "mount", "loop"]
                .iter()
                .any(|k| l.starts_with(k))
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let r = s.must(
        "GET",
        &format!("/v1/sandboxes/{b}/files/keep.txt"),
        &tb,
        None,
    );
    assert_eq!((r.status, r.body.as_str()), (200, "kept"));
    let (out, _, _) = s.sh(&b, &tb, "cat keep.txt");
    assert_eq!(out, "kept");

    stop(child);
    let left = host_leftovers(inst);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn idle_sandboxes_are_stopped_and_keep_their_files() {
    let inst = "r";
    let (child, s) = spawn(inst, 85, &[("KILN_SANDBOX_IDLE_SECS", "1")], true);
    let (id, t) = s.create("idle", "static");
    assert_eq!(
        s.write(
            &id,
            &t,
            &[
                ("note.txt", "still here"),
                ("index.html", "<p>back again</p>")
            ]
        )
        .status,
        200
    );
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/dev-server"),
        &t,
        Some(r#"{"action":"start"}"#),
    );
    let url = r.json()["preview_url"].as_str().unwrap().to_owned();
    let first = s.call("GET", &url, None, None, None).unwrap();
    assert_eq!(first.status, 200);
    let cookie = first
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    // GET /v1/sandboxes/{id} does not count as use, so the reaper gets to it.
    loop {
        let r = s.must("GET", &format!("/v1/sandboxes/{id}"), &t, None);
        if r.json()["state"] == "stopped" {
            break;
        }
        assert!(Instant::now() < deadline, "never stopped: {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(host_leftovers(inst).iter().all(|l| !l.starts_with("netns")));
    // A preview hit brings the sandbox and its dev server back.
    let again = s
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/preview/"),
            None,
            None,
            Some(&cookie),
        )
        .unwrap();
    assert_eq!(
        (again.status, again.body.contains("back again")),
        (200, true),
        "{}",
        again.body
    );
    let (out, _, _) = s.sh(&id, &t, "cat note.txt");
    assert_eq!(out, "still here");
    stop(child);
    let left = host_leftovers(inst);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The abuse, auth, escape and functional suites' services (run before this binary) got SIGTERM when
/// their test processes exited; once they have shut down, nothing of theirs is left.
#[test]
fn earlier_suites_left_nothing_behind() {
    let deadline = Instant::now() + Duration::from_secs(60);
    for inst in ["a", "e", "f", "q", "h", "o", "v"] {
        loop {
            let left = host_leftovers(inst);
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "instance {inst} left: {left:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

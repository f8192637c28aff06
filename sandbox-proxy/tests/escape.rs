//! The escape suite: each test tries one way out of a sandbox and fails if it works.

mod common;

use common::{shared, Service};
use kiln_core::sandbox::ExecFrame;
use std::net::TcpListener;

fn svc() -> &'static Service {
    shared("e", 81)
}

fn ok(end: &ExecFrame) -> bool {
    *end == ExecFrame::Exit { exit_code: 0 }
}

/// Tries a TCP connect from inside the sandbox; true if it connected.
fn connects(s: &Service, id: &str, t: &str, ip: &str, port: u16) -> bool {
    let script =
        format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{ip}/{port}' 2>/dev/null && echo CONNECTED");
    let (out, _, _) = s.sh(id, t, &script);
    out.contains("CONNECTED")
}

/// The sandbox's host-side address (its gateway).
fn gateway(address: &str) -> String {
    let mut o: Vec<u8> = address.split('.').map(|x| x.parse().unwrap()).collect();
    o[3] -= 1;
    format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])
}

fn address(s: &Service, id: &str, t: &str) -> String {
    let r = s.must("GET", &format!("/v1/sandboxes/{id}"), t, None);
    r.json()["address"].as_str().unwrap().to_owned()
}

#[test]
fn commands_run_as_an_unprivileged_user_in_their_own_namespaces() {
    let s = svc();
    let (id, t) = s.create("ns", "static");
    let (out, err, end) = s.sh(
        &id,
        &t,
        "id -u; hostname; ls /work; cat /proc/1/cmdline | tr '\\0' ' '",
    );
    assert!(ok(&end), "{end:?} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], "0", "runs as root inside");
    assert_eq!(lines[1], "sandbox");
    assert!(out.contains("index.html"), "{out}");
    assert!(
        !out.contains("systemd") && !out.contains("sbin/init"),
        "sees the host's pid 1: {out}"
    );
}

#[test]
fn no_nested_user_namespaces_and_no_capabilities() {
    let s = svc();
    let (id, t) = s.create("userns", "static");
    let (out, _, end) = s.sh(&id, &t, "unshare -Ur id -u");
    assert!(!ok(&end), "a nested user namespace was created: {out}");
    let (out, _, _) = s.sh(&id, &t, "grep CapEff /proc/self/status");
    assert!(out.contains("0000000000000000"), "{out}");
}

#[test]
fn dangerous_syscalls_are_refused_by_seccomp() {
    if !cfg!(target_arch = "x86_64") {
        return; // the syscall numbers below are x86_64's
    }
    let s = svc();
    let (id, t) = s.create("seccomp", "static");
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING) answers an id without a filter.
    let (out, err, _) = s.sh(
        &id,
        &t,
        "perl -e '$r = syscall(250, 0, -3, 0); print \"$r $!\\n\"'",
    );
    assert!(
        out.starts_with("-1 Operation not permitted"),
        "keyctl: {out} {err}"
    );
    // userfaultfd(UFFD_USER_MODE_ONLY) answers an fd without a filter.
    let (out, _, _) = s.sh(
        &id,
        &t,
        "perl -e '$r = syscall(323, 1); print \"$r $!\\n\"'",
    );
    assert!(
        out.starts_with("-1 Operation not permitted"),
        "userfaultfd: {out}"
    );
    // open_by_handle_at, the classic container escape (EFAULT, not EPERM, without a filter).
    let (out, _, _) = s.sh(
        &id,
        &t,
        "perl -e '$r = syscall(304, -100, 0, 0); print \"$r $!\\n\"'",
    );
    assert!(
        out.starts_with("-1 Operation not permitted"),
        "open_by_handle_at: {out}"
    );
}

#[test]
fn host_files_outside_work_cannot_be_read() {
    let s = svc();
    let (id, t) = s.create("read", "static");
    let secret = s.state_dir.join("host-secret.txt");
    std::fs::write(&secret, "TOP-SECRET-STATE").unwrap();
    let targets = [
        secret.to_string_lossy().into_owned(),
        s.state_dir.join("projects").to_string_lossy().into_owned(),
        s.state_dir.join("disks").to_string_lossy().into_owned(),
        "/root".into(),
        "/etc/shadow".into(),
        "/proc/1/root/etc/hostname".into(),
    ];
    for target in targets {
        let (out, _, end) = s.sh(&id, &t, &format!("cat {target} || ls -a {target}"));
        assert!(!ok(&end), "{target} is readable: {out}");
        assert!(!out.contains("TOP-SECRET"), "{target}: {out}");
    }
}

#[test]
fn the_system_is_read_only() {
    let s = svc();
    let (id, t) = s.create("rofs", "static");
    for target in [
        "/usr/kiln-escape",
        "/usr/bin/kiln-escape",
        "/etc/kiln-escape",
    ] {
        let (_, _, end) = s.sh(&id, &t, &format!("echo x > {target}"));
        assert!(!ok(&end), "wrote {target}");
        assert!(
            !std::path::Path::new(target).exists(),
            "{target} exists on the host"
        );
    }
    // …while /work and /tmp are writable.
    let (_, err, end) = s.sh(&id, &t, "echo x > /work/ok.txt && echo y > /tmp/ok.txt");
    assert!(ok(&end), "{err}");
}

#[test]
fn host_loopback_the_api_and_the_host_are_unreachable() {
    let s = svc();
    let (id, t) = s.create("lo", "static");
    let host_service = TcpListener::bind("127.0.0.1:0").unwrap();
    host_service.set_nonblocking(true).unwrap();
    let port = host_service.local_addr().unwrap().port();
    let gw = gateway(&address(s, &id, &t));
    assert!(
        !connects(s, &id, &t, "127.0.0.1", port),
        "reached a host loopback service"
    );
    assert!(
        !connects(s, &id, &t, "127.0.0.1", s.port),
        "reached the API on loopback"
    );
    assert!(
        !connects(s, &id, &t, &gw, s.port),
        "reached the API via the gateway"
    );
    assert!(
        !connects(s, &id, &t, &gw, 22),
        "reached the host's ssh port"
    );
    assert!(
        host_service.accept().is_err(),
        "the host service saw a connection"
    );
    // The egress proxy is the one thing that answers on the gateway.
    assert!(
        connects(s, &id, &t, &gw, 3128),
        "the egress proxy is not reachable"
    );
}

#[test]
fn private_link_local_and_cgnat_ranges_are_unreachable() {
    let s = svc();
    let (id, t) = s.create("priv", "static");
    for ip in [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "1.1.1.1",
    ] {
        assert!(!connects(s, &id, &t, ip, 80), "reached {ip}");
    }
}

#[test]
fn another_sandbox_is_unreachable_and_its_files_invisible() {
    let s = svc();
    let (a, ta) = s.create("a", "static");
    let (b, tb) = s.create("b", "static");
    let w = s.write(&b, &tb, &[("secret.txt", "B-SECRET")]);
    assert_eq!(w.status, 200, "{}", w.body);
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{b}/dev-server"),
        &tb,
        Some(r#"{"action":"start"}"#),
    );
    assert_eq!(r.json()["state"], "ready", "{}", r.body);
    let b_ip = address(s, &b, &tb);
    // B's server is up (the host reaches it), yet A cannot.
    assert!(std::net::TcpStream::connect((b_ip.as_str(), 5173)).is_ok());
    assert!(
        !connects(s, &a, &ta, &b_ip, 5173),
        "sandbox A reached sandbox B"
    );
    assert!(
        !connects(s, &a, &ta, &gateway(&b_ip), 3128),
        "A used B's egress proxy address"
    );
    let b_dir = common::project_dir(s, &b);
    let (out, _, _) = s.sh(
        &a,
        &ta,
        &format!(
            "cat {}/secret.txt; cat /work/../{b}/secret.txt; ls /work",
            b_dir.display()
        ),
    );
    assert!(!out.contains("B-SECRET"), "{out}");
    // Nor through the API with A's token.
    let r = s
        .call(
            "GET",
            &format!("/v1/sandboxes/{b}/files/secret.txt"),
            Some(&ta),
            None,
            None,
        )
        .unwrap();
    assert_eq!(r.status, 403);
}

#[test]
fn a_fork_bomb_is_contained_and_the_service_stays_healthy() {
    let s = svc();
    let (id, t) = s.create("bomb", "static");
    let (_, _, end) = s.exec(&id, &t, "bash", &["-c", ":(){ :|:& };:; sleep 3"], 5000);
    assert!(!matches!(end, ExecFrame::Error { .. }), "{end:?}");
    // The bomb hit the pids limit (and nothing else stopped it first).
    let hit = pids_limit_hits(&id);
    assert!(hit > 0, "pids limit never reached");
    assert_eq!(s.get("/healthz", None).unwrap().status, 200);
    let (out, _, end) = s.sh(&id, &t, "echo still-works");
    assert!(ok(&end) && out.contains("still-works"), "{end:?} {out}");
}

/// How often forks failed at the sandbox's pids limit (cgroup v1 or v2 `pids.events`).
fn pids_limit_hits(id: &str) -> u64 {
    cgroup_file(id, "pids.events")
        .lines()
        .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}

/// A file of the sandbox's pids cgroup (v1 or v2), read from the host.
fn cgroup_file(id: &str, name: &str) -> String {
    let roots = ["/sys/fs/cgroup/pids/kiln-e", "/sys/fs/cgroup/kiln-e"];
    for root in roots {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{id}-"))
            {
                return std::fs::read_to_string(e.path().join(name)).unwrap();
            }
        }
    }
    panic!("no cgroup for {id}");
}

#[test]
fn allocating_past_the_memory_limit_is_reported_as_oom_killed() {
    let s = svc();
    let (id, t) = s.create("oom", "static");
    let hog = "const a = []; for (;;) a.push(Buffer.alloc(16 << 20, 1));";
    let (_, _, end) = s.exec(&id, &t, "node", &["-e", hog], 60_000);
    assert_eq!(end, ExecFrame::OomKilled { oom_killed: true });
}

#[test]
fn an_infinite_loop_is_reported_as_timed_out() {
    let s = svc();
    let (id, t) = s.create("loop", "static");
    let (_, _, end) = s.exec(&id, &t, "bash", &["-c", "while :; do :; done"], 1000);
    assert_eq!(end, ExecFrame::TimedOut { timed_out: true });
    // Nothing of it survives in the sandbox's cgroup (seen from the host; the kernel may take
    // a moment to finish tearing the pid namespace down).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = cgroup_file(&id, "cgroup.procs");
        if left.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes survived the timeout: {left}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn path_traversal_on_the_file_api_is_refused_and_writes_nothing() {
    let s = svc();
    let (id, t) = s.create("trav", "static");
    let before = s
        .must("GET", &format!("/v1/sandboxes/{id}/files"), &t, None)
        .body;
    let bad = [
        "../escape.txt",
        "../../etc/kiln-escape",
        "/etc/kiln-escape",
        "a/../../escape.txt",
        "a/./b",
        "a//b",
        "a\\..\\b",
        "C:/escape",
        "",
        "a\u{0}b",
    ];
    for p in bad {
        // One good file with one bad one: the whole call is refused, nothing is written.
        let body = serde_json::json!({"files": [
            {"path": "good.txt", "content": "x"},
            {"path": p, "content": "escaped"},
        ]})
        .to_string();
        let r = s.must("PUT", &format!("/v1/sandboxes/{id}/files"), &t, Some(&body));
        assert_eq!(r.status, 400, "{p:?}: {}", r.body);
    }
    for p in [
        "..%2Fescape.txt",
        "%2E%2E/%2E%2E/etc/passwd",
        "a/%2E%2E/%2E%2E/x",
        "%2Fetc%2Fpasswd",
    ] {
        for m in ["GET", "DELETE"] {
            let r = s
                .call(
                    m,
                    &format!("/v1/sandboxes/{id}/files/{p}"),
                    Some(&t),
                    None,
                    None,
                )
                .unwrap();
            assert!(
                r.status == 400 || r.status == 404,
                "{m} {p}: {} {}",
                r.status,
                r.body
            );
            assert_ne!(r.status, 200);
        }
    }
    let after = s
        .must("GET", &format!("/v1/sandboxes/{id}/files"), &t, None)
        .body;
    assert_eq!(before, after, "the project changed");
    assert!(!s.state_dir.join("projects/escape.txt").exists());
    assert!(!s.state_dir.join("disks/escape.txt").exists());
    assert!(!std::path::Path::new("/etc/kiln-escape").exists());
}

#[test]
fn a_symlink_planted_in_work_does_not_lead_the_file_api_out() {
    let s = svc();
    let (id, t) = s.create("link", "static");
    let secret = s.state_dir.join("link-secret.txt");
    std::fs::write(&secret, "LINK-SECRET").unwrap();
    let (_, err, end) = s.sh(
        &id,
        &t,
        &format!(
            "ln -s {} /work/leak && ln -s / /work/root",
            secret.display()
        ),
    );
    assert!(ok(&end), "{err}");
    let r = s
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files/leak"),
            Some(&t),
            None,
            None,
        )
        .unwrap();
    assert!(
        !r.body.contains("LINK-SECRET") && r.status != 200,
        "{} {}",
        r.status,
        r.body
    );
    let r = s.write(&id, &t, &[("root/tmp/kiln-escape.txt", "x")]);
    assert_ne!(r.status, 200, "{}", r.body);
    assert!(!std::path::Path::new("/tmp/kiln-escape.txt").exists());
}

#[test]
fn egress_reaches_only_allow_listed_hosts_through_the_proxy() {
    let s = svc();
    let (id, t) = s.create("egress", "static");
    // Direct connections go nowhere.
    let (out, _, _) = s.sh(&id, &t, "curl -sS --noproxy '*' -m 5 -o /dev/null -w '%{http_code}' https://registry.npmjs.org/ || echo FAILED");
    assert!(out.contains("FAILED"), "direct egress worked: {out}");
    // A host not on the allow-list is refused by the proxy.
    let (out, _, _) = s.sh(
        &id,
        &t,
        "curl -sS -m 10 -o /dev/null https://example.com/ 2>&1; echo EXIT=$?",
    );
    assert!(
        !out.contains("EXIT=0"),
        "non-allow-listed host reached: {out}"
    );
    // The registry is reachable through the proxy.
    let (out, err, _) = s.sh(
        &id,
        &t,
        "curl -sS -m 30 -o /dev/null -w '%{http_code}' https://registry.npmjs.org/react",
    );
    assert_eq!(out.trim(), "200", "registry via proxy: {out} {err}");
}

/// Host-side fixtures that make escapes *possible* if the firewall were missing: a listener on
/// every host address (including addresses in private, link-local and CGNAT ranges), a "remote" peer behind a veth, and IP forwarding switched on. Removed on drop.
struct Targets {
    ip_forward: String,
}

const HOST_ADDRS: &[&str] = &[
    "10.123.0.1",
    "172.16.123.1",
    "192.168.123.1",
    "100.64.123.1",
    "169.254.123.1",
];
const PEER_IP: &str = "10.124.0.2";

fn sh_host(script: &str) {
    let st = std::process::Command::new("bash")
        .args(["-c", script])
        .status()
        .unwrap();
    assert!(st.success(), "{script}");
}

impl Targets {
    fn up() -> Targets {
        let ip_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        let t = Targets { ip_forward };
        let _ = t.down();
        let mut s = String::from(
            "set -e; ip netns add kilnx-peer\n\
              ip link add kilnxpeerh type veth peer name kilnxpeerp netns kilnx-peer\n\
              ip addr add 10.124.0.1/30 dev kilnxpeerh; ip link set kilnxpeerh up\n\
              ip -n kilnx-peer link set lo up; ip -n kilnx-peer link set kilnxpeerp up\n\
              ip -n kilnx-peer addr add 10.124.0.2/30 dev kilnxpeerp\n\
              ip -n kilnx-peer route add default via 10.124.0.1\n\
              echo 1 > /proc/sys/net/ipv4/ip_forward\n",
        );
        // Host addresses in the forbidden ranges (no dummy module here: on the veth).
        for a in HOST_ADDRS {
            s += &format!("ip addr add {a}/32 dev kilnxpeerh\n");
        }
        sh_host(&s);
        t
    }

    fn down(&self) -> std::io::Result<()> {
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", self.ip_forward.trim());
        let _ = std::process::Command::new("bash")
            .args(["-c", "ip link del kilnxpeerh; ip netns del kilnx-peer"])
            .stderr(std::process::Stdio::null())
            .status();
        Ok(())
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

/// A listener inside the peer namespace; returns its port.
fn listen_in_peer() -> u16 {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let ns = std::fs::File::open("/run/netns/kilnx-peer").unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind((PEER_IP, 0)).unwrap();
        tx.send(l.local_addr().unwrap().port()).unwrap();
        for c in l.incoming() {
            drop(c);
        }
    });
    rx.recv().unwrap()
}

#[test]
fn with_listeners_everywhere_and_forwarding_on_nothing_but_the_proxy_is_reachable() {
    let s = svc();
    let (id, t) = s.create("fw", "static");
    let targets = Targets::up();
    let host = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = host.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in host.incoming() {
            drop(c);
        }
    });
    let peer_port = listen_in_peer();
    // The fixtures work: the host reaches each of them.
    for a in HOST_ADDRS {
        assert!(std::net::TcpStream::connect((*a, port)).is_ok(), "{a}");
    }
    assert!(std::net::TcpStream::connect((PEER_IP, peer_port)).is_ok());
    // The sandbox reaches none of them.
    let gw = gateway(&address(s, &id, &t));
    for a in HOST_ADDRS.iter().copied().chain([gw.as_str()]) {
        assert!(
            !connects(s, &id, &t, a, port),
            "sandbox reached the host at {a}:{port}"
        );
    }
    assert!(
        !connects(s, &id, &t, PEER_IP, peer_port),
        "sandbox was forwarded to a remote host"
    );
    drop(targets);
}

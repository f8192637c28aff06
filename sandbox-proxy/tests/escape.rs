//! The escape suite: each test tries one way out of a sandbox and fails if it works.

mod common;

use common::{shared, Service};
use kiln_core::sandbox::ExecFrame;

fn svc() -> &'static Service {
    shared("e", 81)
}

#[test]
fn commands_run_as_an_unprivileged_user_in_their_own_namespaces() {
    let s = svc();
    let (id, t) = s.create("ns", "static");
    let (out, err, end) = s.sh(
        &id,
        &t,
        "id -u; hostname; echo $$; ls /work; cat /proc/1/cmdline | tr '\\0' ' '",
    );
    assert_eq!(end, ExecFrame::Exit { exit_code: 0 }, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(lines[0], "0", "runs as root inside");
    assert_eq!(lines[1], "sandbox");
    assert!(out.contains("index.html"), "{out}");
    assert!(
        !out.contains("systemd") && !out.contains("init"),
        "sees the host's pid 1: {out}"
    );
}

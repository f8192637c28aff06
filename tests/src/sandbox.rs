//! The real sandbox-proxy as a child of a test or bench: one instance name and subnet octet
//! per binary, so binaries that run at the same time never share network names.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Group;

/// Where a proxy instance lives and how it is reached.
pub struct ProxySpec<'a> {
    pub bin: &'a Path,
    pub instance: &'a str,
    pub octet: u8,
    pub port: u16,
    pub state: &'a Path,
    pub jwt_secret: &'a str,
    /// More settings (`KILN_SANDBOX_*`), e.g. a fleet member's edge URL and credential.
    pub extra: Vec<(String, String)>,
}

/// `kiln-sandbox-proxy` next to the running test or bench (`<target>/<profile>/deps/…`).
pub fn proxy_bin_beside_exe() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("a target profile dir")
        .join("kiln-sandbox-proxy")
}

/// Starts the proxy on a fresh state directory and waits for `/healthz`. Its log is
/// `<state>.log`; the process group dies with the test process.
pub fn spawn_proxy(spec: &ProxySpec<'_>) -> Result<Group, String> {
    let _ = std::fs::remove_dir_all(spec.state);
    restart_proxy(spec)
}

/// Starts the proxy on its state directory as it is (after a crash, as systemd restarts it:
/// the proxy cleans up what the last one left) and waits for `/healthz`.
pub fn restart_proxy(spec: &ProxySpec<'_>) -> Result<Group, String> {
    let state = spec.state;
    std::fs::create_dir_all(state).map_err(|e| format!("{}: {e}", state.display()))?;
    let log = std::fs::File::create(state.with_extension("log")).map_err(|e| e.to_string())?;
    let group = Group::spawn(
        Command::new(spec.bin)
            .env("KILN_SANDBOX_LISTEN", format!("127.0.0.1:{}", spec.port))
            .env("KILN_SANDBOX_STATE_DIR", state)
            .env("KILN_SANDBOX_INSTANCE", spec.instance)
            .env("KILN_SANDBOX_SUBNET_OCTET", spec.octet.to_string())
            .env("KILN_SANDBOX_JWT_SECRET", spec.jwt_secret)
            .envs(spec.extra.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log),
        Some(state),
    );
    let health = format!("http://127.0.0.1:{}/healthz", spec.port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&health).call().is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "the sandbox-proxy did not start:\n{}",
                std::fs::read_to_string(state.with_extension("log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(group)
}

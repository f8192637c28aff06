//! Configuration from flags (`--state-dir /x`) or environment (`KILN_SANDBOX_STATE_DIR=/x`);
//! a flag wins over the environment, which wins over the default.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Project directories and the service's own files. Never visible inside a sandbox.
    pub state_dir: PathBuf,
    /// Shared read-only `node_modules` layers, kept across restarts.
    pub cache_dir: PathBuf,
    /// Short tag in every host resource name (`kiln-<tag>-<slot>` netns, `kiln<tag>h<slot>`
    /// veth, `kiln_<tag>` nft table, `kiln-<tag>` cgroup), so start-up cleanup finds them.
    pub instance: String,
    /// Sandboxes get `10.<octet>.x.y/30` pairs.
    pub subnet_octet: u8,
    /// Port of the egress CONNECT proxy on each sandbox's host-side address.
    pub egress_port: u16,
    pub egress_allow: Vec<String>,
    pub jwt: JwtKey,
    pub sandbox_user: String,
    pub memory_bytes: u64,
    pub pids_max: u64,
    /// CPU quota in percent of one core.
    pub cpu_percent: u64,
    pub exec_timeout_default: Duration,
    pub exec_timeout_max: Duration,
    pub idle_timeout: Duration,
    pub max_sandboxes: usize,
    /// Running sandboxes one org may have at once (0: no cap but the host's), so one org
    /// cannot take the whole host; more is a 429 `quota_exceeded`.
    pub max_per_org: usize,
    pub max_body_bytes: usize,
    pub max_file_bytes: usize,
    pub max_files_per_call: usize,
    pub dev_server_ready_timeout: Duration,
    /// Size of each project's disk image: its files and its `node_modules` overlay's upper
    /// dir live on it, so a sandbox cannot fill the host's disk.
    pub disk_bytes: u64,
    /// Size of each tmpfs inside a sandbox (`/tmp`, `$HOME`); also charged to its memory limit.
    pub tmpfs_bytes: u64,
    /// Egress connections one sandbox may hold at once; more are refused at once.
    pub egress_max_conns: usize,
    /// How long a new egress connection may take to send its CONNECT request head.
    pub egress_head_timeout: Duration,
    /// An upgraded preview connection (HMR) that carries no bytes this long is closed, so an
    /// idle open tab does not keep its sandbox from being stopped.
    pub hmr_idle_timeout: Duration,
    /// PEM certificate chain and key: serve HTTPS (needs the `tls` cargo feature).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Membership of the edge's sandbox fleet (`--edge-url`, `--host-credential`).
    pub fleet: Option<crate::fleet::FleetConfig>,
}

#[derive(Clone)]
pub enum JwtKey {
    /// Shared HS256 secret.
    Hs256(Vec<u8>),
    /// Ed25519 public key (32 raw bytes) for EdDSA tokens.
    EdDsa(Vec<u8>),
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtKey::Hs256(_) => f.write_str("Hs256(<secret>)"),
            JwtKey::EdDsa(_) => f.write_str("EdDsa(<public key>)"),
        }
    }
}

/// ext4 needs room for its journal and metadata; smaller images are raised to this.
const MIN_DISK_MB: u64 = 16;

/// The names of every setting, as flags; the environment variable is
/// `KILN_SANDBOX_` + upper-case with `_`.
pub const SETTINGS: &[(&str, &str)] = &[
    ("listen", "address to serve the API on (127.0.0.1:8790)"),
    (
        "state-dir",
        "project files and service state (/var/lib/kiln-sandbox)",
    ),
    (
        "cache-dir",
        "shared node_modules layers (/var/cache/kiln-sandbox)",
    ),
    (
        "instance",
        "1-3 lowercase letters/digits in host resource names (k)",
    ),
    ("subnet-octet", "sandboxes use 10.<octet>.0.0/16 (88)"),
    (
        "egress-port",
        "CONNECT proxy port on each sandbox's host address (3128)",
    ),
    (
        "egress-allow",
        "comma-separated host names sandboxes may reach (npm registry host)",
    ),
    (
        "jwt-secret",
        "HS256 secret shared with the edge (>= 32 bytes)",
    ),
    (
        "jwt-public-key",
        "Ed25519 public key, base64 (instead of a secret)",
    ),
    (
        "sandbox-user",
        "non-root host user that runs sandboxes (kiln-sandbox)",
    ),
    ("memory-mb", "memory limit per sandbox (1024: dev server, npm and a headless Chromium)"),
    ("pids-max", "process and thread limit per sandbox (512: Chromium for acceptance checks beside the dev server)"),
    (
        "cpu-percent",
        "CPU quota per sandbox, percent of one core (100)",
    ),
    (
        "exec-timeout-ms",
        "default wall-clock limit per command (60000)",
    ),
    (
        "exec-timeout-max-ms",
        "largest wall-clock limit a caller may ask for (600000)",
    ),
    (
        "idle-secs",
        "stop sandboxes idle this long; files are kept (900)",
    ),
    (
        "max-sandboxes",
        "running sandboxes at once; more is a 503 (32)",
    ),
    (
        "max-per-org",
        "running sandboxes one org may have at once; more is a 429, 0 = no cap (4)",
    ),
    ("max-body-mb", "largest request body (32)"),
    ("max-file-mb", "largest single file (8)"),
    ("max-files", "most files in one write call (5000)"),
    (
        "disk-mb",
        "disk image per project for its files and node_modules overlay (1024)",
    ),
    ("tmpfs-mb", "size of each tmpfs in a sandbox, /tmp and $HOME (256)"),
    (
        "egress-max-conns",
        "egress proxy connections one sandbox may hold at once (64)",
    ),
    (
        "egress-head-timeout-secs",
        "time for an egress connection to send its CONNECT request (10)",
    ),
    (
        "hmr-idle-secs",
        "close preview WebSockets (HMR) idle this long (600)",
    ),
    (
        "tls-cert",
        "PEM certificate chain: serve HTTPS (built with --features tls)",
    ),
    ("tls-key", "PEM private key for --tls-cert"),
    (
        "edge-url",
        "join the edge's sandbox fleet: beat to <edge-url>/api/fleet/heartbeat",
    ),
    (
        "host-credential",
        "this host's fleet credential (`kiln-sandbox-proxy credential <id>`)",
    ),
    (
        "host-id",
        "with KILN_FLEET_SECRET set: sign this host's own credential for this id",
    ),
    (
        "public-url",
        "where the edge reaches this host (http(s)://<listen>)",
    ),
    ("heartbeat-ms", "how often to beat to the edge (5000)"),
];

impl Config {
    pub fn from_args_and_env(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut flags: HashMap<String, String> = HashMap::new();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None => (
                    name.to_owned(),
                    it.next().ok_or_else(|| format!("--{name} needs a value"))?,
                ),
            };
            if !SETTINGS.iter().any(|(n, _)| *n == name) {
                return Err(format!("unknown flag --{name}"));
            }
            flags.insert(name, value);
        }
        let get = |name: &str| -> Option<String> {
            flags.get(name).cloned().or_else(|| {
                let var = format!("KILN_SANDBOX_{}", name.to_uppercase().replace('-', "_"));
                env(&var).filter(|v| !v.is_empty())
            })
        };
        fn num<T: std::str::FromStr>(name: &str, v: Option<String>, d: T) -> Result<T, String> {
            match v {
                None => Ok(d),
                Some(s) => s
                    .parse()
                    .map_err(|_| format!("--{name}={s:?} is not a valid number")),
            }
        }

        let listen = get("listen").unwrap_or_else(|| "127.0.0.1:8790".into());
        let listen = listen
            .parse()
            .map_err(|e| format!("--listen={listen:?} is not an address: {e}"))?;
        let instance = get("instance").unwrap_or_else(|| "k".into());
        if instance.is_empty()
            || instance.len() > 3
            || !instance
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err("--instance must be 1-3 lowercase letters or digits".into());
        }
        let jwt = match (get("jwt-secret"), get("jwt-public-key")) {
            (Some(s), None) if s.len() >= 32 => JwtKey::Hs256(s.into_bytes()),
            (Some(_), None) => return Err("--jwt-secret must be at least 32 bytes".into()),
            (None, Some(k)) => {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(k.trim())
                    .map_err(|e| format!("--jwt-public-key is not base64: {e}"))?;
                if raw.len() != 32 {
                    return Err("--jwt-public-key must be a 32-byte Ed25519 key".into());
                }
                JwtKey::EdDsa(raw)
            }
            (Some(_), Some(_)) => {
                return Err("give either --jwt-secret or --jwt-public-key, not both".into())
            }
            (None, None) => return Err("--jwt-secret or --jwt-public-key is required".into()),
        };
        let egress_allow = match get("egress-allow") {
            Some(list) => list
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            None => vec![default_registry_host()],
        };
        let tls = match (get("tls-cert"), get("tls-key")) {
            (Some(c), Some(k)) if cfg!(feature = "tls") => Some((c.into(), k.into())),
            (Some(_), Some(_)) => return Err("this build has no TLS (cargo feature `tls`)".into()),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        let ms = |v: u64| Duration::from_millis(v);
        // A host that holds the fleet secret (a DaemonSet's pods, which share one spec) signs
        // its own credential for its id; others are given theirs.
        let credential = match (get("host-credential"), get("host-id")) {
            (Some(c), None) => Some(c),
            (None, Some(id)) => Some(crate::fleet::mint_credential(
                &env("KILN_FLEET_SECRET").unwrap_or_default(),
                &id,
            )?),
            (Some(_), Some(_)) => {
                return Err("give either --host-credential or --host-id, not both".into())
            }
            (None, None) => None,
        };
        let fleet = match (get("edge-url"), credential) {
            (Some(edge), Some(credential)) => {
                let edge = edge.trim_end_matches('/').to_owned();
                if !edge.starts_with("http://") && !edge.starts_with("https://") {
                    return Err("--edge-url must be an http:// or https:// URL".into());
                }
                if edge.starts_with("https://") && !cfg!(feature = "tls") {
                    return Err("an https --edge-url needs a build with --features tls".into());
                }
                let scheme = if tls.is_some() { "https" } else { "http" };
                Some(crate::fleet::FleetConfig {
                    edge_url: edge,
                    credential,
                    public_url: get("public-url")
                        .map(|u| u.trim_end_matches('/').to_owned())
                        .unwrap_or_else(|| format!("{scheme}://{listen}")),
                    interval: ms(num("heartbeat-ms", get("heartbeat-ms"), 5_000)?.max(100)),
                })
            }
            (None, None) => None,
            _ => return Err("--edge-url and --host-credential (or --host-id) go together".into()),
        };
        Ok(Config {
            listen,
            state_dir: get("state-dir")
                .unwrap_or_else(|| "/var/lib/kiln-sandbox".into())
                .into(),
            cache_dir: get("cache-dir")
                .unwrap_or_else(|| "/var/cache/kiln-sandbox".into())
                .into(),
            instance,
            subnet_octet: num("subnet-octet", get("subnet-octet"), 88)?,
            egress_port: num("egress-port", get("egress-port"), 3128)?,
            egress_allow,
            jwt,
            sandbox_user: get("sandbox-user").unwrap_or_else(|| "kiln-sandbox".into()),
            memory_bytes: num::<u64>("memory-mb", get("memory-mb"), 1024)? << 20,
            pids_max: num("pids-max", get("pids-max"), 512)?,
            cpu_percent: num("cpu-percent", get("cpu-percent"), 100)?,
            exec_timeout_default: ms(num("exec-timeout-ms", get("exec-timeout-ms"), 60_000)?),
            exec_timeout_max: ms(num(
                "exec-timeout-max-ms",
                get("exec-timeout-max-ms"),
                600_000,
            )?),
            idle_timeout: Duration::from_secs(num("idle-secs", get("idle-secs"), 900)?),
            max_sandboxes: num("max-sandboxes", get("max-sandboxes"), 32)?,
            max_per_org: num("max-per-org", get("max-per-org"), 4)?,
            max_body_bytes: num::<usize>("max-body-mb", get("max-body-mb"), 32)? << 20,
            max_file_bytes: num::<usize>("max-file-mb", get("max-file-mb"), 8)? << 20,
            max_files_per_call: num("max-files", get("max-files"), 5000)?,
            dev_server_ready_timeout: Duration::from_secs(60),
            disk_bytes: num::<u64>("disk-mb", get("disk-mb"), 1024)?.max(MIN_DISK_MB) << 20,
            tmpfs_bytes: num::<u64>("tmpfs-mb", get("tmpfs-mb"), 256)? << 20,
            egress_max_conns: num::<usize>("egress-max-conns", get("egress-max-conns"), 64)?.max(1),
            egress_head_timeout: Duration::from_secs(num(
                "egress-head-timeout-secs",
                get("egress-head-timeout-secs"),
                10,
            )?),
            hmr_idle_timeout: Duration::from_secs(num("hmr-idle-secs", get("hmr-idle-secs"), 600)?),
            tls,
            fleet,
        })
    }

    /// Host-side and sandbox-side addresses of a slot's /30.
    pub fn slot_addrs(&self, slot: u32) -> (Ipv4Addr, Ipv4Addr) {
        let third = (slot / 64) as u8;
        let base = ((slot % 64) * 4) as u8;
        (
            Ipv4Addr::new(10, self.subnet_octet, third, base + 1),
            Ipv4Addr::new(10, self.subnet_octet, third, base + 2),
        )
    }

    pub fn netns_name(&self, slot: u32) -> String {
        format!("kiln-{}-{slot}", self.instance)
    }

    pub fn veth_host(&self, slot: u32) -> String {
        format!("kiln{}h{slot}", self.instance)
    }

    pub fn nft_table(&self) -> String {
        format!("kiln_{}", self.instance)
    }

    pub fn cgroup_base(&self) -> String {
        format!("kiln-{}", self.instance)
    }
}

/// The npm registry's host as npm is configured on this machine, else registry.npmjs.org.
fn default_registry_host() -> String {
    let out = std::process::Command::new("npm")
        .args(["config", "get", "registry"])
        .stderr(std::process::Stdio::null())
        .output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|url| host_of_url(url.trim()))
        .unwrap_or_else(|| "registry.npmjs.org".into())
}

fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let host = rest.split(['/', ':']).next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_args_and_env(args.iter().map(|s| s.to_string()), |k| env.get(k).cloned())
    }

    #[test]
    fn flags_override_environment_and_defaults_fill_the_rest() {
        let secret = "s".repeat(32);
        let c = cfg(
            &["--memory-mb", "128", "--instance=t1"],
            &[
                ("KILN_SANDBOX_JWT_SECRET", &secret),
                ("KILN_SANDBOX_MEMORY_MB", "64"),
                ("KILN_SANDBOX_EGRESS_ALLOW", "a.example, B.example"),
            ],
        )
        .unwrap();
        assert_eq!(c.memory_bytes, 128 << 20);
        assert_eq!(c.instance, "t1");
        assert_eq!(c.egress_allow, vec!["a.example", "b.example"]);
        assert_eq!(c.pids_max, 512);
        assert_eq!(c.disk_bytes, 1024 << 20);
        assert_eq!(c.egress_max_conns, 64);
        assert_eq!(c.hmr_idle_timeout, Duration::from_secs(600));
        assert_eq!(c.max_per_org, 4);
        assert_eq!(c.veth_host(12), "kilnt1h12");
        let c = cfg(
            &[],
            &[
                ("KILN_SANDBOX_JWT_SECRET", &secret),
                ("KILN_SANDBOX_MAX_PER_ORG", "2"),
            ],
        )
        .unwrap();
        assert_eq!(c.max_per_org, 2);
    }

    #[test]
    fn a_host_with_the_fleet_secret_signs_its_own_credential() {
        let s = "s".repeat(32);
        let fleet = "f".repeat(32);
        let base = [
            "--jwt-secret",
            s.as_str(),
            "--edge-url",
            "http://127.0.0.1:1",
        ];
        let c = cfg(
            &[&base[..], &["--host-id", "node-7"]].concat(),
            &[("KILN_FLEET_SECRET", &fleet)],
        )
        .unwrap();
        assert_eq!(
            c.fleet.unwrap().credential,
            crate::fleet::mint_credential(&fleet, "node-7").unwrap()
        );
        // Without the secret, with a bad id, or with both ways at once: refused.
        assert!(cfg(&[&base[..], &["--host-id", "node-7"]].concat(), &[]).is_err());
        let env = [("KILN_FLEET_SECRET", fleet.as_str())];
        assert!(cfg(&[&base[..], &["--host-id", "Node_7"]].concat(), &env).is_err());
        let both = [&base[..], &["--host-id", "n", "--host-credential", "x"]].concat();
        assert!(cfg(&both, &env).is_err());
        // An id from the environment, as a DaemonSet gives its node's name.
        let env = [
            ("KILN_FLEET_SECRET", fleet.as_str()),
            ("KILN_SANDBOX_HOST_ID", "node-8"),
        ];
        assert!(cfg(&base, &env).unwrap().fleet.is_some());
    }

    #[test]
    fn missing_or_short_keys_and_bad_instances_are_refused() {
        assert!(cfg(&[], &[]).is_err());
        assert!(cfg(&["--jwt-secret", "short"], &[]).is_err());
        let s = "s".repeat(32);
        assert!(cfg(&["--jwt-secret", &s, "--instance", "Bad!"], &[]).is_err());
        assert!(cfg(&["--jwt-secret", &s, "--nope", "1"], &[]).is_err());
    }

    #[test]
    fn slots_get_disjoint_slash_30s() {
        let s = "s".repeat(32);
        let c = cfg(&["--jwt-secret", &s], &[]).unwrap();
        assert_eq!(
            c.slot_addrs(0),
            (Ipv4Addr::new(10, 88, 0, 1), Ipv4Addr::new(10, 88, 0, 2))
        );
        assert_eq!(
            c.slot_addrs(65),
            (Ipv4Addr::new(10, 88, 1, 5), Ipv4Addr::new(10, 88, 1, 6))
        );
        assert_eq!(
            host_of_url("https://registry.npmjs.org/"),
            Some("registry.npmjs.org".into())
        );
    }
}

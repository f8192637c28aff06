//! docs/DEPLOY.md, followed as far as a machine without Cloudflare credentials can go: the
//! production wrangler configuration is accepted by `wrangler deploy --dry-run`; the sandbox
//! host's binary, built as the guide says (release, static musl, TLS), starts with a
//! certificate and answers over HTTPS; the systemd unit is valid and uses only flags the
//! binary has.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln_e2e::process::Group;
use kiln_e2e::repo_root;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The guide's fenced `sh` blocks, joined.
fn guide() -> String {
    std::fs::read_to_string(repo_root().join("docs/DEPLOY.md")).unwrap()
}

#[test]
fn wrangler_accepts_the_production_configuration() {
    assert!(guide().contains("npx wrangler deploy --env production"));
    let root = repo_root();
    let out = std::env::temp_dir().join(format!("kiln-deploy-dry-{}", std::process::id()));
    let (ok, text) = run(Command::new(root.join("node_modules/.bin/wrangler"))
        .current_dir(&root)
        .args(["deploy", "--dry-run", "--env", "production", "--outdir"])
        .arg(&out)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("CI", "true"));
    let _ = std::fs::remove_dir_all(&out);
    assert!(ok, "{text}");
    // Every binding the Worker reads, under the production names.
    for binding in [
        "PROJECT_ROOM",
        "RATE_LIMITER",
        "kiln-artifacts",
        "kiln-notify",
        "KILN_APP_ORIGINS",
        "KILN_PREVIEW_URL",
        "KILN_SITES_URL",
        "KILN_SANDBOX_URL",
    ] {
        assert!(text.contains(binding), "no {binding} in:\n{text}");
    }
    assert!(text.contains("\"production\""), "{text}");
    assert!(
        !text.contains("localhost"),
        "a local address in production:\n{text}"
    );
}

/// The musl release binary the guide's `cargo build` makes (built here, in its own target
/// directory, so it never waits on the test run's).
fn release_binary() -> PathBuf {
    let guide = guide();
    let build = "cargo build --release -p kiln-sandbox-proxy --features tls --target x86_64-unknown-linux-musl";
    assert!(guide.contains(build), "the guide's build command changed");
    let target = repo_root().join("target/deploy");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args: Vec<&str> = build.split(' ').skip(1).collect();
    let (ok, text) = run(Command::new(cargo)
        .current_dir(repo_root())
        .args(args)
        .env("CARGO_TARGET_DIR", &target));
    assert!(ok, "{text}");
    target.join("x86_64-unknown-linux-musl/release/kiln-sandbox-proxy")
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not a 64-bit ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (size, count) = (u16_at(0x36), u16_at(0x38));
    (0..count).any(|i| {
        let at = phoff + i * size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3
    })
}

fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("fullchain.pem"), dir.join("privkey.pem"));
    let (ok, text) = run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=sandbox-1.example.com"])
        .args(["-addext", "subjectAltName=DNS:sandbox-1.example.com"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    assert!(ok, "{text}");
    (cert, key)
}

#[test]
fn the_release_sandbox_proxy_is_static_and_serves_https() {
    let bin = release_binary();
    // Static: no program interpreter (dynamic loader), so it runs on any x86-64 Linux.
    assert!(
        !has_interpreter(&std::fs::read(&bin).unwrap()),
        "{} is dynamic",
        bin.display()
    );
    let dir = std::env::temp_dir().join(format!("kiln-deploy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = self_signed(&dir);
    let state = dir.join("state");
    let port = kiln_e2e::free_port();
    let log = std::fs::File::create(dir.join("proxy.log")).unwrap();
    let mut proxy = Group::spawn(
        Command::new(&bin)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--instance", "dp"])
            .args(["--subnet-octet", "217", "--state-dir"])
            .arg(&state)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env(
                "KILN_SANDBOX_JWT_SECRET",
                "deploy-test-secret-that-is-32-bytes-long",
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log),
        Some(&dir),
    );
    let url = format!("https://sandbox-1.example.com:{port}/healthz");
    let resolve = format!("sandbox-1.example.com:{port}:127.0.0.1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (ok, text) = run(Command::new("curl")
            .args(["-fsS", "--max-time", "5", "--cacert"])
            .arg(&cert)
            .args(["--resolve", &resolve, &url]));
        if ok {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "no HTTPS answer: {text}\n{}",
            std::fs::read_to_string(dir.join("proxy.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.contains("\"ok\":true"), "{body}");
    // Plain HTTP on the TLS port is refused, not served.
    let (plain, _) = run(Command::new("curl").args([
        "-fsS",
        "--max-time",
        "5",
        &format!("http://127.0.0.1:{port}/healthz"),
    ]));
    assert!(!plain, "plain HTTP was answered");
    proxy.stop();
}

#[test]
fn the_systemd_unit_is_valid_and_uses_flags_the_proxy_has() {
    let unit_path = repo_root().join("deploy/systemd/kiln-sandbox-proxy.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(guide().contains("deploy/systemd/kiln-sandbox-proxy.service"));
    let exec: String = unit
        .lines()
        .skip_while(|l| !l.starts_with("ExecStart="))
        .take_while(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('\\').trim())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        exec.starts_with("ExecStart=/usr/local/bin/kiln-sandbox-proxy "),
        "{exec}"
    );
    let help = run(Command::new(kiln_e2e::sandbox::proxy_bin_beside_exe()).arg("--help")).1;
    let flags: Vec<&str> = exec.split(' ').filter(|w| w.starts_with("--")).collect();
    assert!(flags.contains(&"--tls-cert") && flags.contains(&"--listen"));
    for flag in flags {
        assert!(
            help.contains(flag),
            "{flag} is not a flag of the proxy:\n{help}"
        );
    }
    // systemd's own check, where systemd is installed (it is on these machines).
    if Path::new("/usr/bin/systemd-analyze").exists() {
        let (ok, text) = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit_path));
        // verify also reports the binary missing from /usr/local/bin here; nothing else.
        let problems: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter(|l| !l.contains("/usr/local/bin/kiln-sandbox-proxy"))
            .collect();
        assert!(ok || problems.is_empty(), "{text}");
        assert!(problems.is_empty(), "{problems:?}");
    }
}

/// The release image's name, as the guide builds it and the DaemonSet runs it.
const IMAGE: &str = "registry.example.com/kiln/sandbox-proxy:0.1.0";

fn flags_of_the_proxy() -> String {
    run(Command::new(kiln_e2e::sandbox::proxy_bin_beside_exe()).arg("--help")).1
}

#[test]
fn the_daemonset_parses_and_names_its_image_privileges_and_fleet_identity() {
    use yaml_rust2::{Yaml, YamlLoader};
    let path = "deploy/kubernetes/sandbox-proxy.yaml";
    assert!(guide().contains(&format!("kubectl apply -f {path}")));
    let docs = YamlLoader::load_from_str(&std::fs::read_to_string(repo_root().join(path)).unwrap())
        .expect("the manifest is YAML");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Namespace", "DaemonSet"]);
    let ds = &docs[1];
    assert_eq!(ds["apiVersion"].as_str(), Some("apps/v1"));
    assert_eq!(ds["metadata"]["namespace"], docs[0]["metadata"]["name"]);
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    assert_eq!(&ds["spec"]["selector"]["matchLabels"], labels);
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(
        pod["hostNetwork"].as_bool(),
        Some(true),
        "sandboxes' veths live on the node"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"].as_str(), Some(IMAGE));
    assert_eq!(c["securityContext"]["privileged"].as_bool(), Some(true));
    assert_eq!(c["securityContext"]["runAsUser"].as_i64(), Some(0));

    // Its arguments are the proxy's flags, and say where it listens, its TLS and the edge.
    let args: Vec<&str> = c["args"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let help = flags_of_the_proxy();
    let mut value = std::collections::HashMap::new();
    for pair in args.chunks(2) {
        assert!(pair[0].starts_with("--") && pair.len() == 2, "{args:?}");
        assert!(
            help.contains(pair[0]),
            "{} is not a flag of the proxy:\n{help}",
            pair[0]
        );
        value.insert(pair[0], pair[1]);
    }
    for flag in [
        "--listen",
        "--tls-cert",
        "--tls-key",
        "--edge-url",
        "--public-url",
    ] {
        assert!(value.contains_key(flag), "no {flag}");
    }
    assert!(value["--edge-url"].starts_with("https://"));
    let port: i64 = value["--listen"]
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(value["--public-url"].ends_with(&format!(":{port}")));
    assert_eq!(c["ports"][0]["containerPort"].as_i64(), Some(port));
    assert_eq!(c["ports"][0]["hostPort"].as_i64(), Some(port));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"].as_str(), Some("/healthz"));
        assert_eq!(c[probe]["httpGet"]["port"].as_i64(), Some(port));
        assert_eq!(c[probe]["httpGet"]["scheme"].as_str(), Some("HTTPS"));
    }

    // Each pod is its own fleet host: its node's name is its id, and with the fleet secret it
    // signs its own credential (no per-host credential can be put in one shared spec).
    let env: Vec<&Yaml> = c["env"].as_vec().unwrap().iter().collect();
    let var = |name: &str| {
        *env.iter()
            .find(|e| e["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(
        var("NODE_NAME")["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    assert_eq!(
        var("KILN_SANDBOX_HOST_ID")["value"].as_str(),
        Some("$(NODE_NAME)")
    );
    assert!(value["--public-url"].contains("$(NODE_NAME)"));
    assert!(help.contains("--host-id"));
    for secret in ["KILN_SANDBOX_JWT_SECRET", "KILN_FLEET_SECRET"] {
        assert!(
            !var(secret)["valueFrom"]["secretKeyRef"]["key"].is_badvalue(),
            "{secret}"
        );
    }

    // Every mount has its volume; the certificate is where --tls-cert looks.
    let volumes: Vec<&str> = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for m in c["volumeMounts"].as_vec().unwrap() {
        let name = m["name"].as_str().unwrap();
        assert!(volumes.contains(&name), "mount {name} has no volume");
        if name == "tls" {
            assert!(value["--tls-cert"].starts_with(m["mountPath"].as_str().unwrap()));
        }
    }
}

#[test]
fn the_image_recipe_fetches_everything_while_it_is_built() {
    let path = "deploy/oci/Containerfile";
    let recipe = std::fs::read_to_string(repo_root().join(path)).unwrap();
    let build = format!("docker build -f {path} -t {IMAGE} deploy/oci");
    assert!(
        guide().contains(&build),
        "the guide builds {IMAGE} so: {build}"
    );
    let steps: Vec<&str> = recipe
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with(' '))
        .collect();
    assert!(steps[0].starts_with("FROM debian:12"), "{steps:?}");
    // The same packages as the guide's VM.
    let guide = guide();
    let vm = guide
        .split("apt-get install -y ")
        .nth(1)
        .unwrap()
        .split("\n```")
        .next()
        .unwrap()
        .replace("\\\n", " ");
    for pkg in vm
        .split_whitespace()
        .take_while(|w| !w.starts_with("useradd"))
    {
        assert!(recipe.contains(pkg), "{pkg} is on the VM, not in the image");
    }
    assert!(steps.contains(&"COPY kiln-sandbox-proxy /usr/local/bin/kiln-sandbox-proxy"));
    let layers = "RUN /usr/local/bin/kiln-sandbox-proxy layers --cache-dir /var/cache/kiln-sandbox";
    assert!(steps.contains(&layers), "{steps:?}");
    assert_eq!(
        steps.last(),
        Some(&"ENTRYPOINT [\"/usr/local/bin/kiln-sandbox-proxy\"]")
    );
    // What the image's `layers` step does, done here: every layer is installed and listed
    // (at once where the proxy's own tests installed them already).
    let cache = "/var/cache/kiln-sandbox";
    let (ok, text) = run(
        Command::new(kiln_e2e::sandbox::proxy_bin_beside_exe()).args([
            "layers",
            "--cache-dir",
            cache,
        ]),
    );
    assert!(ok, "{text}");
    let dirs: Vec<&str> = text.lines().filter(|l| l.starts_with(cache)).collect();
    assert!(dirs.len() >= 2, "{text}");
    for d in dirs {
        assert!(
            Path::new(d).join(".package-lock.json").exists(),
            "{d} is not installed"
        );
    }
}

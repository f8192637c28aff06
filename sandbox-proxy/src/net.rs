//! Per-sandbox network: a network namespace joined to the host by a veth pair on its own /30,
//! and one nft table per service instance that lets a sandbox talk to nothing but the egress
//! proxy on its host-side address. No forwarding out of (or into) a sandbox at all: the host,
//! loopback, private, link-local and CGNAT ranges and other sandboxes are unreachable because
//! *everything* but the proxy is.

use crate::config::Config;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

#[derive(Debug, Clone)]
pub struct SandboxNet {
    pub netns: String,
    pub veth: String,
    pub host_ip: Ipv4Addr,
    pub sandbox_ip: Ipv4Addr,
}

impl SandboxNet {
    pub fn netns_path(&self) -> String {
        format!("/run/netns/{}", self.netns)
    }
}

/// Creates the instance's nft table (replacing any leftover).
pub fn install_firewall(cfg: &Config) -> io::Result<()> {
    let t = cfg.nft_table();
    let veths = format!("kiln{}h*", cfg.instance);
    let port = cfg.egress_port;
    // Deleting first makes this idempotent; `nft -f` applies the file atomically.
    let _ = run("nft", &["delete", "table", "inet", &t]);
    let rules = format!(
        r#"table inet {t} {{
  set proxies {{
    type ifname . ipv4_addr
  }}
  chain input {{
    type filter hook input priority -10; policy accept;
    iifname "{veths}" ct state established,related accept
    iifname . ip daddr @proxies tcp dport {port} accept
    iifname "{veths}" counter reject with icmpx admin-prohibited
  }}
  chain forward {{
    type filter hook forward priority -10; policy accept;
    iifname "{veths}" counter reject with icmpx admin-prohibited
    oifname "{veths}" counter reject with icmpx admin-prohibited
  }}
}}
"#
    );
    run_stdin("nft", &["-f", "-"], &rules)
}

pub fn remove_firewall(cfg: &Config) {
    let _ = run("nft", &["delete", "table", "inet", &cfg.nft_table()]);
}

pub fn firewall_exists(cfg: &Config) -> bool {
    run("nft", &["list", "table", "inet", &cfg.nft_table()]).is_ok()
}

/// Creates slot's namespace and veth pair: host side `10.o.x.y+1/30`, sandbox `eth0` `+2`,
/// default route via the host side (where only the egress proxy answers).
pub fn create(cfg: &Config, slot: u32) -> io::Result<SandboxNet> {
    let netns = cfg.netns_name(slot);
    let veth = cfg.veth_host(slot);
    let peer = format!("kiln{}p{slot}", cfg.instance);
    let (host_ip, sandbox_ip) = cfg.slot_addrs(slot);
    let net = SandboxNet {
        netns: netns.clone(),
        veth: veth.clone(),
        host_ip,
        sandbox_ip,
    };
    let result = (|| {
        run("ip", &["netns", "add", &netns])?;
        run(
            "ip",
            &[
                "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &netns,
            ],
        )?;
        run(
            "ip",
            &["addr", "add", &format!("{host_ip}/30"), "dev", &veth],
        )?;
        run("ip", &["link", "set", &veth, "up"])?;
        let inside = format!(
            "link set lo up\nlink set {peer} name eth0\naddr add {sandbox_ip}/30 dev eth0\n\
             link set eth0 up\nroute add default via {host_ip}\n"
        );
        run_stdin("ip", &["-n", &netns, "-batch", "-"], &inside)?;
        // The egress proxy answers this sandbox on its own gateway address only.
        run(
            "nft",
            &[
                "add",
                "element",
                "inet",
                &cfg.nft_table(),
                "proxies",
                &proxy_element(&net),
            ],
        )
    })();
    if let Err(e) = result {
        destroy(cfg, &net);
        return Err(e);
    }
    Ok(net)
}

/// Removes the namespace (which takes the veth pair with it) and the host veth if it is
/// still there. Processes still inside must be gone first (the cgroup is destroyed before).
fn proxy_element(net: &SandboxNet) -> String {
    format!("{{ \"{}\" . {} }}", net.veth, net.host_ip)
}

pub fn destroy(cfg: &Config, net: &SandboxNet) {
    let table = cfg.nft_table();
    let _ = run(
        "nft",
        &[
            "delete",
            "element",
            "inet",
            &table,
            "proxies",
            &proxy_element(net),
        ],
    );
    let _ = run("ip", &["link", "del", &net.veth]);
    let _ = run("ip", &["netns", "del", &net.netns]);
}

/// Namespaces and veths of this instance that exist on the host.
pub fn leftovers(cfg: &Config) -> (Vec<String>, Vec<String>) {
    let ns_prefix = format!("kiln-{}-", cfg.instance);
    let veth_prefix = format!("kiln{}h", cfg.instance);
    let netns = output("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&ns_prefix))
        .map(str::to_owned)
        .collect();
    let veths = output("ip", &["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|n| is_slot_name(n, &veth_prefix))
        .map(str::to_owned)
        .collect();
    (netns, veths)
}

/// `prefix` then a slot number only: instance `a`'s prefix `kilnah` must not claim instance
/// `ah`'s `kilnahh0`.
fn is_slot_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Kills whatever runs in the instance's leftover namespaces and removes them and their veths.
pub fn cleanup_leftovers(cfg: &Config) -> usize {
    let (netns, veths) = leftovers(cfg);
    let n = netns.len() + veths.len();
    for ns in &netns {
        for pid in output("ip", &["netns", "pids", ns]).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = run("ip", &["netns", "del", ns]);
    }
    for v in &veths {
        let _ = run("ip", &["link", "del", v]);
    }
    n
}

fn run(prog: &str, args: &[&str]) -> io::Result<()> {
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn run_stdin(prog: &str, args: &[&str], input: &str) -> io::Result<()> {
    use std::io::Write;
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no stdin"))?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn output(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_veth_belongs_to_one_instance_only() {
        assert!(is_slot_name("kilnah12", "kilnah"));
        assert!(!is_slot_name("kilnahh0", "kilnah"));
        assert!(!is_slot_name("kilnah", "kilnah"));
    }
}

//! cgroup limits (memory, pids, CPU) for one sandbox, on cgroup v2 (production) or v1 (these
//! machines). The version is detected once at start-up; everything else is one code path over
//! a list of (directory, file, value) writes.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = "/sys/fs/cgroup";
const CPU_PERIOD_US: u64 = 100_000;

/// (index into the cgroup's directories, file name, value).
type LimitWrite = (usize, &'static str, String);

#[derive(Debug, Clone)]
pub enum Hierarchy {
    /// One unified tree with memory, pids and cpu controllers.
    V2 { root: PathBuf },
    /// One tree per controller.
    V1 {
        memory: PathBuf,
        pids: PathBuf,
        cpu: PathBuf,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: u64,
    pub pids_max: u64,
    pub cpu_percent: u64,
}

/// The service's cgroup parent (`kiln-<instance>`) in every hierarchy it uses.
#[derive(Debug, Clone)]
pub struct Cgroups {
    pub hierarchy: Hierarchy,
    base: String,
}

/// One sandbox's cgroup (one directory per hierarchy).
#[derive(Debug, Clone)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
    /// `cgroup.procs` files to write "0" to from `pre_exec` (pre-allocated: no allocation
    /// after fork).
    procs: Vec<CString>,
    oom_file: PathBuf,
}

impl Hierarchy {
    pub fn detect() -> Result<Hierarchy, String> {
        let root = Path::new(ROOT);
        if let Ok(c) = fs::read_to_string(root.join("cgroup.controllers")) {
            let has = |n: &str| c.split_whitespace().any(|x| x == n);
            if has("memory") && has("pids") && has("cpu") {
                return Ok(Hierarchy::V2 { root: root.into() });
            }
        }
        let v1 = |n: &str| root.join(n);
        if v1("memory").join("memory.limit_in_bytes").exists()
            && v1("pids").join("cgroup.procs").exists()
            && v1("cpu").join("cpu.cfs_quota_us").exists()
        {
            return Ok(Hierarchy::V1 {
                memory: v1("memory"),
                pids: v1("pids"),
                cpu: v1("cpu"),
            });
        }
        Err(
            "no usable cgroup hierarchy: need cgroup v2 with memory, pids and cpu \
             controllers, or v1 memory, pids and cpu hierarchies"
                .into(),
        )
    }

    pub fn name(&self) -> &'static str {
        match self {
            Hierarchy::V2 { .. } => "v2",
            Hierarchy::V1 { .. } => "v1",
        }
    }

    fn roots(&self) -> Vec<&Path> {
        match self {
            Hierarchy::V2 { root } => vec![root],
            Hierarchy::V1 { memory, pids, cpu } => vec![memory, pids, cpu],
        }
    }
}

impl Cgroups {
    /// Creates (or re-uses) the parent `kiln-<instance>` cgroups.
    pub fn init(hierarchy: Hierarchy, base: &str) -> io::Result<Cgroups> {
        let cg = Cgroups {
            hierarchy,
            base: base.to_owned(),
        };
        for root in cg.hierarchy.roots() {
            fs::create_dir_all(root.join(&cg.base))?;
        }
        if let Hierarchy::V2 { root } = &cg.hierarchy {
            // Delegate the controllers down to each sandbox's cgroup.
            write(&root.join("cgroup.subtree_control"), "+memory +pids +cpu")?;
            write(
                &root.join(&cg.base).join("cgroup.subtree_control"),
                "+memory +pids +cpu",
            )?;
        }
        Ok(cg)
    }

    /// A new cgroup for one sandbox with `limits` applied.
    pub fn create(&self, name: &str, limits: Limits) -> io::Result<Cgroup> {
        let quota = CPU_PERIOD_US * limits.cpu_percent / 100;
        let (dirs, writes, oom_file): (Vec<PathBuf>, Vec<LimitWrite>, PathBuf) =
            match &self.hierarchy {
                Hierarchy::V2 { root } => {
                    let d = root.join(&self.base).join(name);
                    (
                        vec![d.clone()],
                        vec![
                            (0, "memory.max", limits.memory_bytes.to_string()),
                            (0, "memory.swap.max", "0".into()),
                            (0, "pids.max", limits.pids_max.to_string()),
                            (0, "cpu.max", format!("{quota} {CPU_PERIOD_US}")),
                        ],
                        d.join("memory.events"),
                    )
                }
                Hierarchy::V1 { memory, pids, cpu } => {
                    let m = memory.join(&self.base).join(name);
                    (
                        vec![
                            m.clone(),
                            pids.join(&self.base).join(name),
                            cpu.join(&self.base).join(name),
                        ],
                        vec![
                            (0, "memory.limit_in_bytes", limits.memory_bytes.to_string()),
                            (
                                0,
                                "memory.memsw.limit_in_bytes",
                                limits.memory_bytes.to_string(),
                            ),
                            (1, "pids.max", limits.pids_max.to_string()),
                            (2, "cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                            (2, "cpu.cfs_quota_us", quota.to_string()),
                        ],
                        m.join("memory.oom_control"),
                    )
                }
            };
        for d in &dirs {
            match fs::create_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        for (i, file, value) in writes {
            let p = dirs[i].join(file);
            // The swap files are absent without swap accounting; everything else must work.
            if (file == "memory.swap.max" || file == "memory.memsw.limit_in_bytes") && !p.exists() {
                continue;
            }
            write(&p, &value)?;
        }
        let procs = dirs
            .iter()
            .map(|d| CString::new(d.join("cgroup.procs").as_os_str().as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(io::Error::other)?;
        Ok(Cgroup {
            dirs,
            procs,
            oom_file,
        })
    }

    /// Names of the sandbox cgroups under our parent (for start-up cleanup).
    pub fn leftovers(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for root in self.hierarchy.roots() {
            if let Ok(rd) = fs::read_dir(root.join(&self.base)) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        let n = e.file_name().to_string_lossy().into_owned();
                        if !names.contains(&n) {
                            names.push(n);
                        }
                    }
                }
            }
        }
        names
    }

    pub fn open(&self, name: &str) -> Cgroup {
        let dirs: Vec<PathBuf> = self
            .hierarchy
            .roots()
            .iter()
            .map(|r| r.join(&self.base).join(name))
            .collect();
        let oom_file = match &self.hierarchy {
            Hierarchy::V2 { .. } => dirs[0].join("memory.events"),
            Hierarchy::V1 { .. } => dirs[0].join("memory.oom_control"),
        };
        Cgroup {
            procs: Vec::new(),
            dirs,
            oom_file,
        }
    }

    /// Removes the parent cgroups (after every sandbox's own is gone).
    pub fn remove_base(&self) {
        for root in self.hierarchy.roots() {
            let _ = fs::remove_dir(root.join(&self.base));
        }
    }

    /// Whether any cgroup of this service exists (tests: nothing left behind).
    pub fn base_exists(&self) -> bool {
        self.hierarchy
            .roots()
            .iter()
            .any(|r| r.join(&self.base).exists())
    }
}

impl Cgroup {
    /// Called in the child between fork and exec: moves the calling process into this
    /// cgroup. Only raw syscalls on pre-allocated strings.
    pub fn attach_self(&self) -> io::Result<()> {
        for p in &self.procs {
            // SAFETY: `p` is a valid NUL-terminated path; the buffer is a static byte string.
            unsafe {
                let fd = nix::libc::open(p.as_ptr(), nix::libc::O_WRONLY | nix::libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let n = nix::libc::write(fd, b"0".as_ptr().cast(), 1);
                nix::libc::close(fd);
                if n != 1 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// How many times the kernel's OOM killer fired in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        fs::read_to_string(&self.oom_file)
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0)
    }

    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        for d in &self.dirs {
            if let Ok(s) = fs::read_to_string(d.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Kills every process in the cgroup and removes it.
    pub async fn destroy(&self) {
        for _ in 0..200 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for d in &self.dirs {
            for _ in 0..100 {
                match fs::remove_dir(d) {
                    Err(e) if e.kind() == io::ErrorKind::ResourceBusy => {
                        tokio::time::sleep(Duration::from_millis(10)).await
                    }
                    _ => break,
                }
            }
        }
    }
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let mut r = [0u8; 6];
        crate::random_bytes(&mut r).unwrap();
        let d = std::env::temp_dir().join(format!("kiln-cg-{tag}-{}", crate::files::hex(&r)));
        fs::create_dir_all(&d).unwrap();
        d
    }

    const LIMITS: Limits = Limits {
        memory_bytes: 256 << 20,
        pids_max: 64,
        cpu_percent: 50,
    };

    /// The same code path writes v2's unified files (checked on a scratch tree: these
    /// machines run v1, production runs v2).
    #[test]
    fn v2_limits_go_to_the_unified_files() {
        let root = scratch("v2");
        let cg = Cgroups::init(Hierarchy::V2 { root: root.clone() }, "kiln-t").unwrap();
        assert_eq!(
            fs::read_to_string(root.join("kiln-t/cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );
        let c = cg.create("p1-0", LIMITS).unwrap();
        let d = root.join("kiln-t/p1-0");
        let read = |f: &str| fs::read_to_string(d.join(f)).unwrap();
        assert_eq!(read("memory.max"), (256u64 << 20).to_string());
        assert_eq!(read("pids.max"), "64");
        assert_eq!(read("cpu.max"), "50000 100000");
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(c.oom_kills(), 1);
        assert_eq!(cg.leftovers(), vec!["p1-0".to_string()]);
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn v1_limits_go_to_one_directory_per_controller() {
        let root = scratch("v1");
        let h = Hierarchy::V1 {
            memory: root.join("memory"),
            pids: root.join("pids"),
            cpu: root.join("cpu"),
        };
        let cg = Cgroups::init(h, "kiln-t").unwrap();
        let c = cg.create("p1-0", LIMITS).unwrap();
        let read = |f: &str| fs::read_to_string(root.join(f)).unwrap();
        assert_eq!(
            read("memory/kiln-t/p1-0/memory.limit_in_bytes"),
            (256u64 << 20).to_string()
        );
        assert_eq!(read("pids/kiln-t/p1-0/pids.max"), "64");
        assert_eq!(read("cpu/kiln-t/p1-0/cpu.cfs_quota_us"), "50000");
        fs::write(
            root.join("memory/kiln-t/p1-0/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(c.oom_kills(), 2);
        fs::remove_dir_all(root).unwrap();
    }
}

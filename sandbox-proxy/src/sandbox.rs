//! Sandboxes and their lifecycle: create (idempotent per project), start on demand, stop
//! when idle (files kept), delete (nothing left), start-up cleanup of what a crash left.

use crate::cgroups::{Cgroups, Limits};
use crate::config::Config;
use crate::devserver::DevServer;
use crate::disk::Disk;
use crate::error::{ApiError, ApiResult};
use crate::files::ProjectFs;
use crate::metrics::Metrics;
use crate::runtime::{Place, SandboxUser};
use crate::{egress, net, templates};
use kiln_core::sandbox::{SandboxClaims, Template};
use kiln_core::{ErrorCode, ProjectPath};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Sandbox {
    pub id: String,
    pub template: Template,
    /// The project's files (`/work`), on its disk image.
    pub dir: PathBuf,
    pub disk: Disk,
    /// Serialises mounting and unmounting the disk image; one per project id, shared by
    /// every `Sandbox` value made for it (concurrent creates). Taken after `running`, never
    /// before it.
    disk_lock: Arc<tokio::sync::Mutex<()>>,
    pub running: tokio::sync::Mutex<Option<Running>>,
    /// Milliseconds since the service started ([`Manager::now`]) at the last use.
    last_used: AtomicU64,
    /// Commands and terminals in flight; the idle reaper leaves a busy sandbox alone.
    busy: Arc<AtomicUsize>,
}

/// Marks a sandbox busy while alive.
pub struct BusyGuard(Arc<AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct Running {
    pub slot: u32,
    pub place: Place,
    egress: tokio::task::JoinHandle<()>,
    pub dev: Option<DevServer>,
}

impl Running {
    /// The host mount of this sandbox's `node_modules` overlay, if any.
    fn overlay(&self) -> Option<&PathBuf> {
        self.place.node_modules.as_ref()
    }
}

pub struct Manager {
    pub cfg: Config,
    pub cgroups: Cgroups,
    pub user: SandboxUser,
    pub metrics: Arc<Metrics>,
    sandboxes: Mutex<HashMap<String, Arc<Sandbox>>>,
    slots: Mutex<Slots>,
    disk_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    layers: tokio::sync::Mutex<()>,
    started: Instant,
    allow: Arc<Vec<String>>,
    seccomp: Arc<Vec<u8>>,
}

/// The slots in use and the org each sandbox counts against, under one lock: counting an
/// org's running sandboxes and reserving a slot happen together, so two concurrent starts
/// for one org at its cap minus one cannot both pass.
#[derive(Default)]
struct Slots {
    /// Slot → the sandbox (project id) holding it, from reservation until it stops.
    held: BTreeMap<u32, String>,
    /// Project id → org key ([`org_key`]), as the edge's last verified token said.
    orgs: HashMap<String, String>,
}

impl Slots {
    /// A project the edge never named an org for counts as its own org.
    fn org_of(&self, id: &str) -> String {
        self.orgs
            .get(id)
            .cloned()
            .unwrap_or_else(|| org_key(id, None))
    }

    fn running_in(&self, org: &str) -> usize {
        self.held
            .values()
            .filter(|id| self.org_of(id) == org)
            .count()
    }

    /// Whether one more sandbox of `org` may start: 429 `quota_exceeded` at the org's cap
    /// `per_org` (0: none; checked first, as it is the reason the caller can act on), 503 at
    /// the host's `max`.
    fn room_for(&self, org: &str, per_org: usize, max: usize) -> ApiResult<()> {
        if per_org > 0 {
            let n = self.running_in(org);
            if n >= per_org {
                return Err(ApiError::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "this org already runs {n} sandboxes, the most it may run at once \
                         ({per_org}); stop or delete one of them, or wait until an idle one is \
                         stopped"
                    ),
                ));
            }
        }
        if self.held.len() >= max {
            return Err(ApiError::unavailable(
                "no sandbox capacity left on this host",
            ));
        }
        Ok(())
    }

    /// A free slot for sandbox `id`, held from now on, if its org and the host have room.
    fn reserve(&mut self, id: &str, per_org: usize, max: usize) -> ApiResult<u32> {
        let org = self.org_of(id);
        self.room_for(&org, per_org, max)?;
        let slot = (0..).find(|s| !self.held.contains_key(s)).unwrap_or(0);
        self.held.insert(slot, id.to_owned());
        Ok(slot)
    }
}

/// What a project counts against for the per-org cap: its org, or (tokens from before orgs)
/// itself. Prefixed so that an org id can never equal another project's own key.
pub fn org_key(project_id: &str, org_id: Option<&str>) -> String {
    match org_id.filter(|o| !o.is_empty()) {
        Some(o) => format!("org:{o}"),
        None => format!("project:{project_id}"),
    }
}

/// Project ids become directory and cgroup names: letters, digits, `_` and `-` only.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Manager {
    /// Prepares the host: cleans what an earlier run left, installs the firewall, creates the
    /// cgroup parent and the state directories.
    pub async fn start(
        cfg: Config,
        user: SandboxUser,
        metrics: Arc<Metrics>,
    ) -> Result<Manager, String> {
        let hierarchy = crate::cgroups::Hierarchy::detect()?;
        let cgroups = Cgroups::init(hierarchy, &cfg.cgroup_base()).map_err(|e| e.to_string())?;
        let m = Manager {
            allow: Arc::new(cfg.egress_allow.clone()),
            seccomp: Arc::new(crate::seccomp::program()?),
            cfg,
            cgroups,
            user,
            metrics,
            sandboxes: Mutex::new(HashMap::new()),
            slots: Mutex::new(Slots::default()),
            disk_locks: Mutex::new(HashMap::new()),
            layers: tokio::sync::Mutex::new(()),
            started: Instant::now(),
        };
        let cleaned = m.cleanup_leftovers().await;
        if cleaned > 0 {
            eprintln!("sandbox-proxy: cleaned {cleaned} leftovers of an earlier run");
        }
        net::install_firewall(&m.cfg).map_err(|e| format!("nft: {e}"))?;
        // `node_modules` is the mount point of the tools layer.
        for d in [
            m.projects_dir(),
            m.lib_dir(),
            m.lib_dir().join("node_modules"),
        ] {
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&m.cfg.state_dir, std::fs::Permissions::from_mode(0o711));
        let _ = std::fs::set_permissions(m.projects_dir(), std::fs::Permissions::from_mode(0o711));
        for (name, content) in templates::LIB_FILES {
            std::fs::write(m.lib_dir().join(name), content).map_err(|e| e.to_string())?;
        }
        Ok(m)
    }

    fn projects_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("projects")
    }
    fn lib_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("lib")
    }

    /// Kills and removes this instance's namespaces, veths, cgroups, nft table and any mount
    /// under the state dir. Returns how many things it found.
    pub async fn cleanup_leftovers(&self) -> usize {
        let mut n = net::cleanup_leftovers(&self.cfg);
        for name in self.cgroups.leftovers() {
            self.cgroups.open(&name).destroy().await;
            n += 1;
        }
        if net::firewall_exists(&self.cfg) {
            net::remove_firewall(&self.cfg);
            n += 1;
        }
        // Newest first: an overlay whose upper dir is on a disk image goes before the image.
        for m in mounts_under(&self.cfg.state_dir).iter().rev() {
            let _ = std::process::Command::new("umount")
                .args(["-l", m])
                .status();
            n += 1;
        }
        n += crate::disk::detach_loops_under(&crate::disk::disks_dir(&self.cfg.state_dir));
        n += crate::disk::remove_orphans(&self.cfg.state_dir, |id| {
            valid_id(id) && self.meta_path(id).exists()
        });
        n
    }

    fn sandbox(&self, id: &str, template: Template) -> Sandbox {
        let disk = Disk::new(&self.cfg.state_dir, id);
        Sandbox {
            id: id.to_owned(),
            template,
            dir: disk.project(),
            disk,
            disk_lock: self
                .disk_locks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(id.to_owned())
                .or_default()
                .clone(),
            running: tokio::sync::Mutex::new(None),
            last_used: AtomicU64::new(self.now()),
            busy: Arc::default(),
        }
    }

    /// Mounts the project's disk image (making it first for a new project). `true` if the
    /// image was made by this call and the project has no files yet.
    async fn ensure_disk(&self, sb: &Sandbox) -> ApiResult<bool> {
        let _one = sb.disk_lock.lock().await;
        let disk = sb.disk.clone();
        let (bytes, uid, gid) = (self.cfg.disk_bytes, self.user.uid, self.user.gid);
        let legacy = (
            self.legacy_dir(&sb.id),
            self.overlay_dir(&sb.id).join("upper"),
        );
        tokio::task::spawn_blocking(move || disk.ensure(bytes, uid, gid, &legacy.0, &legacy.1))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(format!("disk image: {e}")))
    }

    /// The project's files, with its disk image mounted.
    pub async fn fs(&self, sb: &Sandbox) -> ApiResult<ProjectFs> {
        self.ensure_disk(sb).await?;
        Ok(ProjectFs {
            root: sb.dir.clone(),
            uid: self.user.uid,
            gid: self.user.gid,
        })
    }

    /// Where a project's files lived before disk images; moved onto the image on first use.
    fn legacy_dir(&self, id: &str) -> PathBuf {
        self.projects_dir().join(id)
    }

    /// Creates the project's sandbox (seeding the template into a new project) or returns the
    /// existing one; starts it. `true` if it was created by this call. `claims` are the
    /// edge's verified token for this project (its org).
    pub async fn create(
        &self,
        id: &str,
        template: Template,
        claims: &SandboxClaims,
    ) -> ApiResult<(Arc<Sandbox>, bool)> {
        if !valid_id(id) {
            return Err(ApiError::bad_request(
                "project_id must be 1-64 of [A-Za-z0-9_-]",
            ));
        }
        if let Some(sb) = self.lookup(id) {
            self.note_org(&sb, claims);
            if sb.template != template {
                return Err(ApiError::new(
                    kiln_core::ErrorCode::Conflict,
                    format!("sandbox exists with template {}", sb.template.as_str()),
                ));
            }
            self.ensure_running(&sb).await?;
            return Ok((sb, false));
        }
        // Refuse early rather than make a disk image for a sandbox that cannot start; the
        // check that counts is the reservation in `ensure_running`.
        {
            let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let org = org_key(id, claims.org_id.as_deref());
            slots
                .room_for(&org, self.cfg.max_per_org, self.cfg.max_sandboxes)
                .inspect_err(|e| self.refused(e))?;
        }
        let sb = Arc::new(self.sandbox(id, template));
        // Whoever makes the image seeds it (two concurrent creates: one seeds).
        let fresh = self.ensure_disk(&sb).await?;
        if fresh {
            let fs = self.fs(&sb).await?;
            for (name, content) in templates::files(template) {
                let p = ProjectPath::parse(name).map_err(|e| ApiError::internal(e.to_string()))?;
                fs.write(&p, content.as_bytes())
                    .map_err(crate::api::fs_error)?;
            }
        }
        std::fs::write(self.meta_path(id), template.as_str())?;
        let existing = {
            let mut map = self.sandboxes.lock().unwrap_or_else(|e| e.into_inner());
            let existing = map.get(id).cloned();
            if existing.is_none() {
                map.insert(id.to_owned(), sb.clone());
            }
            existing
        };
        if let Some(existing) = existing {
            self.note_org(&existing, claims);
            return Ok((existing, false));
        }
        self.note_org(&sb, claims);
        self.metrics.sandboxes_created.inc();
        self.ensure_running(&sb).await?;
        Ok((sb, true))
    }

    fn overlay_dir(&self, id: &str) -> PathBuf {
        self.cfg.state_dir.join("overlays").join(id)
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.projects_dir().join(format!("{id}.template"))
    }

    fn lookup(&self, id: &str) -> Option<Arc<Sandbox>> {
        self.sandboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// The sandbox, also one whose files survived a restart of the service. Looking does not
    /// count as use for the idle reaper; exec, dev server, terminal, preview and writes do.
    pub fn get(&self, id: &str) -> ApiResult<Arc<Sandbox>> {
        if let Some(sb) = self.lookup(id) {
            return Ok(sb);
        }
        let not_found = || ApiError::not_found("no sandbox for this project");
        if !valid_id(id) {
            return Err(not_found());
        }
        let template = match std::fs::read_to_string(self.meta_path(id)).as_deref() {
            Ok("react-vite") => Template::ReactVite,
            Ok("static") => Template::Static,
            _ => return Err(not_found()),
        };
        let sb = Arc::new(self.sandbox(id, template));
        let mut map = self.sandboxes.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.entry(id.to_owned()).or_insert(sb).clone())
    }

    pub fn running_count(&self) -> usize {
        self.slots.lock().map(|s| s.held.len()).unwrap_or(0)
    }

    /// Records the org the edge's verified token names for this sandbox's project (the
    /// project itself if it names none). A running sandbox counts against its new org at
    /// once; it is never stopped for it.
    pub fn note_org(&self, sb: &Sandbox, claims: &SandboxClaims) {
        let org = org_key(&sb.id, claims.org_id.as_deref());
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .orgs
            .insert(sb.id.clone(), org);
    }

    /// Counts and reserves under one lock: a free slot for `id`, if its org and the host
    /// have room. The slot counts as running until [`Manager::free_slot`].
    fn reserve_slot(&self, id: &str) -> ApiResult<u32> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .reserve(id, self.cfg.max_per_org, self.cfg.max_sandboxes)
            .inspect_err(|e| self.refused(e))
    }

    fn refused(&self, e: &ApiError) {
        if e.code == ErrorCode::QuotaExceeded {
            self.metrics.org_quota_refused.inc();
        }
    }

    pub fn known_count(&self) -> usize {
        self.sandboxes.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// Milliseconds since the service started: the clock of `last_used`.
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// How long ago the sandbox was last used (exec, dev server, terminal, preview, writes).
    pub fn idle_for(&self, sb: &Sandbox) -> Duration {
        Duration::from_millis(
            self.now()
                .saturating_sub(sb.last_used.load(Ordering::Relaxed)),
        )
    }

    /// Brings up the sandbox's namespaces, cgroup and egress proxy if they are not up. A
    /// sandbox that is up is never refused; one that is not gets a slot only if its org
    /// (429) and the host (503) have room, before anything is mounted or made for it.
    pub async fn ensure_running(&self, sb: &Sandbox) -> ApiResult<Place> {
        sb.touch(self.now());
        let mut running = sb.running.lock().await;
        if let Some(r) = running.as_ref() {
            return Ok(r.place.clone());
        }
        let slot = self.reserve_slot(&sb.id)?;
        match self.start_in_slot(sb, slot).await {
            Ok(r) => {
                let place = r.place.clone();
                *running = Some(r);
                Ok(place)
            }
            Err(e) => {
                self.free_slot(slot);
                Err(e)
            }
        }
    }

    /// Mounts the disk image and the `node_modules` overlay, then brings up the sandbox in
    /// its reserved slot; on failure the overlay is unmounted again (the caller frees the
    /// slot).
    async fn start_in_slot(&self, sb: &Sandbox, slot: u32) -> ApiResult<Running> {
        self.ensure_disk(sb).await?;
        let layer = self.layer(sb.template).await.map_err(ApiError::internal)?;
        let node_modules = match layer {
            Some(lower) => Some(
                templates::mount_overlay(
                    &lower,
                    &sb.disk.overlay(),
                    &self.overlay_dir(&sb.id).join("merged"),
                )
                .map_err(|e| ApiError::internal(e.to_string()))?,
            ),
            None => None,
        };
        let up = self.bring_up(sb, slot, node_modules.clone()).await;
        if up.is_err() {
            if let Some(m) = &node_modules {
                templates::unmount(m);
            }
        }
        up
    }

    async fn bring_up(
        &self,
        sb: &Sandbox,
        slot: u32,
        node_modules: Option<PathBuf>,
    ) -> ApiResult<Running> {
        let cfg = &self.cfg;
        let cg_name = format!("{}-{slot}", sb.id);
        let cgroup = self
            .cgroups
            .create(
                &cg_name,
                Limits {
                    memory_bytes: cfg.memory_bytes,
                    pids_max: cfg.pids_max,
                    cpu_percent: cfg.cpu_percent,
                },
            )
            .map_err(|e| ApiError::internal(format!("cgroup: {e}")))?;
        let netw = match net::create(cfg, slot) {
            Ok(n) => n,
            Err(e) => {
                cgroup.destroy().await;
                return Err(ApiError::internal(format!("network: {e}")));
            }
        };
        let bind = (netw.host_ip, cfg.egress_port).into();
        let limits = egress::Limits {
            head_timeout: cfg.egress_head_timeout,
            max_conns: cfg.egress_max_conns,
        };
        let egress = match egress::start(
            bind,
            netw.sandbox_ip,
            self.allow.clone(),
            self.metrics.clone(),
            limits,
        )
        .await
        {
            Ok(h) => h,
            Err(e) => {
                net::destroy(cfg, &netw);
                cgroup.destroy().await;
                return Err(ApiError::internal(format!("egress proxy: {e}")));
            }
        };
        Ok(Running {
            slot,
            place: Place {
                net: netw,
                cgroup,
                user: self.user,
                project_dir: sb.dir.clone(),
                node_modules,
                lib_dir: self.lib_dir(),
                tools: self.tools().await,
                egress_port: cfg.egress_port,
                seccomp: self.seccomp.clone(),
                tmpfs_bytes: cfg.tmpfs_bytes,
                install_scripts: templates::runs_install_scripts(sb.template),
            },
            egress,
            dev: None,
        })
    }

    /// The template's shared `node_modules`, installed first if needed (one install at a
    /// time per service).
    pub async fn layer(&self, t: Template) -> Result<Option<PathBuf>, String> {
        if templates::layer_dir(&self.cfg.cache_dir, t).is_none() {
            return Ok(None);
        }
        let _one_install_at_a_time = self.layers.lock().await;
        templates::ensure_layer(&self.cfg.cache_dir, t).await
    }

    /// The helper scripts' `node_modules`. Without it (the registry unreachable when the
    /// host first installs it) a sandbox still runs; only its acceptance checks report that
    /// they cannot run.
    async fn tools(&self) -> Option<PathBuf> {
        let _one_install_at_a_time = self.layers.lock().await;
        match templates::ensure_tools_layer(&self.cfg.cache_dir).await {
            Ok(nm) => Some(nm),
            Err(e) => {
                eprintln!("sandbox-proxy: {e}");
                None
            }
        }
    }

    fn free_slot(&self, slot: u32) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .held
            .remove(&slot);
    }

    /// Stops everything the sandbox runs and removes its namespaces and cgroup, and unmounts
    /// its disk image; files stay. `true` if it was running.
    pub async fn stop(&self, sb: &Sandbox) -> bool {
        let mut running = sb.running.lock().await;
        let was_running = running.is_some();
        if let Some(mut r) = running.take() {
            if let Some(dev) = r.dev.take() {
                dev.stop().await;
            }
            r.place.cgroup.destroy().await;
            r.egress.abort();
            net::destroy(&self.cfg, &r.place.net);
            if let Some(m) = r.overlay().cloned() {
                let _ = tokio::task::spawn_blocking(move || templates::unmount(&m)).await;
            }
            self.free_slot(r.slot);
        }
        let _one = sb.disk_lock.lock().await;
        let disk = sb.disk.clone();
        let _ = tokio::task::spawn_blocking(move || disk.unmount()).await;
        was_running
    }

    /// Stops the sandbox and removes its files: nothing of it is left.
    pub async fn delete(&self, id: &str) -> ApiResult<()> {
        let sb = self.get(id)?;
        self.stop(&sb).await;
        self.sandboxes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .orgs
            .remove(id);
        let _ = std::fs::remove_file(self.meta_path(id));
        let _ = tokio::fs::remove_dir_all(self.overlay_dir(id)).await;
        {
            let _one = sb.disk_lock.lock().await;
            sb.disk.remove().await?;
        }
        match tokio::fs::remove_dir_all(self.legacy_dir(id)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops sandboxes unused for longer than the idle timeout.
    pub async fn reap_idle(&self) {
        let idle = self.cfg.idle_timeout.as_millis() as u64;
        let now = self.now();
        let all: Vec<Arc<Sandbox>> = self
            .sandboxes
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for sb in all {
            // A stopped sandbox's image may be mounted for the file API: unmount that too.
            if now.saturating_sub(sb.last_used.load(Ordering::Relaxed)) >= idle
                && sb.busy.load(Ordering::Relaxed) == 0
                && (sb.running.lock().await.is_some() || sb.disk.is_mounted())
                && self.stop(&sb).await
            {
                self.metrics.sandboxes_stopped_idle.inc();
            }
        }
    }

    pub fn reaper_interval(&self) -> Duration {
        (self.cfg.idle_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(30))
    }

    /// Stops every sandbox and removes the instance's firewall and cgroup parent.
    pub async fn shutdown(&self) {
        let all: Vec<Arc<Sandbox>> = self
            .sandboxes
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for sb in all {
            self.stop(&sb).await;
        }
        net::remove_firewall(&self.cfg);
        self.cgroups.remove_base();
    }

    pub fn touch(&self, sb: &Sandbox) {
        sb.touch(self.now());
    }
}

impl Sandbox {
    pub fn busy(&self) -> BusyGuard {
        self.busy.fetch_add(1, Ordering::Relaxed);
        BusyGuard(self.busy.clone())
    }

    fn touch(&self, now: u64) {
        self.last_used.store(now, Ordering::Relaxed);
    }
}

fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let under = format!("{}/", prefix.trim_end_matches('/'));
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| *m == prefix || m.starts_with(&under))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(slots: &mut Slots, id: &str, org: Option<&str>) {
        slots.orgs.insert(id.to_owned(), org_key(id, org));
    }

    #[test]
    fn an_org_runs_at_most_its_cap_and_other_orgs_are_not_affected() {
        let mut s = Slots::default();
        for (id, o) in [("a1", "A"), ("a2", "A"), ("a3", "A"), ("b1", "B")] {
            org(&mut s, id, Some(o));
        }
        let a1 = s.reserve("a1", 2, 32).unwrap();
        s.reserve("a2", 2, 32).unwrap();
        let e = s.reserve("a3", 2, 32).unwrap_err();
        assert_eq!(e.code, ErrorCode::QuotaExceeded, "{}", e.message);
        assert!(
            e.message.contains("already runs 2 sandboxes"),
            "{}",
            e.message
        );
        assert_eq!(s.held.len(), 2, "a refused start holds no slot");
        s.reserve("b1", 2, 32).unwrap();
        // A stopped sandbox no longer counts.
        s.held.remove(&a1);
        s.reserve("a3", 2, 32).unwrap();
        // Without an org the project is its own; an org id never matches a project's key.
        org(&mut s, "p", None);
        org(&mut s, "q", Some("p"));
        s.reserve("p", 1, 32).unwrap();
        s.reserve("q", 1, 32).unwrap();
        assert_eq!(s.org_of("unknown"), "project:unknown");
        assert_eq!(org_key("x", Some("")), "project:x");
        // The host's capacity is a 503; no per-org cap (0) leaves only that.
        let full = s.held.len();
        org(&mut s, "c", Some("A"));
        assert_eq!(
            s.reserve("c", 0, full).unwrap_err().code,
            ErrorCode::Unavailable
        );
        s.reserve("c", 0, 32).unwrap();
    }

    #[test]
    fn concurrent_starts_of_one_org_cannot_both_take_its_last_place() {
        let slots = Arc::new(Mutex::new(Slots::default()));
        {
            let mut s = slots.lock().unwrap();
            for i in 0..16 {
                org(&mut s, &format!("a{i}"), Some("A"));
            }
            s.reserve("a0", 2, 32).unwrap();
        }
        let barrier = Arc::new(std::sync::Barrier::new(15));
        let won = (1..16)
            .map(|i| {
                let (slots, barrier) = (slots.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    slots
                        .lock()
                        .unwrap()
                        .reserve(&format!("a{i}"), 2, 32)
                        .is_ok()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(won, 1);
        assert_eq!(slots.lock().unwrap().running_in("org:A"), 2);
    }
}

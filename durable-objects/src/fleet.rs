//! The sandbox fleet in D1 (`sandbox_hosts`, `sandbox_placements`; rules in
//! `kiln_core::fleet`): hosts' beats are stored, a project is placed on the least-loaded live
//! host and stays there until that host is lost or draining. `KILN_SANDBOX_URL` instead names
//! one fixed host and bypasses all of this (a single VM, and most tests).

use kiln_core::fleet::{must_move, Heartbeat, HostLoad, DEFAULT_TTL_MS};
use kiln_core::sandbox::SandboxError;
use wasm_bindgen::JsValue;
use worker::{D1Database, Env, Result};

use crate::sandbox_client::SandboxClient;

pub struct Fleet<'a>(pub &'a D1Database);

/// Where a project's sandbox calls go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `None` for the fixed `KILN_SANDBOX_URL`.
    pub host: Option<String>,
    pub url: String,
}

#[derive(serde::Deserialize)]
struct PlacedRow {
    id: String,
    url: String,
    capacity: f64,
    running: f64,
    draining: f64,
    last_beat: f64,
}

impl PlacedRow {
    fn load(&self) -> HostLoad {
        HostLoad {
            id: self.id.clone(),
            capacity: self.capacity as u32,
            running: self.running as u32,
            draining: self.draining != 0.0,
            last_beat_ms: self.last_beat as i64,
            placed: 0,
        }
    }
}

fn int(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

/// A setting from the environment (secret or var), if set and not empty.
pub fn setting(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.is_empty())
}

/// How long a host may stay silent before it is lost (`KILN_FLEET_TTL_MS`).
pub fn ttl_ms(env: &Env) -> i64 {
    setting(env, "KILN_FLEET_TTL_MS")
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(DEFAULT_TTL_MS)
}

/// Whether sandboxes are placed on registered hosts (`KILN_FLEET_SECRET` set and no fixed
/// `KILN_SANDBOX_URL`).
pub fn enabled(env: &Env) -> bool {
    setting(env, "KILN_SANDBOX_URL").is_none() && setting(env, "KILN_FLEET_SECRET").is_some()
}

/// The one fixed host `KILN_SANDBOX_URL` names, if set.
fn fixed(env: &Env) -> Option<Target> {
    setting(env, "KILN_SANDBOX_URL").map(|url| Target {
        host: None,
        url: url.trim_end_matches('/').to_owned(),
    })
}

/// Whether the room can reach any sandbox at all.
pub fn configured(env: &Env) -> bool {
    setting(env, "KILN_SANDBOX_JWT_SECRET").is_some()
        && (setting(env, "KILN_SANDBOX_URL").is_some() || enabled(env))
}

fn unavailable(message: impl Into<String>) -> SandboxError {
    SandboxError {
        message: message.into(),
        status: None,
        lost: false,
    }
}

impl Fleet<'_> {
    /// Stores a host's beat (its row is made on its first).
    pub async fn beat(&self, host: &str, beat: &Heartbeat, now: i64) -> Result<()> {
        self.0
            .prepare(
                "INSERT INTO sandbox_hosts (id, url, capacity, running, draining, last_beat, registered_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
                 ON CONFLICT (id) DO UPDATE SET url = excluded.url, capacity = excluded.capacity, \
                 running = excluded.running, draining = excluded.draining, last_beat = excluded.last_beat",
            )
            .bind(&[
                host.into(),
                beat.origin().into(),
                int(beat.capacity.into()),
                int(beat.running.into()),
                int(beat.draining.into()),
                int(now),
            ])?
            .run()
            .await?;
        Ok(())
    }

    /// The host a project is placed on, with its load figures.
    async fn placed(&self, project: &str) -> Result<Option<PlacedRow>> {
        self.0
            .prepare(
                "SELECT h.id, h.url, h.capacity, h.running, h.draining, h.last_beat \
                 FROM sandbox_placements p JOIN sandbox_hosts h ON h.id = p.host_id \
                 WHERE p.project_id = ?1",
            )
            .bind(&[project.into()])?
            .first(None)
            .await
    }

    /// The URL of the live host a project is placed on (the Worker's preview proxy).
    pub async fn live_url(&self, project: &str, now: i64, ttl: i64) -> Result<Option<String>> {
        Ok(self
            .placed(project)
            .await?
            .filter(|r| kiln_core::fleet::is_live(r.last_beat as i64, now, ttl))
            .map(|r| r.url))
    }

    /// Places `project` on the host `kiln_core::fleet::choose` picks, in one statement (D1
    /// runs statements one at a time, so two rooms placing at once see each other's rows).
    /// `None`: no live host has room.
    async fn place(&self, project: &str, now: i64, ttl: i64) -> Result<Option<PlacedRow>> {
        #[derive(serde::Deserialize)]
        struct Placed {
            host_id: String,
        }
        let placed: Option<Placed> = self
            .0
            .prepare(
                "INSERT INTO sandbox_placements (project_id, host_id, placed_at) \
                 SELECT ?1, h.id, ?2 FROM sandbox_hosts h \
                 WHERE h.draining = 0 AND h.last_beat >= ?3 AND h.running < h.capacity \
                 ORDER BY (SELECT count(*) FROM sandbox_placements q \
                           WHERE q.host_id = h.id AND q.project_id <> ?1) * 1.0 / h.capacity, h.id \
                 LIMIT 1 \
                 ON CONFLICT (project_id) DO UPDATE SET host_id = excluded.host_id, \
                 placed_at = excluded.placed_at \
                 RETURNING host_id",
            )
            .bind(&[project.into(), int(now), int(now - ttl)])?
            .first(None)
            .await?;
        let Some(p) = placed else {
            return Ok(None);
        };
        Ok(self.placed(project).await?.filter(|r| r.id == p.host_id))
    }

    /// Takes a host that does not answer out of placement until its next beat: a host that
    /// is only slow comes back by itself, a dead one stays out.
    pub async fn mark_lost(&self, host: &str, now: i64, ttl: i64) -> Result<()> {
        self.0
            .prepare("UPDATE sandbox_hosts SET last_beat = min(last_beat, ?2) WHERE id = ?1")
            .bind(&[host.into(), int(now - ttl - 1)])?
            .run()
            .await?;
        Ok(())
    }

    pub async fn forget(&self, project: &str) -> Result<()> {
        self.0
            .prepare("DELETE FROM sandbox_placements WHERE project_id = ?1")
            .bind(&[project.into()])?
            .run()
            .await?;
        Ok(())
    }
}

/// Where the project's sandbox is, placing (or moving) it when it has no live host that
/// takes it. `Ok((target, left))`: `left` is a draining host it just moved off, whose old
/// sandbox the caller removes.
pub async fn target(
    env: &Env,
    project: &str,
    now: i64,
) -> std::result::Result<(Target, Option<Target>), SandboxError> {
    if let Some(fixed) = fixed(env) {
        return Ok((fixed, None));
    }
    if !enabled(env) {
        return Err(unavailable(
            "no sandbox-proxy configured (KILN_SANDBOX_URL, or KILN_FLEET_SECRET and registered hosts)",
        ));
    }
    let d1 = |e: worker::Error| unavailable(format!("the sandbox fleet's table: {e}"));
    let db = env.d1("DB").map_err(d1)?;
    let fleet = Fleet(&db);
    let ttl = ttl_ms(env);
    let current = fleet.placed(project).await.map_err(d1)?;
    let at = |r: &PlacedRow| Target {
        host: Some(r.id.clone()),
        url: r.url.clone(),
    };
    if let Some(r) = &current {
        if !must_move(&r.load(), now, ttl) {
            return Ok((at(r), None));
        }
    }
    match (fleet.place(project, now, ttl).await.map_err(d1)?, current) {
        (Some(new), Some(old)) if new.id != old.id => {
            worker::console_log!(
                "fleet: project {project} moves from host {} ({}) to {}",
                old.id,
                if old.draining != 0.0 {
                    "draining"
                } else {
                    "lost"
                },
                new.id
            );
            let left = (old.draining != 0.0).then(|| at(&old));
            Ok((at(&new), left))
        }
        (Some(new), _) => Ok((at(&new), None)),
        // Nowhere else to go: a draining host that is still live keeps serving it.
        (None, Some(old)) if kiln_core::fleet::is_live(old.last_beat as i64, now, ttl) => {
            Ok((at(&old), None))
        }
        (None, _) => Err(unavailable(
            "no sandbox host is live with room: start or un-drain a sandbox-proxy host",
        )),
    }
}

/// The project's sandbox client, placed as `target` says; the sandbox left on a draining
/// host is removed (its files are in the working tree, which the new host gets).
pub async fn client(
    env: &Env,
    project: &str,
    org: Option<String>,
    now: i64,
) -> std::result::Result<SandboxClient, SandboxError> {
    let secret = setting(env, "KILN_SANDBOX_JWT_SECRET")
        .ok_or_else(|| unavailable("no sandbox-proxy configured (KILN_SANDBOX_JWT_SECRET)"))?;
    let (to, left) = target(env, project, now).await?;
    if let Some(old) = left {
        let old = SandboxClient::new(old, secret.clone(), project, org.clone());
        if let Err(e) = old.remove().await {
            worker::console_warn!(
                "fleet: removing {project}'s sandbox from its draining host: {e}"
            );
        }
    }
    Ok(SandboxClient::new(to, secret, project, org))
}

/// A call to `client`'s host failed without an HTTP status. If the host does not answer its
/// health check either, it is taken out of placement and the error says the sandbox moves
/// (`lost`: the step is tried again, and its sync re-creates the sandbox elsewhere).
pub async fn check_host(
    env: &Env,
    client: &SandboxClient,
    e: SandboxError,
    now: i64,
) -> SandboxError {
    let Some(host) = client.host() else {
        return e;
    };
    if e.status.is_some() || client.healthy().await {
        return e;
    }
    if let Ok(db) = env.d1("DB") {
        if let Err(err) = Fleet(&db).mark_lost(host, now, ttl_ms(env)).await {
            worker::console_warn!("fleet: marking host {host} lost: {err}");
        }
    }
    worker::console_warn!(
        "fleet: host {host} does not answer ({}); its projects move",
        e.message
    );
    SandboxError {
        message: format!(
            "the sandbox host {host} stopped answering; the project's sandbox moves to another host"
        ),
        status: None,
        lost: true,
    }
}

/// The project's sandbox client where its sandbox is now, without placing it anywhere
/// (`None`: it has none, or no sandbox is configured): for removing it.
pub async fn existing(env: &Env, project: &str, org: Option<String>) -> Option<SandboxClient> {
    let secret = setting(env, "KILN_SANDBOX_JWT_SECRET")?;
    let target = match fixed(env) {
        Some(fixed) => fixed,
        None => {
            let db = env.d1("DB").ok()?;
            let row = Fleet(&db).placed(project).await.ok()??;
            Target {
                host: Some(row.id),
                url: row.url,
            }
        }
    };
    Some(SandboxClient::new(target, secret, project, org))
}

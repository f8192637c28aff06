//! Membership of the edge's sandbox fleet (`kiln_core::fleet`): with `--edge-url` and
//! `--host-credential`, the proxy beats to `POST <edge>/api/fleet/heartbeat` every
//! `--heartbeat-ms` with where the edge reaches it, its capacity and load, and whether it
//! drains. A draining host (`POST /v1/host/drain` with the host credential, or SIGTERM) gets
//! no new sandbox; the edge moves its projects at their next step.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kiln_core::fleet::Heartbeat;

#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub edge_url: String,
    pub credential: String,
    /// Where the edge reaches this host (`http(s)://host:port`).
    pub public_url: String,
    pub interval: Duration,
}

pub struct Membership {
    pub cfg: FleetConfig,
    draining: AtomicBool,
    agent: ureq::Agent,
}

impl Membership {
    pub fn new(cfg: FleetConfig) -> Membership {
        Membership {
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build(),
            cfg,
            draining: AtomicBool::new(false),
        }
    }

    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Whether `bearer` is this host's own credential (compared in constant time).
    pub fn is_own(&self, bearer: &str) -> bool {
        let (a, b) = (bearer.as_bytes(), self.cfg.credential.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    /// One beat; the edge's error, if any, as text.
    pub async fn beat(self: &Arc<Self>, capacity: usize, running: usize) -> Result<(), String> {
        let beat = Heartbeat {
            url: self.cfg.public_url.clone(),
            capacity: capacity as u32,
            running: running as u32,
            draining: self.draining(),
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let url = format!("{}/api/fleet/heartbeat", me.cfg.edge_url);
            let body = serde_json::to_string(&beat).map_err(|e| e.to_string())?;
            match me
                .agent
                .post(&url)
                .set("authorization", &format!("Bearer {}", me.cfg.credential))
                .set("content-type", "application/json")
                .send_string(&body)
            {
                Ok(_) => Ok(()),
                Err(ureq::Error::Status(code, resp)) => Err(format!(
                    "the edge refused the heartbeat: HTTP {code}: {}",
                    resp.into_string().unwrap_or_default()
                )),
                Err(e) => Err(format!("the edge is unreachable: {e}")),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Beats until the process ends; a failed beat is logged once until one succeeds again.
pub fn spawn(m: Arc<Membership>, state: Arc<crate::api::AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            let r = m
                .beat(state.mgr.cfg.max_sandboxes, state.mgr.running_count())
                .await;
            match (&r, failing) {
                (Err(e), false) => eprintln!("sandbox-proxy: heartbeat: {e}"),
                (Ok(()), true) => eprintln!("sandbox-proxy: heartbeat: the edge answers again"),
                _ => {}
            }
            failing = r.is_err();
            tokio::time::sleep(m.cfg.interval).await;
        }
    })
}

/// A host credential for `host_id`, signed with the fleet secret (`credential` command).
pub fn mint_credential(fleet_secret: &str, host_id: &str) -> Result<String, String> {
    use jwt_compact::alg::{Hs256, Hs256Key};
    use jwt_compact::{AlgorithmExt, Claims, Header};
    if !kiln_core::fleet::valid_host_id(host_id) {
        return Err("a host id is 1-32 of a-z, 0-9 and -, not starting with -".into());
    }
    if fleet_secret.len() < 32 {
        return Err("KILN_FLEET_SECRET must be at least 32 bytes".into());
    }
    let claims = Claims::new(kiln_core::fleet::HostClaims {
        host_id: host_id.to_owned(),
    });
    Hs256
        .token(
            &Header::empty(),
            &claims,
            &Hs256Key::new(fleet_secret.as_bytes()),
        )
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_names_its_host_and_only_its_own_bearer_passes() {
        let secret = "f".repeat(32);
        let token = mint_credential(&secret, "sandbox-1").unwrap();
        let untrusted = jwt_compact::UntrustedToken::new(&token).unwrap();
        use jwt_compact::AlgorithmExt;
        let t = jwt_compact::alg::Hs256
            .validator::<kiln_core::fleet::HostClaims>(&jwt_compact::alg::Hs256Key::new(
                secret.as_bytes(),
            ))
            .validate(&untrusted)
            .unwrap();
        assert_eq!(t.claims().custom.host_id, "sandbox-1");
        assert!(mint_credential(&secret, "Bad_Id").is_err());
        assert!(mint_credential("short", "a").is_err());
        let m = Membership::new(FleetConfig {
            edge_url: "http://127.0.0.1:1".into(),
            credential: token.clone(),
            public_url: "http://127.0.0.1:2".into(),
            interval: Duration::from_secs(5),
        });
        assert!(m.is_own(&token));
        assert!(!m.is_own(&format!("{token}x")));
        assert!(!m.is_own(""));
        assert!(!m.draining());
        m.drain();
        assert!(m.draining());
    }
}

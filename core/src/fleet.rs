//! The sandbox fleet: sandbox-proxy hosts that register with the edge by heartbeat, and the
//! rules the edge places projects by. Pure: the Worker keeps the rows in D1 (`sandbox_hosts`,
//! `sandbox_placements`), the room asks for a placement, the proxy sends the beats.
//!
//! A host authenticates with its own credential: an HS256 JWT whose subject is its host id,
//! signed with the edge's `KILN_FLEET_SECRET` (`kiln-sandbox-proxy credential <id>` mints
//! one). The host never holds the fleet secret, so a host can speak only for itself.

use serde::{Deserialize, Serialize};

/// How often a host beats unless told otherwise, in milliseconds.
pub const DEFAULT_HEARTBEAT_MS: u64 = 5_000;
/// A host whose last beat is older than this is lost (three missed beats).
pub const DEFAULT_TTL_MS: i64 = 15_000;

/// What a host says of itself on every beat (`POST /api/fleet/heartbeat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Where the edge reaches this host's API (`http(s)://host:port`, no path).
    pub url: String,
    /// Sandboxes it may run at once (its `--max-sandboxes`).
    pub capacity: u32,
    /// Sandboxes running now.
    pub running: u32,
    /// A draining host keeps its running sandboxes until they move but gets no new one.
    #[serde(default)]
    pub draining: bool,
}

/// The edge's answer to a beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAck {
    pub host_id: String,
    /// Beat at least this often to stay live.
    pub heartbeat_ms: u64,
}

/// The claims of a host credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostClaims {
    pub host_id: String,
}

/// A host id: 1–32 of `a-z 0-9 -`, starting with a letter or digit (it appears in logs,
/// metrics and D1 rows, never in a URL a person sees).
pub fn valid_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Heartbeat {
    /// Why the beat cannot be taken, if it cannot: the URL must be a bare http(s) origin
    /// (the edge appends `/v1/...` to it), the capacity sane.
    pub fn problem(&self) -> Option<String> {
        let url = self.url.trim_end_matches('/');
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        match rest {
            None => return Some("url must start with http:// or https://".into()),
            Some(r) if r.is_empty() || r.contains(['/', '?', '#', '@', ' ']) => {
                return Some("url must be an origin: scheme, host and port only".into())
            }
            Some(_) => {}
        }
        if url.len() > 200 {
            return Some("url is longer than 200 characters".into());
        }
        if self.capacity == 0 || self.capacity > 10_000 {
            return Some("capacity must be between 1 and 10000".into());
        }
        if self.running > self.capacity.saturating_mul(2) {
            return Some("running is far above capacity".into());
        }
        None
    }

    /// The URL as stored: no trailing slash.
    pub fn origin(&self) -> &str {
        self.url.trim_end_matches('/')
    }
}

/// Whether a host that beat at `last_beat_ms` is live at `now_ms`.
pub fn is_live(last_beat_ms: i64, now_ms: i64, ttl_ms: i64) -> bool {
    now_ms - last_beat_ms <= ttl_ms
}

/// A host as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLoad {
    pub id: String,
    pub capacity: u32,
    pub running: u32,
    pub draining: bool,
    pub last_beat_ms: i64,
    /// Projects placed on it.
    pub placed: u32,
}

/// Where a project's sandbox goes when it has none (or its host is lost or draining): the
/// live, non-draining host with room that holds the fewest projects for its capacity, ties
/// to the lowest id. `None`: no host can take it. The Worker runs the same rule as one SQL
/// statement (so concurrent placements serialize in D1); this is its specification and test.
pub fn choose(hosts: &[HostLoad], now_ms: i64, ttl_ms: i64) -> Option<&HostLoad> {
    hosts
        .iter()
        .filter(|h| {
            !h.draining && h.running < h.capacity && is_live(h.last_beat_ms, now_ms, ttl_ms)
        })
        .min_by(|a, b| {
            // placed/capacity compared without division.
            let l = u64::from(a.placed) * u64::from(b.capacity);
            let r = u64::from(b.placed) * u64::from(a.capacity);
            l.cmp(&r).then_with(|| a.id.cmp(&b.id))
        })
}

/// Whether a project already placed on `host` should move: its host is lost, or draining.
pub fn must_move(host: &HostLoad, now_ms: i64, ttl_ms: i64) -> bool {
    host.draining || !is_live(host.last_beat_ms, now_ms, ttl_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, placed: u32) -> HostLoad {
        HostLoad {
            id: id.into(),
            capacity: 8,
            running: 0,
            draining: false,
            last_beat_ms: 1_000,
            placed,
        }
    }

    #[test]
    fn the_least_loaded_live_host_with_room_is_chosen() {
        let hosts = vec![host("b", 1), host("a", 1), host("c", 0)];
        assert_eq!(choose(&hosts, 2_000, 15_000).unwrap().id, "c");
        let hosts = vec![host("b", 1), host("a", 1)];
        assert_eq!(
            choose(&hosts, 2_000, 15_000).unwrap().id,
            "a",
            "ties go to the lowest id"
        );
        // Load is relative to capacity: 3 of 16 is less than 2 of 8.
        let mut big = host("z", 3);
        big.capacity = 16;
        let hosts = vec![host("a", 2), big];
        assert_eq!(choose(&hosts, 2_000, 15_000).unwrap().id, "z");
    }

    #[test]
    fn lost_draining_and_full_hosts_get_nothing() {
        let mut lost = host("a", 0);
        lost.last_beat_ms = 0;
        let mut draining = host("b", 0);
        draining.draining = true;
        let mut full = host("c", 0);
        full.running = 8;
        let hosts = vec![lost.clone(), draining.clone(), full];
        assert_eq!(choose(&hosts, 20_000, 15_000), None);
        assert!(must_move(&lost, 20_000, 15_000));
        assert!(must_move(&draining, 2_000, 15_000));
        assert!(!must_move(&host("d", 3), 2_000, 15_000));
        let mut fresh = host("d", 5);
        fresh.last_beat_ms = 19_000;
        let hosts = vec![lost, draining, fresh];
        assert_eq!(choose(&hosts, 20_000, 15_000).unwrap().id, "d");
    }

    #[test]
    fn beats_are_checked_before_they_are_stored() {
        let ok = Heartbeat {
            url: "https://sandbox-1.example.com:8790/".into(),
            capacity: 32,
            running: 3,
            draining: false,
        };
        assert_eq!(ok.problem(), None);
        assert_eq!(ok.origin(), "https://sandbox-1.example.com:8790");
        for url in ["ftp://x", "http://", "http://x/v1", "http://u@x", "x:8790"] {
            let b = Heartbeat {
                url: url.into(),
                ..ok.clone()
            };
            assert!(b.problem().is_some(), "{url}");
        }
        let b = Heartbeat {
            capacity: 0,
            ..ok.clone()
        };
        assert!(b.problem().is_some());
        assert!(serde_json::from_str::<Heartbeat>(
            r#"{"url":"http://x","capacity":1,"running":0,"extra":1}"#
        )
        .is_err());
        assert!(valid_host_id("sandbox-1"));
        for id in ["", "-a", "A", "a_b", &"x".repeat(33)] {
            assert!(!valid_host_id(id), "{id}");
        }
    }
}

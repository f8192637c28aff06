//! What the room remembers about each socket. Kept as the socket's serialised attachment, so
//! it survives hibernation (the room object itself may be evicted between messages).

use kiln_core::protocol::PresenceUser;
use kiln_core::Role;
use serde::{Deserialize, Serialize};
use worker::{State, WebSocket};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conn {
    /// Random per socket, to tell two tabs of one user apart.
    pub id: String,
    pub user: String,
    /// The session that opened the socket: logging it out closes the socket.
    #[serde(default)]
    pub session: String,
    pub email: String,
    pub role: Role,
    /// Set by `hello`: only live sockets receive broadcasts, so a replay and the live
    /// stream never overlap.
    pub live: bool,
    /// Its rights were taken away: nothing it sends is accepted any more.
    #[serde(default)]
    pub revoked: bool,
    /// False for a personal token without the `generate` scope.
    #[serde(default = "yes")]
    pub can_generate: bool,
    /// The Yjs clients whose cursors this socket sent: gone when it goes.
    #[serde(default)]
    pub yjs_clients: Vec<u64>,
}

fn yes() -> bool {
    true
}

impl Conn {
    pub fn of(ws: &WebSocket) -> Option<Conn> {
        ws.deserialize_attachment().ok().flatten()
    }
}

/// Who is here: live sockets grouped by user, without the socket `leaving` (if any).
pub fn presence(state: &State, leaving: Option<&str>) -> Vec<PresenceUser> {
    let mut users: Vec<PresenceUser> = Vec::new();
    for conn in state.get_websockets().iter().filter_map(Conn::of) {
        if !conn.live || Some(conn.id.as_str()) == leaving {
            continue;
        }
        match users.iter_mut().find(|u| u.id == conn.user) {
            Some(u) => u.connections += 1,
            None => users.push(PresenceUser {
                id: conn.user,
                email: conn.email,
                connections: 1,
            }),
        }
    }
    users.sort_by(|a, b| a.id.cmp(&b.id));
    users
}

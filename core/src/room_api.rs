//! The Worker↔room calls, defined once: each operation's path and method, the headers that
//! carry the caller (whom the Worker has authenticated and authorised), and the JSON bodies.
//! The Worker sends them (`worker/src/room.rs`); the room dispatches on [`RoomOp::route`].

use crate::role::Role;
use serde::{Deserialize, Serialize};

/// The headers a room call carries. The room trusts them: only the Worker can reach it.
pub mod header {
    pub const USER: &str = "x-kiln-user";
    pub const EMAIL: &str = "x-kiln-email";
    pub const SESSION: &str = "x-kiln-session";
    pub const ROLE: &str = "x-kiln-role";
    /// `false` when the caller may watch but not prompt (a token without `generate`).
    pub const CAN_GENERATE: &str = "x-kiln-can-generate";
    /// The project's org, for the per-org caps.
    pub const ORG: &str = "x-kiln-org";
    /// On a file read: its rev and digest.
    pub const REV: &str = "x-kiln-rev";
    pub const SHA256: &str = "x-kiln-sha256";
}

/// A room operation: `/<project>/<path>` with its method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomOp {
    /// `GET state`: the `state` event.
    State,
    /// `GET ws`: the WebSocket upgrade.
    Socket,
    /// `GET files`: the tree's listing.
    Files,
    /// `GET file?path=`.
    ReadFile,
    /// `PUT file?path=[&base_rev=]`, the bytes as the body.
    WriteFile,
    /// `DELETE file?path=[&base_rev=]`.
    DeleteFile,
    /// `POST versions` [`NewVersion`].
    CreateVersion,
    /// `POST restore` [`RestoreVersion`].
    Restore,
    /// `POST generate` [`crate::api::StartGeneration`].
    Generate,
    /// `GET generation`: the stored generation.
    Generation,
    /// `POST cancel`.
    Cancel,
    /// `POST access` [`AccessChanged`].
    Access,
    /// `POST revoke-session` [`SessionEnded`].
    RevokeSession,
    /// `POST deleted`: the project was deleted.
    Deleted,
    /// `GET export[?version=]`: a zip.
    Export,
    /// `POST publish` [`crate::sites::PublishJob`]: build a version and make it the site.
    Publish,
    /// `DELETE publish`: the site is taken down (the Worker has recorded it).
    Unpublish,
}

const ALL: [RoomOp; 17] = [
    RoomOp::State,
    RoomOp::Socket,
    RoomOp::Files,
    RoomOp::ReadFile,
    RoomOp::WriteFile,
    RoomOp::DeleteFile,
    RoomOp::CreateVersion,
    RoomOp::Restore,
    RoomOp::Generate,
    RoomOp::Generation,
    RoomOp::Cancel,
    RoomOp::Access,
    RoomOp::RevokeSession,
    RoomOp::Deleted,
    RoomOp::Export,
    RoomOp::Publish,
    RoomOp::Unpublish,
];

/// Why a room path was not an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    MethodNotAllowed,
}

impl RoomOp {
    pub fn path(self) -> &'static str {
        use RoomOp::*;
        match self {
            State => "state",
            Socket => "ws",
            Files => "files",
            ReadFile | WriteFile | DeleteFile => "file",
            CreateVersion => "versions",
            Restore => "restore",
            Generate => "generate",
            Generation => "generation",
            Cancel => "cancel",
            Access => "access",
            RevokeSession => "revoke-session",
            Deleted => "deleted",
            Export => "export",
            Publish | Unpublish => "publish",
        }
    }

    /// The HTTP method, upper case.
    pub fn method(self) -> &'static str {
        use RoomOp::*;
        match self {
            State | Socket | Files | ReadFile | Generation | Export => "GET",
            WriteFile => "PUT",
            DeleteFile | Unpublish => "DELETE",
            CreateVersion | Restore | Generate | Cancel | Access | RevokeSession | Deleted
            | Publish => "POST",
        }
    }

    /// The operation at `path` for `method`.
    pub fn route(path: &str, method: &str) -> Result<RoomOp, NoRoute> {
        let mut known = ALL.iter().filter(|op| op.path() == path).peekable();
        if known.peek().is_none() {
            return Err(NoRoute::NotFound);
        }
        known
            .find(|op| op.method().eq_ignore_ascii_case(method))
            .copied()
            .ok_or(NoRoute::MethodNotAllowed)
    }
}

/// `POST versions` (the API's `CreateVersion` with its default message applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVersion {
    pub message: String,
}

/// `POST restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreVersion {
    pub number: u64,
}

/// `POST access`: `user`'s rights in the project changed (`None`: gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessChanged {
    pub user: String,
    pub role: Option<Role>,
}

/// `POST revoke-session`: the session's (or token's) sockets close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnded {
    pub session: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_routes_to_itself_and_a_wrong_method_is_405() {
        for op in ALL {
            assert_eq!(RoomOp::route(op.path(), op.method()), Ok(op));
            assert_eq!(
                RoomOp::route(op.path(), &op.method().to_lowercase()),
                Ok(op)
            );
        }
        assert_eq!(RoomOp::route("file", "PUT"), Ok(RoomOp::WriteFile));
        assert_eq!(
            RoomOp::route("generate", "GET"),
            Err(NoRoute::MethodNotAllowed)
        );
        assert_eq!(
            RoomOp::route("state", "POST"),
            Err(NoRoute::MethodNotAllowed)
        );
        assert_eq!(RoomOp::route("nope", "GET"), Err(NoRoute::NotFound));
        assert_eq!(RoomOp::route("", "GET"), Err(NoRoute::NotFound));
    }

    #[test]
    fn bodies_keep_their_wire_shape() {
        let a = AccessChanged {
            user: "u1".into(),
            role: None,
        };
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"user":"u1","role":null}"#
        );
        let r: RestoreVersion = serde_json::from_str(r#"{"number":3}"#).unwrap();
        assert_eq!(r.number, 3);
    }
}

//! Single-use grants for one project, tied to the session that asked for them: WebSocket
//! tickets and preview links. Both tables share these columns (`user_id`, `session_id`,
//! `project_id`, `expires_at`, `used_at`) and differ in their key column.

use super::{changes, int, stmt, text};
use crate::error::ApiResult;
use kiln_core::ids::{ProjectId, SessionId, UserId};
use serde::Deserialize;
use worker::D1Database;

/// Which kind of grant: its table and key column (constants, never input).
#[derive(Clone, Copy)]
pub struct GrantTable {
    pub table: &'static str,
    pub key: &'static str,
}

pub struct Grants<'a>(pub &'a D1Database, pub GrantTable);

impl Grants<'_> {
    pub async fn insert(
        &self,
        key: &str,
        user: &UserId,
        session: &SessionId,
        project: &ProjectId,
        expires_at: i64,
    ) -> ApiResult<()> {
        let GrantTable { table, key: column } = self.1;
        stmt(
            self.0,
            &format!(
                "INSERT INTO {table} ({column}, user_id, session_id, project_id, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)"
            ),
            &[
                text(key),
                text(user.as_str()),
                text(session.as_str()),
                text(project.as_str()),
                int(expires_at),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Spends a grant: succeeds once, before expiry, for its project only. The UPDATE's
    /// guard makes a second use fail even if two requests race.
    pub async fn redeem(
        &self,
        key: &str,
        project: &str,
        now: i64,
    ) -> ApiResult<Option<(UserId, SessionId)>> {
        let GrantTable { table, key: column } = self.1;
        let used = changes(stmt(
            self.0,
            &format!(
                "UPDATE {table} SET used_at = ?3 WHERE {column} = ?1 AND project_id = ?2 \
                 AND used_at IS NULL AND expires_at > ?3"
            ),
            &[text(key), text(project), int(now)],
        )?)
        .await?;
        if used == 0 {
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Row {
            user_id: UserId,
            session_id: SessionId,
        }
        let row: Option<Row> = stmt(
            self.0,
            &format!("SELECT user_id, session_id FROM {table} WHERE {column} = ?1"),
            &[text(key)],
        )?
        .first(None)
        .await?;
        Ok(row.map(|r| (r.user_id, r.session_id)))
    }
}

/// WebSocket tickets: a browser cannot set headers on a WebSocket.
pub const WS_TICKETS: GrantTable = GrantTable {
    table: "ws_tickets",
    key: "id",
};

/// Preview links (only the token's sha256 is the key).
pub const PREVIEW_LINKS: GrantTable = GrantTable {
    table: "preview_links",
    key: "token_hash",
};

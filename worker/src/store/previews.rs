use super::{changes, int, stmt, text};
use crate::error::ApiResult;
use kiln_core::ids::{ProjectId, SessionId, UserId};
use serde::Deserialize;
use worker::D1Database;

/// Single-use preview links (only their sha256 is stored).
pub struct PreviewLinks<'a>(pub &'a D1Database);

impl PreviewLinks<'_> {
    pub async fn insert(
        &self,
        token_hash: &str,
        user: &UserId,
        session: &SessionId,
        project: &ProjectId,
        expires_at: i64,
    ) -> ApiResult<()> {
        stmt(
            self.0,
            "INSERT INTO preview_links (token_hash, user_id, session_id, project_id, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(token_hash),
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

    /// Spends a link: once, before expiry, for its project only (the UPDATE's guard makes a
    /// second use fail even when two requests race).
    pub async fn redeem(
        &self,
        token_hash: &str,
        project: &ProjectId,
        now: i64,
    ) -> ApiResult<Option<(UserId, SessionId)>> {
        let used = changes(stmt(
            self.0,
            "UPDATE preview_links SET used_at = ?3 WHERE token_hash = ?1 AND project_id = ?2 \
             AND used_at IS NULL AND expires_at > ?3",
            &[text(token_hash), text(project.as_str()), int(now)],
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
            "SELECT user_id, session_id FROM preview_links WHERE token_hash = ?1",
            &[text(token_hash)],
        )?
        .first(None)
        .await?;
        Ok(row.map(|r| (r.user_id, r.session_id)))
    }
}

use super::{changes, int, stmt, text};
use crate::error::ApiResult;
use kiln_core::ids::{ProjectId, SessionId, UserId};
use serde::Deserialize;
use worker::D1Database;

pub struct Tickets<'a>(pub &'a D1Database);

impl Tickets<'_> {
    pub async fn insert(
        &self,
        id: &str,
        user: &UserId,
        session: &SessionId,
        project: &ProjectId,
        expires_at: i64,
    ) -> ApiResult<()> {
        stmt(
            self.0,
            "INSERT INTO ws_tickets (id, user_id, session_id, project_id, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(id),
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

    /// Spends a ticket: succeeds once, before expiry, for its project only. The UPDATE's
    /// guard makes a second use fail even if two requests race.
    pub async fn redeem(
        &self,
        id: &str,
        project: &str,
        now: i64,
    ) -> ApiResult<Option<(UserId, SessionId)>> {
        let used = changes(stmt(
            self.0,
            "UPDATE ws_tickets SET used_at = ?3 WHERE id = ?1 AND project_id = ?2 \
             AND used_at IS NULL AND expires_at > ?3",
            &[text(id), text(project), int(now)],
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
            "SELECT user_id, session_id FROM ws_tickets WHERE id = ?1",
            &[text(id)],
        )?
        .first(None)
        .await?;
        Ok(row.map(|r| (r.user_id, r.session_id)))
    }
}

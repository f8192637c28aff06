use super::{changes, int, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::User;
use kiln_core::ids::{SessionId, UserId};
use worker::{D1Database, D1PreparedStatement};

pub struct Sessions<'a>(pub &'a D1Database);

impl Sessions<'_> {
    pub fn insert(
        &self,
        id: &SessionId,
        user: &UserId,
        now: i64,
        expires_at: i64,
    ) -> ApiResult<D1PreparedStatement> {
        stmt(
            self.0,
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                text(id.as_str()),
                text(user.as_str()),
                int(now),
                int(expires_at),
            ],
        )
    }

    /// The user of a live session: not revoked, not expired, and issued to that user.
    pub async fn active_user(
        &self,
        id: &SessionId,
        user: &UserId,
        now: i64,
    ) -> ApiResult<Option<User>> {
        let st = stmt(
            self.0,
            "SELECT u.id, u.email, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id = ?1 AND s.user_id = ?2 AND s.revoked_at IS NULL AND s.expires_at > ?3",
            &[text(id.as_str()), text(user.as_str()), int(now)],
        )?;
        Ok(st.first(None).await?)
    }

    pub async fn revoke(&self, id: &SessionId, now: i64) -> ApiResult<usize> {
        changes(stmt(
            self.0,
            "UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            &[text(id.as_str()), int(now)],
        )?)
        .await
    }
}

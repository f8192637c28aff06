use super::{int, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::User;
use kiln_core::ids::UserId;
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

#[derive(Deserialize)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl UserRow {
    pub fn public(self) -> User {
        User {
            id: self.id,
            email: self.email,
            created_at: self.created_at,
        }
    }
}

pub struct Users<'a>(pub &'a D1Database);

impl Users<'_> {
    pub async fn by_email(&self, email: &str) -> ApiResult<Option<UserRow>> {
        let st = stmt(
            self.0,
            "SELECT id, email, password_hash, created_at FROM users WHERE email = ?1",
            &[text(email)],
        )?;
        Ok(st.first(None).await?)
    }

    /// Replaces a hash with a stronger one, only if it is still the one that was checked.
    pub async fn upgrade_hash(&self, id: &UserId, old: &str, new: &str) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
            &[text(id.as_str()), text(old), text(new)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub fn insert(&self, user: &User, password_hash: &str) -> ApiResult<D1PreparedStatement> {
        stmt(
            self.0,
            "INSERT INTO users (id, email, password_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                text(user.id.as_str()),
                text(&user.email),
                text(password_hash),
                int(user.created_at),
            ],
        )
    }
}

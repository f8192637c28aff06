use super::{batch, changes, int, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::Invitation;
use kiln_core::ids::{OrgId, UserId};
use kiln_core::Role;
use worker::D1Database;

const SELECT: &str = "SELECT i.id, i.org_id, o.name AS org_name, i.email, i.role, \
     u.email AS invited_by, i.status, i.created_at, i.expires_at FROM invitations i \
     JOIN orgs o ON o.id = i.org_id JOIN users u ON u.id = i.invited_by";

pub struct Invitations<'a>(pub &'a D1Database);

pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub org: &'a OrgId,
    pub email: &'a str,
    pub role: Role,
    pub invited_by: &'a UserId,
    pub now: i64,
    pub expires_at: i64,
}

impl Invitations<'_> {
    /// Opens an invitation, or renews the open one for the same person (role, inviter and
    /// expiry follow the latest). Returns it.
    pub async fn upsert(&self, inv: NewInvitation<'_>) -> ApiResult<Invitation> {
        let renewed = changes(stmt(
            self.0,
            "UPDATE invitations SET role = ?3, invited_by = ?4, expires_at = ?5 \
             WHERE org_id = ?1 AND email = ?2 AND status = 'pending'",
            &[
                text(inv.org.as_str()),
                text(inv.email),
                text(inv.role.as_str()),
                text(inv.invited_by.as_str()),
                int(inv.expires_at),
            ],
        )?)
        .await?;
        if renewed == 0 {
            // A concurrent invite of the same person hits the unique index: the other won.
            let _ = stmt(
                self.0,
                "INSERT INTO invitations (id, org_id, email, role, invited_by, status, created_at, \
                 expires_at) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
                &[
                    text(inv.id),
                    text(inv.org.as_str()),
                    text(inv.email),
                    text(inv.role.as_str()),
                    text(inv.invited_by.as_str()),
                    int(inv.now),
                    int(inv.expires_at),
                ],
            )?
            .run()
            .await;
        }
        let sql = format!("{SELECT} WHERE i.org_id = ?1 AND i.email = ?2 AND i.status = 'pending'");
        stmt(self.0, &sql, &[text(inv.org.as_str()), text(inv.email)])?
            .first(None)
            .await?
            .ok_or_else(|| crate::error::ApiError::internal("the invitation vanished"))
    }

    /// An org's open invitations, newest first.
    pub async fn pending_for_org(&self, org: &OrgId, now: i64) -> ApiResult<Vec<Invitation>> {
        let sql = format!(
            "{SELECT} WHERE i.org_id = ?1 AND i.status = 'pending' AND i.expires_at > ?2 \
             ORDER BY i.created_at DESC, i.id"
        );
        Ok(stmt(self.0, &sql, &[text(org.as_str()), int(now)])?
            .all()
            .await?
            .results()?)
    }

    /// The open invitations addressed to an email.
    pub async fn pending_for_email(&self, email: &str, now: i64) -> ApiResult<Vec<Invitation>> {
        let sql = format!(
            "{SELECT} WHERE i.email = ?1 AND i.status = 'pending' AND i.expires_at > ?2 \
             ORDER BY i.created_at DESC, i.id"
        );
        Ok(stmt(self.0, &sql, &[text(email), int(now)])?
            .all()
            .await?
            .results()?)
    }

    /// Accepts an open invitation addressed to `email`, making `user` a member with its
    /// role, in one transaction. A member already keeps their role. Returns the invitation,
    /// or `None` if there is no such open invitation for this email.
    pub async fn accept(
        &self,
        id: &str,
        email: &str,
        user: &UserId,
        now: i64,
    ) -> ApiResult<Option<Invitation>> {
        let found = self.open(id, email, now).await?;
        if found.is_none() {
            return Ok(None);
        }
        batch(
            self.0,
            vec![
                stmt(
                    self.0,
                    "UPDATE invitations SET status = 'accepted', answered_at = ?3 \
                     WHERE id = ?1 AND email = ?2 AND status = 'pending' AND expires_at > ?3",
                    &[text(id), text(email), int(now)],
                )?,
                stmt(
                    self.0,
                    "INSERT OR IGNORE INTO memberships (org_id, user_id, role, created_at) \
                     SELECT org_id, ?2, role, ?3 FROM invitations \
                     WHERE id = ?1 AND status = 'accepted' AND answered_at = ?3",
                    &[text(id), text(user.as_str()), int(now)],
                )?,
            ],
        )
        .await?;
        Ok(found)
    }

    /// Declines (the invitee) or revokes (the org) an open invitation. Returns whether one was.
    pub async fn close(&self, id: &str, scope: Scope<'_>, now: i64) -> ApiResult<bool> {
        let (sql, who, status) = match scope {
            Scope::Invitee(email) => ("email", email, "declined"),
            Scope::Org(org) => ("org_id", org.as_str(), "revoked"),
        };
        let n = changes(stmt(
            self.0,
            &format!(
                "UPDATE invitations SET status = ?3, answered_at = ?4 \
                 WHERE id = ?1 AND {sql} = ?2 AND status = 'pending'"
            ),
            &[text(id), text(who), text(status), int(now)],
        )?)
        .await?;
        Ok(n > 0)
    }

    async fn open(&self, id: &str, email: &str, now: i64) -> ApiResult<Option<Invitation>> {
        let sql = format!(
            "{SELECT} WHERE i.id = ?1 AND i.email = ?2 AND i.status = 'pending' AND i.expires_at > ?3"
        );
        Ok(stmt(self.0, &sql, &[text(id), text(email), int(now)])?
            .first(None)
            .await?)
    }
}

/// Who closes an invitation.
pub enum Scope<'a> {
    Invitee(&'a str),
    Org(&'a OrgId),
}

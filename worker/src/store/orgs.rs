use super::{changes, int, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::{Member, Org};
use kiln_core::ids::{OrgId, UserId};
use kiln_core::Role;
use serde::Deserialize;
use worker::{D1Database, D1PreparedStatement};

const ORG_COLUMNS: &str =
    "o.id, o.name, (o.personal_of IS NOT NULL) AS personal, m.role, o.created_at";

#[derive(Deserialize)]
struct OrgRow {
    id: OrgId,
    name: String,
    personal: i64,
    role: Role,
    created_at: i64,
}

impl From<OrgRow> for Org {
    fn from(r: OrgRow) -> Org {
        Org {
            id: r.id,
            name: r.name,
            personal: r.personal != 0,
            role: r.role,
            created_at: r.created_at,
        }
    }
}

#[derive(Deserialize)]
struct RoleRow {
    role: Role,
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

pub struct Orgs<'a>(pub &'a D1Database);

impl Orgs<'_> {
    /// Statements that create an org, make `owner` its owner and give it its starting
    /// credit (`credit` micro-dollars); run them in one batch.
    pub fn insert(
        &self,
        id: &OrgId,
        name: &str,
        personal_of: Option<&UserId>,
        owner: &UserId,
        credit: u64,
        now: i64,
    ) -> ApiResult<Vec<D1PreparedStatement>> {
        let grant = kiln_durable_objects::repo::Credits(self.0).grant_statements(
            id.as_str(),
            credit,
            "starting credit",
            now,
        )?;
        Ok([
            vec![
                stmt(
                    self.0,
                    "INSERT INTO orgs (id, name, personal_of, created_at) VALUES (?1, ?2, ?3, ?4)",
                    &[
                        text(id.as_str()),
                        text(name),
                        super::opt_text(personal_of.map(UserId::as_str)),
                        int(now),
                    ],
                )?,
                self.insert_member(id, owner, Role::Owner, now)?,
            ],
            grant,
        ]
        .concat())
    }

    pub fn insert_member(
        &self,
        org: &OrgId,
        user: &UserId,
        role: Role,
        now: i64,
    ) -> ApiResult<D1PreparedStatement> {
        stmt(
            self.0,
            "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
            &[
                text(org.as_str()),
                text(user.as_str()),
                text(role.as_str()),
                int(now),
            ],
        )
    }

    pub async fn for_user(&self, user: &UserId) -> ApiResult<Vec<Org>> {
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM memberships m JOIN orgs o ON o.id = m.org_id \
             WHERE m.user_id = ?1 ORDER BY o.created_at, o.id"
        );
        let rows: Vec<OrgRow> = stmt(self.0, &sql, &[text(user.as_str())])?
            .all()
            .await?
            .results()?;
        Ok(rows.into_iter().map(Org::from).collect())
    }

    /// The org as seen by `user`, or `None` if they are not a member.
    pub async fn get(&self, org: &OrgId, user: &UserId) -> ApiResult<Option<Org>> {
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM memberships m JOIN orgs o ON o.id = m.org_id \
             WHERE m.org_id = ?1 AND m.user_id = ?2"
        );
        let row: Option<OrgRow> = stmt(self.0, &sql, &[text(org.as_str()), text(user.as_str())])?
            .first(None)
            .await?;
        Ok(row.map(Org::from))
    }

    /// Whether the org exists (for the operator, who is no member).
    pub async fn exists(&self, org: &OrgId) -> ApiResult<bool> {
        #[derive(Deserialize)]
        struct Row {
            #[allow(dead_code)]
            id: String,
        }
        let row: Option<Row> = stmt(
            self.0,
            "SELECT id FROM orgs WHERE id = ?1",
            &[text(org.as_str())],
        )?
        .first(None)
        .await?;
        Ok(row.is_some())
    }

    pub async fn personal(&self, user: &UserId) -> ApiResult<Option<OrgId>> {
        #[derive(Deserialize)]
        struct Row {
            id: OrgId,
        }
        let row: Option<Row> = stmt(
            self.0,
            "SELECT id FROM orgs WHERE personal_of = ?1",
            &[text(user.as_str())],
        )?
        .first(None)
        .await?;
        Ok(row.map(|r| r.id))
    }

    pub async fn role(&self, org: &OrgId, user: &UserId) -> ApiResult<Option<Role>> {
        let row: Option<RoleRow> = stmt(
            self.0,
            "SELECT role FROM memberships WHERE org_id = ?1 AND user_id = ?2",
            &[text(org.as_str()), text(user.as_str())],
        )?
        .first(None)
        .await?;
        Ok(row.map(|r| r.role))
    }

    pub async fn members(&self, org: &OrgId) -> ApiResult<Vec<Member>> {
        Ok(stmt(
            self.0,
            "SELECT m.user_id, u.email, m.role, m.created_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 ORDER BY m.created_at, u.email",
            &[text(org.as_str())],
        )?
        .all()
        .await?
        .results()?)
    }

    pub async fn owner_count(&self, org: &OrgId) -> ApiResult<usize> {
        let row: Option<CountRow> = stmt(
            self.0,
            "SELECT COUNT(*) AS n FROM memberships WHERE org_id = ?1 AND role = 'owner'",
            &[text(org.as_str())],
        )?
        .first(None)
        .await?;
        Ok(row.map_or(0, |r| r.n as usize))
    }

    /// Changes a role unless that would demote the last owner. The guard sits in the
    /// statement itself, so two owners demoting each other at once cannot both succeed.
    /// Returns whether a row changed.
    pub async fn set_role(&self, org: &OrgId, user: &UserId, role: Role) -> ApiResult<bool> {
        let n = changes(stmt(
            self.0,
            "UPDATE memberships SET role = ?3 WHERE org_id = ?1 AND user_id = ?2 \
             AND (role != 'owner' OR ?3 = 'owner' OR \
                  (SELECT COUNT(*) FROM memberships WHERE org_id = ?1 AND role = 'owner') > 1)",
            &[text(org.as_str()), text(user.as_str()), text(role.as_str())],
        )?)
        .await?;
        Ok(n > 0)
    }

    /// Removes a member unless they are the last owner (guarded as in `set_role`).
    pub async fn remove(&self, org: &OrgId, user: &UserId) -> ApiResult<bool> {
        let n = changes(stmt(
            self.0,
            "DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2 \
             AND (role != 'owner' OR \
                  (SELECT COUNT(*) FROM memberships WHERE org_id = ?1 AND role = 'owner') > 1)",
            &[text(org.as_str()), text(user.as_str())],
        )?)
        .await?;
        Ok(n > 0)
    }
}

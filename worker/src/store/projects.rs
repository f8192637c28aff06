use super::{int, opt_text, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::{Cursor, Project};
use kiln_core::ids::{OrgId, ProjectId, UserId};
use wasm_bindgen::JsValue;
use worker::D1Database;

/// Projects joined with the caller's membership: a row exists only if the caller may see it.
const SELECT: &str = "SELECT p.id, p.org_id, p.name, p.description, p.created_by, \
     p.created_at, p.updated_at, m.role FROM projects p \
     JOIN memberships m ON m.org_id = p.org_id AND m.user_id = ?1 \
     WHERE p.deleted_at IS NULL";

pub struct Projects<'a>(pub &'a D1Database);

pub struct ListQuery<'a> {
    pub user: &'a UserId,
    pub org: Option<&'a OrgId>,
    pub after: Option<&'a Cursor>,
    pub limit: u32,
}

impl Projects<'_> {
    /// Every live project of an org (to tell their rooms about a membership change).
    pub async fn ids_in_org(&self, org: &OrgId) -> ApiResult<Vec<ProjectId>> {
        #[derive(serde::Deserialize)]
        struct Row {
            id: ProjectId,
        }
        let rows: Vec<Row> = stmt(
            self.0,
            "SELECT id FROM projects WHERE org_id = ?1 AND deleted_at IS NULL",
            &[text(org.as_str())],
        )?
        .all()
        .await?
        .results()?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }

    pub async fn insert(&self, p: &Project) -> ApiResult<()> {
        stmt(
            self.0,
            "INSERT INTO projects (id, org_id, name, description, created_by, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            &[
                text(p.id.as_str()),
                text(p.org_id.as_str()),
                text(&p.name),
                opt_text(p.description.as_deref()),
                text(p.created_by.as_str()),
                int(p.created_at),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// The project as `user` sees it, or `None` if it does not exist, was deleted, or
    /// belongs to an org `user` is not in (all three look the same from outside).
    pub async fn get(&self, id: &ProjectId, user: &UserId) -> ApiResult<Option<Project>> {
        let sql = format!("{SELECT} AND p.id = ?2");
        Ok(
            stmt(self.0, &sql, &[text(user.as_str()), text(id.as_str())])?
                .first(None)
                .await?,
        )
    }

    /// Newest first; fetches one extra row to tell whether another page exists.
    pub async fn list(&self, q: ListQuery<'_>) -> ApiResult<(Vec<Project>, bool)> {
        let mut sql = SELECT.to_owned();
        let mut args = vec![text(q.user.as_str())];
        if let Some(org) = q.org {
            args.push(text(org.as_str()));
            sql += &format!(" AND p.org_id = ?{}", args.len());
        }
        if let Some(c) = q.after {
            args.push(int(c.created_at));
            let ts = args.len();
            args.push(text(&c.id));
            let id = args.len();
            sql +=
                &format!(" AND (p.created_at < ?{ts} OR (p.created_at = ?{ts} AND p.id < ?{id}))");
        }
        args.push(JsValue::from_f64(f64::from(q.limit + 1)));
        sql += &format!(
            " ORDER BY p.created_at DESC, p.id DESC LIMIT ?{}",
            args.len()
        );
        let mut rows: Vec<Project> = stmt(self.0, &sql, &args)?.all().await?.results()?;
        let more = rows.len() > q.limit as usize;
        rows.truncate(q.limit as usize);
        Ok((rows, more))
    }

    pub async fn update(
        &self,
        id: &ProjectId,
        name: &str,
        description: Option<&str>,
        now: i64,
    ) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE projects SET name = ?2, description = ?3, updated_at = ?4 \
             WHERE id = ?1 AND deleted_at IS NULL",
            &[
                text(id.as_str()),
                text(name),
                opt_text(description),
                int(now),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn soft_delete(&self, id: &ProjectId, now: i64) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE projects SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            &[text(id.as_str()), int(now)],
        )?
        .run()
        .await?;
        Ok(())
    }
}

use serde::Deserialize;

use super::{changes, int, opt_text, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::{TokenInfo, User};
use kiln_core::ids::{OrgId, ProjectId, SessionId, UserId};
use kiln_core::tokens::{scopes_from_string, scopes_to_string, Grant, Scope};
use wasm_bindgen::JsValue;
use worker::D1Database;

pub struct Tokens<'a>(pub &'a D1Database);

/// A token found by its hash: whose it is and what it may do.
pub struct Found {
    pub id: SessionId,
    pub user: User,
    pub grant: Grant,
    pub last_used_at: Option<i64>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    name: String,
    scopes: String,
    org_id: Option<String>,
    project_id: Option<String>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl Row {
    fn info(self) -> TokenInfo {
        TokenInfo {
            id: self.id,
            name: self.name,
            scopes: scopes_from_string(&self.scopes),
            org_id: self.org_id.as_deref().and_then(OrgId::parse),
            project_id: self.project_id.as_deref().and_then(ProjectId::parse),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
        }
    }
}

#[derive(Deserialize)]
struct FoundRow {
    id: String,
    user_id: String,
    email: String,
    user_created_at: i64,
    scopes: String,
    org_id: Option<String>,
    project_id: Option<String>,
    last_used_at: Option<i64>,
}

pub struct NewToken<'a> {
    pub id: &'a SessionId,
    pub user: &'a UserId,
    pub name: &'a str,
    pub hash: &'a str,
    pub scopes: &'a [Scope],
    pub org: Option<&'a OrgId>,
    pub project: Option<&'a ProjectId>,
    pub expires_at: Option<i64>,
}

const COLUMNS: &str = "id, name, scopes, org_id, project_id, created_at, expires_at, last_used_at";

impl Tokens<'_> {
    pub async fn insert(&self, t: &NewToken<'_>, now: i64) -> ApiResult<TokenInfo> {
        stmt(
            self.0,
            "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, org_id, project_id, \
             created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                text(t.id.as_str()),
                text(t.user.as_str()),
                text(t.name),
                text(t.hash),
                text(&scopes_to_string(t.scopes)),
                opt_text(t.org.map(OrgId::as_str)),
                opt_text(t.project.map(ProjectId::as_str)),
                int(now),
                t.expires_at.map_or(JsValue::NULL, int),
            ],
        )?
        .run()
        .await?;
        Ok(TokenInfo {
            id: t.id.to_string(),
            name: t.name.to_owned(),
            scopes: t.scopes.to_vec(),
            org_id: t.org.cloned(),
            project_id: t.project.cloned(),
            created_at: now,
            expires_at: t.expires_at,
            last_used_at: None,
        })
    }

    /// A user's live tokens, newest first (revoked ones are gone from the list; expired ones
    /// stay, marked by their date, until revoked).
    pub async fn list(&self, user: &UserId) -> ApiResult<Vec<TokenInfo>> {
        let rows: Vec<Row> = stmt(
            self.0,
            &format!(
                "SELECT {COLUMNS} FROM api_tokens WHERE user_id = ?1 AND revoked_at IS NULL \
                 ORDER BY created_at DESC, id DESC"
            ),
            &[text(user.as_str())],
        )?
        .all()
        .await?
        .results()?;
        Ok(rows.into_iter().map(Row::info).collect())
    }

    /// Revokes one of `user`'s tokens; false if there is no such live token of theirs.
    pub async fn revoke(&self, user: &UserId, id: &str, now: i64) -> ApiResult<bool> {
        Ok(changes(stmt(
            self.0,
            "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 \
             AND revoked_at IS NULL",
            &[text(id), text(user.as_str()), int(now)],
        )?)
        .await?
            > 0)
    }

    /// The live token with this hash: not revoked, not expired.
    pub async fn find(&self, hash: &str, now: i64) -> ApiResult<Option<Found>> {
        let row: Option<FoundRow> = stmt(
            self.0,
            "SELECT t.id, t.user_id, u.email, u.created_at AS user_created_at, t.scopes, \
             t.org_id, t.project_id, t.last_used_at FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1 \
             AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?2)",
            &[text(hash), int(now)],
        )?
        .first(None)
        .await?;
        Ok(row.and_then(|r| {
            Some(Found {
                id: SessionId::parse(&r.id)?,
                user: User {
                    id: UserId::parse(&r.user_id)?,
                    email: r.email,
                    created_at: r.user_created_at,
                },
                grant: Grant {
                    scopes: scopes_from_string(&r.scopes),
                    org: r.org_id.as_deref().and_then(OrgId::parse),
                    project: r.project_id.as_deref().and_then(ProjectId::parse),
                },
                last_used_at: r.last_used_at,
            })
        }))
    }

    pub async fn touch(&self, id: &SessionId, now: i64) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
            &[text(id.as_str()), int(now)],
        )?
        .run()
        .await?;
        Ok(())
    }
}

use super::{stmt, text};
use crate::error::ApiResult;
use kiln_core::ids::{ProjectId, SessionId};
use serde::Deserialize;
use worker::D1Database;

/// Which sessions opened sockets to which projects: logging out closes them.
pub struct SocketSessions<'a>(pub &'a D1Database);

impl SocketSessions<'_> {
    pub async fn record(&self, session: &SessionId, project: &ProjectId) -> ApiResult<()> {
        stmt(
            self.0,
            "INSERT OR IGNORE INTO socket_sessions (session_id, project_id) VALUES (?1, ?2)",
            &[text(session.as_str()), text(project.as_str())],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn projects(&self, session: &SessionId) -> ApiResult<Vec<ProjectId>> {
        #[derive(Deserialize)]
        struct Row {
            project_id: ProjectId,
        }
        let rows: Vec<Row> = stmt(
            self.0,
            "SELECT project_id FROM socket_sessions WHERE session_id = ?1",
            &[text(session.as_str())],
        )?
        .all()
        .await?
        .results()?;
        Ok(rows.into_iter().map(|r| r.project_id).collect())
    }
}

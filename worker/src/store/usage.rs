use super::{int, stmt, text};
use crate::error::ApiResult;
use kiln_core::ids::{OrgId, ProjectId};
use kiln_core::usage::Call;
use worker::D1Database;

pub struct AiCalls<'a>(pub &'a D1Database);

/// The most calls one usage question reads (a year of a busy org is far below).
const MAX_ROWS: i64 = 200_000;

const COLUMNS: &str = "c.project_id, c.role, c.model, c.input_tokens, c.output_tokens, \
                       c.cost_micros, c.latency_ms, c.created_at";

impl AiCalls<'_> {
    /// An org's model calls in `[from, to)`, deleted projects included (they were paid for).
    pub async fn for_org(&self, org: &OrgId, from: i64, to: i64) -> ApiResult<Vec<Call>> {
        Ok(stmt(
            self.0,
            &format!(
                "SELECT {COLUMNS} FROM ai_calls c JOIN projects p ON p.id = c.project_id \
                 WHERE p.org_id = ?1 AND c.created_at >= ?2 AND c.created_at < ?3 LIMIT ?4"
            ),
            &[text(org.as_str()), int(from), int(to), int(MAX_ROWS)],
        )?
        .all()
        .await?
        .results()?)
    }

    pub async fn for_project(
        &self,
        project: &ProjectId,
        from: i64,
        to: i64,
    ) -> ApiResult<Vec<Call>> {
        Ok(stmt(
            self.0,
            &format!(
                "SELECT {COLUMNS} FROM ai_calls c WHERE c.project_id = ?1 \
                 AND c.created_at >= ?2 AND c.created_at < ?3 LIMIT ?4"
            ),
            &[text(project.as_str()), int(from), int(to), int(MAX_ROWS)],
        )?
        .all()
        .await?
        .results()?)
    }
}

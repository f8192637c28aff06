use super::{int, stmt, text};
use crate::error::ApiResult;
use kiln_core::ids::ProjectId;
use kiln_core::protocol::VersionInfo;
use serde::Deserialize;
use worker::D1Database;

#[derive(Deserialize)]
struct Row {
    number: i64,
    message: String,
    author: String,
    parent: Option<i64>,
    file_count: i64,
    size: i64,
    created_at: i64,
    manifest_key: String,
}

impl Row {
    fn info(self) -> (VersionInfo, String) {
        (
            VersionInfo {
                number: self.number as u64,
                message: self.message,
                author: self.author,
                parent: self.parent.map(|p| p as u64),
                file_count: self.file_count as u64,
                size: self.size as u64,
                created_at: self.created_at,
            },
            self.manifest_key,
        )
    }
}

const COLUMNS: &str = "number, message, author, parent, file_count, size, created_at, manifest_key";

pub struct Versions<'a>(pub &'a D1Database);

impl Versions<'_> {
    /// Newest first.
    pub async fn list(&self, project: &ProjectId) -> ApiResult<Vec<VersionInfo>> {
        let rows: Vec<Row> = stmt(
            self.0,
            &format!("SELECT {COLUMNS} FROM versions WHERE project_id = ?1 ORDER BY number DESC"),
            &[text(project.as_str())],
        )?
        .all()
        .await?
        .results()?;
        Ok(rows.into_iter().map(|r| r.info().0).collect())
    }

    /// A version and the R2 key of its manifest.
    pub async fn get(
        &self,
        project: &ProjectId,
        number: u64,
    ) -> ApiResult<Option<(VersionInfo, String)>> {
        let row: Option<Row> = stmt(
            self.0,
            &format!("SELECT {COLUMNS} FROM versions WHERE project_id = ?1 AND number = ?2"),
            &[text(project.as_str()), int(number as i64)],
        )?
        .first(None)
        .await?;
        Ok(row.map(Row::info))
    }
}

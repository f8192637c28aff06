//! Typed repositories over D1. Handlers call these; SQL strings live only here and, for the
//! tables the room writes too (`versions`, `ai_calls`) and the R2 bucket, in
//! `kiln_durable_objects::repo`.
//!
//! Multi-row writes go through `D1Database::batch`, which D1 runs as one transaction: a
//! registration, an org with its owner, never half of either.

pub mod grants;
pub mod invitations;
pub mod orgs;
pub mod projects;
pub mod sessions;
pub mod sockets;
pub mod tokens;
pub mod users;
pub mod webhooks;

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::error::ApiResult;

pub fn text(v: &str) -> JsValue {
    JsValue::from_str(v)
}

pub fn int(v: i64) -> JsValue {
    JsValue::from_f64(v as f64)
}

pub fn opt_text(v: Option<&str>) -> JsValue {
    v.map_or(JsValue::NULL, JsValue::from_str)
}

pub fn stmt(db: &D1Database, sql: &str, args: &[JsValue]) -> ApiResult<D1PreparedStatement> {
    Ok(db.prepare(sql).bind(args)?)
}

/// Runs statements as one transaction.
pub async fn batch(db: &D1Database, stmts: Vec<D1PreparedStatement>) -> Result<(), worker::Error> {
    db.batch(stmts).await.map(|_| ())
}

/// Rows changed by a write, for guarded updates (`UPDATE … WHERE <precondition>`).
pub async fn changes(st: D1PreparedStatement) -> ApiResult<usize> {
    let res = st.run().await?;
    Ok(res.meta()?.and_then(|m| m.changes).unwrap_or(0))
}

pub fn is_unique_violation(e: &worker::Error) -> bool {
    e.to_string().contains("UNIQUE constraint failed")
}

use serde::Deserialize;

use super::{int, is_unique_violation, opt_text, stmt, text};
use crate::error::ApiResult;
use kiln_core::api::{Delivery, WebhookInfo};
use kiln_core::ids::{ProjectId, UserId};
use kiln_core::sandbox::Template;
use kiln_core::webhooks::{HookFilters, HookKind};
use wasm_bindgen::JsValue;
use worker::D1Database;

pub struct Webhooks<'a>(pub &'a D1Database);

/// A live hook with what verifying and running a delivery needs.
pub struct Hook {
    pub info: WebhookInfo,
    pub created_by: UserId,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_until: Option<i64>,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    project_id: String,
    created_by: String,
    kind: String,
    prompt_template: String,
    filters: String,
    template: Option<String>,
    secret: String,
    previous_secret: Option<String>,
    previous_until: Option<i64>,
    created_at: i64,
}

impl Row {
    fn hook(self, base_url: &str) -> Option<Hook> {
        Some(Hook {
            info: WebhookInfo {
                url: format!("{base_url}/hooks/{}", self.id),
                id: self.id,
                project_id: ProjectId::parse(&self.project_id)?,
                kind: HookKind::parse(&self.kind)?,
                prompt_template: self.prompt_template,
                filters: serde_json::from_str(&self.filters).unwrap_or_default(),
                template: self
                    .template
                    .and_then(|t| serde_json::from_value(serde_json::Value::String(t)).ok()),
                created_at: self.created_at,
                previous_valid_until: self.previous_until,
            },
            created_by: UserId::parse(&self.created_by)?,
            secret: self.secret,
            previous_secret: self.previous_secret,
            previous_until: self.previous_until,
        })
    }
}

#[derive(Deserialize)]
struct DeliveryRow {
    delivery_id: String,
    received_at: i64,
    status: i64,
    generation_id: Option<String>,
    error: Option<String>,
}

impl DeliveryRow {
    fn delivery(self) -> Delivery {
        Delivery {
            delivery_id: self.delivery_id,
            received_at: self.received_at,
            status: self.status as u16,
            generation_id: self.generation_id,
            error: self.error,
        }
    }
}

const COLUMNS: &str = "id, project_id, created_by, kind, prompt_template, filters, template, \
                       secret, previous_secret, previous_until, created_at";

pub struct NewHook<'a> {
    pub id: &'a str,
    pub project: &'a ProjectId,
    pub by: &'a UserId,
    pub kind: HookKind,
    pub template: &'a str,
    pub filters: &'a HookFilters,
    pub app_template: Option<Template>,
    pub secret: &'a str,
}

impl Webhooks<'_> {
    pub async fn insert(&self, h: &NewHook<'_>, now: i64) -> ApiResult<()> {
        stmt(
            self.0,
            "INSERT INTO webhooks (id, project_id, created_by, kind, prompt_template, filters, \
             secret, created_at, template) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                text(h.id),
                text(h.project.as_str()),
                text(h.by.as_str()),
                text(h.kind.as_str()),
                text(h.template),
                text(&serde_json::to_string(h.filters).unwrap_or_else(|_| "{}".into())),
                text(h.secret),
                int(now),
                opt_text(
                    h.app_template
                        .and_then(|t| serde_json::to_value(t).ok())
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .as_deref(),
                ),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn get(&self, id: &str, base_url: &str) -> ApiResult<Option<Hook>> {
        let row: Option<Row> = stmt(
            self.0,
            &format!("SELECT {COLUMNS} FROM webhooks WHERE id = ?1 AND deleted_at IS NULL"),
            &[text(id)],
        )?
        .first(None)
        .await?;
        Ok(row.and_then(|r| r.hook(base_url)))
    }

    pub async fn list(&self, project: &ProjectId, base_url: &str) -> ApiResult<Vec<WebhookInfo>> {
        let rows: Vec<Row> = stmt(
            self.0,
            &format!(
                "SELECT {COLUMNS} FROM webhooks WHERE project_id = ?1 AND deleted_at IS NULL \
                 ORDER BY created_at DESC, id DESC"
            ),
            &[text(project.as_str())],
        )?
        .all()
        .await?
        .results()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.hook(base_url).map(|h| h.info))
            .collect())
    }

    /// A new secret; the one it replaces verifies until `previous_until`.
    pub async fn rotate(&self, id: &str, secret: &str, previous_until: i64) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE webhooks SET previous_secret = secret, previous_until = ?3, secret = ?2 \
             WHERE id = ?1 AND deleted_at IS NULL",
            &[text(id), text(secret), int(previous_until)],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn delete(&self, id: &str, now: i64) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE webhooks SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            &[text(id), int(now)],
        )?
        .run()
        .await?;
        Ok(())
    }

    /// Claims a delivery id for this hook: false if it was claimed before (by an earlier
    /// or a concurrent copy of the same delivery).
    pub async fn claim(&self, hook: &str, delivery: &str, now: i64) -> ApiResult<bool> {
        let r = stmt(
            self.0,
            "INSERT INTO webhook_deliveries (hook_id, delivery_id, received_at, status) \
             VALUES (?1, ?2, ?3, 102)",
            &[text(hook), text(delivery), int(now)],
        )?
        .run()
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn finish(
        &self,
        hook: &str,
        delivery: &str,
        status: u16,
        generation: Option<&str>,
        error: Option<&str>,
    ) -> ApiResult<()> {
        stmt(
            self.0,
            "UPDATE webhook_deliveries SET status = ?3, generation_id = ?4, error = ?5 \
             WHERE hook_id = ?1 AND delivery_id = ?2",
            &[
                text(hook),
                text(delivery),
                JsValue::from_f64(f64::from(status)),
                opt_text(generation),
                opt_text(error),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    pub async fn delivery(&self, hook: &str, delivery: &str) -> ApiResult<Option<Delivery>> {
        let row: Option<DeliveryRow> = stmt(
            self.0,
            "SELECT delivery_id, received_at, status, generation_id, error \
             FROM webhook_deliveries WHERE hook_id = ?1 AND delivery_id = ?2",
            &[text(hook), text(delivery)],
        )?
        .first(None)
        .await?;
        Ok(row.map(DeliveryRow::delivery))
    }

    /// The newest deliveries first.
    pub async fn deliveries(&self, hook: &str, limit: u32) -> ApiResult<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = stmt(
            self.0,
            "SELECT delivery_id, received_at, status, generation_id, error \
             FROM webhook_deliveries WHERE hook_id = ?1 ORDER BY received_at DESC LIMIT ?2",
            &[text(hook), int(i64::from(limit))],
        )?
        .all()
        .await?
        .results()?;
        Ok(rows.into_iter().map(DeliveryRow::delivery).collect())
    }
}

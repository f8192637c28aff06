//! The D1 tables and R2 objects that both the Worker and the room touch, each behind one
//! typed repository, so their SQL and their R2 keys are written once: `Versions` (the
//! `versions` table), `AiCalls` (the `ai_calls` cost log) and `Blobs` (the `ARTIFACTS`
//! bucket: file blobs and version manifests, content-addressed). The Worker's other tables
//! are in `kiln-worker`'s `store`.

use kiln_core::agent::llm::Usage;
use kiln_core::protocol::VersionInfo;
use kiln_core::tree::{blob_key, manifest_key, sha256_hex, Manifest};
use kiln_core::usage::Call;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{Bucket, D1Database, Error, Result};

fn int(v: u64) -> JsValue {
    JsValue::from_f64(v as f64)
}

#[derive(Deserialize)]
struct VersionRow {
    number: i64,
    message: String,
    author: String,
    parent: Option<i64>,
    file_count: i64,
    size: i64,
    created_at: i64,
    manifest_key: String,
}

impl VersionRow {
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

const VERSION_COLUMNS: &str =
    "number, message, author, parent, file_count, size, created_at, manifest_key";

/// A version about to be recorded; its number and parent are allocated by the insert.
pub struct NewVersion<'a> {
    pub project: &'a str,
    pub message: &'a str,
    pub author: &'a str,
    pub manifest_key: &'a str,
    pub file_count: u64,
    pub size: u64,
    pub created_at: i64,
}

pub struct Versions<'a>(pub &'a D1Database);

impl Versions<'_> {
    /// Records the project's next version. The number is allocated inside the INSERT (one
    /// statement, so two snapshots at once never get the same one).
    pub async fn insert_next(&self, v: &NewVersion<'_>) -> Result<VersionInfo> {
        let row: Option<VersionRow> = self
            .0
            .prepare(format!(
                "INSERT INTO versions (project_id, number, message, author, parent, manifest_key, \
                 file_count, size, created_at) \
                 SELECT ?1, COALESCE(MAX(number), 0) + 1, ?2, ?3, MAX(number), ?4, ?5, ?6, ?7 \
                 FROM versions WHERE project_id = ?1 RETURNING {VERSION_COLUMNS}"
            ))
            .bind(&[
                v.project.into(),
                v.message.into(),
                v.author.into(),
                v.manifest_key.into(),
                int(v.file_count),
                int(v.size),
                JsValue::from_f64(v.created_at as f64),
            ])?
            .first(None)
            .await?;
        let row = row.ok_or_else(|| Error::from("versions insert returned no row"))?;
        Ok(row.info().0)
    }

    /// Newest first.
    pub async fn list(&self, project: &str) -> Result<Vec<VersionInfo>> {
        let rows: Vec<VersionRow> = self
            .0
            .prepare(format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE project_id = ?1 ORDER BY number DESC"
            ))
            .bind(&[project.into()])?
            .all()
            .await?
            .results()?;
        Ok(rows.into_iter().map(|r| r.info().0).collect())
    }

    /// A version and the R2 key of its manifest; `None` if the project has no such version.
    pub async fn get(&self, project: &str, number: u64) -> Result<Option<(VersionInfo, String)>> {
        let row: Option<VersionRow> = self
            .0
            .prepare(format!(
                "SELECT {VERSION_COLUMNS} FROM versions WHERE project_id = ?1 AND number = ?2"
            ))
            .bind(&[project.into(), int(number)])?
            .first(None)
            .await?;
        Ok(row.map(VersionRow::info))
    }
}

/// One model call, for the cost log.
pub struct AiCall<'a> {
    pub project: &'a str,
    pub generation: &'a str,
    pub role: &'a str,
    pub model: &'a str,
    pub usage: Usage,
    pub cost_micros: u64,
    pub latency_ms: u64,
    /// `None` for a call that answered.
    pub error: Option<&'a str>,
    pub created_at: i64,
}

pub struct AiCalls<'a>(pub &'a D1Database);

impl AiCalls<'_> {
    pub async fn log(&self, c: &AiCall<'_>) -> Result<()> {
        self.0
            .prepare(
                "INSERT INTO ai_calls (project_id, generation_id, role, model, input_tokens, \
                 output_tokens, cost_micros, latency_ms, status, error, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .bind(&[
                c.project.into(),
                c.generation.into(),
                c.role.into(),
                c.model.into(),
                int(c.usage.input_tokens),
                int(c.usage.output_tokens),
                int(c.cost_micros),
                int(c.latency_ms),
                if c.error.is_none() { "ok" } else { "error" }.into(),
                c.error.map_or(JsValue::NULL, JsValue::from_str),
                JsValue::from_f64(c.created_at as f64),
            ])?
            .run()
            .await?;
        Ok(())
    }

    /// An org's model calls in `[from, to)`, deleted projects included (they were paid
    /// for), at most `MAX_USAGE_ROWS`.
    pub async fn for_org(&self, org: &str, from: i64, to: i64) -> Result<Vec<Call>> {
        self.calls(
            "JOIN projects p ON p.id = c.project_id WHERE p.org_id = ?1",
            org,
            from,
            to,
        )
        .await
    }

    pub async fn for_project(&self, project: &str, from: i64, to: i64) -> Result<Vec<Call>> {
        self.calls("WHERE c.project_id = ?1", project, from, to)
            .await
    }

    async fn calls(&self, scope: &str, key: &str, from: i64, to: i64) -> Result<Vec<Call>> {
        self.0
            .prepare(format!(
                "SELECT c.project_id, c.role, c.model, c.input_tokens, c.output_tokens, \
                 c.cost_micros, c.latency_ms, c.created_at FROM ai_calls c {scope} \
                 AND c.created_at >= ?2 AND c.created_at < ?3 LIMIT ?4"
            ))
            .bind(&[
                key.into(),
                JsValue::from_f64(from as f64),
                JsValue::from_f64(to as f64),
                int(MAX_USAGE_ROWS),
            ])?
            .all()
            .await?
            .results()
    }
}

/// The most calls one usage question reads (a year of a busy org is far below).
const MAX_USAGE_ROWS: u64 = 200_000;

/// The `ARTIFACTS` bucket: `blobs/<sha256>` and `manifests/<sha256>`, written once and never
/// changed.
#[derive(Clone)]
pub struct Blobs(pub Bucket);

impl Blobs {
    /// An object's bytes; a key that was written and is gone is an error (nothing deletes
    /// them).
    pub async fn read(&self, key: &str) -> Result<Vec<u8>> {
        let object = self
            .0
            .get(key)
            .execute()
            .await?
            .ok_or_else(|| Error::from(format!("R2 object {key} is missing")))?;
        object
            .body()
            .ok_or_else(|| Error::from(format!("R2 object {key} has no body")))?
            .bytes()
            .await
    }

    pub async fn blob(&self, sha256: &str) -> Result<Vec<u8>> {
        self.read(&blob_key(sha256)).await
    }

    /// Stores `bytes` under `key` (a site's manifest: `publish::manifest_key`).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.0.put(key, bytes).execute().await?;
        Ok(())
    }

    pub async fn put_blob(&self, sha256: &str, bytes: Vec<u8>) -> Result<()> {
        self.0.put(blob_key(sha256), bytes).execute().await?;
        Ok(())
    }

    /// The manifest stored under `key` (a version row's `manifest_key`).
    pub async fn manifest(&self, key: &str) -> Result<Manifest> {
        Ok(serde_json::from_slice(&self.read(key).await?)?)
    }

    /// Stores a manifest under its own hash; returns its key.
    pub async fn put_manifest(&self, manifest: &Manifest) -> Result<String> {
        let json = serde_json::to_vec(manifest)?;
        let key = manifest_key(&sha256_hex(&json));
        self.0.put(&key, json).execute().await?;
        Ok(key)
    }
}

/// The `credit_balances` and `credit_ledger` tables: each org's credit and every grant and
/// debit. A debit is clamped at the balance in the same transaction that records it, so no
/// race makes a balance negative.
pub struct Credits<'a>(pub &'a D1Database);

#[derive(Deserialize)]
struct BalanceRow {
    balance_micros: i64,
}

#[derive(Deserialize)]
struct EntryRow {
    kind: String,
    amount_micros: i64,
    reason: String,
    project_id: Option<String>,
    generation_id: Option<String>,
    created_at: i64,
}

impl Credits<'_> {
    /// Statements that add `amount` to `org`'s credit (creating its balance), for a batch of
    /// the caller's (an org's creation) or for `grant`.
    pub fn grant_statements(
        &self,
        org: &str,
        amount: u64,
        reason: &str,
        now: i64,
    ) -> Result<Vec<worker::D1PreparedStatement>> {
        let t = JsValue::from_f64(now as f64);
        Ok(vec![
            self.0
                .prepare(
                    "INSERT INTO credit_balances (org_id, balance_micros, updated_at) \
                     VALUES (?1, ?2, ?3) ON CONFLICT (org_id) DO UPDATE SET \
                     balance_micros = balance_micros + excluded.balance_micros, \
                     updated_at = excluded.updated_at",
                )
                .bind(&[org.into(), int(amount), t.clone()])?,
            self.0
                .prepare(
                    "INSERT INTO credit_ledger (org_id, kind, amount_micros, reason, created_at) \
                     VALUES (?1, 'grant', ?2, ?3, ?4)",
                )
                .bind(&[org.into(), int(amount), reason.into(), t])?,
        ])
    }

    /// Adds credit; the new balance.
    pub async fn grant(&self, org: &str, amount: u64, reason: &str, now: i64) -> Result<u64> {
        self.0
            .batch(self.grant_statements(org, amount, reason, now)?)
            .await?;
        self.balance(org).await
    }

    /// The org's credit (none recorded: 0).
    pub async fn balance(&self, org: &str) -> Result<u64> {
        let row: Option<BalanceRow> = self
            .0
            .prepare("SELECT balance_micros FROM credit_balances WHERE org_id = ?1")
            .bind(&[org.into()])?
            .first(None)
            .await?;
        Ok(row.map_or(0, |r| r.balance_micros.max(0) as u64))
    }

    /// Spends `cost` of the org's credit for a model call, at most what is left; the credit
    /// left after it.
    pub async fn debit(
        &self,
        org: &str,
        project: &str,
        generation: &str,
        cost: u64,
        now: i64,
    ) -> Result<u64> {
        let left = self
            .for_generation(
                "SELECT ?1, 'debit', -MIN(?2, balance_micros), 'beyond its hold', ?3, ?4, ?5 \
                 FROM credit_balances WHERE org_id = ?1",
                "SET balance_micros = MAX(balance_micros - ?2, 0), updated_at = ?3 \
                 WHERE org_id = ?1",
                (org, cost, project, generation, now),
            )
            .await?;
        Ok(left.unwrap_or(0))
    }

    /// Sets `amount` aside for a generation, if the balance covers it (one transaction: the
    /// check and the change, so of two starts racing for one hold one wins); whether it did.
    pub async fn hold(
        &self,
        org: &str,
        amount: u64,
        project: &str,
        generation: &str,
        now: i64,
    ) -> Result<bool> {
        let left = self
            .for_generation(
                "SELECT ?1, 'hold', -?2, 'held for a generation', ?3, ?4, ?5 \
                 FROM credit_balances WHERE org_id = ?1 AND balance_micros >= ?2",
                "SET balance_micros = balance_micros - ?2, updated_at = ?3 \
                 WHERE org_id = ?1 AND balance_micros >= ?2",
                (org, amount, project, generation, now),
            )
            .await?;
        Ok(left.is_some())
    }

    /// Gives back what a generation did not spend of its hold.
    pub async fn release(
        &self,
        org: &str,
        amount: u64,
        project: &str,
        generation: &str,
        now: i64,
    ) -> Result<()> {
        if amount == 0 {
            return Ok(());
        }
        self.for_generation(
            "VALUES (?1, 'release', ?2, 'not spent of its hold', ?3, ?4, ?5)",
            "SET balance_micros = balance_micros + ?2, updated_at = ?3 WHERE org_id = ?1",
            (org, amount, project, generation, now),
        )
        .await?;
        Ok(())
    }

    /// One ledger entry of a generation and the balance change it records, in one transaction;
    /// the entry is written first, so `ledger` (`SELECT …`/`VALUES …` over ?1 org, ?2 amount,
    /// ?3 project, ?4 generation, ?5 time) reads the balance before `balance` (`SET … WHERE …`
    /// over ?1 org, ?2 amount, ?3 time) changes it. The balance after, if a row changed.
    async fn for_generation(
        &self,
        ledger: &str,
        balance: &str,
        (org, amount, project, generation, now): (&str, u64, &str, &str, i64),
    ) -> Result<Option<u64>> {
        let t = JsValue::from_f64(now as f64);
        let results = self
            .0
            .batch(vec![
                self.0
                    .prepare(format!(
                        "INSERT INTO credit_ledger (org_id, kind, amount_micros, reason, \
                         project_id, generation_id, created_at) {ledger}"
                    ))
                    .bind(&[
                        org.into(),
                        int(amount),
                        project.into(),
                        generation.into(),
                        t.clone(),
                    ])?,
                self.0
                    .prepare(format!(
                        "UPDATE credit_balances {balance} RETURNING balance_micros"
                    ))
                    .bind(&[org.into(), int(amount), t])?,
            ])
            .await?;
        let rows = results
            .get(1)
            .map(|r| r.results::<BalanceRow>())
            .transpose()?
            .unwrap_or_default();
        Ok(rows.first().map(|r| r.balance_micros.max(0) as u64))
    }

    /// The ledger's newest `limit` entries.
    pub async fn entries(&self, org: &str, limit: u32) -> Result<Vec<kiln_core::api::CreditEntry>> {
        let rows: Vec<EntryRow> = self
            .0
            .prepare(
                "SELECT kind, amount_micros, reason, project_id, generation_id, created_at \
                 FROM credit_ledger WHERE org_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .bind(&[org.into(), int(limit as u64)])?
            .all()
            .await?
            .results()?;
        Ok(rows
            .into_iter()
            .map(|r| kiln_core::api::CreditEntry {
                kind: r.kind,
                amount_micros: r.amount_micros,
                reason: r.reason,
                project_id: r.project_id,
                generation_id: r.generation_id,
                created_at: r.created_at,
            })
            .collect())
    }
}

/// The `notify_targets` and `notify_attempts` tables: where a project's generation events go,
/// and every attempt to deliver them.
pub struct Notifications<'a>(pub &'a D1Database);

/// A target as its deliverer needs it.
#[derive(Deserialize)]
pub struct TargetRow {
    pub id: String,
    pub project_id: String,
    pub url: String,
    pub secret: String,
    pub events: String,
    pub created_at: i64,
}

impl TargetRow {
    pub fn events(&self) -> Vec<String> {
        serde_json::from_str(&self.events).unwrap_or_default()
    }

    pub fn info(&self) -> kiln_core::api::NotifyTarget {
        kiln_core::api::NotifyTarget {
            id: self.id.clone(),
            url: self.url.clone(),
            events: self.events(),
            created_at: self.created_at,
        }
    }
}

#[derive(Deserialize)]
struct AttemptRow {
    event_id: String,
    event: String,
    attempt: i64,
    status: Option<i64>,
    error: Option<String>,
    at: i64,
}

const TARGET_COLUMNS: &str = "id, project_id, url, secret, events, created_at";

impl Notifications<'_> {
    pub async fn insert(&self, t: &TargetRow, created_by: &str) -> Result<()> {
        self.0
            .prepare(
                "INSERT INTO notify_targets (id, project_id, url, secret, events, created_by, \
                 created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(&[
                t.id.as_str().into(),
                t.project_id.as_str().into(),
                t.url.as_str().into(),
                t.secret.as_str().into(),
                t.events.as_str().into(),
                created_by.into(),
                JsValue::from_f64(t.created_at as f64),
            ])?
            .run()
            .await?;
        Ok(())
    }

    /// The project's live targets, oldest first.
    pub async fn for_project(&self, project: &str) -> Result<Vec<TargetRow>> {
        self.0
            .prepare(format!(
                "SELECT {TARGET_COLUMNS} FROM notify_targets WHERE project_id = ?1 \
                 AND deleted_at IS NULL ORDER BY created_at, id"
            ))
            .bind(&[project.into()])?
            .all()
            .await?
            .results()
    }

    /// A live target.
    pub async fn get(&self, id: &str) -> Result<Option<TargetRow>> {
        self.0
            .prepare(format!(
                "SELECT {TARGET_COLUMNS} FROM notify_targets WHERE id = ?1 AND deleted_at IS NULL"
            ))
            .bind(&[id.into()])?
            .first(None)
            .await
    }

    /// Stops deliveries to it at once (queued ones find it gone); its log stays.
    pub async fn delete(&self, id: &str, now: i64) -> Result<()> {
        self.0
            .prepare("UPDATE notify_targets SET deleted_at = ?2 WHERE id = ?1")
            .bind(&[id.into(), JsValue::from_f64(now as f64)])?
            .run()
            .await?;
        Ok(())
    }

    pub async fn log(&self, target: &str, a: &kiln_core::api::NotifyAttempt) -> Result<()> {
        self.0
            .prepare(
                "INSERT INTO notify_attempts (target_id, event_id, event, attempt, status, \
                 error, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(&[
                target.into(),
                a.event_id.as_str().into(),
                a.event.as_str().into(),
                int(a.attempt as u64),
                a.status.map_or(JsValue::NULL, |s| int(s as u64)),
                a.error.as_deref().map_or(JsValue::NULL, JsValue::from_str),
                JsValue::from_f64(a.at as f64),
            ])?
            .run()
            .await?;
        Ok(())
    }

    /// The target's newest `limit` attempts.
    pub async fn attempts(
        &self,
        target: &str,
        limit: u32,
    ) -> Result<Vec<kiln_core::api::NotifyAttempt>> {
        let rows: Vec<AttemptRow> = self
            .0
            .prepare(
                "SELECT event_id, event, attempt, status, error, at FROM notify_attempts \
                 WHERE target_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .bind(&[target.into(), int(limit as u64)])?
            .all()
            .await?
            .results()?;
        Ok(rows
            .into_iter()
            .map(|r| kiln_core::api::NotifyAttempt {
                event_id: r.event_id,
                event: r.event,
                attempt: r.attempt as u32,
                status: r.status.map(|s| s as u16),
                error: r.error,
                at: r.at,
            })
            .collect())
    }
}

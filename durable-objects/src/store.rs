//! The room's SQLite storage: the working tree, the event log and small metadata.
//!
//! All calls are synchronous (DO SQLite), so a handler that reads, decides and writes without
//! an `await` in between runs atomically with respect to every other event of the room.

use kiln_core::doc::Persisted;
use kiln_core::path::ProjectPath;
use kiln_core::protocol::{Sequenced, ServerEvent};
use kiln_core::tree::{FileMeta, Slot, Totals};
use serde::Deserialize;
use worker::{Result, SqlStorage, SqlStorageValue};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    // The event log: every broadcast event, as sent on the wire.
    "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)",
    // The working tree. `content IS NULL` is a tombstone that keeps the path's rev counting.
    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, rev INTEGER NOT NULL, \
     content BLOB, size INTEGER NOT NULL, sha256 TEXT, updated_by TEXT, updated_at INTEGER)",
    // Blobs this room has already put in R2 (content-addressed, so never twice).
    "CREATE TABLE IF NOT EXISTS blobs (sha256 TEXT PRIMARY KEY)",
    // Co-edited text files: each one's CRDT document, as a snapshot and the updates since
    // (`kiln_core::doc`). A document exists only once someone opened the file for editing;
    // `epoch` names it, so updates made on a dropped one are refused.
    "CREATE TABLE IF NOT EXISTS docs (path TEXT PRIMARY KEY, epoch INTEGER NOT NULL, \
     snapshot BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS doc_updates (id INTEGER PRIMARY KEY AUTOINCREMENT, \
     path TEXT NOT NULL, body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS doc_updates_path ON doc_updates (path, id)",
];

#[derive(Clone)]
pub struct RoomStore {
    sql: SqlStorage,
}

/// Limits of the event log: beyond them the oldest events are compacted away and a client
/// asking for them gets `resync_required` and a fresh `state`.
#[derive(Clone, Copy)]
pub struct LogLimits {
    pub max_events: u64,
    pub max_bytes: u64,
}

pub struct LiveFile {
    pub path: ProjectPath,
    pub rev: u64,
    pub sha256: String,
    pub size: u64,
}

#[derive(Deserialize)]
struct MetaRow {
    value: String,
}

#[derive(Deserialize)]
struct SlotRow {
    rev: i64,
    live: i64,
    size: i64,
}

#[derive(Deserialize)]
struct TotalsRow {
    files: i64,
    bytes: i64,
}

#[derive(Deserialize)]
struct FileMetaRow {
    path: String,
    rev: i64,
    size: i64,
    sha256: String,
}

#[derive(Deserialize)]
struct BodyRow {
    body: String,
}

#[derive(Deserialize)]
struct SeqLenRow {
    seq: i64,
    len: i64,
}

fn s(v: &str) -> SqlStorageValue {
    SqlStorageValue::String(v.to_owned())
}

fn i(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(v as i64)
}

impl RoomStore {
    pub fn open(sql: SqlStorage) -> Result<RoomStore> {
        for stmt in SCHEMA {
            sql.exec(stmt, None)?;
        }
        Ok(RoomStore { sql })
    }

    // --- meta ---------------------------------------------------------------------------

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        let rows: Vec<MetaRow> = self
            .sql
            .exec("SELECT value FROM meta WHERE key = ?", vec![s(key)])?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.value))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES (?, ?) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            vec![s(key), s(value)],
        )?;
        Ok(())
    }

    pub fn set_meta_opt(&self, key: &str, value: Option<&str>) -> Result<()> {
        match value {
            Some(v) => self.set_meta(key, v),
            None => {
                self.sql
                    .exec("DELETE FROM meta WHERE key = ?", vec![s(key)])?;
                Ok(())
            }
        }
    }

    fn meta_u64(&self, key: &str) -> Result<u64> {
        Ok(self.meta(key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    // --- event log ----------------------------------------------------------------------

    /// The seq of the last event appended.
    pub fn head_seq(&self) -> Result<u64> {
        self.meta_u64("head_seq")
    }

    /// Events with `seq <= floor` have been compacted away.
    pub fn log_floor(&self) -> Result<u64> {
        self.meta_u64("log_floor")
    }

    /// Appends a broadcast event with the next seq and returns its wire form. Compacts the
    /// log's oldest events when it outgrows `limits`.
    pub fn append(&self, event: ServerEvent, limits: LogLimits) -> Result<String> {
        let seq = self.head_seq()? + 1;
        let body = serde_json::to_string(&Sequenced { seq, event })?;
        self.sql.exec(
            "INSERT INTO events (seq, body) VALUES (?, ?)",
            vec![i(seq), s(&body)],
        )?;
        self.set_meta("head_seq", &seq.to_string())?;
        let bytes = self.meta_u64("log_bytes")? + body.len() as u64;
        self.set_meta("log_bytes", &bytes.to_string())?;
        let floor = self.log_floor()?;
        if seq - floor > limits.max_events || bytes > limits.max_bytes {
            self.compact(limits)?;
        }
        Ok(body)
    }

    /// Drops the oldest events so that what remains is within 90% of both limits (so
    /// compaction runs once per many appends, not on each).
    fn compact(&self, limits: LogLimits) -> Result<()> {
        let keep_events = limits.max_events * 9 / 10;
        let keep_bytes = limits.max_bytes * 9 / 10;
        let rows: Vec<SeqLenRow> = self
            .sql
            .exec(
                "SELECT seq, LENGTH(body) AS len FROM events ORDER BY seq DESC",
                None,
            )?
            .to_array()?;
        let (mut kept, mut bytes, mut cut) = (0u64, 0u64, None);
        for row in rows {
            if kept + 1 > keep_events.max(1) || bytes + row.len as u64 > keep_bytes {
                cut = Some(row.seq as u64);
                break;
            }
            kept += 1;
            bytes += row.len as u64;
        }
        if let Some(cut) = cut {
            self.sql
                .exec("DELETE FROM events WHERE seq <= ?", vec![i(cut)])?;
            self.set_meta("log_floor", &cut.to_string())?;
            self.set_meta("log_bytes", &bytes.to_string())?;
        }
        Ok(())
    }

    /// Wire forms of the events after `seq`, in order.
    pub fn events_after(&self, seq: u64) -> Result<Vec<String>> {
        let rows: Vec<BodyRow> = self
            .sql
            .exec(
                "SELECT body FROM events WHERE seq > ? ORDER BY seq",
                vec![i(seq)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.body).collect())
    }

    // --- working tree -------------------------------------------------------------------

    pub fn slot(&self, path: &ProjectPath) -> Result<Slot> {
        let rows: Vec<SlotRow> = self
            .sql
            .exec(
                "SELECT rev, (content IS NOT NULL) AS live, size FROM files WHERE path = ?",
                vec![s(path.as_str())],
            )?
            .to_array()?;
        Ok(rows.into_iter().next().map_or(Slot::EMPTY, |r| Slot {
            rev: r.rev as u64,
            exists: r.live != 0,
            size: r.size as u64,
        }))
    }

    pub fn totals(&self) -> Result<Totals> {
        let rows: Vec<TotalsRow> = self
            .sql
            .exec(
                "SELECT COUNT(*) AS files, COALESCE(SUM(size), 0) AS bytes FROM files \
                 WHERE content IS NOT NULL",
                None,
            )?
            .to_array()?;
        Ok(rows
            .into_iter()
            .next()
            .map_or(Totals::default(), |r| Totals {
                files: r.files as u64,
                bytes: r.bytes as u64,
            }))
    }

    /// The content of a live file.
    pub fn content(&self, path: &ProjectPath) -> Result<Option<Vec<u8>>> {
        let mut rows = self
            .sql
            .exec(
                "SELECT content FROM files WHERE path = ? AND content IS NOT NULL",
                vec![s(path.as_str())],
            )?
            .raw();
        match rows.next() {
            Some(row) => Ok(row?.into_iter().next().and_then(blob)),
            None => Ok(None),
        }
    }

    /// The content of a blob, if a live file has it.
    pub fn content_by_sha(&self, sha256: &str) -> Result<Option<Vec<u8>>> {
        let mut rows = self
            .sql
            .exec(
                "SELECT content FROM files WHERE sha256 = ? AND content IS NOT NULL LIMIT 1",
                vec![s(sha256)],
            )?
            .raw();
        match rows.next() {
            Some(row) => Ok(row?.into_iter().next().and_then(blob)),
            None => Ok(None),
        }
    }

    pub fn write(
        &self,
        path: &ProjectPath,
        rev: u64,
        content: &[u8],
        sha256: &str,
        by: &str,
        now: i64,
    ) -> Result<()> {
        self.sql.exec(
            "INSERT INTO files (path, rev, content, size, sha256, updated_by, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET rev = excluded.rev, \
             content = excluded.content, size = excluded.size, sha256 = excluded.sha256, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            vec![
                s(path.as_str()),
                i(rev),
                SqlStorageValue::Blob(content.to_vec()),
                i(content.len() as u64),
                s(sha256),
                s(by),
                SqlStorageValue::Integer(now),
            ],
        )?;
        Ok(())
    }

    pub fn tombstone(&self, path: &ProjectPath, rev: u64, by: &str, now: i64) -> Result<()> {
        self.sql.exec(
            "INSERT INTO files (path, rev, content, size, sha256, updated_by, updated_at) \
             VALUES (?, ?, NULL, 0, NULL, ?, ?) ON CONFLICT(path) DO UPDATE SET \
             rev = excluded.rev, content = NULL, size = 0, sha256 = NULL, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            vec![
                s(path.as_str()),
                i(rev),
                s(by),
                SqlStorageValue::Integer(now),
            ],
        )?;
        Ok(())
    }

    /// Live files, sorted by path.
    pub fn list(&self) -> Result<Vec<FileMeta>> {
        let rows: Vec<FileMetaRow> = self
            .sql
            .exec(
                "SELECT path, rev, size, sha256 FROM files WHERE content IS NOT NULL \
                 ORDER BY path",
                None,
            )?
            .to_array()?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(FileMeta {
                    path: ProjectPath::parse(&r.path).ok()?,
                    rev: r.rev as u64,
                    size: r.size as u64,
                    sha256: r.sha256,
                })
            })
            .collect())
    }

    pub fn live_files(&self) -> Result<Vec<LiveFile>> {
        Ok(self
            .list()?
            .into_iter()
            .map(|m| LiveFile {
                path: m.path,
                rev: m.rev,
                sha256: m.sha256,
                size: m.size,
            })
            .collect())
    }

    // --- co-edited documents ---------------------------------------------------------------

    /// A file's document: its epoch, snapshot and the updates since, in order.
    pub fn doc(&self, path: &ProjectPath) -> Result<Option<(u64, Persisted)>> {
        let mut rows = self
            .sql
            .exec(
                "SELECT epoch, snapshot FROM docs WHERE path = ?",
                vec![s(path.as_str())],
            )?
            .raw();
        let Some(row) = rows.next() else {
            return Ok(None);
        };
        let mut row = row?.into_iter();
        let epoch = match row.next() {
            Some(SqlStorageValue::Integer(n)) => n as u64,
            _ => return Ok(None),
        };
        let snapshot = row.next().and_then(blob).unwrap_or_default();
        let mut updates = Vec::new();
        for row in self
            .sql
            .exec(
                "SELECT body FROM doc_updates WHERE path = ? ORDER BY id",
                vec![s(path.as_str())],
            )?
            .raw()
        {
            if let Some(b) = row?.into_iter().next().and_then(blob) {
                updates.push(b);
            }
        }
        Ok(Some((epoch, Persisted { snapshot, updates })))
    }

    /// Starts (or replaces) a file's document with a new epoch and this snapshot.
    pub fn create_doc(&self, path: &ProjectPath, snapshot: &[u8]) -> Result<u64> {
        let epoch = self.meta_u64("doc_epoch")? + 1;
        self.set_meta("doc_epoch", &epoch.to_string())?;
        self.drop_doc(path)?;
        self.sql.exec(
            "INSERT INTO docs (path, epoch, snapshot) VALUES (?, ?, ?)",
            vec![
                s(path.as_str()),
                i(epoch),
                SqlStorageValue::Blob(snapshot.to_vec()),
            ],
        )?;
        Ok(epoch)
    }

    pub fn append_doc_update(&self, path: &ProjectPath, update: &[u8]) -> Result<()> {
        self.sql.exec(
            "INSERT INTO doc_updates (path, body) VALUES (?, ?)",
            vec![s(path.as_str()), SqlStorageValue::Blob(update.to_vec())],
        )?;
        Ok(())
    }

    /// Folds a document's updates into a new snapshot (same epoch: the state is the same).
    pub fn compact_doc(&self, path: &ProjectPath, snapshot: &[u8]) -> Result<()> {
        self.sql.exec(
            "UPDATE docs SET snapshot = ? WHERE path = ?",
            vec![SqlStorageValue::Blob(snapshot.to_vec()), s(path.as_str())],
        )?;
        self.sql.exec(
            "DELETE FROM doc_updates WHERE path = ?",
            vec![s(path.as_str())],
        )?;
        Ok(())
    }

    pub fn drop_doc(&self, path: &ProjectPath) -> Result<()> {
        self.sql
            .exec("DELETE FROM docs WHERE path = ?", vec![s(path.as_str())])?;
        self.sql.exec(
            "DELETE FROM doc_updates WHERE path = ?",
            vec![s(path.as_str())],
        )?;
        Ok(())
    }

    // --- blobs --------------------------------------------------------------------------

    pub fn blob_uploaded(&self, sha256: &str) -> Result<bool> {
        let rows: Vec<MetaRow> = self
            .sql
            .exec(
                "SELECT sha256 AS value FROM blobs WHERE sha256 = ?",
                vec![s(sha256)],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    pub fn mark_blob_uploaded(&self, sha256: &str) -> Result<()> {
        self.sql.exec(
            "INSERT OR IGNORE INTO blobs (sha256) VALUES (?)",
            vec![s(sha256)],
        )?;
        Ok(())
    }
}

fn blob(v: SqlStorageValue) -> Option<Vec<u8>> {
    match v {
        SqlStorageValue::Blob(b) => Some(b),
        SqlStorageValue::String(s) => Some(s.into_bytes()),
        _ => None,
    }
}

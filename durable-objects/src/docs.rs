//! Co-editing in the room: each text file's CRDT document (`kiln_core::doc`), applied,
//! persisted and fanned out here, so the room stays the one writer of the tree.
//!
//! A document is made the first time someone opens the file for editing (`doc_sync`), from
//! the file's text; from then on every write of that file, by a person or the agent, goes
//! through it. Its text and the stored file are the same at every step: an update is applied,
//! then the file is written with the derived text and a new rev, then the update is logged
//! and broadcast (`doc_update`, with `seq` like every event, so replay covers it).

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_core::doc::{DocError, FileDoc};
use kiln_core::error::ErrorCode;
use kiln_core::path::ProjectPath;
use kiln_core::protocol::{Sequenced, ServerEvent};
use kiln_core::tree::{self, MAX_FILE_BYTES};
use worker::{Result, WebSocket};

use crate::conn::Conn;
use crate::room::{now, ProjectRoom};

/// Fold a document's updates into a new snapshot past either of these.
const COMPACT_UPDATES: usize = 400;
const COMPACT_UPDATE_BYTES: usize = 256 * 1024;
/// A cursor update is small; anything bigger is not one.
const MAX_AWARENESS_BYTES: usize = 16 * 1024;
/// Yjs clients one socket may speak for (a tab has one per open file at most).
const MAX_CLIENTS_PER_SOCKET: usize = 32;

pub struct OpenDoc {
    epoch: u64,
    doc: FileDoc,
    updates: usize,
    update_bytes: usize,
}

/// The documents this instance of the room has loaded. Storage is the truth: an instance
/// evicted between messages loads them again.
#[derive(Default)]
pub struct DocCache(RefCell<HashMap<String, OpenDoc>>);

impl DocCache {
    fn evict(&self, path: &ProjectPath) {
        self.0.borrow_mut().remove(path.as_str());
    }
}

fn rejected(path: &ProjectPath, doc: u64, code: &str, message: impl Into<String>) -> ServerEvent {
    ServerEvent::DocRejected {
        path: path.clone(),
        doc,
        code: code.to_owned(),
        message: message.into(),
    }
}

impl ProjectRoom {
    /// Loads a file's document into the cache (`create`: makes one if there is none) and
    /// returns its epoch. None for a file that does not exist or is not UTF-8 text.
    fn load_doc(&self, path: &ProjectPath, create: bool) -> Result<Option<u64>> {
        if let Some(d) = self.docs().0.borrow().get(path.as_str()) {
            return Ok(Some(d.epoch));
        }
        let Some(text) = self
            .store()
            .content(path)?
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return Ok(None);
        };
        if let Some((epoch, persisted)) = self.store().doc(path)? {
            // A document that no longer says what the file does (which no write path
            // allows) is not trusted: a new one is made from the file.
            if let Some(doc) = FileDoc::load(&persisted).ok().filter(|d| d.text() == text) {
                self.docs().0.borrow_mut().insert(
                    path.to_string(),
                    OpenDoc {
                        epoch,
                        doc,
                        updates: persisted.updates.len(),
                        update_bytes: persisted.updates.iter().map(Vec::len).sum(),
                    },
                );
                return Ok(Some(epoch));
            }
            worker::console_warn!("the document of {path} disagrees with the file; remade");
            self.store().drop_doc(path)?;
        }
        if !create {
            return Ok(None);
        }
        let (doc, _) = FileDoc::with_text(&text);
        let epoch = self.store().create_doc(path, &doc.snapshot())?;
        self.docs().0.borrow_mut().insert(
            path.to_string(),
            OpenDoc {
                epoch,
                doc,
                updates: 0,
                update_bytes: 0,
            },
        );
        Ok(Some(epoch))
    }

    /// `doc_sync`: what the client's state vector lacks, and the room's state vector.
    pub fn doc_sync(
        &self,
        ws: &WebSocket,
        path: &ProjectPath,
        state_vector: Option<&str>,
    ) -> Result<()> {
        let sv = match B64.decode(state_vector.unwrap_or_default()) {
            Ok(sv) if kiln_core::doc::valid_state_vector(&sv) => sv,
            _ => {
                return self.reply(
                    ws,
                    rejected(
                        path,
                        0,
                        "invalid_message",
                        "state_vector is not a Yjs state vector",
                    ),
                )
            }
        };
        let Some(epoch) = self.load_doc(path, true)? else {
            let why = if self.store().slot(path)?.exists {
                "only UTF-8 text files can be edited together"
            } else {
                "no such file"
            };
            return self.reply(ws, rejected(path, 0, "not_found", why));
        };
        let (update, sv) = {
            let docs = self.docs().0.borrow();
            let d = &docs[path.as_str()].doc;
            match d.missing_for(&sv) {
                Ok(u) => (u, d.state_vector()),
                Err(e) => {
                    drop(docs);
                    return self.reply(ws, rejected(path, epoch, "invalid_message", e.message()));
                }
            }
        };
        let rev = self.store().slot(path)?.rev;
        self.reply(
            ws,
            ServerEvent::DocSync {
                path: path.clone(),
                doc: epoch,
                update: B64.encode(update),
                state_vector: B64.encode(sv),
                rev,
            },
        )
    }

    /// `doc_update` from a person: applied within the limits, or refused with nothing
    /// changed. Returns whether the file's text changed.
    pub fn doc_update(
        &self,
        ws: &WebSocket,
        by: &str,
        path: &ProjectPath,
        epoch: u64,
        update: &str,
    ) -> Result<bool> {
        let Ok(bytes) = B64.decode(update) else {
            self.reply(
                ws,
                rejected(path, epoch, "invalid_message", "update is not base64"),
            )?;
            return Ok(false);
        };
        if self.load_doc(path, false)? != Some(epoch) {
            self.reply(
                ws,
                rejected(
                    path,
                    epoch,
                    "doc_stale",
                    "this document was replaced (the file was deleted, renamed or made \
                     again): sync again",
                ),
            )?;
            return Ok(false);
        }
        let slot = self.store().slot(path)?;
        let totals = self.store().totals()?;
        let outcome = {
            let mut docs = self.docs().0.borrow_mut();
            let d = docs.get_mut(path.as_str()).expect("loaded above");
            d.doc
                .apply(&bytes, MAX_FILE_BYTES as usize)
                .map(|a| (a, d.doc.len()))
        };
        let applied = match outcome {
            Ok((applied, len)) => {
                if let Err(r) = tree::check_fits(slot, len as u64, totals) {
                    // Applied in memory only: forget it, storage still has the truth.
                    self.docs().evict(path);
                    self.reply(
                        ws,
                        rejected(path, epoch, r.error_code().as_str(), r.message()),
                    )?;
                    return Ok(false);
                }
                applied
            }
            Err(e) => {
                if matches!(e, DocError::Invalid(_)) {
                    self.docs().evict(path);
                }
                let code = match e {
                    DocError::TooLarge { .. } => "file_too_large",
                    _ => "invalid_message",
                };
                self.reply(ws, rejected(path, epoch, code, e.message()))?;
                return Ok(false);
            }
        };
        if !applied.state {
            return Ok(false);
        }
        let (rev, size) = if applied.text {
            let text = self.docs().0.borrow()[path.as_str()].doc.text();
            let rev = slot.rev + 1;
            let sha = tree::sha256_hex(text.as_bytes());
            self.store()
                .write(path, rev, text.as_bytes(), &sha, by, now())?;
            (rev, text.len() as u64)
        } else {
            (slot.rev, slot.size)
        };
        self.keep_update(path, &bytes)?;
        self.broadcast(ServerEvent::DocUpdate {
            path: path.clone(),
            doc: epoch,
            update: update.to_owned(),
            rev,
            size,
            by: by.to_owned(),
        })?;
        Ok(applied.text)
    }

    /// Persists an applied update, folding the document into a new snapshot when its
    /// updates have grown past the limits.
    fn keep_update(&self, path: &ProjectPath, update: &[u8]) -> Result<()> {
        let snapshot = {
            let mut docs = self.docs().0.borrow_mut();
            let d = docs.get_mut(path.as_str()).expect("loaded");
            d.updates += 1;
            d.update_bytes += update.len();
            let due = d.updates > COMPACT_UPDATES || d.update_bytes > COMPACT_UPDATE_BYTES;
            // Held-back updates are not in a snapshot's integrated state; wait for them.
            if due && !d.doc.has_pending() {
                d.updates = 0;
                d.update_bytes = 0;
                Some(d.doc.snapshot())
            } else {
                None
            }
        };
        match snapshot {
            Some(s) => self.store().compact_doc(path, &s),
            None => self.store().append_doc_update(path, update),
        }
    }

    /// Before a whole-file write (a person's save, the agent, a restore): an open document
    /// takes it as one transaction, so typing in progress merges with it. Returns the
    /// `doc_update` to broadcast once the file is written.
    pub fn doc_write(&self, path: &ProjectPath, content: &[u8]) -> Result<Option<(u64, String)>> {
        let Ok(text) = std::str::from_utf8(content) else {
            self.doc_drop(path)?;
            return Ok(None);
        };
        let Some(epoch) = self.load_doc(path, false)? else {
            return Ok(None);
        };
        let update = {
            let mut docs = self.docs().0.borrow_mut();
            docs.get_mut(path.as_str())
                .expect("loaded")
                .doc
                .replace(text)
        };
        let Some(update) = update else {
            return Ok(None);
        };
        self.keep_update(path, &update)?;
        Ok(Some((epoch, B64.encode(update))))
    }

    /// The file is gone (deleted, renamed away) or no longer text: so is its document.
    pub fn doc_drop(&self, path: &ProjectPath) -> Result<()> {
        self.docs().evict(path);
        self.store().drop_doc(path)
    }

    /// A cursor update: relayed to every other live socket, never logged.
    pub fn awareness(
        &self,
        ws: &WebSocket,
        conn: &mut Conn,
        path: &ProjectPath,
        client_id: u64,
        update: &str,
    ) -> Result<()> {
        if update.len() > MAX_AWARENESS_BYTES {
            return self.reply(
                ws,
                ServerEvent::error(ErrorCode::PayloadTooLarge, "awareness update too large"),
            );
        }
        if !conn.yjs_clients.contains(&client_id) {
            if conn.yjs_clients.len() >= MAX_CLIENTS_PER_SOCKET {
                return self.reply(
                    ws,
                    ServerEvent::error(
                        ErrorCode::InvalidMessage,
                        "too many Yjs clients on one socket",
                    ),
                );
            }
            conn.yjs_clients.push(client_id);
            ws.serialize_attachment(&*conn)?;
        }
        self.relay(
            Some(&conn.id),
            ServerEvent::Awareness {
                path: path.clone(),
                client_id,
                update: update.to_owned(),
                by: conn.email.clone(),
            },
        )
    }

    /// Sends an event that is not logged to every live socket but `except`'s.
    pub fn relay(&self, except: Option<&str>, event: ServerEvent) -> Result<()> {
        let seq = self.store().head_seq()?;
        let wire = serde_json::to_string(&Sequenced { seq, event })?;
        for other in self.state().get_websockets() {
            if Conn::of(&other).is_some_and(|c| c.live && Some(c.id.as_str()) != except) {
                let _ = other.send_with_str(&wire);
            }
        }
        Ok(())
    }
}

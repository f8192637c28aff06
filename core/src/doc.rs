//! One text file as a CRDT document (Yjs's, through `yrs`), for real-time co-editing.
//!
//! The room is the one writer of the working tree (invariant 1): it applies every client's
//! update to the file's document, derives the file's plain text from it, persists the update
//! and fans it out. Whole-file writes (REST `PUT`, the agent, a restore) become one transaction
//! on the document, a line diff against its text, so that someone typing while the agent
//! rewrites the file keeps what they typed.
//!
//! Everything here is pure: bytes in, bytes out. The room stores a document as a snapshot
//! plus the updates since, and compacts them into a new snapshot past a size.

use similar::{DiffTag, TextDiff};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, TextRef, Transact, Update};

/// The name of the text in every file's document; the browser binds the same one.
pub const TEXT: &str = "content";

/// Why an update was refused. A refused update changes nothing the room keeps: after
/// `Malformed` and `TooLarge` the document is as it was; after `Invalid` the caller must drop
/// it and load it again from what it persisted (yrs may have integrated part of the update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocError {
    /// Not a Yjs v1 update or state vector.
    Malformed(String),
    /// Applying it would make the text larger than the limit.
    TooLarge { bytes: usize, max: usize },
    /// Decoded, but yrs could not integrate it.
    Invalid(String),
}

impl DocError {
    pub fn message(&self) -> String {
        match self {
            DocError::Malformed(e) => format!("not a Yjs update: {e}"),
            DocError::TooLarge { bytes, max } => {
                format!("the file would be {bytes} bytes; a file may hold at most {max}")
            }
            DocError::Invalid(e) => format!("the update does not fit this document: {e}"),
        }
    }
}

/// What a persisted document is: a snapshot and the updates applied after it, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Persisted {
    pub snapshot: Vec<u8>,
    pub updates: Vec<Vec<u8>>,
}

impl Persisted {
    pub fn bytes(&self) -> usize {
        self.snapshot.len() + self.updates.iter().map(Vec::len).sum::<usize>()
    }

    /// Whether the updates have outgrown the snapshot enough to fold them in.
    pub fn wants_compaction(&self, max_updates: usize, max_update_bytes: usize) -> bool {
        self.updates.len() > max_updates
            || self.updates.iter().map(Vec::len).sum::<usize>() > max_update_bytes
    }
}

/// What an applied update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The text changed: the file has a new rev.
    pub text: bool,
    /// The document changed (the text, or state that will matter): keep the update.
    pub state: bool,
}

pub struct FileDoc {
    doc: Doc,
    text: TextRef,
    /// The text's length in UTF-8 bytes, kept so a size check needs no walk of the text.
    len: usize,
    /// Bytes of updates that yrs holds back (their causal parents have not arrived); they may
    /// all integrate with the next update, so they count towards its worst case.
    pending: usize,
}

impl Default for FileDoc {
    fn default() -> Self {
        FileDoc::new()
    }
}

impl FileDoc {
    pub fn new() -> FileDoc {
        let doc = Doc::new();
        let text = doc.get_or_insert_text(TEXT);
        FileDoc {
            doc,
            text,
            len: 0,
            pending: 0,
        }
    }

    /// A new document holding `content`, and the update that makes it.
    pub fn with_text(content: &str) -> (FileDoc, Vec<u8>) {
        let mut d = FileDoc::new();
        let update = d.replace(content).unwrap_or_default();
        (d, update)
    }

    /// The document a snapshot and its later updates make.
    pub fn load(p: &Persisted) -> Result<FileDoc, DocError> {
        let mut d = FileDoc::new();
        for bytes in std::iter::once(&p.snapshot).chain(&p.updates) {
            if bytes.is_empty() {
                continue;
            }
            d.apply(bytes, usize::MAX)?;
        }
        Ok(d)
    }

    pub fn text(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// This document's state vector (Yjs v1 encoding).
    pub fn state_vector(&self) -> Vec<u8> {
        self.doc.transact().state_vector().encode_v1()
    }

    /// What a peer with state vector `sv` lacks, as one update (`sv` empty: everything).
    pub fn missing_for(&self, sv: &[u8]) -> Result<Vec<u8>, DocError> {
        let sv = if sv.is_empty() {
            StateVector::default()
        } else {
            StateVector::decode_v1(sv).map_err(|e| DocError::Malformed(e.to_string()))?
        };
        Ok(self.doc.transact().encode_state_as_update_v1(&sv))
    }

    /// The whole document as one update, for a new snapshot.
    pub fn snapshot(&self) -> Vec<u8> {
        self.doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    /// Applies a peer's update unless the text would pass `max_bytes`. Says whether the
    /// text changed, and whether the document did at all (a duplicate changes nothing; an
    /// update whose parent is missing changes the state, not yet the text).
    pub fn apply(&mut self, update: &[u8], max_bytes: usize) -> Result<Applied, DocError> {
        let decoded = Update::decode_v1(update).map_err(|e| DocError::Malformed(e.to_string()))?;
        // Inserted text travels as UTF-8 inside the update, so the text grows by at most the
        // update's size (plus whatever was held back). Within that bound, apply in place;
        // near the limit, try it on a copy first so a refusal leaves this one untouched.
        let worst = self.len.saturating_add(update.len() + self.pending);
        if worst > max_bytes {
            let mut trial = FileDoc::new();
            trial.apply(&self.snapshot(), usize::MAX)?;
            trial.apply(update, usize::MAX)?;
            if trial.len > max_bytes {
                return Err(DocError::TooLarge {
                    bytes: trial.len,
                    max: max_bytes,
                });
            }
        }
        let mut txn = self.doc.transact_mut();
        let (old, sv) = (self.text.get_string(&txn), txn.state_vector());
        let had_pending = txn.store().pending_update().is_some();
        txn.apply_update(decoded)
            .map_err(|e| DocError::Invalid(e.to_string()))?;
        let now = self.text.get_string(&txn);
        let pending = txn.store().pending_update().is_some();
        let applied = Applied {
            text: now != old,
            state: now != old || txn.state_vector() != sv || (pending && !had_pending),
        };
        self.len = now.len();
        self.pending = if pending {
            self.pending + update.len()
        } else {
            0
        };
        Ok(applied)
    }

    /// Whether updates wait for a missing parent.
    pub fn has_pending(&self) -> bool {
        self.pending > 0
    }

    /// Makes the text `content` in one transaction, as a line diff against the current text
    /// (so concurrent typing outside the changed lines is untouched, and inside them kept as
    /// inserted). Returns the update to send to peers, or `None` if the text is already that.
    pub fn replace(&mut self, content: &str) -> Option<Vec<u8>> {
        let mut txn = self.doc.transact_mut();
        let old = self.text.get_string(&txn);
        if old == content {
            return None;
        }
        let diff = TextDiff::from_lines(old.as_str(), content);
        let (old_lines, new_lines) = (diff.old_slices(), diff.new_slices());
        let mut at: u32 = 0;
        for op in diff.ops() {
            let (tag, o, n) = op.as_tag_tuple();
            let gone: u32 = old_lines[o].iter().map(|l| l.len() as u32).sum();
            let new = new_lines[n].concat();
            // New lines go in before the old ones go, so typing that followed the old lines
            // follows the new ones too (and the merge does not depend on client ids).
            if matches!(tag, DiffTag::Insert | DiffTag::Replace) {
                self.text.insert(&mut txn, at, &new);
                at += new.len() as u32;
            }
            match tag {
                DiffTag::Equal => at += gone,
                DiffTag::Delete | DiffTag::Replace => self.text.remove_range(&mut txn, at, gone),
                DiffTag::Insert => {}
            }
        }
        self.len = content.len();
        Some(txn.encode_update_v1())
    }
}

/// Decodes a state vector, to check a client's before using it.
pub fn valid_state_vector(sv: &[u8]) -> bool {
    sv.is_empty() || StateVector::decode_v1(sv).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::Options;

    /// A client: its own document with a fixed client id, as a browser's would be.
    struct Client {
        doc: Doc,
        text: TextRef,
    }

    impl Client {
        fn new(id: u64) -> Client {
            let doc = Doc::with_options(Options::with_client_id(yrs::ClientID::new(id)));
            let text = doc.get_or_insert_text(TEXT);
            Client { doc, text }
        }

        fn synced(id: u64, server: &FileDoc) -> Client {
            let c = Client::new(id);
            c.receive(&server.missing_for(&[]).unwrap());
            c
        }

        fn insert(&self, at: u32, s: &str) -> Vec<u8> {
            let mut txn = self.doc.transact_mut();
            self.text.insert(&mut txn, at, s);
            txn.encode_update_v1()
        }

        fn delete(&self, at: u32, n: u32) -> Vec<u8> {
            let mut txn = self.doc.transact_mut();
            self.text.remove_range(&mut txn, at, n);
            txn.encode_update_v1()
        }

        fn receive(&self, update: &[u8]) {
            self.doc
                .transact_mut()
                .apply_update(Update::decode_v1(update).unwrap())
                .unwrap();
        }

        fn text(&self) -> String {
            self.text.get_string(&self.doc.transact())
        }
    }

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = vec![];
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    const MAX: usize = 1 << 20;

    #[test]
    fn concurrent_inserts_at_one_position_converge_in_every_delivery_order() {
        let (server, _) = FileDoc::with_text("ab");
        let clients: Vec<Client> = (1..=3).map(|id| Client::synced(id, &server)).collect();
        // All three type at offset 1, between "a" and "b", before seeing each other.
        let updates: Vec<Vec<u8>> = clients
            .iter()
            .zip(["X", "YY", "ZZZ"])
            .map(|(c, s)| c.insert(1, s))
            .collect();
        let mut texts = std::collections::BTreeSet::new();
        for order in permutations(&[0usize, 1, 2]) {
            let mut room = FileDoc::load(&Persisted {
                snapshot: server.snapshot(),
                updates: vec![],
            })
            .unwrap();
            for &i in &order {
                assert!(room.apply(&updates[i], MAX).unwrap().text);
            }
            texts.insert(room.text());
            // Each client, given the others' updates in this order, agrees with the room.
            for (me, c) in clients.iter().enumerate() {
                let copy = Client::synced(10 + me as u64, &server);
                copy.receive(&updates[me]);
                for &i in order.iter().filter(|&&i| i != me) {
                    copy.receive(&updates[i]);
                }
                assert_eq!(copy.text(), room.text(), "client {me}, order {order:?}");
                let _ = c;
            }
        }
        assert_eq!(texts.len(), 1, "{texts:?}");
        let text = texts.into_iter().next().unwrap();
        assert_eq!(text.len(), 2 + 1 + 2 + 3);
        assert!(text.starts_with('a') && text.ends_with('b'), "{text}");
        for s in ["X", "YY", "ZZZ"] {
            assert!(text.contains(s), "{text}");
        }
    }

    #[test]
    fn a_whole_file_write_concurrent_with_typing_keeps_the_typed_characters() {
        let (mut room, _) = FileDoc::with_text("line one\nline two\nline three\n");
        let person = Client::synced(7, &room);
        // The person types into line two while the agent rewrites lines one and three.
        let typed = person.insert("line one\nline t".len() as u32, "[typed]");
        let agent = room
            .replace("LINE ONE\nline two\nLINE THREE\nline four\n")
            .unwrap();
        assert!(room.apply(&typed, MAX).unwrap().text);
        person.receive(&agent);
        let text = room.text();
        assert_eq!(text, person.text());
        assert_eq!(text, "LINE ONE\nline t[typed]wo\nLINE THREE\nline four\n");

        // Even typing inside lines the agent replaced survives, after the new lines.
        let typed = person.insert(2, "<mine>");
        room.replace("something else entirely\n").unwrap();
        room.apply(&typed, MAX).unwrap();
        assert_eq!(room.text(), "something else entirely\n<mine>");
    }

    #[test]
    fn compaction_keeps_the_text_and_the_state() {
        let (mut room, first) = FileDoc::with_text("hello");
        let mut persisted = Persisted {
            snapshot: vec![],
            updates: vec![first],
        };
        let c = Client::synced(3, &room);
        for i in 0..50u32 {
            let u = if i % 3 == 2 {
                c.delete(0, 1)
            } else {
                c.insert(c.text().len() as u32, &format!("-{i}"))
            };
            room.apply(&u, MAX).unwrap();
            persisted.updates.push(u);
        }
        let loaded = FileDoc::load(&persisted).unwrap();
        assert_eq!(loaded.text(), room.text());
        assert!(persisted.wants_compaction(20, usize::MAX));
        let compacted = Persisted {
            snapshot: room.snapshot(),
            updates: vec![],
        };
        let reloaded = FileDoc::load(&compacted).unwrap();
        assert_eq!(reloaded.text(), c.text());
        assert_eq!(reloaded.state_vector(), room.state_vector());
        // A client that missed the last edits catches up from the compacted document.
        let late = Client::new(4);
        late.receive(&reloaded.missing_for(&[]).unwrap());
        assert_eq!(late.text(), c.text());
    }

    #[test]
    fn an_update_past_the_size_limit_is_refused_and_changes_nothing() {
        let (mut room, _) = FileDoc::with_text("0123456789");
        let c = Client::synced(5, &room);
        let big = c.insert(10, &"x".repeat(100));
        let sv = room.state_vector();
        let err = room.apply(&big, 50).unwrap_err();
        assert_eq!(
            err,
            DocError::TooLarge {
                bytes: 110,
                max: 50
            }
        );
        assert_eq!(room.text(), "0123456789");
        assert_eq!(room.state_vector(), sv, "nothing of it was integrated");
        // A small one still goes through, on the unchanged document.
        let small = Client::synced(6, &room).insert(0, "ab");
        assert!(room.apply(&small, 50).unwrap().text);
        assert_eq!(room.text(), "ab0123456789");
        // A whole-file write of the new text is the same check's business (the room's).
        assert_eq!(room.len(), 12);
    }

    #[test]
    fn malformed_updates_are_refused_without_harming_the_document() {
        let (mut room, _) = FileDoc::with_text("safe");
        let sv = room.state_vector();
        for junk in [
            &b"\xff\xff\xff\xff\xff"[..],
            b"not an update",
            &[0x01, 0x05],
        ] {
            assert!(
                matches!(room.apply(junk, MAX), Err(DocError::Malformed(_))),
                "{junk:?}"
            );
            assert_eq!(room.text(), "safe");
            assert_eq!(room.state_vector(), sv);
        }
        assert!(matches!(
            room.missing_for(b"\xff\xff"),
            Err(DocError::Malformed(_))
        ));
        assert!(!valid_state_vector(b"\xff\xff"));
        assert!(valid_state_vector(&sv));
    }

    #[test]
    fn duplicates_and_out_of_order_updates_converge() {
        let (mut room, _) = FileDoc::with_text("");
        let c = Client::synced(9, &room);
        let u1 = c.insert(0, "one ");
        let u2 = c.insert(4, "two");
        // The second before the first: held back (kept, not yet text), then both integrate.
        let held = room.apply(&u2, MAX).unwrap();
        assert_eq!(
            held,
            Applied {
                text: false,
                state: true
            }
        );
        assert!(room.has_pending());
        assert!(room.apply(&u1, MAX).unwrap().text);
        assert!(!room.has_pending());
        assert_eq!(room.text(), "one two");
        // A duplicate changes nothing.
        let dup = room.apply(&u1, MAX).unwrap();
        assert_eq!(
            dup,
            Applied {
                text: false,
                state: false
            }
        );
        assert_eq!(room.text(), "one two");
        assert_eq!(room.replace("one two"), None);
    }

    #[test]
    fn multibyte_text_round_trips_through_whole_file_writes() {
        let (mut room, _) = FileDoc::with_text("héllo wörld\n✓ done\n");
        let c = Client::synced(11, &room);
        let u = room.replace("héllo wörld\n✗ not done\n🎉\n").unwrap();
        c.receive(&u);
        assert_eq!(c.text(), "héllo wörld\n✗ not done\n🎉\n");
        assert_eq!(room.len(), "héllo wörld\n✗ not done\n🎉\n".len());
    }
}

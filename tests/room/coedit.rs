//! Real-time co-editing over sockets: clients that keep a Yjs document of a file (yrs, the
//! same encoding a browser's yjs speaks) type into it at once; the room applies, stores and
//! fans out every update, and everyone ends with the same text as the stored file.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{shared, Kiln, User};
use serde_json::{json, Value};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, Options, ReadTxn, StateVector, Text, TextRef, Transact, Update};

use crate::{add_member, join, project, put};

const PATH: &str = "notes.md";

/// A small seeded generator, so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One person's editor: a socket and their copy of the file's document.
struct Typist {
    sock: Socket,
    doc: Doc,
    text: TextRef,
    epoch: u64,
    name: String,
    rng: Rng,
    markers: Vec<String>,
    rejected: Vec<Value>,
}

impl Typist {
    fn open(kiln: &Kiln, pid: &str, user: &User, id: u32, name: &str) -> Typist {
        let (sock, _) = join(kiln, pid, user);
        let doc = Doc::with_options(Options::with_client_id(yrs::ClientID::new(id as u64)));
        let text = doc.get_or_insert_text("content");
        let mut t = Typist {
            sock,
            doc,
            text,
            epoch: 0,
            name: name.to_owned(),
            rng: Rng(0x9E37_79B9_7F4A_7C15 ^ id as u64),
            markers: vec![],
            rejected: vec![],
        };
        t.sync();
        t
    }

    /// `doc_sync` with what it has; takes what it lacks; sends what the room lacks.
    fn sync(&mut self) {
        let sv = B64.encode(self.doc.transact().state_vector().encode_v1());
        self.sock
            .send(json!({ "type": "doc_sync", "path": PATH, "state_vector": sv }));
        let reply = loop {
            let f = self.sock.recv();
            if f["type"] == "doc_sync" {
                break f;
            }
            self.take(&f);
        };
        self.epoch = reply["doc"].as_u64().unwrap();
        self.apply(reply["update"].as_str().unwrap());
        let room_sv = B64.decode(reply["state_vector"].as_str().unwrap()).unwrap();
        let lacking = self
            .doc
            .transact()
            .encode_state_as_update_v1(&StateVector::decode_v1(&room_sv).unwrap());
        self.send_update(&lacking);
    }

    fn apply(&self, update_b64: &str) {
        let bytes = B64.decode(update_b64).unwrap();
        self.doc
            .transact_mut()
            .apply_update(Update::decode_v1(&bytes).unwrap())
            .unwrap();
    }

    fn send_update(&mut self, update: &[u8]) {
        let msg = json!({ "type": "doc_update", "path": PATH, "doc": self.epoch, "update": B64.encode(update) });
        self.sock.send(msg);
    }

    fn take(&mut self, f: &Value) {
        match f["type"].as_str() {
            Some("doc_update") if f["path"] == PATH && f["doc"] == self.epoch => {
                self.apply(f["update"].as_str().unwrap())
            }
            Some("doc_rejected") => self.rejected.push(f.clone()),
            _ => {}
        }
    }

    /// Whatever has arrived, applied.
    fn pump(&mut self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            match self.sock.try_recv(Duration::ZERO) {
                Some(f) => self.take(&f),
                None if Instant::now() >= deadline => return,
                None => {}
            }
        }
    }

    /// Back after a drop: `hello {last_seq}` replays what was missed, then the document
    /// syncs both ways (what was typed meanwhile reaches the room).
    fn come_back(&mut self, kiln: &Kiln, pid: &str, user: &User) {
        let (mut s, frames) = reconnect(kiln, pid, user, self.sock.last_seq);
        s.set_read_timeout(Duration::from_millis(2));
        std::mem::replace(&mut self.sock, s).close();
        for f in &frames {
            self.take(f);
        }
        self.sync();
    }

    fn content(&self) -> String {
        self.text.get_string(&self.doc.transact())
    }

    /// A random edit at a line start: a marker line (kept to the end), a filler line, or
    /// deleting a filler line. Edits at line starts never split another's line, so every
    /// marker must survive whole. Returns the update it made.
    fn type_something(&mut self, k: usize) -> Vec<u8> {
        let content = self.content();
        let starts: Vec<usize> = std::iter::once(0)
            .chain(content.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let fillers: Vec<usize> = starts
            .iter()
            .copied()
            .filter(|&s| content[s..].starts_with("~\n"))
            .collect();
        let mut txn = self.doc.transact_mut();
        match self.rng.below(10) {
            0..=5 => {
                let m = format!("{}-{k}", self.name);
                let at = starts[self.rng.below(starts.len())];
                self.text.insert(&mut txn, at as u32, &format!("{m}\n"));
                self.markers.push(m);
            }
            6..=7 if !fillers.is_empty() => {
                let at = fillers[self.rng.below(fillers.len())];
                self.text.remove_range(&mut txn, at as u32, 2);
            }
            _ => {
                let at = starts[self.rng.below(starts.len())];
                self.text.insert(&mut txn, at as u32, "~\n");
            }
        }
        txn.encode_update_v1()
    }

    fn type_n(&mut self, from: usize, n: usize) {
        for k in from..from + n {
            let u = self.type_something(k);
            self.send_update(&u);
            let wait = Duration::from_millis(self.rng.below(3) as u64);
            self.pump(wait);
        }
    }
}

fn stored(kiln: &Kiln, user: &User, pid: &str) -> String {
    let r = kiln.get(&format!("/api/projects/{pid}/files/{PATH}"), user.token());
    assert_eq!(r.status, 200, "{}", r.text);
    r.text
}

/// Every typist and the stored file say the same, and every marker is in it once.
fn assert_converged(kiln: &Kiln, user: &User, pid: &str, typists: &mut [Typist]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for t in typists.iter_mut() {
            t.pump(Duration::from_millis(300));
        }
        let file = stored(kiln, user, pid);
        if typists.iter().all(|t| t.content() == file) {
            for t in typists.iter() {
                assert!(t.rejected.is_empty(), "{:?}", t.rejected);
                for m in &t.markers {
                    assert_eq!(
                        file.lines().filter(|l| l == m).count(),
                        1,
                        "marker {m} in:\n{file}"
                    );
                }
            }
            return file;
        }
        if Instant::now() > deadline {
            let texts: Vec<String> = typists.iter().map(|t| t.content()).collect();
            panic!("no convergence:\nfile:\n{file}\nclients:\n{texts:#?}");
        }
    }
}

#[test]
fn three_people_typing_at_once_end_with_one_text_and_the_stored_file() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "coedit");
    let member = add_member(kiln, &owner, "coedit-member", "member");
    put(kiln, &owner, &pid, PATH, b"# Notes\n", None).expect(201);
    let people = [
        (&owner, 101, "ann"),
        (&member, 202, "bob"),
        (&owner, 303, "cyd"),
    ];
    let threads: Vec<_> = people
        .iter()
        .map(|&(user, id, name)| {
            let (user, pid) = (user.clone(), pid.clone());
            std::thread::spawn(move || {
                let mut t = Typist::open(kiln, &pid, &user, id, name);
                t.sock.set_read_timeout(Duration::from_millis(2));
                if name == "cyd" {
                    // Cyd's network drops half-way: she types on, offline, and comes back.
                    t.type_n(0, 100);
                    for k in 100..120 {
                        let _unsent = t.type_something(k);
                    }
                    t.come_back(kiln, &pid, &user);
                    t.type_n(120, 80);
                } else {
                    t.type_n(0, 200);
                }
                t
            })
        })
        .collect();
    let mut typists: Vec<Typist> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    let file = assert_converged(kiln, &owner, &pid, &mut typists);
    assert!(file.contains("# Notes"), "{file}");
    let markers: usize = typists.iter().map(|t| t.markers.len()).sum();
    assert!(markers > 300, "{markers} markers");

    // The file's rev moved with the text, and a newcomer's sync gets the same.
    let mut late = Typist::open(kiln, &pid, &owner, 404, "dee");
    late.pump(Duration::from_millis(200));
    assert_eq!(late.content(), file);
}

/// A socket that says `hello {last_seq}`: the events it missed come first.
fn reconnect(kiln: &Kiln, pid: &str, user: &User, last_seq: u64) -> (Socket, Vec<Value>) {
    let mut s = kiln
        .ws(pid, Auth::Bearer(&user.token))
        .unwrap_or_else(|r| panic!("connect: {r:?}"));
    s.last_seq = last_seq;
    s.send(json!({ "type": "hello", "last_seq": last_seq }));
    let frames = s.drain(Duration::from_millis(300));
    (s, frames)
}

#[test]
fn typing_goes_on_across_a_restart_of_workerd() {
    let mut kiln = Kiln::start();
    let (owner, pid) = project(&kiln, "coedit-restart");
    put(&kiln, &owner, &pid, PATH, b"start\n", None).expect(201);
    let mut a = Typist::open(&kiln, &pid, &owner, 11, "ann");
    let mut b = Typist::open(&kiln, &pid, &owner, 22, "bob");
    for t in [&mut a, &mut b] {
        t.sock.set_read_timeout(Duration::from_millis(2));
    }
    for k in 0..60 {
        a.type_n(k, 1);
        b.type_n(k, 1);
    }
    // Let the room take everything sent, then stop it mid-session.
    std::thread::sleep(Duration::from_millis(500));
    kiln = kiln.restart();
    // Both type while the room is away, then come back.
    for k in 60..70 {
        let _ = a.type_something(k);
        let _ = b.type_something(k);
    }
    for t in [&mut a, &mut b] {
        t.come_back(&kiln, &pid, &owner);
    }
    for k in 70..100 {
        a.type_n(k, 1);
        b.type_n(k, 1);
    }
    let file = assert_converged(&kiln, &owner, &pid, &mut [a, b]);
    assert!(file.contains("start"), "{file}");
}

#[test]
fn whole_file_writes_merge_with_typing_and_bad_updates_change_nothing() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "coedit-writes");
    let watcher = add_member(kiln, &owner, "coedit-client", "client");
    put(kiln, &owner, &pid, PATH, b"one\ntwo\nthree\n", None).expect(201);
    let mut t = Typist::open(kiln, &pid, &owner, 31, "ann");
    // She types a line the room has not seen yet while a REST save rewrites the file.
    let typed = {
        let mut txn = t.doc.transact_mut();
        t.text.insert(&mut txn, 4, "typed\n");
        txn.encode_update_v1()
    };
    let rev = stored_rev(kiln, &owner, &pid);
    put(
        kiln,
        &owner,
        &pid,
        PATH,
        b"ONE\ntwo\nthree\nfour\n",
        Some(rev),
    )
    .expect(200);
    t.send_update(&typed);
    t.markers.push("typed".into());
    let file = assert_converged(kiln, &owner, &pid, std::slice::from_mut(&mut t));
    assert_eq!(file, "ONE\ntyped\ntwo\nthree\nfour\n");

    // Garbage, a document that does not exist, and a file past 1 MiB: refused, unchanged.
    let before = stored(kiln, &owner, &pid);
    let junk = json!({ "type": "doc_update", "path": PATH, "doc": t.epoch, "update": B64.encode(b"\xff\xff\xff\xff") });
    t.sock.send(junk);
    let r = t.sock.recv_type("doc_rejected");
    assert_eq!(r["code"], "invalid_message", "{r}");
    let stale = json!({ "type": "doc_update", "path": PATH, "doc": t.epoch + 1000, "update": B64.encode(&typed) });
    t.sock.send(stale);
    assert_eq!(t.sock.recv_type("doc_rejected")["code"], "doc_stale");
    let huge = {
        let mut txn = t.doc.transact_mut();
        t.text.insert(&mut txn, 0, &"x".repeat(1024 * 1024 + 1));
        txn.encode_update_v1()
    };
    t.send_update(&huge);
    let r = t.sock.recv_type("doc_rejected");
    assert_eq!(r["code"], "file_too_large", "{r}");
    assert_eq!(stored(kiln, &owner, &pid), before);
    // The refused document is dropped and synced afresh: it says what the room does.
    let mut fresh = Typist::open(kiln, &pid, &owner, 32, "ann2");
    fresh.pump(Duration::from_millis(100));
    assert_eq!(fresh.content(), before);

    // A client may read the document and show a cursor, never change it.
    let mut w = Typist::open(kiln, &pid, &watcher, 41, "cli");
    assert_eq!(w.content(), before);
    let u = w.type_something(0);
    w.send_update(&u);
    let err = w.sock.recv_type("error");
    assert_eq!(err["code"], "forbidden", "{err}");
    assert_eq!(stored(kiln, &owner, &pid), before);
}

fn stored_rev(kiln: &Kiln, user: &User, pid: &str) -> u64 {
    let r = kiln.get(&format!("/api/projects/{pid}/files/{PATH}"), user.token());
    r.header("x-kiln-rev").unwrap().parse().unwrap()
}

#[test]
fn cursors_reach_the_others_with_the_rooms_name_and_go_with_the_socket() {
    let kiln = shared();
    let (owner, pid) = project(kiln, "coedit-cursors");
    let member = add_member(kiln, &owner, "coedit-cursor-member", "member");
    put(kiln, &owner, &pid, PATH, b"x\n", None).expect(201);
    let (mut a, _) = join(kiln, &pid, &owner);
    let (mut b, _) = join(kiln, &pid, &member);
    let update = B64.encode(b"opaque awareness bytes");
    a.send(json!({ "type": "awareness", "path": PATH, "client_id": 777, "update": update }));
    let seen = b.recv_type("awareness");
    assert_eq!(seen["client_id"], 777);
    assert_eq!(seen["update"], update.as_str());
    assert_eq!(seen["by"], owner.email.as_str(), "the room says who");
    // Not logged: a replay from the start has no cursor in it.
    let (_, frames) = reconnect(kiln, &pid, &member, 0);
    assert!(
        frames.iter().all(|f| f["type"] != "awareness"),
        "{frames:?}"
    );
    a.close();
    let gone = b.recv_type("awareness_gone");
    assert_eq!(gone["client_ids"], json!([777]));
}

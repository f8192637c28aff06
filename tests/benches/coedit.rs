//! Benchmark (prints figures, asserts nothing): co-editing latency. One person types into a
//! shared file (a Yjs update per keystroke, as a browser sends them) while 20 others have it
//! open; the time from each keystroke's send to its `doc_update` at each of the 20 (p50/p99).
//!
//! Run: `./kiln bench` (or `cargo bench -p kiln-e2e --bench coedit` after `./kiln build`).

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, Kiln};
use serde_json::json;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Options, Text, Transact, Update};

const WATCHERS: usize = 20;
const KEYSTROKES: usize = 300;
const PATH: &str = "notes.md";

fn open(url: &str, pid: &str, token: &str) -> (Socket, u64, Vec<u8>) {
    let mut s = Socket::connect(url, pid, Auth::Bearer(token)).expect("connect");
    s.send(json!({ "type": "hello" }));
    s.recv_type("state");
    s.send(json!({ "type": "doc_sync", "path": PATH, "state_vector": "" }));
    let sync = s.recv_type("doc_sync");
    let update = B64.decode(sync["update"].as_str().unwrap()).unwrap();
    (s, sync["doc"].as_u64().unwrap(), update)
}

fn main() {
    let kiln = Kiln::start();
    let owner = register(&kiln, "bench-coedit");
    let pid = kiln
        .post("/api/projects", owner.token(), json!({ "name": "coedit" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = kiln.raw(
        "PUT",
        &format!("/api/projects/{pid}/files/{PATH}"),
        &[("authorization".into(), format!("Bearer {}", owner.token))],
        Some(b"# Notes\n"),
    );
    assert_eq!(put.status, 201, "{}", put.text);

    let base = Instant::now();
    let (tx, rx) = mpsc::channel::<(usize, Duration)>();
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    for _ in 0..WATCHERS {
        let (url, token, pid, tx, ready) = (
            kiln.url.clone(),
            owner.token.clone(),
            pid.clone(),
            tx.clone(),
            ready.clone(),
        );
        std::thread::spawn(move || {
            let (mut s, _, _) = open(&url, &pid, &token);
            ready.wait();
            let mut k = 0;
            while k < KEYSTROKES {
                let Some(f) = s.try_recv(Duration::from_secs(60)) else {
                    break;
                };
                if f["type"] == "doc_update" {
                    let _ = tx.send((k, base.elapsed()));
                    k += 1;
                }
            }
        });
    }
    drop(tx);
    let (mut typist, epoch, state) = open(&kiln.url, &pid, &owner.token);
    let doc = Doc::with_options(Options::with_client_id(yrs::ClientID::new(42)));
    let text = doc.get_or_insert_text(kiln_core::doc::TEXT);
    doc.transact_mut()
        .apply_update(Update::decode_v1(&state).unwrap())
        .unwrap();
    ready.wait();
    let mut sent = Vec::with_capacity(KEYSTROKES);
    for k in 0..KEYSTROKES {
        let update = {
            let mut txn = doc.transact_mut();
            let at = text.len(&txn);
            text.insert(&mut txn, at, if k % 40 == 39 { "\n" } else { "x" });
            txn.encode_update_v1()
        };
        sent.push(base.elapsed());
        typist.send(json!({ "type": "doc_update", "path": PATH, "doc": epoch, "update": B64.encode(update) }));
        // About a fast typist's pace.
        std::thread::sleep(Duration::from_millis(15));
    }
    let mut lat: Vec<f64> = rx
        .iter()
        .map(|(k, at)| (at.saturating_sub(sent[k])).as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    println!(
        "co-editing: {KEYSTROKES} keystrokes from one client to {WATCHERS} others ({} arrivals): p50 {:.1} ms, p99 {:.1} ms",
        lat.len(),
        pct(50),
        pct(99)
    );
    let stored = kiln.raw(
        "GET",
        &format!("/api/projects/{pid}/files/{PATH}"),
        &[("authorization".into(), format!("Bearer {}", owner.token))],
        None,
    );
    println!("  stored file: {} bytes", stored.text.len());
}

//! Benchmark (prints figures, asserts nothing): a project's room under load.
//! - broadcast latency: one edit → received by each of 200 connected sockets (p50/p99);
//! - sustained edits/s through one room, pipelined from one socket, 200 watchers attached.
//!
//! Run: `./kiln bench` (or `cargo bench -p kiln-e2e --bench room` after `./kiln build`).

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, Kiln};
use serde_json::json;

const WATCHERS: usize = 200;
const LATENCY_EDITS: usize = 50;
const THROUGHPUT_EDITS: usize = 1_000;
/// Edits in flight from the writer (sent but not yet echoed back to it).
const WINDOW: usize = 16;

fn main() {
    let kiln = Kiln::start();
    let owner = register(&kiln, "bench");
    let pid = kiln
        .post("/api/projects", owner.token(), json!({ "name": "bench" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let base = Instant::now();
    let (tx, rx) = mpsc::channel::<(String, Duration)>();
    let ready = Arc::new(Barrier::new(WATCHERS + 1));
    let total = LATENCY_EDITS + THROUGHPUT_EDITS;
    for _ in 0..WATCHERS {
        let (url, token, pid, tx, ready) = (
            kiln.url.clone(),
            owner.token.clone(),
            pid.clone(),
            tx.clone(),
            ready.clone(),
        );
        std::thread::spawn(move || {
            let mut s = Socket::connect(&url, &pid, Auth::Bearer(&token)).expect("connect");
            s.send(json!({ "type": "hello" }));
            s.recv_type("state");
            ready.wait();
            let mut seen = 0;
            while seen < total {
                let Some(f) = s.try_recv(Duration::from_secs(60)) else {
                    break;
                };
                if f["type"] == "file_edited" {
                    let _ = tx.send((f["path"].as_str().unwrap().to_owned(), base.elapsed()));
                    seen += 1;
                }
            }
        });
    }
    drop(tx);
    ready.wait();
    let mut writer = Socket::connect(&kiln.url, &pid, Auth::Bearer(&owner.token)).expect("writer");
    writer.send(json!({ "type": "hello" }));
    writer.recv_type("state");
    writer.drain(Duration::from_millis(500));

    // Latency: one edit at a time, waiting for every watcher to get it.
    let mut sent = std::collections::HashMap::new();
    let mut latencies = vec![];
    for k in 0..LATENCY_EDITS {
        let path = format!("lat/{k}.txt");
        sent.insert(path.clone(), base.elapsed());
        writer.send(
            json!({ "type": "edit", "path": path, "base_rev": 0, "content": "x".repeat(200) }),
        );
        for _ in 0..WATCHERS {
            let (p, at) = rx.recv_timeout(Duration::from_secs(60)).expect("broadcast");
            latencies.push(at - sent[&p]);
        }
    }
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];

    // Throughput: a window of edits in flight (the writer reads its own echoes, as a
    // client must), until the last one reached every watcher.
    let start = Instant::now();
    let (mut sent_n, mut echoed) = (0, 0);
    while echoed < THROUGHPUT_EDITS {
        while sent_n < THROUGHPUT_EDITS && sent_n - echoed < WINDOW {
            writer.send(json!({ "type": "edit", "path": format!("tp/{sent_n}.txt"),
                "base_rev": 0, "content": "y".repeat(200) }));
            sent_n += 1;
        }
        if writer.recv()["type"] == "file_edited" {
            echoed += 1;
        }
    }
    let mut received = 0;
    while received < THROUGHPUT_EDITS * WATCHERS {
        if rx.recv_timeout(Duration::from_secs(120)).is_err() {
            eprintln!(
                "watchers stalled after {received} deliveries; log:\n{}",
                kiln.log()
            );
            std::process::exit(1);
        }
        received += 1;
    }
    let elapsed = start.elapsed();

    println!(
        "room benchmark ({WATCHERS} sockets, wrangler dev --local, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "  broadcast latency, edit → each socket ({} samples): p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    println!(
        "  sustained ({WINDOW} in flight): {THROUGHPUT_EDITS} edits in {:.2} s = {:.0} edits/s ({:.0} deliveries/s)",
        elapsed.as_secs_f64(),
        THROUGHPUT_EDITS as f64 / elapsed.as_secs_f64(),
        (THROUGHPUT_EDITS * WATCHERS) as f64 / elapsed.as_secs_f64()
    );
}

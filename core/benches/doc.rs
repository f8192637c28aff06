//! Benchmark (prints figures): a co-edited file's document after 10,000 edits, as the room
//! stores it — every update kept (uncompacted) and folded into one snapshot (compacted) —
//! and what applying an update costs. Run: `cargo bench -p kiln-core --bench doc`.

use std::time::Instant;

use kiln_core::doc::FileDoc;
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Options, Text, Transact};

const EDITS: usize = 10_000;

fn main() {
    let (mut room, first) = FileDoc::with_text(&"// a file people type into\n".repeat(40));
    let person = Doc::with_options(Options::with_client_id(yrs::ClientID::new(7)));
    let text = person.get_or_insert_text(kiln_core::doc::TEXT);
    person
        .transact_mut()
        .apply_update(yrs::Update::decode_v1(&room.missing_for(&[]).unwrap()).unwrap())
        .unwrap();
    let mut updates = vec![first];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rand = |n: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as u32
    };
    let mut apply_ns = Vec::with_capacity(EDITS);
    for _ in 0..EDITS {
        let len = text.get_string(&person.transact()).len() as u32;
        let update = {
            let mut txn = person.transact_mut();
            // Typing: mostly one character, some backspaces, now and then a pasted line.
            match rand(10) {
                0..=6 => text.insert(&mut txn, rand(len + 1), "x"),
                7..=8 if len > 0 => text.remove_range(&mut txn, rand(len), 1),
                _ => text.insert(&mut txn, rand(len + 1), "let pasted = [1, 2, 3];\n"),
            }
            txn.encode_update_v1()
        };
        let t = Instant::now();
        room.apply(&update, usize::MAX).unwrap();
        apply_ns.push(t.elapsed().as_nanos() as u64);
        updates.push(update);
    }
    assert_eq!(room.text(), text.get_string(&person.transact()));
    let uncompacted: usize = updates.iter().map(Vec::len).sum();
    let snapshot = room.snapshot();
    apply_ns.sort_unstable();
    let pct =
        |p: usize| apply_ns[(apply_ns.len() * p / 100).min(apply_ns.len() - 1)] as f64 / 1000.0;
    println!(
        "co-edited document after {EDITS} edits (text {} bytes):",
        room.len()
    );
    println!(
        "  uncompacted (every update kept): {uncompacted} bytes in {} updates",
        updates.len()
    );
    println!(
        "  compacted (one snapshot):        {} bytes",
        snapshot.len()
    );
    println!(
        "  applying one update natively: p50 {:.1} µs, p99 {:.1} µs",
        pct(50),
        pct(99)
    );
    let t = Instant::now();
    let reloaded = FileDoc::load(&kiln_core::doc::Persisted {
        snapshot,
        updates: vec![],
    })
    .unwrap();
    println!(
        "  loading the compacted document: {:.2} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(reloaded.text(), room.text());
}

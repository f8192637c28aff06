//! Benchmark (prints figures; the behaviour is asserted by the short form,
//! `tests/stress/load.rs`): the load suite in full. 20 projects generate at once against the
//! scripted model (the test fixture) streaming at a fixed rate — 8-byte deltas every 25 ms,
//! about 80 tokens/s per call, a ~20 kB app each — with 5 sockets on each project (100 in
//! all), one of which types into a file of its own every 300 ms while the agent writes.
//! Kiln is `wrangler dev --local` with a real sandbox-proxy (instance "lb", octet 225; root).
//!
//! Figures: generations per minute (wall time from the first `generate` to the last end), the
//! latency of a typed edit to the project's other sockets (p50, p99), events delivered, and
//! any client that ended with files other than the stored ones.
//!
//! Run: `./kiln bench` (or `cargo bench -p kiln-e2e --bench load`); `KILN_BENCH_LOAD_PROJECTS`
//! and `KILN_BENCH_LOAD_SOCKETS` change the 20 and 5.

use std::time::Duration;

use kiln_e2e::load::{run, LoadSpec};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let spec = LoadSpec {
        projects: env("KILN_BENCH_LOAD_PROJECTS", 20),
        sockets: env("KILN_BENCH_LOAD_SOCKETS", 5),
        chunk_bytes: 8,
        chunk_delay: Duration::from_millis(25),
        lines: 120,
        instance: "lb",
        octet: 225,
    };
    let r = run(&spec);
    println!(
        "load: {} projects, {} sockets, model at 8 B / 25 ms, {} kB of app each",
        r.projects,
        r.sockets,
        kiln_e2e::load::app_files(spec.lines)
            .iter()
            .map(|(_, c)| c.len())
            .sum::<usize>()
            / 1024
    );
    println!(
        "  completed {} of {} in {:.1} s: {:.1} generations/minute",
        r.completed,
        r.projects,
        r.wall.as_secs_f64(),
        r.generations_per_minute()
    );
    println!(
        "  typed edit → other sockets: p50 {:.0} ms, p99 {:.0} ms ({} deliveries)",
        r.edit_latency(0.5).as_secs_f64() * 1000.0,
        r.edit_latency(0.99).as_secs_f64() * 1000.0,
        r.edit_latencies.len()
    );
    println!(
        "  events delivered: {}; clients whose files differ from the stored ones: {}",
        r.events,
        r.problems.iter().filter(|p| p.contains("differ")).count()
    );
    for p in &r.problems {
        println!("  problem: {}", p.lines().next().unwrap_or_default());
    }
}

//! Benchmark (prints figures; the short form in `tests/stress/faults.rs` asserts): the fault
//! suite in full, 30 seeded runs per target — the sandbox-proxy host, workerd and the model
//! server each killed at a seeded point of a generation (`kiln_e2e::faults`). Prints, per
//! target, the runs survived (ended complete, or failed with a readable reason, with nothing
//! half-written), how they ended, and every run that did not survive by `target:seed`
//! (`KILN_FAULT_SEEDS=target:seed cargo bench -p kiln-e2e --bench faults` reruns it).
//!
//! Run: `./kiln bench` (as root); `KILN_BENCH_FAULT_RUNS` changes the 30.

use kiln_e2e::faults::{plan, End, Rig, Target};

fn main() {
    let n = std::env::var("KILN_BENCH_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut rig = Rig::start("fb", 227);
    let runs: Vec<_> = plan(n).into_iter().map(|(t, s)| rig.run(t, s)).collect();
    println!("faults: {n} seeded runs per target, each killing one part mid-generation");
    for t in Target::ALL {
        let of: Vec<_> = runs.iter().filter(|r| r.target == t).collect();
        if of.is_empty() {
            continue;
        }
        let survived = of.iter().filter(|r| r.survived()).count();
        let complete = of.iter().filter(|r| r.end == End::Complete).count();
        let failed = of
            .iter()
            .filter(|r| matches!(r.end, End::Failed(_)))
            .count();
        let killed = of.iter().filter(|r| r.killed_after.is_some()).count();
        let mean = of.iter().map(|r| r.took.as_secs_f64()).sum::<f64>() / of.len() as f64;
        println!(
            "  {:<18} survived {survived}/{}: {complete} complete, {failed} failed with a reason; killed mid-way in {killed}; {mean:.1} s a run",
            t.name(),
            of.len()
        );
    }
    for r in runs
        .iter()
        .filter(|r| !r.survived() || matches!(r.end, End::Failed(_)))
    {
        println!("  {r}");
    }
}

//! The fault suite, short form (the full one, 30 seeded runs per target, is
//! `tests/benches/faults.rs`): a generation has its sandbox-proxy host, its workerd or its
//! model server killed at a seeded point, four seeds per target. Every run ends — complete
//! with the app, or failed with a readable reason — and leaves no file half-written. A
//! failing run prints `target:seed`; `KILN_FAULT_SEEDS=target:seed` reruns exactly it.

use kiln_e2e::faults::{plan, Rig};

#[test]
fn generations_survive_a_killed_sandbox_host_workerd_or_model_server() {
    let _machine = super::whole_machine();
    let mut rig = Rig::start("fl", 226);
    let runs: Vec<_> = plan(4).into_iter().map(|(t, s)| rig.run(t, s)).collect();
    for r in &runs {
        eprintln!("fault run {r}");
    }
    let failed: Vec<String> = runs
        .iter()
        .filter(|r| !r.survived())
        .map(|r| r.to_string())
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // The seeds put the kill inside the generation, not after it, for most runs.
    let killed = runs.iter().filter(|r| r.killed_after.is_some()).count();
    assert!(
        killed * 4 >= runs.len() * 3,
        "only {killed} of {} runs were killed mid-way",
        runs.len()
    );
}

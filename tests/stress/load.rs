//! The load suite, short form (the full one is `tests/benches/load.rs`): 20 projects
//! generating at once against the scripted model at a fixed token rate, 5 sockets on each
//! (100 in all), one per project typing into a file while the agent writes. Every generation
//! completes, every client ends with exactly the files Kiln stored (and streamed each file as
//! it was stored), and every typed edit reached the project's other sockets.

use std::time::Duration;

use kiln_e2e::load::{run, LoadSpec};

#[test]
fn twenty_projects_generate_at_once_and_a_hundred_sockets_end_with_the_stored_files() {
    let _machine = super::whole_machine();
    let report = run(&LoadSpec {
        projects: 20,
        sockets: 5,
        chunk_bytes: 16,
        chunk_delay: Duration::from_millis(20),
        lines: 40,
        instance: "ld",
        octet: 224,
    });
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert_eq!(report.completed, 20);
    assert_eq!(report.sockets, 100);
    // Each typist typed while its generation ran; each edit reached the other four sockets.
    assert!(
        report.edit_latencies.len() >= 20 * 4,
        "{} typed edits seen",
        report.edit_latencies.len()
    );
    eprintln!(
        "load: {} generations in {:.1} s ({:.1}/min), {} events, typed edit p50 {:?} p99 {:?}",
        report.completed,
        report.wall.as_secs_f64(),
        report.generations_per_minute(),
        report.events,
        report.edit_latency(0.5),
        report.edit_latency(0.99)
    );
}

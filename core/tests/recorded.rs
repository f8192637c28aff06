//! Real model output, replayed natively: every fixture in `tests/recorded/*.json` holds the
//! calls one app of a bench run made to the local model (`bench/recordings.py` writes them
//! from `KILN_RECORD_LLM`), and this harness runs what Kiln decides on each answer — the plan
//! read (`Blueprint::from_model`, the small profile's one-file layout), the file blocks of a
//! coder's or fixer's answer (`FileAnswer`, with the repeat guard), the tester's checks
//! (`checks::from_model`), and for every fix the failures it was shown and the files it saw:
//! what the type gate lets through per profile and what `autofix` repairs; and for every
//! component written, whether its module-scope hooks are moved into it (`hooks`) and its UI-kit
//! imports pointed at Kiln's stand-in (`autofix::without_ui_kits`). What each yields
//! is compared with `<fixture>.expect.json`, so a change that alters what Kiln makes of real
//! output shows in review (`KILN_WRITE_RECORDED=1` rewrites the expectations).

use std::collections::BTreeMap;

use kiln_core::agent::autofix;
use kiln_core::agent::blueprint::Blueprint;
use kiln_core::agent::checks;
use kiln_core::agent::file_stream::StreamEvent;
use kiln_core::agent::hooks;
use kiln_core::agent::pipeline::FileAnswer;
use kiln_core::agent::profile::Profile;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Deserialize)]
struct Fixture {
    about: String,
    calls: Vec<Call>,
}

#[derive(Deserialize)]
struct Call {
    kind: String,
    answer: String,
    #[serde(default)]
    failures: String,
    #[serde(default)]
    files: BTreeMap<String, String>,
}

/// What Kiln makes of one recorded call.
fn judge(call: &Call) -> Value {
    match call.kind.as_str() {
        "plan" => match Blueprint::from_model(&call.answer) {
            Ok(mut bp) => {
                let phases = |bp: &Blueprint| -> Vec<Value> {
                    bp.phases
                        .iter()
                        .map(|p| json!({"files": p.files, "acceptance": p.acceptance.len()}))
                        .collect()
                };
                let large = phases(&bp);
                bp.ensure_entry_files();
                bp.into_single_file();
                json!({"valid": true, "phases": large, "small_profile": phases(&bp)})
            }
            Err(errors) => json!({"valid": false, "errors": errors}),
        },
        "code" | "fix" => {
            let mut answer = FileAnswer::new();
            // In pieces, as a stream arrives.
            let bytes = call.answer.as_bytes();
            let mut stopped = false;
            for piece in bytes.chunks(40) {
                if answer.feed(&String::from_utf8_lossy(piece)).stop {
                    stopped = true;
                    break;
                }
            }
            let looped = answer.looped();
            let blocks = match answer.finish() {
                Ok(events) => json!(events
                    .iter()
                    .filter_map(|e| match e {
                        StreamEvent::FileEnd { path, content } => {
                            // The small profile's worked examples: an answer that is one of
                            // them again is refused (`Example::is_copy`).
                            let copy = kiln_core::agent::examples::EXAMPLES
                                .iter()
                                .find(|ex| ex.is_copy(content))
                                .map(|ex| ex.name);
                            let mut block =
                                json!({"file": path, "bytes": content.len(), "copy_of": copy});
                            // Hooks called at module scope, moved into the component.
                            if path.as_str() == "src/App.tsx" {
                                if let Some((_, note)) = hooks::move_into_component(content) {
                                    block["hooks"] = json!(note);
                                }
                            }
                            // Imports from UI kits the template lacks, pointed at Kiln's
                            // stand-in (the small profile's restructure, before tsc).
                            let one = BTreeMap::from([(path.to_string(), content.clone())]);
                            let kits = autofix::without_ui_kits(&one, &Default::default());
                            if !kits.is_empty() {
                                block["ui_kits"] = json!(kits.notes);
                            }
                            Some(block)
                        }
                        StreamEvent::Edit { path, .. } => Some(json!({"edit": path})),
                        StreamEvent::Command { command } => Some(json!({"command": command})),
                        _ => None,
                    })
                    .collect::<Vec<_>>()),
                Err(cut) => json!({"cut": cut}),
            };
            let mut out = json!({"blocks": blocks, "stopped": stopped, "looped": looped});
            // The small profile ends an answer once its app is written: where, and how much
            // of the answer (bytes the model spent time on) it did not wait for.
            let mut small = FileAnswer::ending_with_the_app();
            let mut read = 0;
            for piece in bytes.chunks(40) {
                read += piece.len();
                if small.feed(&String::from_utf8_lossy(piece)).stop {
                    break;
                }
            }
            if let Some(at) = small.ended_at() {
                let at = at.to_owned();
                let start = format!("<file path=\"{at}\"");
                let from = call.answer.find(&start).unwrap_or(read.min(bytes.len()));
                out["small_ends_at"] =
                    json!({"file": at, "bytes_not_waited_for": bytes.len() - from});
            }
            if call.kind == "fix" && !call.failures.is_empty() {
                out["shown"] = shown(call);
            }
            out
        }
        "test" => match checks::from_model(&call.answer, 0) {
            Ok((ok, dropped)) => json!({
                "checks": ok.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                "dropped": dropped,
            }),
            Err(e) => json!({"unreadable": e}),
        },
        other => json!({"kind": other}),
    }
}

/// A fix's recorded failures (a type-check's output) over the files it was shown: what each
/// profile's gate does with them, and the deterministic repairs.
fn shown(call: &Call) -> Value {
    let tsc = call.failures.trim_start_matches("- ");
    let deps = call
        .files
        .get("package.json")
        .map(|m| autofix::manifest_dependencies(m.as_bytes()))
        .unwrap_or_default();
    let code: BTreeMap<String, String> = call
        .files
        .iter()
        .filter(|(p, _)| autofix::is_code(p))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect();
    let repair = autofix::repair(tsc, &code, &deps);
    let gate = |profile| match checks::type_complaints(tsc, &code, profile) {
        None => json!("blocks"),
        Some(let_through) => json!({"lets through": let_through.len()}),
    };
    json!({
        "diagnostics": autofix::parse_tsc(tsc).len(),
        "small_gate": gate(Profile::Small),
        "large_gate": gate(Profile::Large),
        "repaired": repair.files.keys().collect::<Vec<_>>(),
        "repair_notes": repair.notes,
        "hints": autofix::hints(tsc, &code),
    })
}

#[test]
fn every_recorded_run_reads_as_its_expectations_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recorded");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "json")
                && !p.to_string_lossy().ends_with(".expect.json")
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no recordings in {}", dir.display());
    let write = std::env::var_os("KILN_WRITE_RECORDED").is_some();
    for path in paths {
        let fixture: Fixture = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!fixture.about.is_empty());
        let got = json!(fixture.calls.iter().map(judge).collect::<Vec<_>>());
        let expect_path = path.with_extension("expect.json");
        if write {
            let text = serde_json::to_string_pretty(&got).unwrap() + "\n";
            std::fs::write(&expect_path, text).unwrap();
            continue;
        }
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(&expect_path).unwrap_or_else(|_| {
                panic!(
                    "{}: no expectations (KILN_WRITE_RECORDED=1)",
                    path.display()
                )
            }))
            .unwrap();
        for (i, (g, w)) in got
            .as_array()
            .unwrap()
            .iter()
            .zip(want.as_array().unwrap())
            .enumerate()
        {
            assert_eq!(
                g,
                w,
                "{} call {i}: Kiln reads it differently now",
                path.display()
            );
        }
        assert_eq!(got, want, "{}: the number of calls", path.display());
    }
}

//! Kiln's UI as a new person uses it, in Debian's Chromium (playwright-core): sign up, build
//! an app from a prompt with the scripted model, watch it arrive, see it run, find version 1.
//! Screenshots land in `target/ui-screenshots/`.

use super::*;

#[test]
fn a_new_person_builds_an_app_in_the_ui() {
    let run = setup(
        Script::new().turn(plan_turn()).turn(
            code_turn()
                .chunk_size(16)
                .chunk_delay(Duration::from_millis(30)),
        ),
        &[],
    );
    let shots = kiln_e2e::repo_root().join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let cfg = json!({
        "app": run.kiln.url,
        "email": kiln_e2e::unique_email("ui"),
        "password": "correct horse battery staple",
        "prompt": "a tally counter that remembers",
        "appName": "Tally",
        "file": "main.js",
        "fileText": "localStorage.setItem",
        "previewText": "Tally",
        "shots": shots,
    });
    let out = Command::new("node")
        .arg(kiln_e2e::repo_root().join("tests/browser/workspace.mjs"))
        .arg(cfg.to_string())
        .current_dir(kiln_e2e::repo_root())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        report.get("error").is_none(),
        "{report}\n{}",
        run.kiln.log()
    );
    assert_eq!(
        report["errors"],
        json!([]),
        "no script errors in the page: {report}"
    );
    let project = report["project"].as_str().unwrap();
    assert!(
        report["frame_src"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{}/", run.kiln.preview_host(project))),
        "the preview is framed from its own origin: {report}"
    );
    assert_eq!(report["status"].as_str().map(str::trim), Some("Live"));
    for name in [
        "dashboard",
        "workspace-generating",
        "workspace-done",
        "workspace-versions",
        "phone",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

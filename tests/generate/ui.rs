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
    let shots = kiln_e2e::screenshot_dir();
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
    let report = kiln_e2e::browser_script("workspace.mjs", &cfg);
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
    // Published from the UI: the site is on its own host, and no Kiln cookie goes there.
    let site = report["site_url"].as_str().unwrap_or_default();
    assert!(
        site.starts_with("http://")
            && site.ends_with(&format!(".sites.localhost:{}/", run.kiln.port)),
        "{report}"
    );
    assert_eq!(report["site_cookies"], json!([]), "{report}");
    // Tokens and cost per step: the planner's call and the coder's (phase 1), with the
    // scripted model's usage.
    let usage: Vec<&str> = report["usage"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str())
        .collect();
    assert!(
        usage
            .iter()
            .any(|u| u.starts_with("planner (planning)") && u.contains("900 in · 300 out")),
        "{usage:?}"
    );
    assert!(
        usage
            .iter()
            .any(|u| u.starts_with("coder (implementing, phase 1)")
                && u.contains("1,500 in · 700 out")),
        "{usage:?}"
    );
    assert_eq!(
        report["contrast"],
        json!([]),
        "text below WCAG AA contrast (4.5:1, large 3:1)"
    );
    assert_eq!(report["unlabelled"], json!([]), "controls without a name");
    for tab in report["phone_tabs"].as_array().unwrap() {
        assert_eq!(tab["visible"], true, "a tab cut off at 375 px: {report}");
    }
    assert_eq!(
        report["phone_tabs"].as_array().unwrap().len(),
        5,
        "{report}"
    );
    for name in [
        "dashboard",
        "workspace-dark",
        "workspace-generating",
        "workspace-done",
        "workspace-versions",
        "workspace-published",
        "site",
        "phone",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}

const BROKEN_PLAN: &str = r##"{"name":"Starter","summary":"A page that counts.","template":"static",
"design":{"style":"plain","palette":[{"name":"bg","hex":"#ffffff"},{"name":"ink","hex":"#111111"}],"typography":"system-ui","sections":["counter"]},
"images":[],
"phases":[{"name":"Page","goal":"A heading and a counter","files":["index.html","main.js"],"acceptance":[]}]}"##;
const BROKEN_INDEX: &str = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Starter</title></head>\n<body>\n<h1>Starter</h1>\n<p id=\"state\">starting</p>\n<script src=\"main.js\"></script>\n</body>\n</html>\n";
const BROKEN_MAIN: &str = "throw new Error('kiln-test-boom: the counter never started')\n";

/// Run a generated app that throws, see it in Console, fix it with the agent.
#[test]
fn a_runtime_error_shows_in_console_and_fix_with_ai_fixes_it() {
    let coder = format!(
        "<file path=\"index.html\">\n{BROKEN_INDEX}</file>\n<file path=\"main.js\">\n{BROKEN_MAIN}</file>\n"
    );
    let tool = |json: &str| Turn::text(json).matching("kiln-test-boom");
    let run = setup(
        Script::new()
            .turn(Turn::text(BROKEN_PLAN).matching("planner of an app builder"))
            .turn(Turn::text(coder).matching("Phase 1 of 1"))
            .turn(tool(
                r#"{"tool":"edit_file","path":"main.js","search":"throw new Error('kiln-test-boom: the counter never started')","replace":"document.getElementById('state').textContent = 'counting'"}"#,
            ))
            .turn(
                Turn::text(r#"{"tool":"finish","summary":"the counter starts"}"#)
                    .matching("You change an existing web app"),
            ),
        // Kiln's own checks would catch the crash on load and send it to the fixer (as they
        // should); this test is about a person finding it in the console afterwards.
        &[("KILN_BROWSER_CHECKS", "off")],
    );
    let shots = kiln_e2e::screenshot_dir();
    let cfg = json!({
        "app": run.kiln.url,
        "email": kiln_e2e::unique_email("console"),
        "password": "correct horse battery staple",
        "prompt": "a page that counts",
        "error": "kiln-test-boom",
        "fixedText": "counting",
        "shots": shots,
    });
    let report = kiln_e2e::browser_script("console.mjs", &cfg);
    if report.get("error").is_some() {
        let g = run.kiln.get(
            &format!(
                "/api/projects/{}/generation",
                report["project"].as_str().unwrap_or("")
            ),
            None,
        );
        panic!(
            "{report}\nmodel requests: {:?}\n{}",
            run.llm
                .requests()
                .iter()
                .map(|r| (r.status, r.turn))
                .collect::<Vec<_>>(),
            g.text
        );
    }
    assert_eq!(report["problems_after"], 0, "the error is gone: {report}");
    // The follow-up the model got carried the error.
    let chats = run.llm.chat_requests();
    let follow_up = chats
        .iter()
        .map(|c| c.body.as_ref().unwrap().to_string())
        .find(|b| b.contains("You change an existing web app"))
        .expect("a follow-up");
    assert!(
        follow_up.contains("kiln-test-boom: the counter never started"),
        "{follow_up}"
    );
}

/// A reload and a dropped network in the middle of a generation lose nothing.
#[test]
fn a_reload_or_a_network_cut_mid_generation_ends_with_what_a_connected_browser_has() {
    let run = setup(
        Script::new().turn(plan_turn()).turn(
            code_turn()
                .chunk_size(8)
                .chunk_delay(Duration::from_millis(60)),
        ),
        &[],
    );
    let shots = kiln_e2e::screenshot_dir();
    let cfg = json!({
        "app": run.kiln.url,
        "email": run.owner.email,
        "password": run.owner.password,
        "project": run.pid,
        "shots": shots,
    });
    let report = kiln_e2e::browser_script("reconnect.mjs", &cfg);
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["started"], 202, "{report}");
    let files = &report["stay"]["files"];
    assert!(
        files.as_array().unwrap().iter().any(|f| f == "main.js"),
        "{report}"
    );
    assert_eq!(&report["reload"]["files"], files, "reloaded: {report}");
    assert_eq!(&report["cut"]["files"], files, "cut off: {report}");
    let timeline = &report["stay"]["timeline"];
    assert!(timeline.as_str().unwrap().contains("Version 1 ready"));
    assert_eq!(&report["reload"]["timeline"], timeline, "reloaded");
    assert_eq!(&report["cut"]["timeline"], timeline, "cut off");
}

/// A writer gets a terminal on the sandbox; a client member gets none and cannot save.
#[test]
fn the_terminal_runs_in_the_sandbox_and_a_client_can_neither_use_it_nor_save() {
    let run = setup(Script::new().turn(plan_turn()).turn(code_turn()), &[]);
    let mut ws = socket(&run);
    generate(&mut ws);
    let done = until_done(&run, &mut ws);
    assert_eq!(done.last().unwrap()["type"], "generation_complete");
    let client = register(&run.kiln, "client");
    kiln_e2e::join_org(
        &run.kiln,
        &run.owner,
        &run.owner.personal_org,
        &client,
        "client",
    );
    // Over the socket's edge too: a client's terminal upgrade is refused.
    let refused = run.kiln.raw(
        "GET",
        &format!("/api/projects/{}/terminal", run.pid),
        &[
            ("authorization".into(), format!("Bearer {}", client.token)),
            ("upgrade".into(), "websocket".into()),
        ],
        None,
    );
    assert_eq!(refused.status, 403, "{}", refused.text);
    let restart = format!("/api/projects/{}/dev-server/restart", run.pid);
    run.kiln
        .post(&restart, client.token(), json!({}))
        .expect_error(403, "forbidden");
    let status = run
        .kiln
        .post(&restart, run.owner.token(), json!({}))
        .expect(200);
    assert_eq!(status["state"], "ready", "{status}");
    assert!(
        status.get("preview_url").is_none(),
        "the proxy's own URL stays inside: {status}"
    );
    let shots = kiln_e2e::screenshot_dir();
    let cfg = json!({
        "app": run.kiln.url,
        "project": run.pid,
        "owner": { "email": run.owner.email, "password": run.owner.password },
        "client": { "email": client.email, "password": client.password },
        "shots": shots,
    });
    let report = kiln_e2e::browser_script("roles.mjs", &cfg);
    assert!(report.get("error").is_none(), "{report}");
    let tabs: Vec<&str> = report["client_tabs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().trim())
        .collect();
    assert!(!tabs.iter().any(|t| t.starts_with("Terminal")), "{tabs:?}");
    assert!(tabs.contains(&"Files"), "{tabs:?}");
    assert_eq!(report["client_save_buttons"], 0, "{report}");
    assert_eq!(report["client_restart_buttons"], 0, "{report}");
    assert_eq!(report["client_editable"], "false", "{report}");
    assert_eq!(report["client_message_disabled"], true, "{report}");
}

/// Two members, one project: a follow-up, its diff, a restore seen by both, co-editing.
#[test]
fn two_members_follow_up_compare_restore_and_edit_together() {
    let run = setup(tally_then_count_by_two(), &[]);
    let mut ws = socket(&run);
    generate(&mut ws);
    assert_eq!(
        until_done(&run, &mut ws).last().unwrap()["type"],
        "generation_complete"
    );
    let member = register(&run.kiln, "member");
    kiln_e2e::join_org(
        &run.kiln,
        &run.owner,
        &run.owner.personal_org,
        &member,
        "member",
    );
    let shots = kiln_e2e::screenshot_dir();
    let cfg = json!({
        "app": run.kiln.url,
        "project": run.pid,
        "owner": { "email": run.owner.email, "password": run.owner.password },
        "member": { "email": member.email, "password": member.password },
        "shots": shots,
    });
    let report = kiln_e2e::browser_script("collab.mjs", &cfg);
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["plus_v1"], 1, "{report}");
    assert_eq!(
        report["plus_v2"], 2,
        "the preview shows the change: {report}"
    );
    let diff = report["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  n += 1;") && diff.contains("+  n += 2;"),
        "{diff}"
    );
    assert_eq!(report["plus_restored_a"], 1, "v1 is back: {report}");
    assert_eq!(
        report["plus_restored_b"], 1,
        "in the other browser too: {report}"
    );
    assert!(report["edit_seen_ms"].as_u64().unwrap() < 5_000);
    let (a, b) = (
        report["final_a"].as_str().unwrap(),
        report["final_b"].as_str().unwrap(),
    );
    assert_eq!(a, b, "both editors end with one text");
    for words in ["/* from A */", "/* A typing along */", "/* B at the top */"] {
        assert!(a.contains(words), "{words} in {a}");
    }
    // What the room stored is what both see.
    let file = run
        .kiln
        .raw(
            "GET",
            &format!("/api/projects/{}/files/style.css", run.pid),
            &[(
                "authorization".into(),
                format!("Bearer {}", run.owner.token),
            )],
            None,
        )
        .text;
    assert_eq!(file.trim_end(), a.trim_end(), "stored file and editors");
    assert_eq!(report["cursor_names_a"], json!([member.email]), "{report}");
    assert_eq!(
        report["cursor_names_b"],
        json!([run.owner.email]),
        "{report}"
    );
}

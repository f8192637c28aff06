//! The dashboard in Chromium: a person's projects newest first, paged, renamed and deleted
//! from the list, with what the server kept matching what the page shows.

use kiln_e2e::{register, shared};
use serde_json::json;

#[test]
fn the_dashboard_pages_renames_and_deletes_projects() {
    let kiln = shared();
    let u = register(kiln, "dashboard");
    // 23 projects: more than one page of 20. Made one after another, so newest is last.
    let mut ids = vec![];
    for i in 1..=23 {
        let p = kiln
            .post(
                "/api/projects",
                u.token(),
                json!({ "name": format!("Project {i:02}") }),
            )
            .expect(201);
        ids.push(p["id"].as_str().unwrap().to_owned());
        // Distinct creation times, so "newest first" has one answer.
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let shots = kiln_e2e::screenshot_dir();
    let report = kiln_e2e::browser_script(
        "dashboard.mjs",
        &json!({
            "app": kiln.url,
            "email": u.email,
            "password": u.password,
            "newest": "Project 23",
            "oldest": "Project 01",
            "renamed": "Habit tracker",
            "doomed": "Project 22",
            "shots": shots,
        }),
    );
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");

    let expected: Vec<String> = (1..=23).rev().map(|i| format!("Project {i:02}")).collect();
    assert_eq!(report["first_page"], json!(expected[..20]), "{report}");
    assert_eq!(report["all"], json!(expected), "{report}");
    assert_eq!(report["load_more_left"], 0, "{report}");

    let why = report["rename_error"].as_str().unwrap_or_default();
    assert!(why.to_lowercase().contains("name"), "{report}");
    assert_eq!(report["dialogs"].as_array().unwrap().len(), 1, "{report}");
    assert!(report["dialogs"][0]
        .as_str()
        .unwrap()
        .contains("Project 22"));

    let mut kept = vec!["Habit tracker".to_owned()];
    kept.extend(expected[2..].iter().cloned());
    assert_eq!(report["after_reload"], json!(kept[..20]), "{report}");
    assert_eq!(report["contrast"], json!([]), "below WCAG AA: {report}");
    assert_eq!(
        report["unlabelled"],
        json!([]),
        "controls without a name: {report}"
    );
    assert!(shots.join("dashboard-projects.png").exists());

    // The server agrees: renamed, deleted.
    let newest = format!("/api/projects/{}", ids[22]);
    assert_eq!(
        kiln.get(&newest, u.token()).expect(200)["name"],
        "Habit tracker"
    );
    kiln.get(&format!("/api/projects/{}", ids[21]), u.token())
        .expect_error(404, "not_found");
}

//! Webhooks that start generations: signed deliveries, deduplicated by delivery id; every
//! bad delivery its exact 4xx and no generation; rotation; GitHub's scheme.

use std::time::Duration;

use kiln_core::webhooks::{sign, sign_github};
use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, shared, Kiln, Resp, User};
use serde_json::{json, Value};

struct Hook {
    id: String,
    secret: String,
    project: String,
    owner: User,
}

fn hook(kiln: &Kiln, tag: &str, body: Value) -> Hook {
    let owner = register(kiln, tag);
    let project = kiln
        .post("/api/projects", owner.token(), json!({ "name": tag }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let made = kiln
        .post(
            &format!("/api/projects/{project}/webhooks"),
            owner.token(),
            body,
        )
        .expect(201);
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    assert!(made["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/hooks/{}", made["id"].as_str().unwrap())));
    Hook {
        id: made["id"].as_str().unwrap().to_owned(),
        secret: made["secret"].as_str().unwrap().to_owned(),
        project,
        owner,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn deliver(kiln: &Kiln, h: &Hook, headers: &[(&str, String)], body: &[u8]) -> Resp {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    kiln.raw("POST", &format!("/hooks/{}", h.id), &headers, Some(body))
}

fn signed(kiln: &Kiln, h: &Hook, secret: &str, delivery: &str, body: &[u8]) -> Resp {
    deliver(
        kiln,
        h,
        &[
            ("kiln-signature", sign(secret, now(), body)),
            ("kiln-delivery", delivery.to_owned()),
            ("content-type", "application/json".into()),
        ],
        body,
    )
}

/// A watcher on the project's room, to count the prompts that reach it.
fn watch(kiln: &Kiln, h: &Hook) -> Socket {
    let mut s = kiln.ws(&h.project, Auth::Bearer(&h.owner.token)).unwrap();
    s.send(json!({ "type": "hello" }));
    s.recv_type("state");
    s
}

fn prompts(s: &mut Socket) -> Vec<Value> {
    s.drain(Duration::from_millis(800))
        .into_iter()
        .filter(|f| f["type"] == "prompt")
        .collect()
}

#[test]
fn a_signed_delivery_starts_one_generation_however_often_it_comes() {
    let kiln = shared();
    let h = hook(
        kiln,
        "hook-basic",
        json!({ "prompt_template": "Build {{/app/name}}: {{/app/idea}}" }),
    );
    let mut room = watch(kiln, &h);
    let body = br#"{"app":{"name":"Tally","idea":"a counter that remembers"}}"#;
    let first = signed(kiln, &h, &h.secret, "d-1", body).expect(202);
    let gen = first["generation_id"].as_str().unwrap().to_owned();
    assert_eq!(first["duplicate"], false);
    let seen = prompts(&mut room);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["prompt"], "Build Tally: a counter that remembers");
    assert_eq!(seen[0]["by"], format!("webhook {}", h.id));

    // Again: the same answer, nothing started.
    let again = signed(kiln, &h, &h.secret, "d-1", body).expect(200);
    assert_eq!(again["generation_id"], gen.as_str());
    assert_eq!(again["duplicate"], true);

    // Ten copies of a new delivery at once: one prompt, one generation id for all.
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let (h, body) = (
                Hook {
                    id: h.id.clone(),
                    secret: h.secret.clone(),
                    project: h.project.clone(),
                    owner: h.owner.clone(),
                },
                body.to_vec(),
            );
            std::thread::spawn(move || {
                let r = signed(kiln, &h, &h.secret, "d-2", &body);
                (r.status, r.json())
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(_, v)| v["generation_id"].as_str().unwrap_or("none").to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 202).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|(_, v)| v["duplicate"] == true)
            .count(),
        9
    );
    assert_eq!(prompts(&mut room).len(), 1, "one prompt for ten copies");

    // The log has both deliveries, once each.
    let log = kiln
        .get(
            &format!("/api/projects/{}/webhooks/{}/deliveries", h.project, h.id),
            h.owner.token(),
        )
        .expect(200);
    let ids: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["delivery_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{log}");
    assert!(ids.contains(&"d-1") && ids.contains(&"d-2"));
    assert!(log["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == 202 && d["generation_id"].is_string()));
    // Listing hooks never shows the secret.
    let list = kiln
        .get(
            &format!("/api/projects/{}/webhooks", h.project),
            h.owner.token(),
        )
        .expect(200);
    assert!(!list.to_string().contains(&h.secret), "{list}");
}

#[test]
fn every_bad_delivery_gets_its_own_4xx_and_starts_nothing() {
    let kiln = shared();
    let h = hook(
        kiln,
        "hook-bad",
        json!({ "prompt_template": "Make {{/title}}" }),
    );
    let mut room = watch(kiln, &h);
    let body = br#"{"title":"a timer"}"#;
    let t = now();
    // (what, headers, body, status, code)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            "wrong secret",
            vec![
                ("kiln-signature", sign("whsec_wrong", t, body)),
                ("kiln-delivery", "b1".into()),
            ],
            body.to_vec(),
            401,
            "invalid_signature",
        ),
        (
            "stale",
            vec![
                ("kiln-signature", sign(&h.secret, t - 301, body)),
                ("kiln-delivery", "b2".into()),
            ],
            body.to_vec(),
            401,
            "invalid_signature",
        ),
        (
            "future",
            vec![
                ("kiln-signature", sign(&h.secret, t + 301, body)),
                ("kiln-delivery", "b3".into()),
            ],
            body.to_vec(),
            401,
            "invalid_signature",
        ),
        (
            "no signature",
            vec![("kiln-delivery", "b4".into())],
            body.to_vec(),
            401,
            "invalid_signature",
        ),
        (
            "body changed after signing",
            vec![
                ("kiln-signature", sign(&h.secret, t, body)),
                ("kiln-delivery", "b5".into()),
            ],
            br#"{"title":"a bomb"}"#.to_vec(),
            401,
            "invalid_signature",
        ),
        (
            "no delivery id",
            vec![("kiln-signature", sign(&h.secret, t, body))],
            body.to_vec(),
            400,
            "invalid_parameter",
        ),
        (
            "not JSON",
            vec![
                ("kiln-signature", sign(&h.secret, t, b"{nope")),
                ("kiln-delivery", "b7".into()),
            ],
            b"{nope".to_vec(),
            400,
            "invalid_json",
        ),
        (
            "a field the template needs is missing",
            vec![
                ("kiln-signature", sign(&h.secret, t, b"{\"name\":1}")),
                ("kiln-delivery", "b8".into()),
            ],
            b"{\"name\":1}".to_vec(),
            422,
            "missing_field",
        ),
    ];
    for (what, headers, body, status, code) in cases {
        let r = deliver(kiln, &h, &headers, &body);
        assert_eq!(r.status, status, "{what}: {}", r.text);
        r.expect_error(status, code);
    }
    let big = vec![b' '; 300 * 1024];
    let r = deliver(
        kiln,
        &h,
        &[
            ("kiln-signature", sign(&h.secret, t, &big)),
            ("kiln-delivery", "b9".into()),
        ],
        &big,
    );
    r.expect_error(413, "payload_too_large");
    let r = kiln.raw(
        "POST",
        "/hooks/h_00000000000000000000000000000000",
        &[],
        Some(body),
    );
    r.expect_error(404, "not_found");
    assert!(prompts(&mut room).is_empty(), "no generation started");
    // Signed but unusable deliveries are in the log, with why.
    let log = kiln
        .get(
            &format!("/api/projects/{}/webhooks/{}/deliveries", h.project, h.id),
            h.owner.token(),
        )
        .expect(200);
    let statuses: Vec<(String, u64)> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["delivery_id"].as_str().unwrap().to_owned(),
                d["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&("b7".into(), 400)), "{log}");
    assert!(statuses.contains(&("b8".into(), 422)), "{log}");
    assert!(
        log.to_string().contains("/title"),
        "the log says which field: {log}"
    );
}

#[test]
fn a_rotated_secret_and_the_old_one_both_verify_during_the_overlap() {
    let kiln = shared();
    let h = hook(
        kiln,
        "hook-rotate",
        json!({ "prompt_template": "Do {{/x}}" }),
    );
    let rotated = kiln
        .post(
            &format!("/api/projects/{}/webhooks/{}/rotate", h.project, h.id),
            h.owner.token(),
            json!({}),
        )
        .expect(200);
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, h.secret);
    assert!(rotated["previous_valid_until"].as_i64().unwrap() > now() * 1000);
    signed(kiln, &h, &h.secret, "r-old", br#"{"x":"one"}"#).expect(202);
    signed(kiln, &h, new, "r-new", br#"{"x":"two"}"#).expect(202);
    // Both at once in one header, as a sender mid-rotation sends.
    let body = br#"{"x":"three"}"#;
    let both = format!(
        "{},{}",
        sign(new, now(), body),
        sign(&h.secret, now(), body).split(',').nth(1).unwrap()
    );
    deliver(
        kiln,
        &h,
        &[("kiln-signature", both), ("kiln-delivery", "r-both".into())],
        body,
    )
    .expect(202);
    // Only owners and admins manage hooks.
    let member = register(kiln, "hook-member");
    kiln_e2e::join_org(kiln, &h.owner, &h.owner.personal_org, &member, "member");
    kiln.post(
        &format!("/api/projects/{}/webhooks", h.project),
        member.token(),
        json!({ "prompt_template": "x" }),
    )
    .expect_error(403, "forbidden");
    kiln.post(
        &format!("/api/projects/{}/webhooks", h.project),
        h.owner.token(),
        json!({ "prompt_template": "{{issue.title}}" }),
    )
    .expect_error(400, "invalid_field");
}

#[test]
fn a_github_issue_delivery_works_and_its_filters_pick_events() {
    let kiln = shared();
    let h = hook(
        kiln,
        "hook-github",
        json!({
            "kind": "github",
            "prompt_template": "Issue #{{/issue/number}}: {{/issue/title}}\n\n{{/issue/body}}",
            "filters": { "event": "issues", "field": { "pointer": "/action", "equals": "opened" } }
        }),
    );
    let mut room = watch(kiln, &h);
    let body = br#"{"action":"opened","issue":{"number":12,"title":"Add dark mode","body":"The app is too bright at night."}}"#;
    let gh = |event: &str, delivery: &str, body: &[u8]| {
        deliver(
            kiln,
            &h,
            &[
                ("x-hub-signature-256", sign_github(&h.secret, body)),
                ("x-github-delivery", delivery.to_owned()),
                ("x-github-event", event.to_owned()),
                ("content-type", "application/json".into()),
            ],
            body,
        )
    };
    let r = gh("issues", "gh-1", body).expect(202);
    assert!(r["generation_id"].is_string(), "{r}");
    let seen = prompts(&mut room);
    assert_eq!(
        seen[0]["prompt"],
        "Issue #12: Add dark mode\n\nThe app is too bright at night."
    );
    // Another event, or another action: passed over, nothing started.
    let push = gh("push", "gh-2", body).expect(200);
    assert_eq!(push["skipped"], true, "{push}");
    let closed = br#"{"action":"closed","issue":{"number":12,"title":"t","body":"b"}}"#;
    assert_eq!(gh("issues", "gh-3", closed).expect(200)["skipped"], true);
    assert!(prompts(&mut room).is_empty());
    let wrong = deliver(
        kiln,
        &h,
        &[
            ("x-hub-signature-256", sign_github("nope", body)),
            ("x-github-delivery", "gh-4".into()),
            ("x-github-event", "issues".into()),
        ],
        body,
    );
    wrong.expect_error(401, "invalid_signature");
}

/// The webhooks page and the usage page, in Chromium.
#[test]
fn webhooks_and_usage_are_managed_and_seen_in_the_ui() {
    let kiln = shared();
    let owner = register(kiln, "hook-ui");
    let project = kiln
        .post("/api/projects", owner.token(), json!({ "name": "hooked" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = now() * 1000;
    kiln.d1(&format!(
        "INSERT INTO ai_calls (project_id, generation_id, role, model, input_tokens, \
         output_tokens, cost_micros, latency_ms, status, created_at) VALUES \
         ('{project}', 'g1', 'planner', 'm', 1200, 300, 0, 2000, 'ok', {t}), \
         ('{project}', 'g1', 'coder', 'm', 3400, 1500, 0, 9000, 'ok', {t})"
    ));
    let shots = kiln_e2e::screenshot_dir();
    let report = kiln_e2e::browser_script(
        "hooks.mjs",
        &json!({
            "app": kiln.url, "email": owner.email, "password": owner.password,
            "project": project, "org": owner.personal_org, "shots": shots,
        }),
    );
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["delivery_status"], 202, "{report}");
    assert_eq!(
        report["phone_overflow"],
        json!({"usage": 0, "webhooks": 0}),
        "sideways scrolling at 375 px: {report}"
    );
    let log = report["log"][0].as_str().unwrap_or_default();
    assert!(log.contains("ui-1") && log.contains("202"), "{report}");
    assert!(
        report["test_note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Started generation"),
        "{report}"
    );
    assert_eq!(report["log_after_test"], 2, "{report}");
    assert_eq!(report["rotated"], true, "{report}");
    let totals = report["totals"].as_str().unwrap_or_default();
    assert!(
        totals.contains("2 model calls") && totals.contains("4,600 tokens in"),
        "{report}"
    );
    assert!(report["bars"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["agents"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["contrast"], json!([]), "{report}");
    assert_eq!(report["unlabelled"], json!([]), "{report}");
}

/// Outgoing notification targets: only public destinations here (no loopback, private or
/// metadata addresses), known events only, owners and admins only; listed without their
/// secret, deleted for good.
#[test]
fn notification_targets_take_only_public_urls_and_their_managers() {
    let kiln = shared();
    let owner = register(kiln, "notify-owner");
    let project = kiln
        .post("/api/projects", owner.token(), json!({ "name": "notify" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/projects/{project}/notifications");
    for url in [
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "http://169.254.169.254/latest",
        "http://10.0.0.1/",
        "ftp://example.com/",
    ] {
        let r = kiln
            .post(&path, owner.token(), json!({ "url": url }))
            .expect(400);
        assert_eq!(r["error"]["code"], "invalid_field", "{url}: {r}");
    }
    let r = kiln
        .post(
            &path,
            owner.token(),
            json!({ "url": "https://hooks.example.com/kiln", "events": ["generation.started"] }),
        )
        .expect(400);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown event"),
        "{r}"
    );
    let made = kiln
        .post(
            &path,
            owner.token(),
            json!({ "url": "https://hooks.example.com/kiln" }),
        )
        .expect(201);
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        made["events"],
        json!(["generation.completed", "generation.failed"])
    );
    let listed = kiln.get(&path, owner.token()).expect(200);
    assert_eq!(listed["items"][0]["url"], "https://hooks.example.com/kiln");
    assert!(listed["items"][0].get("secret").is_none(), "{listed}");
    let stranger = register(kiln, "notify-stranger");
    kiln.get(&path, stranger.token()).expect(404);
    let id = made["id"].as_str().unwrap();
    kiln.delete(&format!("{path}/{id}"), owner.token())
        .expect(204);
    assert_eq!(
        kiln.get(&path, owner.token()).expect(200)["items"],
        json!([])
    );
    kiln.get(&format!("{path}/{id}/attempts"), owner.token())
        .expect(404);
}

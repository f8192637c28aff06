//! Personal API tokens: scoped, restricted, expiring, revocable at once, stored as a hash.

use kiln_e2e::ws::Auth;
use kiln_e2e::{register, shared, Kiln, User};
use serde_json::{json, Value};

fn make(kiln: &Kiln, u: &User, body: Value) -> Value {
    kiln.post("/api/tokens", u.token(), body).expect(201)
}

fn project(kiln: &Kiln, u: &User, name: &str) -> String {
    kiln.post("/api/projects", u.token(), json!({ "name": name }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn put_file(kiln: &Kiln, token: &str, pid: &str, body: &[u8]) -> kiln_e2e::Resp {
    kiln.raw(
        "PUT",
        &format!("/api/projects/{pid}/files/notes.txt"),
        &[("authorization".into(), format!("Bearer {token}"))],
        Some(body),
    )
}

#[test]
fn a_read_token_reads_and_cannot_write_and_only_its_hash_is_kept() {
    let kiln = shared();
    let u = register(kiln, "pat-read");
    let pid = project(kiln, &u, "tokens");
    let made = make(kiln, &u, json!({ "name": " CI read ", "scopes": ["read"] }));
    let token = made["token"].as_str().unwrap().to_owned();
    assert!(
        token.starts_with("kiln_pat_") && token.len() == 73,
        "{made}"
    );
    assert_eq!(made["name"], "CI read");
    assert_eq!(made["scopes"], json!(["read"]));
    assert_eq!(made["expires_at"], Value::Null);

    // Reads work; every kind of write is 403 with the reason.
    kiln.get(&format!("/api/projects/{pid}"), Some(&token))
        .expect(200);
    let me = kiln.get("/api/me", Some(&token)).expect(200);
    assert_eq!(me["user"]["id"], u.id.as_str());
    let refused = kiln.patch(
        &format!("/api/projects/{pid}"),
        Some(&token),
        json!({ "name": "renamed" }),
    );
    refused.expect_error(403, "forbidden");
    assert!(refused.text.contains("write"), "{}", refused.text);
    put_file(kiln, &token, &pid, b"x").expect_error(403, "forbidden");
    kiln.post(
        &format!("/api/projects/{pid}/generate"),
        Some(&token),
        json!({ "prompt": "an app" }),
    )
    .expect_error(403, "forbidden");
    kiln.post("/api/projects", Some(&token), json!({ "name": "more" }))
        .expect_error(403, "forbidden");
    // Over the socket it watches: its edits are refused.
    let mut ws = kiln
        .ws(&pid, Auth::Bearer(&token))
        .expect("a read token watches");
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    ws.send(json!({ "type": "edit", "path": "a.txt", "base_rev": 0, "content": "x" }));
    assert_eq!(ws.recv_type("error")["code"], "forbidden");
    // Tokens never manage tokens, nor sign out, nor open previews.
    kiln.get("/api/tokens", Some(&token))
        .expect_error(403, "forbidden");
    kiln.post(
        "/api/tokens",
        Some(&token),
        json!({ "name": "x", "scopes": ["read"] }),
    )
    .expect_error(403, "forbidden");
    kiln.post(
        &format!("/api/projects/{pid}/preview-link"),
        Some(&token),
        json!({}),
    )
    .expect_error(403, "forbidden");

    // Listed (with last use) without the secret; in D1 only its sha256.
    let list = kiln.get("/api/tokens", u.token()).expect(200);
    let item = &list["items"][0];
    assert_eq!(item["id"], made["id"]);
    assert!(item.get("token").is_none(), "{list}");
    assert!(item["last_used_at"].as_i64().is_some(), "{list}");
    let rows = kiln.d1(&format!(
        "SELECT token_hash FROM api_tokens WHERE id = '{}'",
        made["id"].as_str().unwrap()
    ));
    let stored = rows[0]["token_hash"].as_str().unwrap();
    assert_eq!(stored, kiln_core::tree::sha256_hex(token.as_bytes()));
    assert!(!stored.contains(&token[9..]));
    let dump = kiln.d1("SELECT * FROM api_tokens");
    assert!(!dump
        .to_vec()
        .iter()
        .any(|r| r.to_string().contains(&token[9..])));
}

#[test]
fn write_and_generate_scopes_are_separate_and_never_beyond_the_owners_role() {
    let kiln = shared();
    let owner = register(kiln, "pat-owner");
    let pid = project(kiln, &owner, "scoped");
    let write = make(
        kiln,
        &owner,
        json!({ "name": "w", "scopes": ["read", "write"] }),
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    put_file(kiln, &write, &pid, b"hello").expect(201);
    kiln.post(
        &format!("/api/projects/{pid}/generate"),
        Some(&write),
        json!({ "prompt": "an app" }),
    )
    .expect_error(403, "forbidden");
    let mut ws = kiln.ws(&pid, Auth::Bearer(&write)).unwrap();
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    ws.send(json!({ "type": "generate", "prompt": "an app" }));
    let err = ws.recv_type("error");
    assert_eq!(err["code"], "forbidden", "{err}");

    // A client member's token with every scope still only reads.
    let client = register(kiln, "pat-client");
    kiln_e2e::join_org(kiln, &owner, &owner.personal_org, &client, "client");
    let all = make(
        kiln,
        &client,
        json!({ "name": "all", "scopes": ["read", "write", "generate"] }),
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    kiln.get(&format!("/api/projects/{pid}"), Some(&all))
        .expect(200);
    put_file(kiln, &all, &pid, b"nope").expect_error(403, "forbidden");
}

#[test]
fn a_restricted_token_sees_only_its_project_and_a_revoked_or_expired_one_nothing() {
    let kiln = shared();
    let u = register(kiln, "pat-restricted");
    let (a, b) = (project(kiln, &u, "a"), project(kiln, &u, "b"));
    let only_a = make(
        kiln,
        &u,
        json!({ "name": "a only", "scopes": ["read", "write"], "project": a }),
    );
    let t = only_a["token"].as_str().unwrap().to_owned();
    assert_eq!(only_a["project_id"], a.as_str());
    kiln.get(&format!("/api/projects/{a}"), Some(&t))
        .expect(200);
    kiln.get(&format!("/api/projects/{b}"), Some(&t))
        .expect_error(404, "not_found");
    put_file(kiln, &t, &b, b"x").expect_error(404, "not_found");
    let listed = kiln.get("/api/projects", Some(&t)).expect(200);
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.as_str()]);

    // Revoked: 401 on the next request, and its open socket closes.
    let mut ws = kiln.ws(&a, Auth::Bearer(&t)).unwrap();
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    let id = only_a["id"].as_str().unwrap();
    kiln.delete(&format!("/api/tokens/{id}"), u.token())
        .expect(204);
    kiln.get(&format!("/api/projects/{a}"), Some(&t))
        .expect_error(401, "unauthorized");
    let (_, ended) = ws.wait_closed(std::time::Duration::from_secs(10));
    assert!(
        matches!(ended, kiln_e2e::ws::Ended::Closed { code: 4003, .. }),
        "{ended:?}"
    );
    assert!(
        kiln.get("/api/tokens", u.token()).expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["id"] != id),
        "a revoked token is not listed"
    );
    kiln.delete(&format!("/api/tokens/{id}"), u.token())
        .expect_error(404, "not_found");

    // Expired: 401 (its expiry moved into the past in D1).
    let soon = make(
        kiln,
        &u,
        json!({ "name": "soon", "scopes": ["read"], "expires_in_days": 1 }),
    );
    let st = soon["token"].as_str().unwrap();
    kiln.get("/api/me", Some(st)).expect(200);
    kiln.d1(&format!(
        "UPDATE api_tokens SET expires_at = 1 WHERE id = '{}'",
        soon["id"].as_str().unwrap()
    ));
    kiln.get("/api/me", Some(st))
        .expect_error(401, "unauthorized");
    // A made-up token of the right shape is just unknown.
    let fake = format!("kiln_pat_{}", "0".repeat(64));
    kiln.get("/api/me", Some(&fake))
        .expect_error(401, "unauthorized");
}

#[test]
fn bad_token_requests_are_clear_errors() {
    let kiln = shared();
    let u = register(kiln, "pat-bad");
    let other = register(kiln, "pat-stranger");
    let theirs = project(kiln, &other, "not yours");
    for (body, field) in [
        (json!({ "name": "", "scopes": ["read"] }), "name"),
        (json!({ "name": "x", "scopes": [] }), "scopes"),
        (
            json!({ "name": "x", "scopes": ["read"], "expires_in_days": 400 }),
            "expires_in_days",
        ),
    ] {
        let r = kiln.post("/api/tokens", u.token(), body);
        r.expect_error(400, "invalid_field");
        assert_eq!(r.json()["error"]["field"], field, "{}", r.text);
    }
    kiln.post(
        "/api/tokens",
        u.token(),
        json!({ "name": "x", "scopes": ["admin"] }),
    )
    .expect_error(400, "invalid_field");
    kiln.post(
        "/api/tokens",
        u.token(),
        json!({ "name": "x", "scopes": ["read"], "project": theirs }),
    )
    .expect_error(404, "not_found");
}

/// The same in the browser: made on the tokens page, shown once, used by a script, revoked.
#[test]
fn a_token_is_made_shown_once_and_revoked_in_the_ui() {
    let kiln = shared();
    let u = register(kiln, "pat-ui");
    let shots = kiln_e2e::screenshot_dir();
    let report = kiln_e2e::browser_script(
        "tokens.mjs",
        &json!({ "app": kiln.url, "email": u.email, "password": u.password, "shots": shots }),
    );
    assert!(report.get("error").is_none(), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["token_shape"], true, "{report}");
    let row = report["listed"][0].as_str().unwrap_or_default();
    assert!(row.contains("CI read") && row.contains("read"), "{report}");
    assert_eq!(report["status_with_token"], 200, "{report}");
    assert_eq!(report["status_after_revoke"], 401, "{report}");
    assert_eq!(report["secret_after_reload"], false, "{report}");
    assert_eq!(report["contrast"], json!([]), "{report}");
    assert_eq!(report["unlabelled"], json!([]), "{report}");
    assert_eq!(
        report["phone_overflow"], 0,
        "sideways scrolling at 375 px: {report}"
    );
    assert!(shots.join("tokens.png").exists());
}

//! Writes and WebSocket upgrades from another site's page are refused (CSRF, cross-site
//! WebSocket hijacking), and JSON bodies need their content type.

use crate::{bearer, header, project, project_names, session_cookie};
use kiln_e2e::ws::{Auth, Socket};
use kiln_e2e::{register, shared, Kiln};
use serde_json::{json, Value};
use std::io::Read;
use std::time::Duration;

const EVIL: &str = "http://evil.test";

/// The origin of some project's preview host on this server.
fn preview_origin(kiln: &Kiln, project: &str) -> String {
    format!("http://{}", kiln.preview_host(project))
}

/// The upgrade is refused with 403. tungstenite does not wait for the body of a refused
/// handshake, so the error code is read from the same upgrade request sent over plain HTTP.
#[track_caller]
fn assert_upgrade_refused(kiln: &Kiln, pid: &str, auth: &str, token: &str, extra: &[(&str, &str)]) {
    let what = format!("{auth} with {extra:?}");
    let ws_auth = match auth {
        "bearer" => Auth::Bearer(token),
        _ => Auth::Cookie(token),
    };
    match Socket::connect_with(&kiln.url, pid, ws_auth, extra) {
        Ok(_) => panic!("{what}: the upgrade was accepted"),
        Err(r) => assert_eq!(r.status, 403, "{what}: {r:?}"),
    }
    let mut headers = vec![
        match auth {
            "bearer" => bearer(token),
            _ => session_cookie(token),
        },
        header("upgrade", "websocket"),
        header("connection", "Upgrade"),
        header("sec-websocket-version", "13"),
        header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    headers.extend(extra.iter().map(|(k, v)| header(k, v)));
    let resp = kiln.raw("GET", &format!("/api/projects/{pid}/ws"), &headers, None);
    assert_eq!(resp.status, 403, "{what}: {}", resp.text);
    resp.expect_error(403, "cross_site_request");
}

#[track_caller]
fn assert_live(got: Result<Socket, kiln_e2e::ws::Refused>, what: &str) {
    let mut s = got.unwrap_or_else(|r| panic!("{what}: refused: {r:?}"));
    s.send(json!({ "type": "hello" }));
    s.recv_type("state");
    s.close();
}

#[test]
fn websocket_upgrades_from_another_site_are_refused_and_from_kiln_accepted() {
    let kiln = shared();
    let owner = register(kiln, "ws-origin");
    let pid = project(kiln, &owner, "ws origin");
    let preview = preview_origin(kiln, &pid);

    for name in ["bearer", "cookie"] {
        let auth = || match name {
            "bearer" => Auth::Bearer(&owner.token),
            _ => Auth::Cookie(&owner.token),
        };
        let t = &owner.token;
        assert_upgrade_refused(kiln, &pid, name, t, &[("origin", EVIL)]);
        // Even the project's own preview: its pages are the project's (untrusted) code.
        assert_upgrade_refused(kiln, &pid, name, t, &[("origin", &preview)]);
        assert_upgrade_refused(
            kiln,
            &pid,
            name,
            t,
            &[("origin", &kiln.url), ("sec-fetch-site", "cross-site")],
        );
        // Kiln's own page: the server's own origin, and the other configured app origin.
        assert_live(
            Socket::connect_with(&kiln.url, &pid, auth(), &[("origin", &kiln.url)]),
            &format!("{name} from {}", kiln.url),
        );
        let localhost = format!("http://localhost:{}", kiln.port);
        assert_live(
            Socket::connect_with(
                &kiln.url,
                &pid,
                auth(),
                &[("origin", &localhost), ("sec-fetch-site", "same-origin")],
            ),
            &format!("{name} from {localhost}"),
        );
    }
    // A client that is not a browser page sends no Origin at all.
    assert_live(
        Socket::connect_with(&kiln.url, &pid, Auth::Bearer(&owner.token), &[]),
        "no origin",
    );
}

#[test]
fn cookie_writes_from_another_site_are_refused_and_change_nothing() {
    let kiln = shared();
    let user = register(kiln, "csrf");
    let pid = project(kiln, &user, "kept");
    let preview = preview_origin(kiln, &pid);
    let create = |name: &str, extra: &[(String, String)]| {
        let mut headers = vec![session_cookie(&user.token)];
        headers.extend(extra.iter().cloned());
        let body = json!({ "name": name }).to_string();
        kiln.raw("POST", "/api/projects", &headers, Some(body.as_bytes()))
    };

    create("from evil", &[header("origin", EVIL)]).expect_error(403, "cross_site_request");
    create("from null", &[header("origin", "null")]).expect_error(403, "cross_site_request");
    create("from a preview", &[header("origin", &preview)]).expect_error(403, "cross_site_request");
    create(
        "fetch cross-site",
        &[header("sec-fetch-site", "cross-site")],
    )
    .expect_error(403, "cross_site_request");
    create("fetch same-site", &[header("sec-fetch-site", "same-site")])
        .expect_error(403, "cross_site_request");
    create(
        "own origin but cross-site fetch",
        &[
            header("origin", &kiln.url),
            header("sec-fetch-site", "cross-site"),
        ],
    )
    .expect_error(403, "cross_site_request");

    // The other writes are refused the same way: the project is neither renamed nor deleted.
    let mut evil = vec![session_cookie(&user.token), header("origin", EVIL)];
    kiln.raw(
        "PATCH",
        &format!("/api/projects/{pid}"),
        &evil,
        Some(json!({ "name": "renamed by evil" }).to_string().as_bytes()),
    )
    .expect_error(403, "cross_site_request");
    kiln.raw("DELETE", &format!("/api/projects/{pid}"), &evil, None)
        .expect_error(403, "cross_site_request");
    // A bearer token does not make another site's request acceptable either.
    evil[0] = bearer(&user.token);
    kiln.raw("DELETE", &format!("/api/projects/{pid}"), &evil, None)
        .expect_error(403, "cross_site_request");

    assert_eq!(project_names(kiln, &user), vec!["kept".to_owned()]);

    // Kiln's own page is let through.
    create(
        "same-origin fetch",
        &[header("sec-fetch-site", "same-origin")],
    )
    .expect(201);
    create(
        "own origin",
        &[
            header("origin", &kiln.url),
            header("sec-fetch-site", "same-origin"),
        ],
    )
    .expect(201);
    let mut names = project_names(kiln, &user);
    names.sort();
    assert_eq!(names, vec!["kept", "own origin", "same-origin fetch"]);
}

#[test]
fn json_routes_refuse_bodies_without_the_json_content_type() {
    let kiln = shared();
    let user = register(kiln, "media-type");
    let body = json!({ "name": "typed" }).to_string();
    for ct in [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let resp = kiln.raw(
            "POST",
            "/api/projects",
            &[bearer(&user.token), header("content-type", ct)],
            Some(body.as_bytes()),
        );
        assert_eq!(resp.status, 415, "{ct}: {}", resp.text);
        resp.expect_error(415, "unsupported_media_type");
    }

    // No content type at all (ureq sets none for raw bytes).
    let resp = ureq::post(&format!("{}/api/projects", kiln.url))
        .set("authorization", &format!("Bearer {}", user.token))
        .timeout(Duration::from_secs(60))
        .send_bytes(body.as_bytes());
    let resp = match resp {
        Ok(r) => panic!("accepted without a content type: {}", r.status()),
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    assert_eq!(resp.status(), 415);
    let mut text = String::new();
    resp.into_reader()
        .take(1 << 20)
        .read_to_string(&mut text)
        .expect("body");
    let v: Value = serde_json::from_str(&text).expect("JSON error");
    assert_eq!(v["error"]["code"], "unsupported_media_type", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("none")),
        "the request should have carried no content type: {v}"
    );

    assert!(project_names(kiln, &user).is_empty());
    // The JSON content type, with parameters, is accepted.
    kiln.raw(
        "POST",
        "/api/projects",
        &[
            bearer(&user.token),
            header("content-type", "application/json; charset=utf-8"),
        ],
        Some(body.as_bytes()),
    )
    .expect(201);
    assert_eq!(project_names(kiln, &user), vec!["typed".to_owned()]);
}

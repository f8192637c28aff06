//! The auth table: every way a token can be wrong, on every kind of route.

mod common;

use common::{shared, token, token_with, Service};

fn svc() -> &'static Service {
    shared("a", 83)
}

#[test]
fn wrong_tokens_are_refused_on_every_route() {
    let s = svc();
    let (id, good) = s.create("auth", "static");
    let other = token("p_someone_else", 120);
    let forged = token_with(b"not-the-secret-not-the-secret-xx", &id, 120);
    let expired = token(&id, -120);
    let too_long = token(&id, 3600);
    let cases: [(&str, Option<&str>, u16, &str); 6] = [
        ("missing", None, 401, "unauthorized"),
        ("garbage", Some("not.a.jwt"), 401, "unauthorized"),
        ("forged", Some(&forged), 401, "unauthorized"),
        ("expired", Some(&expired), 401, "unauthorized"),
        (
            "lives longer than 5 minutes",
            Some(&too_long),
            401,
            "unauthorized",
        ),
        ("other project", Some(&other), 403, "forbidden"),
    ];
    let routes: Vec<(&str, String, Option<String>)> = vec![
        ("GET", format!("/v1/sandboxes/{id}"), None),
        ("GET", format!("/v1/sandboxes/{id}/files"), None),
        ("GET", format!("/v1/sandboxes/{id}/files/index.html"), None),
        (
            "PUT",
            format!("/v1/sandboxes/{id}/files"),
            Some(r#"{"files":[{"path":"x.txt","content":"x"}]}"#.into()),
        ),
        (
            "DELETE",
            format!("/v1/sandboxes/{id}/files/index.html"),
            None,
        ),
        (
            "POST",
            format!("/v1/sandboxes/{id}/exec"),
            Some(r#"{"cmd":"true"}"#.into()),
        ),
        (
            "POST",
            format!("/v1/sandboxes/{id}/dev-server"),
            Some(r#"{"action":"start"}"#.into()),
        ),
        (
            "POST",
            "/v1/sandboxes".into(),
            Some(format!(r#"{{"project_id":"{id}","template":"static"}}"#)),
        ),
        ("DELETE", format!("/v1/sandboxes/{id}"), None),
    ];
    for (what, tok, status, code) in cases {
        for (m, path, body) in &routes {
            let r = s.call(m, path, tok, body.as_deref(), None).unwrap();
            assert_eq!(r.status, status, "{what}: {m} {path}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], code, "{what}: {m} {path}");
        }
    }
    // Nothing above had any effect.
    let r = s.must(
        "GET",
        &format!("/v1/sandboxes/{id}/files/index.html"),
        &good,
        None,
    );
    assert_eq!(r.status, 200);
    let r = s
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/files/x.txt"),
            Some(&good),
            None,
            None,
        )
        .unwrap();
    assert_eq!(r.status, 404);
    // The terminal's upgrade is refused as well.
    let t = common::ws::connect(
        s.port,
        &format!("/v1/sandboxes/{id}/terminal?token={other}"),
        &[],
    );
    assert_eq!(t.status(), 403, "{}", t.head);
    let t = common::ws::connect(s.port, &format!("/v1/sandboxes/{id}/terminal"), &[]);
    assert_eq!(t.status(), 401, "{}", t.head);
}

#[test]
fn a_preview_needs_its_own_token_or_cookie() {
    let s = svc();
    let (id, t) = s.create("prev", "static");
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/dev-server"),
        &t,
        Some(r#"{"action":"start"}"#),
    );
    let url = r.json()["preview_url"].as_str().expect(&r.body).to_owned();
    let (b, tb) = s.create("prev2", "static");
    let rb = s.must(
        "POST",
        &format!("/v1/sandboxes/{b}/dev-server"),
        &tb,
        Some(r#"{"action":"start"}"#),
    );
    let url_b = rb.json()["preview_url"].as_str().unwrap().to_owned();
    let token_b = url_b.split("kiln_token=").nth(1).unwrap();
    let base = format!("/v1/sandboxes/{id}/preview/");

    let no_token = s.call("GET", &base, None, None, None).unwrap();
    assert_eq!(no_token.status, 401, "{}", no_token.body);
    // The edge proxies previews with its own bearer token: good for its project only. Another
    // project's preview token is no good either.
    let bearer = s.call("GET", &base, Some(&t), None, None).unwrap();
    assert_eq!(bearer.status, 200, "{}", bearer.body);
    let other_bearer = s.call("GET", &base, Some(&tb), None, None).unwrap();
    assert_eq!(other_bearer.status, 401);
    let other = s
        .call(
            "GET",
            &format!("{base}?kiln_token={token_b}"),
            None,
            None,
            None,
        )
        .unwrap();
    assert_eq!(other.status, 401);
    let cookie_b = s
        .call(
            "GET",
            &base,
            None,
            None,
            Some(&format!("kiln_preview_{id}={token_b}")),
        )
        .unwrap();
    assert_eq!(cookie_b.status, 401);
    let forged = s
        .call(
            "GET",
            &format!("{base}?kiln_token={}", token(&id, 60)),
            None,
            None,
            None,
        )
        .unwrap();
    assert_eq!(forged.status, 401);

    let ok = s.call("GET", &url, None, None, None).unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = ok
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let again = s.call("GET", &base, None, None, Some(&cookie)).unwrap();
    assert_eq!(again.status, 200);
}

#[test]
fn errors_are_json_with_a_code() {
    let s = svc();
    let (id, t) = s.create("errs", "static");
    let r = s.call("GET", "/nope", None, None, None).unwrap();
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/exec"),
        &t,
        Some("{not json"),
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let r = s.must(
        "POST",
        &format!("/v1/sandboxes/{id}/exec"),
        &t,
        Some(r#"{"cmd":"ls","bogus":1}"#),
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let r = s.must(
        "POST",
        "/v1/sandboxes",
        &token("bad id!", 60),
        Some(r#"{"project_id":"bad id!","template":"static"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = s.must(
        "POST",
        "/v1/sandboxes",
        &token("p_x", 60),
        Some(r#"{"project_id":"p_x","template":"php"}"#),
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

//! Bad input of every kind gets its exact status and error code, and changes nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions};
use kiln_core::api::SessionClaims;
use kiln_e2e::{register, shared, unique_email, Kiln, User, TEST_JWT_SECRET};
use serde_json::{json, Value};

fn claims_of(token: &str) -> SessionClaims {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&B64.decode(payload).expect("base64")).expect("claims")
}

fn sign(claims: &Claims<SessionClaims>, secret: &str) -> String {
    Hs256
        .token(
            &Header::empty().with_token_type("JWT"),
            claims,
            &Hs256Key::new(secret.as_bytes()),
        )
        .expect("sign")
}

fn create_project(kiln: &Kiln, user: &User, name: &str) -> Value {
    kiln.post("/api/projects", user.token(), json!({ "name": name }))
        .expect(201)
}

#[test]
fn bad_tokens_are_refused_with_401() {
    let kiln = shared();
    let user = register(kiln, "tokens");
    let project = create_project(kiln, &user, "guarded");
    let path = format!("/api/projects/{}", project["id"].as_str().unwrap());
    let real = claims_of(&user.token);
    let opts = TimeOptions::default();

    let mut stale = Claims::new(real.clone());
    stale.issued_at = Some(Utc::now() - Duration::days(8));
    stale.expiration = Some(Utc::now() - Duration::hours(1));
    let expired = sign(&stale, TEST_JWT_SECRET);
    let forged = sign(
        &Claims::new(real.clone()).set_duration_and_issuance(&opts, Duration::hours(1)),
        "a-completely-different-secret-of-enough-length",
    );
    let none_alg = format!(
        "{}.{}.",
        B64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(
            serde_json::to_string(
                &json!({ "sub": real.sub, "jti": real.jti, "exp": Utc::now().timestamp() + 3600 })
            )
            .unwrap()
        )
    );
    let revoked = kiln
        .post(
            "/api/auth/login",
            None,
            json!({ "email": user.email, "password": user.password }),
        )
        .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    kiln.send("POST", "/api/auth/logout", Some(&revoked), None)
        .expect(204);

    let cases: Vec<(&str, Vec<(String, String)>)> = vec![
        ("missing", vec![]),
        ("malformed", vec![bearer("not.a.jwt")]),
        ("garbage", vec![bearer("%%%")]),
        (
            "empty bearer",
            vec![("authorization".into(), "Bearer ".into())],
        ),
        (
            "wrong scheme",
            vec![("authorization".into(), format!("Basic {}", user.token))],
        ),
        ("expired", vec![bearer(&expired)]),
        ("forged (wrong key)", vec![bearer(&forged)]),
        ("alg none", vec![bearer(&none_alg)]),
        ("revoked", vec![bearer(&revoked)]),
        (
            "revoked cookie",
            vec![("cookie".into(), format!("kiln_session={revoked}"))],
        ),
    ];
    for (what, headers) in cases {
        for (method, body) in [
            ("GET", None),
            ("DELETE", None),
            ("PATCH", Some(br#"{"name":"pwned"}"#.as_slice())),
        ] {
            let resp = kiln.raw(method, &path, &headers, body);
            assert_eq!(resp.status, 401, "{what} {method}: {}", resp.text);
            resp.expect_error(401, "unauthorized");
        }
        kiln.raw("GET", "/api/me", &headers, None)
            .expect_error(401, "unauthorized");
    }
    // Nothing changed: the project is still there under its name.
    let after = kiln.get(&path, user.token()).expect(200);
    assert_eq!(after["name"], "guarded");
}

fn bearer(token: &str) -> (String, String) {
    ("authorization".into(), format!("Bearer {token}"))
}

#[test]
fn duplicate_email_is_409_and_keeps_the_first_account() {
    let kiln = shared();
    let user = register(kiln, "dup");
    for email in [
        user.email.clone(),
        format!(" {} ", user.email.to_uppercase()),
    ] {
        kiln.post(
            "/api/auth/register",
            None,
            json!({ "email": email, "password": "another-password" }),
        )
        .expect_error(409, "email_taken");
    }
    // The original password still works; the second one never did.
    kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": user.email, "password": user.password }),
    )
    .expect(200);
    kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": user.email, "password": "another-password" }),
    )
    .expect_error(401, "invalid_credentials");
    // And the failed registration left no stray org behind.
    let me = kiln.get("/api/me", user.token()).expect(200);
    assert_eq!(me["orgs"].as_array().unwrap().len(), 1);
}

#[test]
fn registration_input_is_validated_field_by_field() {
    let kiln = shared();
    let email = unique_email("val");
    let cases: Vec<(Value, &str)> = vec![
        (json!({ "email": email, "password": "short" }), "password"),
        (
            json!({ "email": email, "password": "123456789" }),
            "password",
        ),
        (
            json!({ "email": "not-an-email", "password": "0123456789" }),
            "email",
        ),
        (json!({ "email": 5, "password": "0123456789" }), "email"),
        (
            json!({ "email": email, "password": ["0123456789"] }),
            "password",
        ),
        (json!({ "email": email }), "password"),
        (json!({ "password": "0123456789" }), "email"),
        (
            json!({ "email": email, "password": "0123456789", "admin": true }),
            "admin",
        ),
    ];
    for (body, field) in cases {
        let err = kiln
            .post("/api/auth/register", None, body.clone())
            .expect_error(400, "invalid_field");
        assert_eq!(err["error"]["field"], field, "{body}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(field),
            "message names the field: {err}"
        );
    }
    // None of those created the account.
    kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": email, "password": "0123456789" }),
    )
    .expect_error(401, "invalid_credentials");
}

#[test]
fn malformed_bodies_are_400_and_oversized_bodies_413() {
    let kiln = shared();
    let user = register(kiln, "bodies");
    let project = create_project(kiln, &user, "original");
    let path = format!("/api/projects/{}", project["id"].as_str().unwrap());
    let auth = vec![bearer(&user.token)];

    for body in [
        &b"{"[..],
        b"{\"name\": }",
        b"not json",
        b"",
        b"[\"x\", null]",
        b"{\"name\":\"a\"} trailing",
        b"\xff\xfe",
    ] {
        kiln.raw("PATCH", &path, &auth, Some(body))
            .expect_error(400, "invalid_json");
    }
    for (body, field) in [
        (json!({ "name": 5 }), "name"),
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x".repeat(101) }), "name"),
        (json!({ "description": { "a": 1 } }), "description"),
        (json!({ "nmae": "typo" }), "nmae"),
    ] {
        let err = kiln
            .patch(&path, user.token(), body.clone())
            .expect_error(400, "invalid_field");
        assert_eq!(err["error"]["field"], field, "{body}");
    }
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    kiln.raw("PATCH", &path, &auth, Some(big.as_bytes()))
        .expect_error(413, "payload_too_large");
    kiln.raw("POST", "/api/projects", &auth, Some(big.as_bytes()))
        .expect_error(413, "payload_too_large");
    let form = vec![
        bearer(&user.token),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ),
    ];
    kiln.raw("PATCH", &path, &form, Some(b"name=x"))
        .expect_error(415, "unsupported_media_type");

    let after = kiln.get(&path, user.token()).expect(200);
    assert_eq!(after["name"], "original");
    assert_eq!(after["updated_at"], project["updated_at"]);
}

#[test]
fn unknown_routes_are_404_and_wrong_methods_405_as_json() {
    let kiln = shared();
    kiln.get("/api/nope", None).expect_error(404, "not_found");
    kiln.get("/api/projects/p_x/y/z", None)
        .expect_error(404, "not_found");
    kiln.get("/v1/nope", None).expect_error(404, "not_found");
    kiln.send("POST", "/", None, Some(serde_json::json!({})))
        .expect_error(404, "not_found");
    // Every other GET is the UI's page (it routes in the browser), never an API answer.
    let page = kiln.get("/projects/p_x", None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<div id=\"app\">"), "{}", page.text);
    kiln.send("PUT", "/api/projects", None, None)
        .expect_error(405, "method_not_allowed");
    kiln.send("GET", "/api/auth/login", None, None)
        .expect_error(405, "method_not_allowed");
    kiln.send("DELETE", "/api/me", None, None)
        .expect_error(405, "method_not_allowed");
}

#[test]
fn the_generation_routes_answer_a_wrong_method_with_405_naming_the_right_one() {
    let kiln = shared();
    let user = register(kiln, "methods");
    let project = create_project(kiln, &user, "methods");
    let id = project["id"].as_str().unwrap();
    for (method, route, allowed) in [
        ("GET", "generate", "POST"),
        ("PUT", "generate", "POST"),
        ("POST", "generation", "GET"),
        ("DELETE", "generation", "GET"),
        ("GET", "cancel", "POST"),
        ("PATCH", "cancel", "POST"),
    ] {
        let path = format!("/api/projects/{id}/{route}");
        let body = (method != "GET").then(|| json!({}));
        let error = kiln
            .send(method, &path, user.token(), body)
            .expect_error(405, "method_not_allowed");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(allowed), "{method} {route}: {message}");
    }
    // A path no route has stays 404, whatever the method.
    kiln.send(
        "POST",
        &format!("/api/projects/{id}/generations"),
        user.token(),
        None,
    )
    .expect_error(404, "not_found");
}

#[test]
fn sql_looking_names_are_stored_and_returned_verbatim() {
    let kiln = shared();
    let user = register(kiln, "sqlish");
    let names = [
        "Robert'); DROP TABLE projects;--",
        "\" OR 1=1 --",
        "name with 'quotes' and \"doubles\" and \\ backslash",
        "%s %d ${x} {{y}} <script>alert(1)</script>",
        "日本語のプロジェクト 🚀",
    ];
    for name in names {
        let created = create_project(kiln, &user, name);
        assert_eq!(created["name"], name);
        let id = created["id"].as_str().unwrap();
        let read = kiln
            .get(&format!("/api/projects/{id}"), user.token())
            .expect(200);
        assert_eq!(read["name"], name);
    }
    let org = kiln
        .post("/api/orgs", user.token(), json!({ "name": names[0] }))
        .expect(201);
    assert_eq!(org["name"], names[0]);
    let list = kiln
        .get("/api/projects?limit=100", user.token())
        .expect(200);
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in names {
        assert!(listed.contains(&name), "{name} in {listed:?}");
    }
}

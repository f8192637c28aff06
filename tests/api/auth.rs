use kiln_e2e::{register, shared, unique_email};
use serde_json::json;

#[test]
fn register_returns_user_token_and_a_secure_session_cookie() {
    let kiln = shared();
    let email = unique_email("reg");
    let resp = kiln.post(
        "/api/auth/register",
        None,
        json!({ "email": email, "password": "correct horse battery" }),
    );
    let body = resp.expect(201);
    assert_eq!(body["user"]["email"], email.as_str());
    assert!(body["user"]["id"].as_str().unwrap().starts_with("u_"));
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let cookie = resp.header("set-cookie").expect("set-cookie");
    for part in [
        "kiln_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(
        !body.to_string().contains("password"),
        "no hash leaks: {body}"
    );
}

#[test]
fn emails_are_normalised_for_register_and_login() {
    let kiln = shared();
    let email = unique_email("Norm");
    let shouting = format!("  {}  ", email.to_uppercase());
    let body = kiln
        .post(
            "/api/auth/register",
            None,
            json!({ "email": shouting, "password": "0123456789" }),
        )
        .expect(201);
    assert_eq!(body["user"]["email"], email.to_lowercase());
    kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": email.to_lowercase(), "password": "0123456789" }),
    )
    .expect(200);
}

#[test]
fn login_gives_a_working_token_and_me_lists_the_personal_org() {
    let kiln = shared();
    let user = register(kiln, "login");
    let body = kiln
        .post(
            "/api/auth/login",
            None,
            json!({ "email": user.email, "password": user.password }),
        )
        .expect(200);
    let token = body["token"].as_str().unwrap();
    assert_ne!(token, user.token, "each login is a new session");
    let me = kiln.get("/api/me", Some(token)).expect(200);
    assert_eq!(me["user"]["id"], user.id.as_str());
    let orgs = me["orgs"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["personal"], true);
    assert_eq!(orgs[0]["role"], "owner");
}

#[test]
fn wrong_password_and_unknown_email_look_the_same() {
    let kiln = shared();
    let user = register(kiln, "wrongpw");
    let wrong = kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": user.email, "password": "not the password" }),
    );
    let unknown = kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": unique_email("nobody"), "password": "whatever123" }),
    );
    let a = wrong.expect_error(401, "invalid_credentials");
    let b = unknown.expect_error(401, "invalid_credentials");
    assert_eq!(a, b);
}

#[test]
fn the_session_cookie_authenticates_like_a_bearer_token() {
    let kiln = shared();
    let user = register(kiln, "cookie");
    let headers = vec![(
        "cookie".to_owned(),
        format!("theme=dark; kiln_session={}", user.token),
    )];
    let me = kiln.raw("GET", "/api/me", &headers, None).expect(200);
    assert_eq!(me["user"]["id"], user.id.as_str());
}

#[test]
fn logout_revokes_only_that_session() {
    let kiln = shared();
    let user = register(kiln, "logout");
    let other = kiln
        .post(
            "/api/auth/login",
            None,
            json!({ "email": user.email, "password": user.password }),
        )
        .expect(200)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = kiln.send("POST", "/api/auth/logout", user.token(), None);
    resp.expect(204);
    let cleared = resp.header("set-cookie").expect("cookie cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    kiln.get("/api/me", user.token())
        .expect_error(401, "unauthorized");
    kiln.send("POST", "/api/auth/logout", user.token(), None)
        .expect_error(401, "unauthorized");
    kiln.get("/api/me", Some(&other)).expect(200);
}

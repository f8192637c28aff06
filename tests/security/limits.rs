//! Guessing and flooding are rate-limited: failed logins lock the account from that address
//! (with back-off), sign-ups are counted per address. The address is `cf-connecting-ip`,
//! which Cloudflare sets in production and `wrangler dev` passes through locally.

use crate::header;
use kiln_e2e::{unique_email, Kiln, Resp};
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Login lock-outs of 2 s (so a test can wait one out), the default per-address limit on
/// failed logins (50, above the per-account-and-address 10) and 3 sign-ups per address.
fn limited() -> &'static Kiln {
    static KILN: OnceLock<Kiln> = OnceLock::new();
    KILN.get_or_init(|| {
        Kiln::start_with(&[
            ("KILN_LIMIT_LOGIN_WINDOW_SECS", "2"),
            ("KILN_LIMIT_LOGIN_FAILS_PER_IP", "50"),
            ("KILN_LIMIT_REGISTER_PER_IP", "3"),
        ])
    })
}

fn register_from(kiln: &Kiln, email: &str, password: &str, ip: &str) -> Resp {
    let body = json!({ "email": email, "password": password }).to_string();
    kiln.raw(
        "POST",
        "/api/auth/register",
        &[header("cf-connecting-ip", ip)],
        Some(body.as_bytes()),
    )
}

fn login_from(kiln: &Kiln, email: &str, password: &str, ip: &str) -> Resp {
    let body = json!({ "email": email, "password": password }).to_string();
    kiln.raw(
        "POST",
        "/api/auth/login",
        &[header("cf-connecting-ip", ip)],
        Some(body.as_bytes()),
    )
}

/// A 429 `rate_limited` with a whole number of seconds in `Retry-After`.
#[track_caller]
fn retry_after(resp: &Resp) -> u64 {
    resp.expect_error(429, "rate_limited");
    let raw = resp
        .header("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {resp:?}"));
    let secs: u64 = raw
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {raw:?} is not whole seconds: {e}"));
    assert!(secs >= 1, "Retry-After {secs}");
    secs
}

#[test]
fn wrong_passwords_lock_the_account_from_that_address_until_retry_after() {
    let kiln = limited();
    let ip = "203.0.113.20";
    let (a, b) = (unique_email("locked"), unique_email("neighbour"));
    let (pw_a, pw_b) = ("right-password-a", "right-password-b");
    register_from(kiln, &a, pw_a, ip).expect(201);
    register_from(kiln, &b, pw_b, ip).expect(201);

    // Guess until refused (at most 20 guesses).
    let mut refused = None;
    let t0 = Instant::now();
    for i in 1..=20 {
        let resp = login_from(kiln, &a, &format!("wrong-{i}"), ip);
        if resp.status == 429 {
            refused = Some((i, resp));
            break;
        }
        resp.expect_error(401, "invalid_credentials");
    }
    let (at, resp) = refused.expect("20 wrong passwords were never rate-limited");
    eprintln!("refused at guess {at} after {:?}", t0.elapsed());
    assert!(at > 1, "the very first guess was refused");
    // The first lock-out lasts one window (2 s here).
    let first = retry_after(&resp);
    assert!(first <= 2, "first lock-out of {first} s, window is 2 s");

    // While locked, even the right password is refused, and nothing is checked.
    let locked = login_from(kiln, &a, pw_a, ip);
    let wait = retry_after(&locked);
    assert!(wait <= 2, "Retry-After {wait} s while the lock-out is 2 s");
    let locked_at = Instant::now();
    // Spelling the email another way is the same account.
    let shouted = format!("  {}  ", a.to_ascii_uppercase());
    retry_after(&login_from(kiln, &shouted, pw_a, ip));

    // The lock is on this account from this address: another account from the same
    // address signs in (and a wrong guess there is only wrong), and the same account from
    // another address too.
    login_from(kiln, &b, pw_b, ip).expect(200);
    login_from(kiln, &b, "wrong", ip).expect_error(401, "invalid_credentials");
    login_from(kiln, &a, pw_a, "203.0.113.21").expect(200);

    // After Retry-After, the right password works.
    let until = locked_at + Duration::from_secs(wait) + Duration::from_millis(250);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let ok = login_from(kiln, &a, pw_a, ip);
    assert_eq!(ok.status, 200, "after Retry-After: {}", ok.text);
    assert!(ok.json()["token"].is_string(), "{}", ok.text);
    // Success starts the count over: the next wrong guess is merely wrong.
    login_from(kiln, &a, "wrong-again", ip).expect_error(401, "invalid_credentials");
}

#[test]
fn sign_ups_from_one_address_are_limited_while_other_addresses_sign_up() {
    let kiln = limited();
    let ip = "203.0.113.7";
    for i in 0..3 {
        let resp = register_from(kiln, &unique_email("flood"), "password-123", ip);
        assert_eq!(resp.status, 201, "sign-up {} of 3: {}", i + 1, resp.text);
    }
    let fourth = unique_email("flood");
    let resp = register_from(kiln, &fourth, "password-123", ip);
    let secs = retry_after(&resp);
    assert!(secs <= 3600, "Retry-After {secs} s beyond the 1 h window");

    // The refused sign-up made no account.
    login_from(kiln, &fourth, "password-123", "203.0.113.9")
        .expect_error(401, "invalid_credentials");
    // Another address still signs up, and can sign in.
    let other = unique_email("other-address");
    register_from(kiln, &other, "password-123", "203.0.113.8").expect(201);
    login_from(kiln, &other, "password-123", "203.0.113.8").expect(200);
}

fn project_in(kiln: &Kiln, user: &kiln_e2e::User, org: &str) -> String {
    kiln.post(
        "/api/projects",
        user.token(),
        json!({ "name": "limited", "org": org }),
    )
    .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn generate(kiln: &Kiln, user: &kiln_e2e::User, project: &str) -> Resp {
    kiln.send(
        "POST",
        &format!("/api/projects/{project}/generate"),
        user.token(),
        Some(json!({ "prompt": "a counter" })),
    )
}

#[test]
fn new_generations_per_hour_are_capped_per_person_and_per_org() {
    // New generations: 1 an hour per person, 2 per org.
    let kiln = &Kiln::start_with(&[
        ("KILN_LIMIT_GENERATIONS_PER_USER", "1"),
        ("KILN_LIMIT_GENERATIONS_PER_ORG", "2"),
    ]);
    let ann = kiln_e2e::register(kiln, "gen-cap-ann");
    let (p1, p2) = (
        project_in(kiln, &ann, &ann.personal_org),
        project_in(kiln, &ann, &ann.personal_org),
    );
    generate(kiln, &ann, &p1).expect(202);
    // Her second new generation this hour, in another project: 429 with Retry-After.
    let secs = retry_after(&generate(kiln, &ann, &p2));
    assert!(secs <= 3600, "{secs}");
    // The same over the socket.
    let mut ws = kiln
        .ws(&p2, kiln_e2e::ws::Auth::Bearer(&ann.token))
        .unwrap();
    ws.send(json!({ "type": "hello" }));
    ws.recv_type("state");
    ws.send(json!({ "type": "generate", "prompt": "a counter" }));
    assert_eq!(ws.recv_type("error")["code"], "rate_limited");

    // An org of three: two new generations an hour between them, whoever asks.
    let owner = kiln_e2e::register(kiln, "gen-cap-owner");
    let org = kiln
        .post("/api/orgs", owner.token(), json!({ "name": "Capped" }))
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (bob, cyd) = (
        kiln_e2e::register(kiln, "gen-cap-bob"),
        kiln_e2e::register(kiln, "gen-cap-cyd"),
    );
    for u in [&bob, &cyd] {
        kiln_e2e::join_org(kiln, &owner, &org, u, "member");
    }
    generate(kiln, &owner, &project_in(kiln, &owner, &org)).expect(202);
    generate(kiln, &bob, &project_in(kiln, &bob, &org)).expect(202);
    retry_after(&generate(kiln, &cyd, &project_in(kiln, &cyd, &org)));
    // Cyd's own allowance is untouched: her personal org is another org.
    generate(kiln, &cyd, &project_in(kiln, &cyd, &cyd.personal_org)).expect(202);
}

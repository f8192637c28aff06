//! Password hashes are peppered (HMAC-SHA256 with the server's secret before PBKDF2), and a
//! hash of the older unpeppered form still signs in once, then is replaced by a peppered one.
//! D1 is read and written with `wrangler d1 execute --local` on the running server's state.

use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use kiln_e2e::{register, shared, Kiln, TEST_PEPPER};
use serde_json::{json, Value};
use sha2::Sha256;

const ITERATIONS: u32 = 100_000;

fn d1(kiln: &Kiln, sql: &str) -> Vec<Value> {
    kiln.d1(sql)
}

fn stored_hash(kiln: &Kiln, email: &str) -> String {
    let rows = d1(
        kiln,
        &format!("SELECT password_hash FROM users WHERE email = '{email}'"),
    );
    assert_eq!(rows.len(), 1, "user {email} not in D1: {rows:?}");
    rows[0]["password_hash"]
        .as_str()
        .expect("password_hash")
        .to_owned()
}

fn pbkdf2(input: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(input, salt, iterations, &mut out);
    out
}

fn peppered(password: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(TEST_PEPPER.as_bytes()).expect("hmac key");
    mac.update(password.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Asserts `stored` is `pbkdf2-sha256-hmac$100000$<salt>$<hash>` of `password` with the
/// test server's pepper, and not the unpeppered hash of it.
#[track_caller]
fn assert_peppered_hash_of(stored: &str, password: &str) {
    let parts: Vec<&str> = stored.split('$').collect();
    assert_eq!(parts.len(), 4, "{stored}");
    assert_eq!(parts[0], "pbkdf2-sha256-hmac", "{stored}");
    let iterations: u32 = parts[1].parse().expect("iterations");
    assert_eq!(iterations, ITERATIONS, "{stored}");
    let salt = B64.decode(parts[2]).expect("salt base64");
    let hash = B64.decode(parts[3]).expect("hash base64");
    assert_eq!(salt.len(), 16, "{stored}");
    assert_eq!(
        hash,
        pbkdf2(&peppered(password), &salt, iterations).to_vec(),
        "not PBKDF2 of the peppered password: {stored}"
    );
    assert_ne!(
        hash,
        pbkdf2(password.as_bytes(), &salt, iterations).to_vec(),
        "the pepper made no difference: {stored}"
    );
}

fn login(kiln: &Kiln, email: &str, password: &str) -> kiln_e2e::Resp {
    kiln.post(
        "/api/auth/login",
        None,
        json!({ "email": email, "password": password }),
    )
}

#[test]
fn new_password_hashes_are_peppered_and_salted() {
    let kiln = shared();
    let a = register(kiln, "pepper-a");
    let b = register(kiln, "pepper-b");
    let (ha, hb) = (stored_hash(kiln, &a.email), stored_hash(kiln, &b.email));
    assert!(ha.starts_with("pbkdf2-sha256-hmac$"), "{ha}");
    assert_peppered_hash_of(&ha, &a.password);
    assert_peppered_hash_of(&hb, &b.password);
    // The same password twice is two different hashes (a salt per user).
    let same = "the-same-password-for-both";
    let (c, d) = (
        kiln_e2e::unique_email("salt-c"),
        kiln_e2e::unique_email("salt-d"),
    );
    for e in [&c, &d] {
        kiln.post(
            "/api/auth/register",
            None,
            json!({ "email": e, "password": same }),
        )
        .expect(201);
    }
    let (hc, hd) = (stored_hash(kiln, &c), stored_hash(kiln, &d));
    assert_ne!(hc, hd);
    assert_peppered_hash_of(&hc, same);
    assert_peppered_hash_of(&hd, same);
}

#[test]
fn an_unpeppered_legacy_hash_signs_in_and_is_upgraded() {
    let kiln = shared();
    let user = register(kiln, "legacy");
    // The legacy hash is of another password than the one registered, so that signing in
    // with it proves the server reads the row written here.
    let legacy_password = format!("legacy-{}", user.email);
    let salt: [u8; 16] = *b"legacy-salt-0123";
    let legacy = format!(
        "pbkdf2-sha256${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(pbkdf2(legacy_password.as_bytes(), &salt, ITERATIONS))
    );
    d1(
        kiln,
        &format!(
            "UPDATE users SET password_hash = '{legacy}' WHERE email = '{}'",
            user.email
        ),
    );
    assert_eq!(stored_hash(kiln, &user.email), legacy);

    // The registered password no longer matches; the legacy one does.
    login(kiln, &user.email, &user.password).expect_error(401, "invalid_credentials");
    let ok = login(kiln, &user.email, &legacy_password);
    assert_eq!(ok.status, 200, "legacy sign-in: {}", ok.text);
    assert_eq!(ok.json()["user"]["id"], user.id.as_str());

    // Now stored peppered, and it still signs in (without being rewritten again).
    let upgraded = stored_hash(kiln, &user.email);
    assert_peppered_hash_of(&upgraded, &legacy_password);
    login(kiln, &user.email, &legacy_password).expect(200);
    assert_eq!(stored_hash(kiln, &user.email), upgraded);
}

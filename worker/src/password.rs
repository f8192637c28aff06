//! Password hashing: PBKDF2-HMAC-SHA256 through WebCrypto (native code in workerd, so the
//! 100,000 iterations cost little of the Worker's CPU budget), a 16-byte per-user salt, a
//! pepper, and a constant-time comparison.
//!
//! workerd refuses PBKDF2 above 100,000 iterations (cloudflare/workerd#1346), below OWASP's
//! 600,000 for PBKDF2-SHA256. The gap is closed by a pepper — `KILN_PASSWORD_PEPPER`, a
//! Worker secret, applied with HMAC-SHA256 before the KDF — so a copy of D1 alone cannot be
//! brute-forced, and by rate limits on guessing (`limits`). See docs/SECURITY.md.
//!
//! Stored forms: `pbkdf2-sha256-hmac$<iterations>$<salt b64>$<hash b64>` (peppered), and the
//! older `pbkdf2-sha256$…` (unpeppered), which is re-hashed at the next successful login.

use crate::error::{ApiError, ApiResult};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// workerd refuses PBKDF2 above 100,000 iterations.
const ITERATIONS: u32 = 100_000;
const PEPPERED: &str = "pbkdf2-sha256-hmac";
const LEGACY: &str = "pbkdf2-sha256";

/// The server-side secret mixed into every hash; at least 32 bytes.
pub struct Pepper(String);

impl Pepper {
    pub fn new(secret: Option<String>) -> ApiResult<Pepper> {
        match secret {
            Some(s) if s.len() >= 32 => Ok(Pepper(s)),
            _ => Err(ApiError::internal(
                "KILN_PASSWORD_PEPPER is not configured (at least 32 characters)",
            )),
        }
    }

    fn apply(&self, password: &str) -> ApiResult<Vec<u8>> {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(self.0.as_bytes())
            .map_err(|e| ApiError::internal(format!("pepper: {e}")))?;
        mac.update(password.as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

pub async fn hash(password: &str, pepper: &Pepper) -> ApiResult<String> {
    let salt = crate::random::bytes::<16>()?;
    let derived = pbkdf2(&pepper.apply(password)?, &salt, ITERATIONS).await?;
    Ok(format!(
        "{PEPPERED}${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(derived)
    ))
}

/// The outcome of checking a password.
pub struct Verified {
    pub ok: bool,
    /// The stored hash is of an older form: store `hash()` of this password instead.
    pub needs_upgrade: bool,
}

/// Checks `password` against a stored hash. With `stored = None` (unknown user) it still does
/// the full KDF work, so response time does not reveal which emails exist.
pub async fn verify(password: &str, stored: Option<&str>, pepper: &Pepper) -> ApiResult<Verified> {
    let parsed = stored.and_then(parse);
    let (peppered, iterations, salt, expected) = match parsed {
        Some(p) => p,
        None => (true, ITERATIONS, vec![0u8; 16], vec![0u8; 32]),
    };
    let input = if peppered {
        pepper.apply(password)?
    } else {
        password.as_bytes().to_vec()
    };
    let derived = pbkdf2(&input, &salt, iterations).await?;
    let same: bool = derived.ct_eq(&expected).into();
    let ok = same && stored.is_some();
    Ok(Verified {
        ok,
        needs_upgrade: ok && (!peppered || iterations < ITERATIONS),
    })
}

fn parse(stored: &str) -> Option<(bool, u32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    let peppered = match parts.next()? {
        PEPPERED => true,
        LEGACY => false,
        _ => return None,
    };
    let iterations = parts.next()?.parse().ok()?;
    let salt = B64.decode(parts.next()?).ok()?;
    let hash = B64.decode(parts.next()?).ok()?;
    Some((peppered, iterations, salt, hash))
}

async fn pbkdf2(password: &[u8], salt: &[u8], iterations: u32) -> ApiResult<Vec<u8>> {
    let subtle = subtle_crypto()?;
    let usages = js_sys::Array::of1(&JsValue::from_str("deriveBits"));
    let raw = js_sys::Uint8Array::from(password);
    let key = JsFuture::from(
        subtle
            .import_key_with_str("raw", &raw, "PBKDF2", false, &usages)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?;
    let params = web_sys::Pbkdf2Params::new_with_str(
        "PBKDF2",
        "SHA-256",
        iterations,
        &js_sys::Uint8Array::from(salt),
    );
    let bits = JsFuture::from(
        subtle
            .derive_bits_with_object(&params, &key.unchecked_into(), 256)
            .map_err(js_err)?,
    )
    .await
    .map_err(js_err)?;
    Ok(js_sys::Uint8Array::new(&bits).to_vec())
}

fn subtle_crypto() -> ApiResult<web_sys::SubtleCrypto> {
    let crypto =
        js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("crypto")).map_err(js_err)?;
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

fn js_err(e: JsValue) -> ApiError {
    ApiError::internal(format!("WebCrypto: {e:?}"))
}

//! Password hashing: PBKDF2-HMAC-SHA256 through WebCrypto (native code in workerd, so the
//! 100,000 iterations cost little of the Worker's CPU budget), a 16-byte per-user salt, and a
//! constant-time comparison.
//!
//! Stored form: `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>`, so the iteration count can
//! grow later without invalidating existing hashes.

use crate::error::{ApiError, ApiResult};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// workerd refuses PBKDF2 above 100,000 iterations; it is also OWASP's floor for SHA-256
/// when combined with a rate limit.
const ITERATIONS: u32 = 100_000;
const SCHEME: &str = "pbkdf2-sha256";

pub async fn hash(password: &str) -> ApiResult<String> {
    let salt = crate::random::bytes::<16>()?;
    let derived = pbkdf2(password.as_bytes(), &salt, ITERATIONS).await?;
    Ok(format!(
        "{SCHEME}${ITERATIONS}${}${}",
        B64.encode(salt),
        B64.encode(derived)
    ))
}

/// Checks `password` against a stored hash. With `stored = None` (unknown user) it still does
/// the full KDF work, so response time does not reveal which emails exist.
pub async fn verify(password: &str, stored: Option<&str>) -> ApiResult<bool> {
    let parsed = stored.and_then(parse);
    let (iterations, salt, expected) = match parsed {
        Some(p) => p,
        None => (ITERATIONS, vec![0u8; 16], vec![0u8; 32]),
    };
    let derived = pbkdf2(password.as_bytes(), &salt, iterations).await?;
    let same: bool = derived.ct_eq(&expected).into();
    Ok(same && stored.is_some())
}

fn parse(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    if parts.next()? != SCHEME {
        return None;
    }
    let iterations = parts.next()?.parse().ok()?;
    let salt = B64.decode(parts.next()?).ok()?;
    let hash = B64.decode(parts.next()?).ok()?;
    Some((iterations, salt, hash))
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

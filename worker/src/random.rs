//! Randomness from the platform's CSPRNG (`crypto.getRandomValues` in workerd).

use crate::error::{ApiError, ApiResult};

pub fn bytes<const N: usize>() -> ApiResult<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf).map_err(|e| ApiError::internal(format!("getrandom: {e}")))?;
    Ok(buf)
}

pub fn id<T>(make: fn([u8; 16]) -> T) -> ApiResult<T> {
    Ok(make(bytes::<16>()?))
}

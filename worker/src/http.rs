//! Request and response plumbing: bounded JSON bodies, JSON responses, cookies, query strings.

use crate::error::{ApiError, ApiResult};
use kiln_core::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::error::Category;
use worker::{Request, Response};

pub const MAX_BODY_BYTES: usize = 1024 * 1024;
pub const SESSION_COOKIE: &str = "kiln_session";

/// Reads a JSON body of at most 1 MiB into `T`. Errors name the offending field.
pub async fn read_json<T: DeserializeOwned>(req: &mut Request) -> ApiResult<T> {
    let declared = req
        .headers()
        .get("content-length")?
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    // Required, not assumed: a cross-site form or `text/plain` fetch cannot send it without
    // a CORS preflight, which Kiln never grants.
    let ct = req.headers().get("content-type")?.unwrap_or_default();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        let got = if mime.is_empty() {
            "none".to_owned()
        } else {
            mime
        };
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected content-type application/json, got {got}"),
        ));
    }
    let bytes = req.bytes().await?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    parse_json(&bytes)
}

/// Parses JSON into `T`, telling syntax errors (`invalid_json`) from shape errors
/// (`invalid_field`, naming the field path).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let invalid_json = |e: serde_json::Error| {
        ApiError::new(
            ErrorCode::InvalidJson,
            format!("body is not valid JSON: {e}"),
        )
    };
    // serde would also accept a struct written as an array; the API speaks objects only.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            ErrorCode::InvalidJson,
            "body must be a JSON object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if matches!(inner.classify(), Category::Syntax | Category::Eof) {
            return invalid_json(inner);
        }
        let inner = inner.to_string();
        // serde reports missing/unknown fields at the parent; name the field from its message.
        let field = match path.as_str() {
            "." | "" => backticked(&inner).unwrap_or("body").to_owned(),
            p => p.to_owned(),
        };
        ApiError::field(&field, strip_position(&inner))
    })?;
    de.end().map_err(invalid_json)?;
    Ok(value)
}

fn backticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// serde_json appends " at line 1 column 23": useless to an API client.
fn strip_position(msg: &str) -> &str {
    msg.find(" at line ").map_or(msg, |i| &msg[..i])
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

pub fn json<T: Serialize>(status: u16, value: &T) -> ApiResult<Response> {
    Ok(Response::from_json(value)?.with_status(status))
}

/// Like [`json`], with the keys of every object in sorted order (how `serde_json::Value`
/// writes them). The list and small answers were built with `json!` before they had types in
/// `kiln_core::api`; this keeps their bytes exactly as they were.
pub fn json_sorted<T: Serialize>(status: u16, value: &T) -> ApiResult<Response> {
    let value = serde_json::to_value(value).map_err(ApiError::internal)?;
    json(status, &value)
}

pub fn no_content() -> ApiResult<Response> {
    Ok(Response::empty()?.with_status(204))
}

pub fn session_cookie(token: &str, max_age_secs: i64) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={max_age_secs}"
    )
}

pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The value of a query parameter, percent-decoded.
pub fn query_param(req: &Request, name: &str) -> ApiResult<Option<String>> {
    let url = req.url()?;
    Ok(url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned()))
}

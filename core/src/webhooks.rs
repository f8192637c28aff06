//! Inbound webhooks that start generations: their signatures (Kiln's Stripe-style scheme and
//! GitHub's), the prompt a payload makes, and the filters that decide whether it makes one.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// A signature older (or further in the future) than this is refused.
pub const TOLERANCE_SECS: i64 = 300;
/// Largest delivery body.
pub const MAX_BODY: usize = 256 * 1024;
const MAX_TEMPLATE: usize = 4_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum HookKind {
    /// `Kiln-Signature: t=<unix>,v1=<hex hmac-sha256 of "t.<body>">`, `Kiln-Delivery`.
    #[default]
    Kiln,
    /// `X-Hub-Signature-256: sha256=<hex>`, `X-GitHub-Delivery`, `X-GitHub-Event`.
    Github,
}

impl HookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Kiln => "kiln",
            HookKind::Github => "github",
        }
    }

    pub fn parse(s: &str) -> Option<HookKind> {
        match s {
            "kiln" => Some(HookKind::Kiln),
            "github" => Some(HookKind::Github),
            _ => None,
        }
    }

    /// The headers this kind of sender uses: signature, delivery id, event type.
    pub fn headers(self) -> (&'static str, &'static str, &'static str) {
        match self {
            HookKind::Kiln => ("kiln-signature", "kiln-delivery", "kiln-event"),
            HookKind::Github => ("x-hub-signature-256", "x-github-delivery", "x-github-event"),
        }
    }
}

/// Which deliveries start a generation; every given condition must hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HookFilters {
    /// The event header (`Kiln-Event` / `X-GitHub-Event`) must be this, e.g. `issues`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub event: Option<String>,
    /// The payload's field at this JSON pointer must equal `equals`, e.g. `/action` = `opened`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub field: Option<FieldFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct FieldFilter {
    pub pointer: String,
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub equals: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    Stale,
    Future,
    Mismatch,
}

impl SignatureError {
    pub fn message(&self) -> &'static str {
        match self {
            SignatureError::Missing => "the signature header is missing",
            SignatureError::Malformed => "the signature header is malformed",
            SignatureError::Stale => "the signature is more than 5 minutes old",
            SignatureError::Future => "the signature is dated more than 5 minutes ahead",
            SignatureError::Mismatch => "the signature does not match the body",
        }
    }
}

fn mac(secret: &str) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Kiln's header for `body` at unix time `t` (for senders, tests and notifications).
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(format!("{t}.").as_bytes());
    m.update(body);
    format!("t={t},v1={}", hex(&m.finalize().into_bytes()))
}

/// Checks a `Kiln-Signature` against any of `secrets` (two while a secret is rotated), in
/// constant time per comparison, over the raw body bytes.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut sigs = vec![];
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => sigs.push(unhex(v).ok_or(SignatureError::Malformed)?),
            Some(_) => {}
            None => return Err(SignatureError::Malformed),
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now_secs - t > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    if t - now_secs > TOLERANCE_SECS {
        return Err(SignatureError::Future);
    }
    for secret in secrets {
        for sig in &sigs {
            let mut m = mac(secret);
            m.update(format!("{t}.").as_bytes());
            m.update(body);
            if m.verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// GitHub's `X-Hub-Signature-256: sha256=<hex hmac of the body>` (no timestamp: GitHub
/// signs none; the delivery id guards against replays).
pub fn verify_github(
    header: Option<&str>,
    body: &[u8],
    secrets: &[&str],
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let sig = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(unhex)
        .ok_or(SignatureError::Malformed)?;
    for secret in secrets {
        let mut m = mac(secret);
        m.update(body);
        if m.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

pub fn sign_github(secret: &str, body: &[u8]) -> String {
    let mut m = mac(secret);
    m.update(body);
    format!("sha256={}", hex(&m.finalize().into_bytes()))
}

/// A template's `{{/json/pointer}}` fields, checked when the hook is made.
pub fn validate_template(template: &str) -> Result<(), String> {
    if template.trim().is_empty() || template.len() > MAX_TEMPLATE {
        return Err(format!("must be 1 to {MAX_TEMPLATE} bytes"));
    }
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let j = after
            .find("}}")
            .ok_or_else(|| "a `{{` without its `}}`".to_owned())?;
        let pointer = after[..j].trim();
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!(
                "`{{{{{pointer}}}}}`: a field is a JSON pointer, like {{{{/issue/title}}}}"
            ));
        }
        rest = &after[j + 2..];
    }
    Ok(())
}

/// The prompt a payload makes: each `{{/pointer}}` replaced by that field (strings as they
/// are, other values as JSON). A field the payload lacks is an error naming it.
pub fn render(template: &str, payload: &Value) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(i) = rest.find("{{") {
        out += &rest[..i];
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            return Err("a `{{` without its `}}`".into());
        };
        let pointer = after[..j].trim();
        let value = payload
            .pointer(pointer)
            .filter(|v| !v.is_null())
            .ok_or_else(|| format!("the payload has no field {pointer}"))?;
        match value {
            Value::String(s) => out += s,
            other => out += &other.to_string(),
        }
        rest = &after[j + 2..];
    }
    out += rest;
    Ok(out)
}

/// Whether a delivery passes the hook's filters.
pub fn passes(filters: &HookFilters, event: Option<&str>, payload: &Value) -> bool {
    if let Some(want) = &filters.event {
        if event != Some(want.as_str()) {
            return false;
        }
    }
    if let Some(f) = &filters.field {
        if payload.pointer(&f.pointer) != Some(&f.equals) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn kiln_signatures_verify_over_the_raw_body_within_five_minutes() {
        let body = br#"{"a":1}"#;
        let h = sign("s3cret", NOW, body);
        assert_eq!(verify(Some(&h), body, &["s3cret"], NOW), Ok(()));
        assert_eq!(verify(Some(&h), body, &["s3cret"], NOW + 300), Ok(()));
        assert_eq!(
            verify(Some(&h), body, &["s3cret"], NOW + 301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&h), body, &["s3cret"], NOW - 301),
            Err(SignatureError::Future)
        );
        assert_eq!(
            verify(Some(&h), br#"{"a": 1}"#, &["s3cret"], NOW),
            Err(SignatureError::Mismatch),
            "the raw bytes, not the JSON they mean"
        );
        assert_eq!(
            verify(Some(&h), body, &["other"], NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(None, body, &["s"], NOW),
            Err(SignatureError::Missing)
        );
        for bad in ["", "t=x,v1=00", "t=1", "v1=00", "t=1,v1=zz", "junk"] {
            assert_eq!(
                verify(Some(bad), body, &["s"], NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn while_a_secret_rotates_both_sign_and_several_v1_are_tried() {
        let body = b"{}";
        let old = sign("old", NOW, body);
        let new = sign("new", NOW, body);
        assert_eq!(verify(Some(&old), body, &["new", "old"], NOW), Ok(()));
        assert_eq!(verify(Some(&new), body, &["new", "old"], NOW), Ok(()));
        // A sender signing with both during the overlap: one header, two v1.
        let both = format!("{},{}", new, old.split(',').nth(1).unwrap());
        assert_eq!(verify(Some(&both), body, &["old"], NOW), Ok(()));
        assert_eq!(verify(Some(&both), body, &["new"], NOW), Ok(()));
        assert_eq!(
            verify(Some(&old), body, &["new"], NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn github_signatures() {
        let body = br#"{"action":"opened"}"#;
        let h = sign_github("gh", body);
        assert!(h.starts_with("sha256="));
        assert_eq!(verify_github(Some(&h), body, &["gh"]), Ok(()));
        assert_eq!(
            verify_github(Some(&h), body, &["no"]),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(Some("sha1=ab"), body, &["gh"]),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn templates_take_fields_by_json_pointer() {
        let payload =
            json!({"issue": {"title": "Dark mode", "body": "Please add it", "number": 7}});
        let t = "Fix #{{/issue/number}}: {{/issue/title}}\n\n{{ /issue/body }}";
        assert_eq!(validate_template(t), Ok(()));
        assert_eq!(
            render(t, &payload).unwrap(),
            "Fix #7: Dark mode\n\nPlease add it"
        );
        assert_eq!(
            render("{{/issue/labels}}", &payload).unwrap_err(),
            "the payload has no field /issue/labels"
        );
        assert!(validate_template("{{issue.title}}").is_err());
        assert!(validate_template("{{/a").is_err());
        assert!(validate_template(" ").is_err());
    }

    #[test]
    fn filters_pick_deliveries() {
        let f = HookFilters {
            event: Some("issues".into()),
            field: Some(FieldFilter {
                pointer: "/action".into(),
                equals: json!("opened"),
            }),
        };
        let opened = json!({"action": "opened"});
        assert!(passes(&f, Some("issues"), &opened));
        assert!(!passes(&f, Some("push"), &opened));
        assert!(!passes(&f, None, &opened));
        assert!(!passes(&f, Some("issues"), &json!({"action": "closed"})));
        assert!(passes(&HookFilters::default(), None, &json!({})));
    }
}

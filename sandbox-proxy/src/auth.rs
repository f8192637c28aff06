//! Service tokens from the edge and the preview's own tokens.
//!
//! Every API call carries `Authorization: Bearer <JWT>` minted by the edge: HS256 with a
//! shared secret or EdDSA (Ed25519), claims `{project_id}` plus `exp` no more than
//! [`MAX_TOKEN_TTL_SECS`] ahead. Preview URLs carry a token this service signs itself (HS256
//! with a random per-process key), which becomes a cookie after the first hit so an iframe's
//! sub-resources load.

use crate::config::JwtKey;
use crate::error::ApiError;
use axum::http::HeaderMap;
use chrono::{Duration, Utc};
use jwt_compact::alg::{Ed25519, Hs256, Hs256Key, VerifyingKey};
use jwt_compact::prelude::*;
use jwt_compact::Algorithm;
use kiln_core::sandbox::{SandboxClaims, MAX_TOKEN_TTL_SECS};
use serde::{Deserialize, Serialize};

type EdPublicKey = <Ed25519 as Algorithm>::VerifyingKey;

pub struct Auth {
    edge: EdgeKey,
    preview_key: Hs256Key,
}

enum EdgeKey {
    Hs256(Hs256Key),
    EdDsa(EdPublicKey),
}

/// The preview token's claims; `kind` keeps a preview token from ever passing as an edge token.
#[derive(Debug, Serialize, Deserialize)]
struct PreviewClaims {
    project_id: String,
    kind: String,
}

pub const PREVIEW_TOKEN_TTL_SECS: i64 = 3600;
pub const PREVIEW_QUERY: &str = "kiln_token";

impl Auth {
    pub fn new(key: &JwtKey) -> Result<Auth, String> {
        let edge = match key {
            JwtKey::Hs256(secret) => EdgeKey::Hs256(Hs256Key::new(secret)),
            JwtKey::EdDsa(raw) => EdgeKey::EdDsa(
                <EdPublicKey as VerifyingKey<Ed25519>>::from_slice(raw)
                    .map_err(|e| format!("bad Ed25519 key: {e}"))?,
            ),
        };
        let mut random = [0u8; 32];
        crate::random_bytes(&mut random).map_err(|e| e.to_string())?;
        Ok(Auth {
            edge,
            preview_key: Hs256Key::new(random),
        })
    }

    /// The project the bearer token is for; 401 if missing, forged, expired or too long-lived.
    pub fn project_of(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        self.claims(headers).map(|c| c.project_id)
    }

    /// The verified claims of the bearer token (project, and org if the edge names one); 401
    /// if missing, forged, expired or too long-lived.
    pub fn claims(&self, headers: &HeaderMap) -> Result<SandboxClaims, ApiError> {
        let raw = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = UntrustedToken::new(raw.trim())
            .map_err(|_| ApiError::unauthorized("malformed token"))?;
        let token: Token<SandboxClaims> = match &self.edge {
            EdgeKey::Hs256(k) => Hs256.validator(k).validate(&token),
            EdgeKey::EdDsa(k) => Ed25519.validator(k).validate(&token),
        }
        .map_err(|_| ApiError::unauthorized("invalid token signature"))?;
        let claims = token.claims();
        let opts = TimeOptions::from_leeway(Duration::seconds(5));
        claims
            .validate_expiration(&opts)
            .map_err(|_| ApiError::unauthorized("token expired or without exp"))?;
        let exp = claims.expiration.unwrap_or_else(Utc::now);
        if exp > Utc::now() + Duration::seconds(MAX_TOKEN_TTL_SECS + 5) {
            return Err(ApiError::unauthorized("token lives longer than 5 minutes"));
        }
        Ok(claims.custom.clone())
    }

    /// Like [`Auth::claims`], and the token must be for `project_id` (403 otherwise). The
    /// claims say which org the project belongs to (the per-org sandbox cap).
    pub fn require(
        &self,
        headers: &HeaderMap,
        project_id: &str,
    ) -> Result<SandboxClaims, ApiError> {
        let c = self.claims(headers)?;
        if c.project_id != project_id {
            return Err(ApiError::forbidden("token is for another project"));
        }
        Ok(c)
    }

    pub fn preview_token(&self, project_id: &str) -> String {
        let claims = Claims::new(PreviewClaims {
            project_id: project_id.to_owned(),
            kind: "preview".into(),
        })
        .set_duration(
            &TimeOptions::default(),
            Duration::seconds(PREVIEW_TOKEN_TTL_SECS),
        );
        Hs256
            .token(&Header::empty(), &claims, &self.preview_key)
            .unwrap_or_default()
    }

    pub fn check_preview_token(&self, raw: &str, project_id: &str) -> bool {
        let Ok(token) = UntrustedToken::new(raw) else {
            return false;
        };
        let Ok(token) = Hs256
            .validator::<PreviewClaims>(&self.preview_key)
            .validate(&token)
        else {
            return false;
        };
        let c = token.claims();
        c.validate_expiration(&TimeOptions::default()).is_ok()
            && c.custom.kind == "preview"
            && c.custom.project_id == project_id
    }
}

pub fn preview_cookie_name(project_id: &str) -> String {
    format!("kiln_preview_{project_id}")
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn bearer(t: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    fn mint(secret: &[u8], project: &str, secs: i64) -> String {
        let claims = Claims::new(SandboxClaims {
            project_id: project.into(),
            org_id: None,
        })
        .set_duration(&TimeOptions::default(), Duration::seconds(secs));
        Hs256
            .token(&Header::empty(), &claims, &Hs256Key::new(secret))
            .unwrap()
    }

    #[test]
    fn edge_tokens_are_checked_for_key_expiry_lifetime_and_project() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let auth = Auth::new(&JwtKey::Hs256(secret.clone())).unwrap();
        let ok = mint(&secret, "p1", 60);
        assert_eq!(auth.project_of(&bearer(&ok)).unwrap(), "p1");
        assert!(auth.require(&bearer(&ok), "p1").is_ok());
        assert_eq!(
            auth.require(&bearer(&ok), "p2").unwrap_err().code,
            kiln_core::ErrorCode::Forbidden
        );
        for bad in [
            mint(b"another-secret-another-secret-xx", "p1", 60),
            mint(&secret, "p1", -60),
            mint(&secret, "p1", 3600),
            "garbage".to_owned(),
        ] {
            let e = auth.project_of(&bearer(&bad)).unwrap_err();
            assert_eq!(e.code, kiln_core::ErrorCode::Unauthorized, "{bad}");
        }
        assert!(auth.project_of(&HeaderMap::new()).is_err());
    }

    #[test]
    fn eddsa_tokens_verify_with_the_public_key() {
        let kp = jwt_compact::alg::Ed25519::generate(&mut FixedRng(7));
        let auth = Auth::new(&JwtKey::EdDsa(kp.1.as_ref().to_vec())).unwrap();
        let claims = Claims::new(SandboxClaims {
            project_id: "p1".into(),
            org_id: None,
        })
        .set_duration(&TimeOptions::default(), Duration::seconds(60));
        let t = Ed25519.token(&Header::empty(), &claims, &kp.0).unwrap();
        assert_eq!(auth.project_of(&bearer(&t)).unwrap(), "p1");
    }

    #[test]
    fn preview_tokens_are_bound_to_their_project_and_not_edge_tokens() {
        let auth = Auth::new(&JwtKey::Hs256(vec![7; 32])).unwrap();
        let t = auth.preview_token("p1");
        assert!(auth.check_preview_token(&t, "p1"));
        assert!(!auth.check_preview_token(&t, "p2"));
        assert!(auth.project_of(&bearer(&t)).is_err());
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; kiln_preview_p1=xyz"),
        );
        assert_eq!(cookie(&h, "kiln_preview_p1"), Some("xyz"));
    }

    /// Deterministic bytes for key generation in tests.
    struct FixedRng(u8);
    impl rand_core::RngCore for FixedRng {
        fn next_u32(&mut self) -> u32 {
            self.0 as u32
        }
        fn next_u64(&mut self) -> u64 {
            self.0 as u64
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for (i, b) in dest.iter_mut().enumerate() {
                *b = self.0.wrapping_add(i as u8);
            }
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }
    impl rand_core::CryptoRng for FixedRng {}
}

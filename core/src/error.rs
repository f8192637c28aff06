//! Error codes of the public API. Every error leaves the system as
//! `{"error":{"code":"…","message":"…"}}` with the status given here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum ErrorCode {
    /// The body is not JSON at all.
    InvalidJson,
    /// JSON, but a field is missing, has the wrong type or an invalid value.
    InvalidField,
    /// A query parameter or path segment is invalid.
    InvalidParameter,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unauthorized,
    InvalidCredentials,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    AlreadyMember,
    LastOwner,
    Conflict,
    /// A path failed `ProjectPath` validation.
    InvalidPath,
    /// `If-Match`/`base_rev` is not the file's current rev.
    RevMismatch,
    /// Overwriting an existing file needs `If-Match`.
    PreconditionRequired,
    AlreadyExists,
    FileTooLarge,
    TooManyFiles,
    ProjectTooLarge,
    /// A WebSocket endpoint was called without `Upgrade: websocket`.
    UpgradeRequired,
    /// Too many attempts (logins, sign-ups, tokens) in a window; `Retry-After` says when.
    RateLimited,
    /// A per-org or per-project cap (concurrent generations, queued prompts) is reached.
    QuotaExceeded,
    /// A sandbox's writable layer is full.
    DiskQuotaExceeded,
    /// The org's credit is spent and the configured model has a price.
    PaymentRequired,
    /// A cross-site request (foreign `Origin` / `Sec-Fetch-Site`) to a cookie-authenticated route.
    CrossSiteRequest,
    /// A webhook delivery's signature is missing, malformed, stale or wrong.
    InvalidSignature,
    /// A webhook payload lacks a field its prompt template uses.
    MissingField,
    /// A WebSocket frame that is not a client message (or not text, or out of bounds).
    InvalidMessage,
    /// A WebSocket message before `hello`.
    HelloRequired,
    /// The stored generation has a shape this Kiln cannot read; it was marked failed.
    GenerationUnreadable,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            InvalidJson | InvalidField | InvalidParameter | InvalidPath | InvalidMessage
            | HelloRequired => 400,
            Unauthorized | InvalidCredentials | InvalidSignature => 401,
            Forbidden | CrossSiteRequest => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            EmailTaken | AlreadyMember | LastOwner | Conflict | AlreadyExists | TooManyFiles => 409,
            RevMismatch => 412,
            PayloadTooLarge | FileTooLarge | ProjectTooLarge => 413,
            PreconditionRequired => 428,
            UpgradeRequired => 426,
            UnsupportedMediaType => 415,
            MissingField => 422,
            PaymentRequired => 402,
            RateLimited | QuotaExceeded => 429,
            DiskQuotaExceeded => 507,
            Internal | GenerationUnreadable => 500,
            Unavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            InvalidField => "invalid_field",
            InvalidParameter => "invalid_parameter",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            Unauthorized => "unauthorized",
            InvalidCredentials => "invalid_credentials",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            EmailTaken => "email_taken",
            AlreadyMember => "already_member",
            LastOwner => "last_owner",
            Conflict => "conflict",
            InvalidPath => "invalid_path",
            RevMismatch => "rev_mismatch",
            PreconditionRequired => "precondition_required",
            AlreadyExists => "already_exists",
            FileTooLarge => "file_too_large",
            TooManyFiles => "too_many_files",
            ProjectTooLarge => "project_too_large",
            UpgradeRequired => "upgrade_required",
            RateLimited => "rate_limited",
            QuotaExceeded => "quota_exceeded",
            DiskQuotaExceeded => "disk_quota_exceeded",
            PaymentRequired => "payment_required",
            CrossSiteRequest => "cross_site_request",
            InvalidSignature => "invalid_signature",
            MissingField => "missing_field",
            InvalidMessage => "invalid_message",
            HelloRequired => "hello_required",
            GenerationUnreadable => "generation_unreadable",
            Internal => "internal",
            Unavailable => "unavailable",
        }
    }
}

/// The JSON body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// The offending field, for `invalid_field` errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub field: Option<String>,
    /// The file's rev now, for `rev_mismatch` (412) from the files API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub current_rev: Option<u64>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                field: None,
                current_rev: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_name_matches_as_str_for_every_code() {
        use ErrorCode::*;
        for code in [
            InvalidJson,
            InvalidField,
            InvalidParameter,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unauthorized,
            InvalidCredentials,
            Forbidden,
            NotFound,
            MethodNotAllowed,
            EmailTaken,
            AlreadyMember,
            LastOwner,
            Conflict,
            InvalidPath,
            RevMismatch,
            PreconditionRequired,
            AlreadyExists,
            FileTooLarge,
            TooManyFiles,
            ProjectTooLarge,
            UpgradeRequired,
            RateLimited,
            QuotaExceeded,
            DiskQuotaExceeded,
            CrossSiteRequest,
            Internal,
            Unavailable,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.status()));
        }
    }

    #[test]
    fn error_body_has_the_documented_shape() {
        let body = ErrorBody::new(ErrorCode::NotFound, "no such project");
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": {"code": "not_found", "message": "no such project"}})
        );
    }
}

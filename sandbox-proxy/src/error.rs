//! One error type for the whole API; every failure becomes `{"error":{"code","message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kiln_core::error::ErrorBody;
use kiln_core::ErrorCode;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, m)
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidField, m)
    }
    pub fn invalid_path(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidPath, m)
    }
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, m)
    }
    /// The project's disk image is full (see `disk.rs`): 507, since the request may be
    /// small and fine; it is the project's storage that has no room.
    pub fn disk_quota_exceeded(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::DiskQuotaExceeded, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, m)
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.code == ErrorCode::Internal {
            eprintln!("sandbox-proxy: internal error: {}", self.message);
        }
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

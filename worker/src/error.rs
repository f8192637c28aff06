//! `ApiError`: the one error type of the API. Every handler returns it, and it becomes
//! `{"error":{"code","message"}}` with the right status in exactly one place.

use kiln_core::error::{ErrorBody, ErrorCode};
use worker::Response;

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Seconds for `Retry-After` (429s).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn field(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError {
            code: ErrorCode::InvalidField,
            message: format!("{field}: {message}"),
            field: Some(field.to_owned()),
            retry_after: None,
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }

    /// An unexpected failure of the platform. The detail goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        worker::console_error!("internal error: {detail}");
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.code, self.message);
        body.error.field = self.field;
        let json = serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"internal error"}}"#.to_owned()
        });
        let resp = Response::ok(json)
            .map(|r| r.with_status(self.code.status()))
            .unwrap_or_else(|_| Response::empty().expect("empty response").with_status(500));
        let mut resp = resp;
        let _ = resp
            .headers_mut()
            .set("content-type", "application/json; charset=utf-8");
        if let Some(secs) = self.retry_after {
            let _ = resp.headers_mut().set("retry-after", &secs.to_string());
        }
        resp
    }
}

impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::internal(e)
    }
}

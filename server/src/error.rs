//! The one error type HTTP handlers return. Every error body is
//! `{"error": {"code": "...", "message": "..."}}` with a stable machine-readable `code`;
//! 5xx answers never carry internal detail (it goes to the log instead).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use switchboard_core::StoreError;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unprocessable(String),
    /// A document (e.g. an auto-responder flow) with problems at these paths.
    #[error("{message}")]
    InvalidDocument { code: &'static str, message: String, errors: Vec<ErrorItem> },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    InvalidCredentials(&'static str),
    /// A webhook whose signature (or secret token) does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A signed request whose signed timestamp is outside the replay window
    /// (`security.webhook_max_age_secs`): a replay, or a badly wrong clock.
    #[error("the request's signed timestamp is too old (or too far in the future)")]
    StaleRequest,
    #[error("not allowed")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    /// Too many failed attempts; retry after this many seconds.
    #[error("too many failed attempts; try again later")]
    TooManyAttempts(u64),
    #[error("unsupported media type: send application/json")]
    UnsupportedMediaType,
    /// An upload of a type the media store refuses (`refused_media_type`, 415).
    #[error("{0}")]
    RefusedMedia(String),
    #[error("service unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `malformed_json`, `invalid_body`, `invalid_flow`, `invalid_path`,
    /// `invalid_query`, `unauthorized`, `invalid_credentials`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `unsupported_media_type`,
    /// `unavailable`, `internal`.
    pub code: String,
    pub message: String,
    /// For `invalid_flow`: every problem found, with its path in the submitted document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ErrorItem>>,
}

/// One problem in a submitted document: `path` is like `steps[3].options[1].next` (empty for
/// the document as a whole, e.g. a JSON syntax error).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorItem {
    pub path: String,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn bad_signature() -> Self {
        ApiError::BadSignature
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            ApiError::InvalidDocument { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidCredentials(_) => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::BadSignature => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            ApiError::StaleRequest => (StatusCode::UNAUTHORIZED, "stale_request"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::RefusedMedia(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "refused_media_type"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::InvalidState(m) => ApiError::Conflict(m),
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error".to_string()
            }
            ApiError::Unavailable(detail) => {
                tracing::warn!(%detail, "dependency unavailable");
                "service unavailable, retry later".to_string()
            }
            other => other.to_string(),
        };
        let errors = match &self {
            ApiError::InvalidDocument { errors, .. } => Some(errors.clone()),
            _ => None,
        };
        let mut response =
            (status, Json(ErrorBody { error: ErrorDetail { code: code.to_string(), message, errors } })).into_response();
        if let ApiError::TooManyAttempts(secs) = &self {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

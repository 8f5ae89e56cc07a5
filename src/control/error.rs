//! The control port's errors: every one is JSON `{"error": "<human reason>", "code": <status>}`
//! with the matching HTTP status.
//!
//! | status | when |
//! | --- | --- |
//! | 400 | malformed JSON, a missing or wrong-typed field, a bad query or path; plain HTTP on the HTTPS port (`https.rs`) |
//! | 401 | missing, malformed or wrong `Authorization: Bearer <secret>` (with `WWW-Authenticate`) |
//! | 404 | unknown apikey, client not online, unknown path |
//! | 405 | a known path with the wrong method (with `Allow`) |
//! | 408 | the request took longer than [`REQUEST_TIMEOUT`](super::REQUEST_TIMEOUT) |
//! | 413 | a body over `control.max_body_bytes` |
//! | 415 | a POST whose `Content-Type` is not `application/json` |
//! | 429 | the app's `push_rate_per_sec` is exceeded (with `Retry-After`) |

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::push::Refusal;

/// An error answer: a status, a human reason, and at most one extra header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    header: Option<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), header: None }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 401 with `WWW-Authenticate: Bearer` (RFC 6750), as a client needs to know the scheme.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
            .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// The push service's refusal, with its status, its message and detail, and the header its
    /// status needs (`WWW-Authenticate` for 401, `Retry-After` in whole seconds, rounded up, for
    /// 429).
    pub fn from_refusal(refusal: Refusal) -> ApiError {
        let status =
            StatusCode::from_u16(refusal.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = refusal.full_message();
        match (status, refusal.retry_after) {
            (StatusCode::UNAUTHORIZED, _) => ApiError::unauthorized(message),
            (_, Some(after)) => {
                let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
                ApiError::new(status, message)
                    .with_header(header::RETRY_AFTER, HeaderValue::from(secs))
            }
            _ => ApiError::new(status, message),
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> ApiError {
        self.header = Some((name, value));
        self
    }

    /// A body that could not be read: too large (413) or cut off (400).
    pub fn from_body(rejection: BytesRejection) -> ApiError {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the request body is too large")
            }
            _ => ApiError::bad_request(format!("the request body could not be read: {rejection}")),
        }
    }

    pub fn from_path(rejection: PathRejection) -> ApiError {
        ApiError::bad_request(format!("bad path: {}", rejection.body_text()))
    }

    pub fn from_query(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(format!("bad query: {}", rejection.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.message, "code": self.status.as_u16() });
        let mut response = (self.status, Json(body)).into_response();
        if let Some((name, value)) = self.header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

/// The fallback for a known path called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed on this path")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_json_with_the_status_as_code() {
        let refusal = Refusal {
            retry_after: Some(std::time::Duration::from_millis(300)),
            ..Refusal::new(429, "push rate exceeded")
        };
        let response = ApiError::from_refusal(refusal).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let missing = Refusal::new(404, "no such client").with_detail("\"bob\" is not online");
        let error = ApiError::from_refusal(missing);
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert_eq!(error.message, "no such client: \"bob\" is not online");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let response = ApiError::from_refusal(Refusal::new(401, "wrong secret")).into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }
}

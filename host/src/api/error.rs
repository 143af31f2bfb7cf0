//! API errors: `{"error": {"code", "message", "details"}}` with the status
//! that fits, for host errors and for requests axum refuses before a
//! handler runs (malformed JSON, unknown fields, oversized bodies).

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::host::HostError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    /// Seconds to send as `Retry-After` (small, so the error stays small).
    retry_after: Option<std::num::NonZeroU16>,
}

/// The JSON shape of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `unknown_event`.
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
    /// More about it (which field, which hooks); `null` when nothing more.
    #[schema(value_type = Option<Object>)]
    pub details: Value,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
        }
    }

    /// Attach details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 401: no valid token.
    pub fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 400 for a request that is malformed in a way the handler found.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.get().into());
        }
        response
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        let status = match &e {
            HostError::Invalid(_)
            | HostError::UnknownEvent(_)
            | HostError::InvalidHook(_)
            | HostError::InvalidPlugin(_)
            | HostError::WrongWorld(_) => StatusCode::BAD_REQUEST,
            HostError::NotFound { .. } => StatusCode::NOT_FOUND,
            HostError::Conflict(_) => StatusCode::CONFLICT,
            HostError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            HostError::Unsigned(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // The cause stays in the log, found by the id the caller quotes;
            // the answer says nothing of the host's insides.
            let id = crate::store::new_id("err");
            tracing::error!(correlation_id = %id, error = %e, "request failed");
            return ApiError::new(
                status,
                "internal",
                format!("the server failed to answer; quote {id} when reporting it"),
            )
            .with_details(serde_json::json!({ "correlation_id": id }));
        }
        let details = match &e {
            HostError::NotFound { kind, id } => serde_json::json!({"kind": kind, "id": id}),
            HostError::UnknownEvent(crate::event::EventError::Unknown {
                name,
                suggestion: Some(s),
            }) => serde_json::json!({"event": name, "did_you_mean": s}),
            _ => Value::Null,
        };
        let mut error = ApiError::new(status, e.code(), e.to_string()).with_details(details);
        if matches!(e, HostError::Busy(_)) {
            error.retry_after = std::num::NonZeroU16::new(1);
        }
        error
    }
}

/// The status and code of a body that could not be read.
fn body_error(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(status, "payload_too_large", text)
    } else {
        ApiError::new(status, "invalid_body", text)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let code = match &rejection {
            // A body that is JSON but not of the request's shape is the
            // same mistake as any other invalid field: 400 everywhere.
            JsonRejection::JsonDataError(_) => {
                return ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    rejection.body_text(),
                )
            }
            JsonRejection::JsonSyntaxError(_) => "malformed_json",
            JsonRejection::MissingJsonContentType(_) => "unsupported_media_type",
            _ => return body_error(status, rejection.body_text()),
        };
        ApiError::new(status, code, rejection.body_text())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        body_error(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            rejection.body_text(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_internal_error_answers_generically_with_a_correlation_id() {
        let error = HostError::Store(crate::store::StoreError::Database(
            "relation \"deliveries\" is corrupt at page 7".into(),
        ));
        let response = ApiError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert!(!message.contains("corrupt"), "no internals: {message}");
        let id = body["error"]["details"]["correlation_id"].as_str().unwrap();
        assert!(message.contains(id), "{message}");
        assert_eq!(body["error"]["code"], "internal");
    }

    #[test]
    fn a_busy_store_is_a_503_with_retry_after() {
        let response = ApiError::from(HostError::Busy("the store is busy".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
    }
}

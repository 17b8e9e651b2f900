//! The API's error type and its JSON form:
//! `{"errors":[{"code":"…","message":"…","detail":…}]}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

/// An error answered to an HTTP client. `message` is written for people,
/// `code` for programs, `detail` carries the specifics (role, versions).
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub detail: Value,
    /// Seconds for a `Retry-After` header (a busy server's 503).
    pub retry_after: Option<u64>,
    /// The `WWW-Authenticate` value of a 401 (where to get a token).
    pub challenge: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            detail: Value::Null,
            retry_after: None,
            challenge: None,
        }
    }

    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 400 about one role's metadata.
    pub fn invalid_role(code: &'static str, role: &str, message: impl Into<String>) -> Self {
        Self::bad_request(code, message).with_detail(json!({ "role": role }))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// A lost race or stale upload: the client should re-fetch and retry.
    pub fn conflict(role: &str, current_version: u64, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
            .with_detail(json!({ "role": role, "current_version": current_version }))
    }

    /// The answer to a write to a transparent mirror (only its upstream
    /// changes it).
    pub fn mirrored(gun: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "MIRRORED",
            format!("{gun} is a mirror of an upstream repository here; change it upstream"),
        )
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "DENIED", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = self
                .challenge
                .as_deref()
                .unwrap_or("Bearer realm=\"tagtrust\"");
            builder.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(secs) = self.retry_after {
            builder.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        builder.json(json!({
            "errors": [{
                "code": self.code,
                "message": self.message,
                "detail": self.detail,
            }]
        }))
    }
}

impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> Self {
        use crate::storage::StorageError;
        match &e {
            StorageError::Unavailable(_) => {
                tracing::error!(error = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "the database is unavailable; retry later",
                )
            }
            StorageError::Database(_) | StorageError::Corrupt(_) => {
                tracing::error!(error = %e, "storage error");
                Self::internal("internal storage error")
            }
        }
    }
}

impl From<crate::publish::Refusal> for ApiError {
    fn from(refusal: crate::publish::Refusal) -> Self {
        use crate::publish::{Check, Refusal};
        let message = refusal.to_string();
        match refusal {
            Refusal::Conflict {
                role,
                current_version,
                ..
            } => Self::conflict(&role, current_version, message),
            Refusal::NoFiles => Self::bad_request("NO_FILES", message),
            Refusal::Invalid { role, check, .. } => {
                let detail = match &check {
                    Check::Version { current, uploaded } => {
                        json!({ "role": role, "current_version": current, "uploaded_version": uploaded })
                    }
                    Check::AmbiguousDelegation {
                        delegated,
                        delegators,
                    } => json!({ "role": role, "delegated": delegated, "delegators": delegators }),
                    Check::PathNotDelegated { target }
                    | Check::TargetName { target }
                    | Check::InvalidTarget { target }
                    | Check::TagClaimed { target }
                    | Check::DuplicateTag { target }
                    | Check::UnknownTag { target } => {
                        json!({ "role": role, "target": target })
                    }
                    Check::DuplicateKey { key_ids } => json!({ "role": role, "key_ids": key_ids }),
                    Check::TooManyChanges { limit } => json!({ "role": role, "limit": limit }),
                    _ => json!({ "role": role }),
                };
                // Its publisher signs the bins: the request is fine, the
                // repository is not in the state it needs.
                let status = match check {
                    Check::NotServerHeld => actix_web::http::StatusCode::CONFLICT,
                    _ => actix_web::http::StatusCode::BAD_REQUEST,
                };
                Self::new(status, check.code(), message).with_detail(detail)
            }
        }
    }
}

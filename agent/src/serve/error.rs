//! The API's one error shape: `{"error": "one line"}` with a status code
//! that says whose fault it is (4xx the request's, 5xx the server's), so a
//! remote `halo` can map it back to the exit codes a local one would give.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

/// An error answered to an API client: `{"error": message, "kind": ...,
/// ...extra}`. `kind` names the class for a client that maps it back to a
/// store error (`stale`, `unknown-channel`, `busy`...).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// More fields of the body (`kind`, and e.g. `channel`, `expected`,
    /// `actual` of a lost compare-and-swap).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }

    /// The same error with one more field in its body.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// The `kind` field.
    pub fn kind(self, kind: &str) -> Self {
        self.with("kind", kind)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), "{}", self.message);
        }
        // One line, as every error halo shows: a client prints it as is.
        let message = crate::redact::redact_urls(&self.message).replace('\n', " ");
        let mut body = self.extra;
        body.insert("error".into(), message.into());
        if !body.contains_key("kind") {
            body.insert("kind".into(), default_kind(self.status).into());
        }
        (self.status, Json(serde_json::Value::Object(body))).into_response()
    }
}

/// The `kind` of an error whose handler named none.
fn default_kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::SERVICE_UNAVAILABLE => "busy",
        _ if status.is_client_error() => "bad-request",
        _ => "internal",
    }
}

/// Store errors keep their class: bad input 400, unknown names 404, a lost
/// compare-and-swap or a held lease 409, a busy store 503 (retry), damage
/// and I/O 500.
impl From<repofs::Error> for ApiError {
    fn from(e: repofs::Error) -> Self {
        use repofs::model::channel::PromoteError;
        use repofs::Error as E;
        let message = e.to_string();
        let kind = match &e {
            E::UnknownSnapshot(_) | E::NoSnapshots => Some("unknown-snapshot"),
            E::UnknownChannel(_) => Some("unknown-channel"),
            E::EmptyChannel(_) => Some("empty-channel"),
            E::Busy(_) => Some("busy"),
            E::Promote(PromoteError::Stale { .. }) => Some("stale"),
            _ => None,
        };
        let status = match &e {
            E::UnknownSnapshot(_) | E::UnknownChannel(_) | E::EmptyChannel(_) | E::NoSnapshots => {
                StatusCode::NOT_FOUND
            }
            E::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Promote(PromoteError::Stale { .. }) | E::ArchiveChanged { .. } => {
                StatusCode::CONFLICT
            }
            E::Gate(_) if !e.is_user_error() => StatusCode::CONFLICT,
            _ if e.is_user_error() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut err = Self::new(status, message);
        if let Some(kind) = kind {
            err = err.kind(kind);
        }
        if let E::Promote(PromoteError::Stale {
            channel,
            expected,
            actual,
        }) = &e
        {
            err = err
                .with("channel", channel.as_str())
                .with("expected", expected.as_str())
                .with("actual", actual.clone());
        }
        err
    }
}

/// A workflow's anyhow chain: its exit code decides the class (1 the
/// request's fault, 75 busy, else the server's), the chain is the message.
impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        let status = match crate::workflow::exit::exit_code(&e) {
            1 => StatusCode::BAD_REQUEST,
            crate::workflow::exit::EXIT_BUSY => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, format!("{e:#}"))
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_class() {
        let e: ApiError = repofs::Error::UnknownChannel("x".into()).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e: ApiError = repofs::Error::Usage("bad".into()).into();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e: ApiError = repofs::Error::Busy(std::time::Duration::from_secs(1)).into();
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        let e: ApiError = repofs::Error::Io(std::io::Error::other("disk")).into();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}

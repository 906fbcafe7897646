//! The write half of the API: upload and import, snapshot, channel move
//! with compare-and-swap, the testing lease and verdicts, build records,
//! and the reads remote mode needs beside hs's read API (`halo --server URL …`,
//! `crate::repository::Remote`). Its contract with remote mode has one
//! owner; the JSON on both ends is `crate::repository::wire`.
//!
//! Every write runs the store's own operation (its writer lock, its
//! compare-and-swap, its acceptance gate), so a local `halo` and the server
//! on one store are safe together. Each handler authenticates first
//! ([`Caller`], before the body is read), then needs `writer`; moving a
//! gated (stable) channel, or forcing anything, needs `stable`.
//!
//! Errors are [`WriteError`]: hs's `{"error"}` shape plus `kind`, `user`
//! and, for a lost compare-and-swap, the channel's actual target, so the
//! client rebuilds the store's own error.

mod batch;
mod reads;
mod steps;
mod uploads;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::repository::wire::ErrorBody;
use crate::serve::auth::Caller;
use crate::serve::error::ApiError;
use crate::serve::state::AppState;
use crate::serve::tokens::Role;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/channels/{name}/move", post(steps::move_channel))
        .route("/snapshots", post(steps::create_snapshot))
        .route("/snapshots/{id}/files", get(reads::snapshot_files))
        .route("/builds", post(steps::record_build))
        .route("/verdicts/{channel}/{snapshot}", get(reads::verdict))
        .route("/keyring", get(reads::keyring))
        .route(
            "/leases/{channel}",
            post(steps::take_lease)
                .put(steps::renew_lease)
                .delete(steps::release_lease),
        )
        .route("/runs/events", post(steps::record_run_event))
        .route("/runs/reports", post(steps::save_run_report))
        .route("/uploads", post(uploads::create))
        .route(
            "/uploads/{id}",
            put(batch::receive)
                .layer(DefaultBodyLimit::disable())
                .delete(uploads::discard),
        )
        .route(
            "/uploads/{id}/{name}",
            put(uploads::receive).layer(DefaultBodyLimit::disable()),
        )
        .route("/uploads/{id}/import", post(uploads::import))
}

/// An error answer of this module.
#[derive(Debug)]
pub struct WriteError {
    status: StatusCode,
    /// Boxed: every handler's `Result` carries it.
    body: Box<ErrorBody>,
}

impl WriteError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: message.into(),
                user: Some(status.is_client_error()),
                ..ErrorBody::default()
            }),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<ApiError> for WriteError {
    fn from(e: ApiError) -> Self {
        let mut w = Self::new(e.status, e.message);
        w.body.user = Some(
            e.status.is_client_error()
                && !matches!(
                    e.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::CONFLICT
                ),
        );
        w
    }
}

/// The store's error, its class kept (hs's mapping of status codes), and
/// what the client needs to rebuild it.
impl From<repofs::Error> for WriteError {
    fn from(e: repofs::Error) -> Self {
        use repofs::model::PromoteError;
        let user = e.is_user_error();
        let kind = match &e {
            repofs::Error::Promote(PromoteError::Stale { .. }) => "stale",
            repofs::Error::UnknownChannel(_) => "unknown-channel",
            repofs::Error::UnknownSnapshot(_) => "unknown-snapshot",
            repofs::Error::Busy(_) => "busy",
            repofs::Error::Gate(_) => "gate",
            _ if user => "bad-request",
            _ => "internal",
        };
        let stale = match &e {
            repofs::Error::Promote(PromoteError::Stale {
                channel,
                expected,
                actual,
            }) => Some((channel.clone(), expected.clone(), actual.clone())),
            _ => None,
        };
        let api = ApiError::from(e);
        let mut w = Self::new(api.status, api.message);
        w.body.kind = Some(kind.to_string());
        w.body.user = Some(user);
        if let Some((channel, expected, actual)) = stale {
            w.body.channel = Some(channel);
            w.body.expected = Some(expected);
            w.body.actual = actual;
        }
        w
    }
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        repofs::Error::Io(e).into()
    }
}

impl IntoResponse for WriteError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), "{}", self.body.error);
        }
        let mut body = self.body;
        // One line, no secret: a client prints it as is.
        body.error = crate::redact::redact_urls(&body.error).replace('\n', " ");
        (self.status, Json(*body)).into_response()
    }
}

pub type WriteResult<T> = Result<T, WriteError>;

/// Runs blocking store work off the async workers.
async fn blocking<T, F>(f: F) -> WriteResult<T>
where
    F: FnOnce() -> WriteResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| WriteError::internal(format!("request task failed: {e}")))?
}

/// A JSON body, refused as a JSON error (axum's own rejection is text).
fn parse<T: DeserializeOwned>(body: &[u8]) -> WriteResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| WriteError::bad_request(format!("bad request body: {e}")))
}

/// A path segment that names something in the store.
fn segment(what: &'static str, name: &str) -> WriteResult<()> {
    repofs::debian::name::check_segment(what, name)
        .map_err(|e| WriteError::bad_request(e.to_string()))
}

/// The caller may do what needs `role`.
fn require(caller: &Caller, role: Role) -> WriteResult<()> {
    caller.require(role).map_err(WriteError::from)
}

/// Who did it, for histories and records: the token, and who the agent
/// said it was.
fn who(caller: &Caller, client: Option<&str>) -> String {
    match client.map(str::trim).filter(|c| !c.is_empty()) {
        Some(c) => format!("{} ({c})", caller.who()),
        None => caller.who(),
    }
}

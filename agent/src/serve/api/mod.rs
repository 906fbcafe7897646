//! The JSON API under `/api/v1` (docs/api.md): conventions in one place.
//!
//! - Reads need no token; every write takes an auth extractor
//!   ([`super::auth::Writer`], [`super::auth::Stable`],
//!   [`super::auth::Admin`]) as its first argument.
//! - Errors are [`super::error::ApiError`]: `{"error": "..."}` with a
//!   status code that says whose fault.
//! - Store work runs in [`super::state::blocking`].
//!
//! Each area is its own module with its own `routes()`, merged here.

pub mod read;
pub mod tokens;
pub mod write;

use axum::Router;

use super::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(read::routes())
        .merge(tokens::routes())
        // ---- write half (upload/import, snapshot, channel move, lease,
        // verdict, build records): hr's module, merged here. Add routes in
        // `write::routes()`; this line stays as it is.
        .merge(write::routes())
        .fallback(not_found)
}

async fn not_found(uri: axum::http::Uri) -> super::error::ApiError {
    super::error::ApiError::not_found(format!("no API route {}", uri.path()))
}

//! The pipeline page: one HTML file embedded in the binary (no build step
//! anywhere), which polls the read API and redraws itself.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::state::AppState;

const PAGE: &str = include_str!("page.html");

pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

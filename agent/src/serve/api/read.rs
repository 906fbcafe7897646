//! The read API: what the page and remote agents show. No token needed.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::serve::error::ApiResult;
use crate::serve::state::{blocking, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/channels", get(channels))
}

#[derive(Debug, Serialize)]
pub struct ChannelInfo {
    pub name: String,
    pub snapshot: Option<String>,
}

async fn channels(State(state): State<AppState>) -> ApiResult<Json<Vec<ChannelInfo>>> {
    let store = state.store.clone();
    blocking(move || {
        Ok(Json(
            store
                .list_channels()?
                .into_iter()
                .map(|(name, p)| ChannelInfo {
                    name,
                    snapshot: p.snapshot,
                })
                .collect(),
        ))
    })
    .await
}

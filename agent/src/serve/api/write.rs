//! The write half of the API: upload and import, snapshot, channel move
//! with compare-and-swap, the testing lease and verdicts, build records.
//! Its contract with remote mode (`halo --server URL …`) has one owner:
//! the routes are added here, each taking the auth extractor its
//! operation needs (`Writer`, or `Stable` to move a stable channel or
//! force).

use axum::Router;

use crate::serve::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}

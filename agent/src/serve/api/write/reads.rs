//! The reads remote mode needs beyond the read API (`super::super::read`:
//! a channel, a snapshot's manifest, a source's builds): a snapshot's
//! tree's file list, a verdict, the public keyring. No token: the trees they describe are public too.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::{blocking, segment, WriteResult};
use crate::repository::wire::{TreeEntry, VerdictAnswer};
use crate::serve::state::AppState;

/// Every file of the snapshot's tree, as `/snapshots/{id}/` serves it.
pub async fn snapshot_files(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WriteResult<Json<Vec<TreeEntry>>> {
    segment("snapshot", &id)?;
    blocking(move || {
        let snapshot = state.store.load_snapshot(&id)?;
        let mut out = Vec::new();
        for (archive, tree) in state.store.snapshot_trees(&snapshot)? {
            for (path, f) in tree {
                out.push(TreeEntry {
                    path: format!("{archive}/{path}"),
                    size: f.size,
                    sha256: f.sha256,
                });
            }
        }
        Ok(Json(out))
    })
    .await
}

pub async fn verdict(
    State(state): State<AppState>,
    Path((channel, snapshot)): Path<(String, String)>,
) -> WriteResult<Json<VerdictAnswer>> {
    segment("channel", &channel)?;
    segment("snapshot", &snapshot)?;
    blocking(move || {
        Ok(Json(VerdictAnswer {
            verdict: state.store.load_verdict(&channel, &snapshot)?,
        }))
    })
    .await
}

/// The store's public keyring (`keys/repo.gpg`): what apt needs to trust
/// the served trees.
pub async fn keyring(State(state): State<AppState>) -> WriteResult<impl IntoResponse> {
    let bytes = blocking(move || {
        let path = state.store.keys_dir().join("repo.gpg");
        Ok(repofs::bounded::read_regular(&path, 16 * 1024 * 1024)?)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/pgp-keys")], bytes))
}

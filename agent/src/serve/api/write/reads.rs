//! The reads remote mode needs: a channel, a snapshot's manifest and its
//! tree's file list, a source's build records, a verdict, the public
//! keyring. No token: the trees they describe are public too.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use repofs::model::{ChannelPointer, Snapshot};
use repofs::store::builds::BuildRecord;

use super::{blocking, segment, WriteResult};
use crate::repository::wire::{TreeEntry, VerdictAnswer};
use crate::serve::state::AppState;

pub async fn channel(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> WriteResult<Json<ChannelPointer>> {
    segment("channel", &name)?;
    blocking(move || Ok(Json(state.store.load_channel(&name)?))).await
}

pub async fn snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WriteResult<Json<Snapshot>> {
    segment("snapshot", &id)?;
    blocking(move || Ok(Json(state.store.load_snapshot(&id)?))).await
}

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

pub async fn builds(
    State(state): State<AppState>,
    Path(source): Path<String>,
) -> WriteResult<Json<Vec<BuildRecord>>> {
    segment("source", &source)?;
    blocking(move || Ok(Json(state.store.load_builds(&source)?))).await
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

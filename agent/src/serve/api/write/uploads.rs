//! Uploads: an agent's files arrive one request each into an upload area,
//! then one request imports them, all or nothing.
//!
//! - `POST /uploads` makes an area: a directory `STORE/work/upload-<id>`,
//!   claimed by this server process (`repofs::store::work`), so a server
//!   killed mid-upload leaves a leftover `halo fsck` reports and `halo gc`
//!   removes, never anything in the pool or an index.
//! - `PUT /uploads/{id}/{name}` streams one file into the area under a
//!   temporary name, hashing as it writes; it gets its name only when its
//!   SHA-256 is the one the agent sent (`X-Halo-Sha256`).
//! - `PUT /uploads/{id}` streams many files in one tar stream (`batch`).
//! - `POST /uploads/{id}/import` imports the named files with the store's
//!   own import (every checksum a .changes or .dsc lists verified; nothing
//!   is committed unless all of it is), then removes the area. The area
//!   is on the store's file system and its files are read-only and the
//!   server's: the import adopts them into the pool (a hard link) instead
//!   of writing every byte a second time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use futures_util::StreamExt;
use rand::RngCore;
use repofs::store::import::Target;
use repofs::store::work::WorkClaim;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{blocking, parse, require, segment, WriteError, WriteResult};
use crate::repository::wire::{Done, FileReceived, ImportBody, Imported, UploadCreated};
use crate::serve::auth::Caller;
use crate::serve::state::AppState;
use crate::serve::tokens::Role;

/// An upload area: its directory, its claim, the token that made it.
struct Area {
    dir: PathBuf,
    owner: String,
    claim: WorkClaim,
}

/// The areas of this process (one server, one store).
static AREAS: LazyLock<Mutex<HashMap<String, Area>>> = LazyLock::new(Default::default);

fn areas() -> WriteResult<std::sync::MutexGuard<'static, HashMap<String, Area>>> {
    AREAS
        .lock()
        .map_err(|_| WriteError::internal("upload areas: lock poisoned"))
}

fn unknown(id: &str) -> WriteError {
    WriteError::new(StatusCode::NOT_FOUND, format!("no upload area {id}"))
}

/// The area's directory, if `caller` made it.
pub(super) fn area_dir(caller: &Caller, id: &str) -> WriteResult<PathBuf> {
    let all = areas()?;
    match all.get(id) {
        Some(a) if a.owner == caller.name => Ok(a.dir.clone()),
        _ => Err(unknown(id)),
    }
}

/// Takes the area out of the registry (its files are the caller's now).
fn take_area(caller: &Caller, id: &str) -> WriteResult<Area> {
    let mut all = areas()?;
    match all.get(id) {
        Some(a) if a.owner == caller.name => all.remove(id).ok_or_else(|| unknown(id)),
        _ => Err(unknown(id)),
    }
}

/// Removes an area's directory; its claim goes with it, or stays for
/// `halo gc` when the directory cannot be removed.
fn remove_area(mut area: Area) {
    if let Err(e) = fs_err::remove_dir_all(&area.dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("cannot remove the upload area (halo gc will): {e}");
            area.claim.leave_for_gc();
        }
    }
}

pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
) -> WriteResult<(StatusCode, Json<UploadCreated>)> {
    require(&caller, Role::Writer)?;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let id = hex::encode(bytes);
    let name = format!("upload-{id}");
    let owner = caller.name.clone();
    let area = blocking(move || {
        let claim = state
            .store
            .claim_work(&name, Some(&format!("upload by token {owner}")))?;
        let dir = claim.dir().to_path_buf();
        fs_err::create_dir_all(&dir)?;
        Ok(Area { dir, owner, claim })
    })
    .await?;
    areas()?.insert(id.clone(), area);
    Ok((StatusCode::CREATED, Json(UploadCreated { upload: id })))
}

/// Streams one file into the area; named only when its digest matches.
pub async fn receive(
    caller: Caller,
    Path((id, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> WriteResult<Json<FileReceived>> {
    require(&caller, Role::Writer)?;
    repofs::debian::name::check_file_name(&name)
        .map_err(|e| WriteError::bad_request(e.to_string()))?;
    let wanted = headers
        .get("x-halo-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase)
        .filter(|h| repofs::hash::is_sha256_hex(h))
        .ok_or_else(|| {
            WriteError::bad_request("X-Halo-Sha256: the file's SHA-256 (64 hex digits) is needed")
        })?;
    let dir = area_dir(&caller, &id)?;
    let part = dir.join(format!(".{name}.part"));
    // Born read-only (a leftover of an earlier attempt goes first): the
    // import may adopt it into the pool.
    let _ = tokio::fs::remove_file(&part).await;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&part)
        .await?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(WriteError::bad_request(format!("{name}: upload cut: {e}")));
            }
        };
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    let got = hex::encode(hasher.finalize());
    if got != wanted {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(WriteError::bad_request(format!(
            "{name}: received {size} bytes with SHA-256 {got}, not {wanted}: refused"
        )));
    }
    tokio::fs::rename(&part, dir.join(&name)).await?;
    Ok(Json(FileReceived {
        name,
        size,
        sha256: got,
    }))
}

/// Imports the named files of the area, then removes it, whatever the
/// import's outcome.
pub async fn import(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> WriteResult<Json<Imported>> {
    require(&caller, Role::Writer)?;
    let req: ImportBody = parse(&body)?;
    segment("archive", &req.archive)?;
    segment("dist", &req.dist)?;
    segment("component", &req.component)?;
    if req.files.is_empty() {
        return Err(WriteError::bad_request("no files to import"));
    }
    for f in &req.files {
        repofs::debian::name::check_file_name(f)
            .map_err(|e| WriteError::bad_request(e.to_string()))?;
    }
    let area = take_area(&caller, &id)?;
    blocking(move || {
        let paths: Vec<PathBuf> = req.files.iter().map(|f| area.dir.join(f)).collect();
        // The server's configuration decides retention, as for a local import.
        let keep = state.config.keep_versions(&req.archive);
        let result = repofs::store::import::import_adopting(
            &state.store,
            &Target {
                archive: &req.archive,
                dist: &req.dist,
                component: &req.component,
            },
            &paths,
            keep,
            &mut |_| {},
        );
        remove_area(area);
        let report = result?;
        Ok(Json(Imported {
            added: report.added,
            unchanged: report.unchanged,
            dropped: report.dropped,
        }))
    })
    .await
}

pub async fn discard(caller: Caller, Path(id): Path<String>) -> WriteResult<Json<Done>> {
    require(&caller, Role::Writer)?;
    let area = take_area(&caller, &id)?;
    blocking(move || {
        remove_area(area);
        Ok(Json(Done { ok: true }))
    })
    .await
}

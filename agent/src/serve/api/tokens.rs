//! Token management over the API (role `admin`): list, add, remove. The
//! token of an add is in that one response and nowhere else.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::serve::auth::Admin;
use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::{blocking, AppState};
use crate::serve::tokens::{Role, TokenError, TokenFile};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(add))
        .route("/tokens/{name}", delete(remove))
}

#[derive(Debug, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub role: Role,
    pub created: String,
}

#[derive(Debug, Deserialize)]
pub struct AddToken {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize)]
pub struct Added {
    pub name: String,
    pub role: Role,
    /// The token: shown in this response only.
    pub token: String,
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::Exists(_) => ApiError::conflict(e.to_string()),
        TokenError::Unknown(_) => ApiError::not_found(e.to_string()),
        TokenError::BadName(_) => ApiError::bad_request(e.to_string()),
        TokenError::Corrupt { .. } | TokenError::Io(_) => ApiError::internal(e.to_string()),
    }
}

async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<TokenInfo>>> {
    let file = state.tokens()?;
    Ok(Json(
        file.tokens
            .into_iter()
            .map(|t| TokenInfo {
                name: t.name,
                role: t.role,
                created: t.created,
            })
            .collect(),
    ))
}

/// Changes the token file under the store's write lock: a `halo token`
/// on the host and the server never lose each other's change.
pub fn change<T>(
    store: &repofs::Store,
    f: impl FnOnce(&mut TokenFile) -> Result<T, TokenError>,
) -> anyhow::Result<T> {
    let _lock = store.lock()?;
    let path = crate::serve::tokens::path(store.root());
    let mut file = TokenFile::load(&path)?;
    let out = f(&mut file)?;
    file.save(&path)?;
    Ok(out)
}

fn change_api<T>(
    store: &repofs::Store,
    f: impl FnOnce(&mut TokenFile) -> Result<T, TokenError>,
) -> ApiResult<T> {
    change(store, f).map_err(|e| match e.downcast::<TokenError>() {
        Ok(t) => token_error(t),
        Err(e) => e.into(),
    })
}

async fn add(
    _: Admin,
    State(state): State<AppState>,
    Json(req): Json<AddToken>,
) -> ApiResult<(StatusCode, Json<Added>)> {
    let store = state.store.clone();
    let now = jiff::Timestamp::now().to_string();
    let (name, role) = (req.name.clone(), req.role);
    let token = blocking(move || change_api(&store, |f| f.add(&name, role, &now))).await?;
    Ok((
        StatusCode::CREATED,
        Json(Added {
            name: req.name,
            role: req.role,
            token,
        }),
    ))
}

async fn remove(
    _: Admin,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    let store = state.store.clone();
    blocking(move || change_api(&store, |f| f.remove(&name).map(|_| ()))).await?;
    Ok(StatusCode::NO_CONTENT)
}

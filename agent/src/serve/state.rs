//! What every handler shares: the store, the view of its trees (the one
//! the FUSE mount and `halo export` read), and where the tokens are.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use repofs::fs::catalog::StoreCatalog;
use repofs::fs::channel::FallbackPolicy;
use repofs::fs::view::View;
use repofs::Store;

use crate::config::Config;

use super::error::{ApiError, ApiResult};
use super::tokens::TokenFile;

/// Cheap to clone: handlers get their own copy per request.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The mount's namespace over the store: a served path is a mount path.
    pub view: Arc<View<StoreCatalog>>,
    pub tokens_path: PathBuf,
    pub started: SystemTime,
    /// The configuration read at start (defaults without a file): which
    /// channels are testing and stable, the sources and mirrors to show.
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(store: Store, config: Config) -> Self {
        let trees = NonZeroUsize::new(16).unwrap_or(NonZeroUsize::MIN);
        let tokens_path = super::tokens::path(store.root());
        let view = View::new(
            StoreCatalog::new(store.clone(), trees, None),
            FallbackPolicy::default(),
        );
        Self {
            store,
            view: Arc::new(view),
            tokens_path,
            started: SystemTime::now(),
            config: Arc::new(config),
        }
    }

    /// The stable (gated) channel: moving it, or forcing, needs role
    /// `stable`.
    pub fn stable_channel(&self) -> &str {
        &self.config.acceptance.stable
    }

    /// The token file as it is now.
    pub fn tokens(&self) -> ApiResult<TokenFile> {
        TokenFile::load(&self.tokens_path).map_err(|e| ApiError::internal(format!("tokens: {e}")))
    }
}

/// Runs blocking store work (file reads, locks, fsync) off the async
/// workers, so a slow disk or a waiting lock never stalls other requests.
pub async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("request task failed: {e}")))?
}

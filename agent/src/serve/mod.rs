//! `halo serve`: one process on the store's host serving the APT trees of
//! every channel and snapshot (what the mount shows, byte for byte), the
//! JSON API agents on other hosts use, and the pipeline page.
//!
//! ```text
//! /                          the page (embedded, see `page`)
//! /channels/<c>/<archive>/…  the mount's paths (see `tree`)
//! /snapshots/<id>/<archive>/…
//! /api/v1/…                  the JSON API (see `api`, docs/api.md)
//! ```
//!
//! EDGE: the accept loop (plain or TLS) and the runtime; routes and their
//! handlers live in the submodules, the store's rules in repofs.

pub mod api;
pub mod auth;
pub mod error;
pub mod page;
pub mod state;
pub mod tls;
pub mod tokens;
pub mod tree;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;

pub use state::AppState;

/// The whole application: trees, API, page.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(page::routes())
        .merge(tree::routes())
        .nest("/api/v1", api::routes())
        .with_state(state)
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// Serves until SIGINT or SIGTERM. `ready` gets the bound address (a
/// `--listen` with port 0 picks one).
pub fn run(state: AppState, config: &ServeConfig, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let acceptor = match &config.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("halo-serve")
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let addr = listener.local_addr()?;
        ready(addr);
        let app = router(state);
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    // Out of descriptors and the like: the next accept may
                    // work; a busy server must not exit over it.
                    Err(e) => {
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => serve_connection(TokioIo::new(tls), app).await,
                        Err(e) => tracing::debug!(%peer, "TLS handshake: {e}"),
                    },
                    None => serve_connection(TokioIo::new(stream), app).await,
                }
            });
        }
        Ok::<_, anyhow::Error>(())
    })?;
    // Requests still running finish on their own blocking threads; the
    // store's writes are atomic, so dropping the runtime loses nothing.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

async fn serve_connection<I>(io: I, app: Router)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // A client that opens a connection and sends nothing is dropped.
        .header_read_timeout(std::time::Duration::from_secs(30))
        .serve_connection(io, service);
    if let Err(e) = conn.await {
        tracing::debug!("connection: {e}");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

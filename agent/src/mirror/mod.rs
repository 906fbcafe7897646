//! Mirroring upstream APT repositories into the store (`halo mirror update`).
//!
//! - `repofs::index::read` PURE: parse and check an upstream Release, choose
//!   indices, decompress and parse Packages/Sources (shared with `fsck`).
//! - the `packages` filter and its dependency closure: `repofs::model::closure`
//!   (shared with `halo copy --with-deps`).
//! - [`plan`] PURE: component states and the list of pool files to fetch.
//! - [`fetch`] EDGE: HTTP with verification, retries, conditional requests.
//! - [`update`] wiring: load, verify, fetch, decide, commit (one
//!   `state.json` rename, after every file is verified and durable).

pub mod fetch;
pub mod plan;
pub mod update;
mod verify_release;

use std::path::PathBuf;

use repofs::index::read::{packages as index, release};

/// Why a mirror update failed. [`Error::is_user_error`] decides the exit
/// code: the upstream's fault (or the configuration's) is 1, ours is 2.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    #[error("{}", failed_files(*.failed))]
    Downloads {
        /// How many files failed in all.
        failed: usize,
        #[source]
        first: fetch::FetchError,
    },
    #[error("{url}")]
    Release {
        url: String,
        #[source]
        source: release::ReleaseError,
    },
    #[error("{url}")]
    Signature {
        url: String,
        #[source]
        source: Box<repofs::sign::Error>,
    },
    #[error("{url}")]
    Index {
        url: String,
        #[source]
        source: index::IndexError,
    },
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error(
        "{url}: no InRelease and no Release (HTTP 404): is {dist:?} a dist of this repository?"
    )]
    NoRelease { url: String, dist: String },
    #[error(
        "{url}: not found (HTTP 404): the upstream is unsigned (set trusted = true to accept that)"
    )]
    Unsigned { url: String },
    #[error("keyring {path}")]
    KeyringRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("keyring {path}")]
    Keyring {
        path: PathBuf,
        #[source]
        source: Box<repofs::sign::Error>,
    },
    #[error("packages named in the configuration are in no dist of the mirror: {}", .0.join(", "))]
    UnknownPackages(Vec<String>),
    #[error("the store has an archive {0:?} that no mirror made: a mirror owns its archive, so choose another name")]
    NotAMirror(String),
    #[error(transparent)]
    Store(#[from] repofs::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn failed_files(failed: usize) -> String {
    match failed {
        1 => "a pool file failed to download".to_string(),
        n => format!("{n} pool files failed to download; the first"),
    }
}

impl Error {
    pub fn is_user_error(&self) -> bool {
        match self {
            Error::Fetch(e) | Error::Downloads { first: e, .. } => e.is_upstream(),
            Error::Store(e) => e.is_user_error(),
            Error::Io(_) => false,
            _ => true,
        }
    }
}

/// Progress of an update, for a bar on a terminal.
pub trait Progress: Sync {
    /// A new step (`InRelease`, indices, ...).
    fn stage(&self, text: &str);
    /// Pool downloads begin: how many files and bytes.
    fn start_downloads(&self, files: u64, bytes: u64);
    /// One pool file finished.
    fn downloaded(&self, bytes: u64);
}

/// An error and its causes on one line (for logs).
pub fn chain(e: &dyn std::error::Error) -> String {
    repofs::error_chain(e)
}

//! The on-disk store (docs/store-format.md): a content-addressed pool,
//! the working state of every archive, immutable snapshot manifests, and
//! channels with their history.
//!
//! Invariants: blobs are written once and never changed; every other file
//! is replaced by rename; writers hold `lock`, readers take no lock and see
//! either the old or the new version of any file.

pub mod acceptance;
pub mod blockmaps;
pub mod builds;
pub mod channels;
pub mod contents;
pub mod edit;
pub mod export;
pub mod failpoint;
pub mod fsck;
pub mod fsutil;
pub mod gc;
pub mod import;
pub mod keys;
pub mod lock;
pub mod mirror_commit;
pub mod mirrors;
mod pdiffs;
pub mod pool;
pub mod process;
pub mod read;
pub mod snapshots;
pub mod spooled;
pub mod state;
pub mod work;

use std::io;
use std::path::{Path, PathBuf};

use fs_err as fs;
use serde::{Deserialize, Serialize};

use crate::debian::name::NameError;
use crate::model::PromoteError;

pub use lock::WriteLock;
pub use pool::Pool;

/// The store format this code reads and writes.
pub const FORMAT: u32 = 1;

/// The channels `halo init` creates, from least to most trusted.
pub const DEFAULT_CHANNELS: [&str; 3] = ["trusty-unstable", "trusty-testing", "trusty"];

/// The default channel `halo init` gates: only accepted snapshots reach it.
pub const GATED_CHANNEL: &str = "trusty";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(
        "{0} is not a rustedhalo store (no store.json): run `halo init` first or pass --store"
    )]
    NotAStore(PathBuf),
    #[error("{0} is already a rustedhalo store")]
    AlreadyAStore(PathBuf),
    #[error("store format {found} at {path} is not supported (this halo reads format {FORMAT})")]
    Format { path: PathBuf, found: u32 },
    #[error("store is damaged: {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("no snapshot {0}")]
    UnknownSnapshot(String),
    #[error("no channel {0} (see `halo channel list`)")]
    UnknownChannel(String),
    #[error("channel {0} points at no snapshot yet")]
    EmptyChannel(String),
    #[error("the store has no snapshot yet: run `halo snapshot create`")]
    NoSnapshots,
    #[error(transparent)]
    Promote(#[from] PromoteError),
    #[error(transparent)]
    Gate(Box<crate::model::acceptance::GateError>),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Snapshot(#[from] crate::model::snapshot::BadSnapshotId),
    #[error("{file}: {reason}")]
    Import { file: PathBuf, reason: String },
    #[error(transparent)]
    Conflict(#[from] crate::model::state::Conflict),
    #[error(transparent)]
    Edit(Box<crate::model::edit::EditError>),
    #[error(transparent)]
    Spec(#[from] crate::model::edit::SpecError),
    #[error("signing key")]
    Sign(#[from] crate::sign::Error),
    #[error("{0}")]
    Usage(String),
    /// A key cannot be retired while a channel serves what only it signed.
    #[error("channel {channel} points at snapshot {snapshot}, whose {place} no other signing key signed than {fingerprint}: make a snapshot (it is signed by every key now) and promote it first")]
    KeyInUse {
        fingerprint: String,
        channel: String,
        snapshot: String,
        place: String,
    },
    #[error(
        "the store is busy: another writer held it for {0:?} (--wait-timeout); nothing changed"
    )]
    Busy(std::time::Duration),
    #[error("mirror {mirror}: its archive changed during the update (another writer?): nothing committed, run it again")]
    ArchiveChanged { mirror: String },
}

/// Boxed: a gate refusal carries several names and a hold, and every
/// `Result` of the store would otherwise grow to its size.
impl From<crate::model::acceptance::GateError> for Error {
    fn from(e: crate::model::acceptance::GateError) -> Self {
        Error::Gate(Box::new(e))
    }
}

impl Error {
    /// True when the user (or an upstream) gave bad input, as opposed to a
    /// damaged store or a failing system: decides exit code 1 versus 2.
    ///
    /// Exhaustive on purpose: a new variant must be placed. A lost
    /// compare-and-swap, a held lease, a signing failure or a concurrent
    /// writer is not the input's fault (Jenkins reads exit 1 as "the
    /// commit is bad"), so those are 2.
    pub fn is_user_error(&self) -> bool {
        use crate::model::acceptance::GateError;
        use crate::model::edit::EditError;
        match self {
            Error::Io(_)
            | Error::Corrupt { .. }
            | Error::Format { .. }
            | Error::Busy(_)
            | Error::ArchiveChanged { .. } => false,
            Error::Promote(e) => match e {
                PromoteError::Stale { .. } => false,
                PromoteError::NoHistory(_)
                | PromoteError::HoldEmpty(_)
                | PromoteError::AlreadyHeld { .. }
                | PromoteError::NotHeld(_) => true,
            },
            Error::Gate(e) => match &**e {
                GateError::Leased { .. } | GateError::NotHolder { .. } => false,
                // The operator's own state: a hold, content they rolled back.
                GateError::NotAccepted { .. }
                | GateError::ForceWithoutReason
                | GateError::Held { .. }
                | GateError::RolledBack { .. } => true,
            },
            Error::Sign(e) => e.is_user_error(),
            Error::Edit(e) => !matches!(**e, EditError::Stanza { .. }),
            Error::NotAStore(_)
            | Error::AlreadyAStore(_)
            | Error::UnknownSnapshot(_)
            | Error::UnknownChannel(_)
            | Error::EmptyChannel(_)
            | Error::NoSnapshots
            | Error::Name(_)
            | Error::Snapshot(_)
            | Error::Import { .. }
            | Error::Conflict(_)
            | Error::Spec(_)
            | Error::Usage(_)
            | Error::KeyInUse { .. } => true,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `store.json`: the store's identity and defaults for rendering.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreMeta {
    pub format: u32,
    /// `Origin` and `Label` of every Release we render.
    pub origin: String,
    pub label: String,
    /// Architectures every dist lists even when it only holds `all`
    /// packages, so apt on these machines finds its `binary-<arch>`.
    pub architectures: Vec<String>,
    pub created: String,
}

/// A handle on a store directory. Cheap; holds no lock.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    meta: StoreMeta,
    /// How long a writer waits for the lock (`None`: as long as it takes).
    wait: Option<std::time::Duration>,
    /// Where clients reach the tree of `snapshots/` (the Releases this
    /// handle renders carry apt's `Snapshots:` field when set).
    snapshots_url: Option<String>,
    /// Index diffs a new snapshot keeps per index (0: none).
    pdiff_history: usize,
}

/// Index diffs kept per index unless configured: two weeks of daily moves.
pub const DEFAULT_PDIFF_HISTORY: usize = 14;

impl Store {
    /// Opens an existing store.
    pub fn open(root: &Path) -> Result<Self> {
        let meta_path = root.join("store.json");
        let data = match fs::read(&meta_path) {
            Ok(d) => d,
            // Missing, or a file where the directory should be.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                return Err(Error::NotAStore(root.to_path_buf()))
            }
            Err(e) => return Err(e.into()),
        };
        let meta: StoreMeta = serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
            path: meta_path.clone(),
            reason: e.to_string(),
        })?;
        if meta.format != FORMAT {
            return Err(Error::Format {
                path: meta_path,
                found: meta.format,
            });
        }
        Ok(Self {
            // Absolute: paths derived from it are handed to processes that
            // run elsewhere (a sandbox starts in its own `/`).
            root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
            meta,
            wait: None,
            snapshots_url: None,
            pdiff_history: DEFAULT_PDIFF_HISTORY,
        })
    }

    /// How long writers of this handle wait for a lock.
    pub fn wait_timeout(&self) -> Option<std::time::Duration> {
        self.wait
    }

    /// Releases rendered through this handle say `Snapshots:
    /// <url>/snapshots/@SNAPSHOTID@/<archive>/` (apt 3.0's `--snapshot`).
    pub fn with_snapshots_url(mut self, url: Option<String>) -> Self {
        self.snapshots_url = url.map(|u| u.trim_end_matches('/').to_string());
        self
    }

    pub fn snapshots_url(&self) -> Option<&str> {
        self.snapshots_url.as_deref()
    }

    /// Writers of this handle give up after waiting `wait` for the lock.
    pub fn with_wait_timeout(mut self, wait: Option<std::time::Duration>) -> Self {
        self.wait = wait;
        self
    }

    /// Snapshots made through this handle keep `n` index diffs per index.
    pub fn with_pdiff_history(mut self, n: usize) -> Self {
        self.pdiff_history = n;
        self
    }

    /// Creates a store: directories, the signing key (secret in
    /// `keys/secret.asc`, public in `keys/repo.gpg` and `keys/repo.asc`: see `keys`),
    /// the default channels, and `store.json` last, so an interrupted init
    /// is never mistaken for a store.
    pub fn init(root: &Path, meta: StoreMeta, key: &crate::sign::SigningKey) -> Result<Self> {
        if root.join("store.json").exists() {
            return Err(Error::AlreadyAStore(root.to_path_buf()));
        }
        if root.exists() && !root.is_dir() {
            return Err(Error::Usage(format!(
                "{} is a file, not a directory",
                root.display()
            )));
        }
        // A directory holding only what an interrupted init left is taken
        // up again; anything else is someone's data, never adopted.
        if root.is_dir() {
            let own = ["pool", "snapshots", "channels", "keys", "tmp", "lock"];
            for e in fs::read_dir(root)? {
                let name = e?.file_name();
                if !own.iter().any(|o| name == *o) {
                    return Err(Error::Usage(format!(
                        "{} is not empty and not a store ({} is in it): init a new or empty directory",
                        root.display(),
                        name.to_string_lossy()
                    )));
                }
            }
        }
        for arch in &meta.architectures {
            crate::debian::name::check_arch(arch)?;
        }
        for dir in ["pool", "snapshots", "channels", "keys", "tmp"] {
            fsutil::create_dir_synced(&root.join(dir))?;
        }
        let store = Self {
            root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
            meta,
            wait: None,
            snapshots_url: None,
            pdiff_history: DEFAULT_PDIFF_HISTORY,
        };
        // No other writer can know the store before `store.json` exists,
        // but the writes below need the lock all the same.
        let lock = store.lock()?;
        let keys = crate::sign::SigningKeys::new(key.clone());
        store.save_public_keys(&lock, &keys)?;
        store.save_secret_keys(&lock, &keys)?;
        for channel in DEFAULT_CHANNELS {
            store.create_channel(&lock, channel)?;
        }
        // Stable takes only snapshots that passed acceptance, from the start.
        store.write_gate(
            &lock,
            GATED_CHANNEL,
            &crate::model::acceptance::GatePolicy {
                requires_acceptance: true,
            },
        )?;
        drop(lock);
        let data = serde_json::to_vec_pretty(&store.meta).map_err(io::Error::other)?;
        fsutil::write_atomic(&store.tmp_dir(), &root.join("store.json"), &data)?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn meta(&self) -> &StoreMeta {
        &self.meta
    }

    pub fn pool(&self) -> Pool {
        Pool::new(self.root.join("pool"), self.tmp_dir())
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    /// Takes the single writer lock, waiting for another writer to finish.
    pub fn lock(&self) -> Result<WriteLock> {
        WriteLock::acquire_within(&self.root.join("lock"), self.wait).map_err(|e| match e {
            lock::LockError::Io(e) => Error::Io(e),
            lock::LockError::Busy(d) => Error::Busy(d),
        })
    }
}

/// Writes `value` as JSON to `dest` atomically.
pub(crate) fn save_json<T: Serialize>(store: &Store, dest: &Path, value: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    fsutil::write_atomic(&store.tmp_dir(), dest, &data)?;
    Ok(())
}

/// Reads JSON, calling a parse failure store damage.
pub(crate) fn load_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let data = fs::read(path)?;
    serde_json::from_slice(&data).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::Store;

    /// A store opened by a relative path knows its absolute root: paths
    /// derived from it go to processes with another working directory (a
    /// sandbox starts in its own `/`).
    #[test]
    fn a_store_opened_by_a_relative_path_has_an_absolute_root() {
        let dir = tempfile::tempdir().unwrap();
        let meta = super::StoreMeta {
            format: super::FORMAT,
            origin: "t".into(),
            label: "t".into(),
            architectures: vec!["amd64".into()],
            created: String::new(),
        };
        let key = crate::sign::SigningKey::generate("t <t@t>").unwrap();
        Store::init(dir.path(), meta, &key).unwrap();
        // The same directory, relative to this process's working directory.
        let cwd = std::env::current_dir().unwrap();
        let mut rel = std::path::PathBuf::new();
        for _ in cwd.components().skip(1) {
            rel.push("..");
        }
        rel.push(dir.path().strip_prefix("/").unwrap());
        assert!(rel.is_relative());
        let store = Store::open(&rel).unwrap();
        assert!(store.root().is_absolute(), "{}", store.root().display());
        assert_eq!(
            store.root().canonicalize().unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }
}

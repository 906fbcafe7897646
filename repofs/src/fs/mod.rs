//! The read-only FUSE view of the store (`repofs STORE MOUNTPOINT`):
//! `snapshots/<id>/<archive>/...`, `channels/<c>/<archive>/...` and
//! `channels/<c>.snapshot` symlinks, as DESIGN.md describes.
//!
//! This module mounts; [`adapter`] (the state) and `callbacks` (the
//! `fuser::Filesystem` impl) are the thin adapter between fuser and the
//! view: each callback converts arguments, asks [`view::View`] (the
//! namespace) or [`handles::Handles`] (open files), and converts the
//! answer. Everything that decides lives in the other submodules:
//!
//! - [`dirtree`]: a snapshot's tree as a compact directory index;
//! - [`inodes`]: inode numbers derived from content and identity, and the
//!   table of the inodes the kernel holds;
//! - [`channel`]: which earlier targets of a channel still answer;
//! - [`node`]: what an inode is, attributes, lifetimes, the catalog trait;
//! - [`view`]: names, listings, attributes and cache lifetimes;
//! - [`catalog`]: the store behind the view, with [`cache`]'s LRUs;
//! - [`handles`]: open files (passthrough backing or descriptor);
//! - [`errno`]: errors and the one mapping to errno;
//! - [`options`]: `-o` mount options;
//! - [`host`]: mountpoint checks, detaching, unmounting (libc).
//!
//! Reads of pool files use FUSE passthrough when the kernel allows it (the
//! daemon then sees no reads at all); otherwise they are served from the
//! blob with `FOPEN_KEEP_CACHE` (content never changes under an inode).
//! Every request that would change anything gets `EROFS`; the mount is
//! also `ro` for the kernel, which refuses most writes before asking us.
//! Callbacks never panic and never wait on a store writer.

pub mod adapter;
pub mod cache;
mod callbacks;
pub mod catalog;
pub mod channel;
pub mod dirtree;
pub mod errno;
pub mod handles;
pub mod host;
pub mod inodes;
pub mod node;
pub mod options;
pub mod view;

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use fuser::{INodeNo, MountOption, Notifier, Session, SessionACL};

pub use adapter::RepoFs;
use catalog::Evicted;
use options::MountOptions;

use crate::store::Store;

/// fuser's configuration for `opts`: read-only, `default_permissions` (the
/// kernel checks the 0444/0555 modes), and with `allow_other` the session
/// ACL that lets other users through (apt's `_apt`).
pub fn config(opts: &MountOptions) -> fuser::Config {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName(opts.fsname.clone()),
        // As a kernel option (fuser's `Subtype` only reaches fusermount):
        // the type is `fuse.repofs` in /proc/mounts, as fstab names it.
        MountOption::CUSTOM("subtype=repofs".to_string()),
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
        MountOption::DefaultPermissions,
    ];
    config.acl = if opts.allow_other {
        SessionACL::All
    } else if opts.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(opts.threads);
    config
}

/// A mounted view, not yet serving.
pub struct Mounted {
    pub session: Session<RepoFs>,
    /// Whether reads go through FUSE passthrough (the kernel may refuse it
    /// later, which clears the flag).
    pub passthrough: Arc<AtomicBool>,
    /// Snapshot trees the view dropped from its cache: give to
    /// [`spawn_invalidator`] once the process has detached.
    pub evicted: Receiver<Evicted>,
}

/// Tells the kernel to forget its cached names below each tree the view
/// evicted, so the inodes they hold (in the kernel and in the view's table)
/// go too. On its own thread: a notification sent while the kernel waits
/// for a reply in the same directory would deadlock.
pub fn spawn_invalidator(
    notifier: Notifier,
    evicted: Receiver<Evicted>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("repofs-inval".into())
        .spawn(move || {
            // Ends when the filesystem (holding the sender) is dropped.
            for e in evicted {
                let names = std::iter::once((inodes::SNAPSHOTS, e.snapshot.as_str()))
                    .chain(e.channels.iter().map(|c| (inodes::CHANNELS, c.as_str())));
                for (parent, name) in names {
                    // ENOENT: the kernel had nothing cached there.
                    if let Err(err) = notifier.inval_entry(INodeNo(parent), OsStr::new(name)) {
                        tracing::debug!(name, "invalidation: {err}");
                    }
                }
            }
        })
}

/// Mounts the view of `store` on `mountpoint` and completes the kernel
/// handshake: when this returns, the mount is usable (requests queue until
/// the session runs).
pub fn mount(store: Store, mountpoint: &Path, opts: &MountOptions) -> io::Result<Mounted> {
    let (tx, evicted) = std::sync::mpsc::channel();
    let fs = RepoFs::new(store, opts, Some(tx))?;
    let passthrough = fs.passthrough.clone();
    let session = Session::new(fs, mountpoint, &config(opts))?;
    Ok(Mounted {
        session,
        passthrough,
        evicted,
    })
}

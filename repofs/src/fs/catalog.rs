//! The store as the view reads it ([`Catalog`] over a [`Store`]): snapshot
//! trees and summaries through LRU caches, channels re-read when their
//! pointer file changes.
//!
//! EDGE: reads the store directory; never writes, never takes the writer
//! lock, so a promotion or snapshot in progress never blocks a request.
//!
//! When a tree leaves the cache, the catalog reports it ([`Evicted`]) so
//! the kernel can be told to drop its cached names below it: otherwise a
//! `find` over every snapshot would leave millions of inodes cached in the
//! kernel and mirrored in the view's inode table, and memory would grow
//! with the snapshots that exist rather than those in use.
//!
//! A channel is re-read when the `stat` of its pointer differs from the
//! one it was read with (the pointer is replaced by rename, so it gets a
//! new inode), and at least every [`CHANNEL_RECHECK`] in any case, which
//! covers network file systems whose attribute caches lag and a reused
//! inode number within the file system's timestamp granularity.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cache::Lru;
use super::channel::{plan_channel_view, ChannelView};
use super::dirtree::{Blob, DirTree};
use super::errno::FsError;
use super::view::{Catalog, SnapTree, SnapshotInfo, Top};
use crate::store::read::PointerStamp;
use crate::store::{self, Store};

/// A channel view older than this is re-read even if its pointer looks unchanged.
pub const CHANNEL_RECHECK: Duration = Duration::from_secs(2);

/// Snapshot summaries kept (a few hundred bytes each).
const INFOS: usize = 1024;

/// A snapshot tree dropped from the cache, with the channels showing that
/// snapshot: the kernel's cached entries below `snapshots/<snapshot>` and
/// `channels/<channel>` are worth invalidating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    pub snapshot: String,
    pub channels: Vec<String>,
}

struct CachedChannel {
    stamp: PointerStamp,
    read_at: Instant,
    view: Arc<ChannelView>,
}

/// The store behind the mount.
pub struct StoreCatalog {
    store: Store,
    /// The pool directory held open: a file's first lookup `stat`s its
    /// blob relative to it (no path from `/`, no allocation).
    pool_dir: Option<crate::store::pool::PoolDir>,
    trees: Lru<String, Arc<SnapTree>>,
    infos: Lru<String, SnapshotInfo>,
    channels: Mutex<HashMap<String, CachedChannel>>,
    store_mtime: SystemTime,
    /// Where evicted trees are reported.
    evicted: Option<Mutex<Sender<Evicted>>>,
}

fn parse_time(rfc3339: &str) -> Option<SystemTime> {
    let ts = rfc3339.parse::<jiff::Timestamp>().ok()?;
    let ms = u64::try_from(ts.as_millisecond()).ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(ms))
}

impl StoreCatalog {
    /// `trees`: how many parsed snapshot trees to keep; `evicted`: where to
    /// report the trees dropped from the cache.
    pub fn new(store: Store, trees: NonZeroUsize, evicted: Option<Sender<Evicted>>) -> Self {
        let store_mtime = fs_err::metadata(store.root().join("store.json"))
            .and_then(|m| m.modified())
            .unwrap_or(UNIX_EPOCH);
        Self {
            pool_dir: store.pool().open_dir(),
            store,
            trees: Lru::new(trees),
            infos: Lru::new(NonZeroUsize::new(INFOS).unwrap_or(NonZeroUsize::MIN)),
            channels: Mutex::new(HashMap::new()),
            store_mtime,
            evicted: evicted.map(Mutex::new),
        }
    }

    fn report_eviction(&self, snapshot: String) {
        let Some(tx) = &self.evicted else { return };
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, c)| c.view.target.as_deref() == Some(snapshot.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        let tx = tx.lock().unwrap_or_else(|e| e.into_inner());
        // The receiver is gone only while unmounting.
        let _ = tx.send(Evicted { snapshot, channels });
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parsed trees in memory now.
    pub fn trees_cached(&self) -> usize {
        self.trees.len()
    }

    fn load_tree(&self, id: &str) -> Result<Arc<SnapTree>, FsError> {
        let started = Instant::now();
        let ctx = || format!("snapshot {id}");
        let snapshot = self
            .store
            .load_snapshot(id)
            .map_err(|e| FsError::store(ctx(), e))?;
        let trees = self
            .store
            .snapshot_file_trees(&snapshot)
            .map_err(|e| FsError::store(ctx(), e))?;
        let tree = DirTree::build(&trees).map_err(|source| FsError::Tree {
            snapshot: id.to_string(),
            source,
        });
        drop(trees);
        super::host::release_free_memory();
        let tree = tree?;
        tracing::debug!(
            snapshot = id,
            nodes = tree.len(),
            ms = started.elapsed().as_millis() as u64,
            "tree loaded"
        );
        let created = parse_time(&snapshot.created).unwrap_or(self.store_mtime);
        Ok(Arc::new(SnapTree { created, tree }))
    }

    fn load_channel(
        &self,
        name: &str,
        stamp: PointerStamp,
    ) -> Result<Option<Arc<ChannelView>>, FsError> {
        let ctx = || format!("channel {name}");
        let pointer = match self.store.load_channel(name) {
            Ok(p) => p,
            Err(store::Error::UnknownChannel(_)) => return Ok(None),
            Err(e) => return Err(FsError::store(ctx(), e)),
        };
        let history = self
            .store
            .load_history_file(name)
            .map_err(|e| FsError::store(ctx(), e))?;
        let view = Arc::new(plan_channel_view(
            &pointer,
            history.entries.into_iter().map(|(e, _)| e).collect(),
        ));
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let before = channels.get(name).and_then(|c| c.view.target.clone());
        if before.is_some() && before != view.target {
            tracing::info!(channel = name, snapshot = ?view.target, "channel moved");
        }
        channels.insert(
            name.to_string(),
            CachedChannel {
                stamp,
                read_at: Instant::now(),
                view: view.clone(),
            },
        );
        Ok(Some(view))
    }
}

/// The hex form of a hash, in `buf`.
fn hex_of<'b>(sha256: &[u8; 32], buf: &'b mut [u8; 64]) -> &'b str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in sha256.iter().enumerate() {
        buf[2 * i] = DIGITS[usize::from(b >> 4)];
        buf[2 * i + 1] = DIGITS[usize::from(b & 15)];
    }
    std::str::from_utf8(buf).unwrap_or_default()
}

impl Catalog for StoreCatalog {
    fn snapshot_ids(&self) -> Result<Vec<String>, FsError> {
        self.store
            .list_snapshots()
            .map_err(|e| FsError::store("snapshots", e))
    }

    fn snapshot_info(&self, id: &str) -> Result<Option<SnapshotInfo>, FsError> {
        // The manifest may have been removed by gc since it was cached.
        if !self.store.snapshot_path(id).exists() {
            return Ok(None);
        }
        let load = || {
            let s = self.store.load_snapshot(id)?;
            Ok(SnapshotInfo {
                created: parse_time(&s.created).unwrap_or(self.store_mtime),
                archives: s.archives.keys().cloned().collect(),
            })
        };
        match self.infos.get_or_load(&id.to_string(), load) {
            Ok(info) => Ok(Some(info)),
            Err(store::Error::UnknownSnapshot(_)) => Ok(None),
            Err(e) => Err(FsError::store(format!("snapshot {id}"), e)),
        }
    }

    fn tree(&self, id: &str) -> Result<Arc<SnapTree>, FsError> {
        if let Some(tree) = self.trees.get(&id.to_string()) {
            return Ok(tree);
        }
        let tree = self.load_tree(id)?;
        if let Some((old, _)) = self.trees.insert(id.to_string(), tree.clone()) {
            self.report_eviction(old);
        }
        Ok(tree)
    }

    fn channels(&self) -> Result<Vec<(String, Arc<ChannelView>)>, FsError> {
        let names = self
            .store
            .list_channels()
            .map_err(|e| FsError::store("channels", e))?;
        let mut out = Vec::new();
        for (name, _) in names {
            if let Some(view) = self.channel(&name)? {
                out.push((name, view));
            }
        }
        Ok(out)
    }

    fn channel(&self, name: &str) -> Result<Option<Arc<ChannelView>>, FsError> {
        let stamp = self
            .store
            .channel_stamp(name)
            .map_err(|e| FsError::store(format!("channel {name}"), e))?;
        let Some(stamp) = stamp else {
            return Ok(None);
        };
        {
            let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = channels.get(name) {
                if c.stamp == stamp && c.read_at.elapsed() < CHANNEL_RECHECK {
                    return Ok(Some(c.view.clone()));
                }
            }
        }
        self.load_channel(name, stamp)
    }

    fn blob_mtime(&self, blob: &Blob) -> Result<SystemTime, FsError> {
        let mut buf = [0u8; 64];
        let hex = hex_of(&blob.sha256, &mut buf);
        let got = match &self.pool_dir {
            Some(dir) => dir.mtime(hex).map_err(store::Error::Io),
            None => self.store.blob_mtime(hex),
        };
        match got {
            Ok(t) => Ok(t),
            Err(store::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(FsError::MissingBlob {
                    sha256: hex.to_string(),
                })
            }
            Err(e) => Err(FsError::store(format!("blob {hex}"), e)),
        }
    }

    fn top_mtime(&self, dir: Top) -> SystemTime {
        let of = |d: &str| {
            fs_err::metadata(self.store.root().join(d))
                .and_then(|m| m.modified())
                .unwrap_or(self.store_mtime)
        };
        match dir {
            Top::Root => self.store_mtime,
            // New manifests land in snapshots/, pointers are renamed into channels/.
            Top::Snapshots => of("snapshots"),
            Top::Channels => of("channels"),
        }
    }
}

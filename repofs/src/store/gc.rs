//! `halo gc`: removes what nothing needs: temp files of crashed writers,
//! snapshots beyond `--keep-snapshots` that no channel points at (nor
//! pointed at in its last `keep_previous` moves), and blobs
//! no remaining snapshot or the working state refers to (nor the pending
//! downloads of an interrupted mirror update, see `store::mirrors`).
//!
//! A channel's recent earlier targets are kept because the FUSE view still
//! answers for them (by-hash indices and pool files of the snapshot a
//! channel just left, for clients mid-update), and because they are what
//! `halo channel rollback` goes back to.
//!
//! Manifests go before blobs, so a gc killed half-way leaves only more
//! garbage, never a manifest naming a removed blob.
//!
//! The work directories of runs that died (`store::work`: a claim whose
//! process is gone on this host) are removed too; a live run's never.

use std::collections::HashSet;

use fs_err as fs;

use super::snapshots::remove_snapshot;
use super::{fsutil, Result, Store};

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub temp_files: u64,
    pub snapshots: Vec<String>,
    pub blobs: u64,
    pub bytes: u64,
    /// Work directories of dead runs removed.
    pub leftovers: Vec<std::path::PathBuf>,
    pub leftover_bytes: u64,
    /// Leftovers that could not be removed, and why.
    pub leftovers_kept: Vec<String>,
    /// Contents sidecars whose package left the pool, component lists no
    /// snapshot needs, and packs none of whose packages is in the pool.
    #[serde(default)]
    pub contents: u64,
    /// Contents packs rewritten without the lists of packages that left
    /// the pool.
    #[serde(default)]
    pub contents_packs_rewritten: u64,
    /// Block maps of compressed indices gc removed (`store::blockmaps`).
    #[serde(default)]
    pub block_maps: u64,
}

/// Whether the process that made temp file `path` (`<pid>.<n>.tmp`) runs.
fn writer_alive(path: &std::path::Path) -> bool {
    let pid = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .and_then(|p| p.parse::<u32>().ok());
    match pid {
        Some(p) if p != std::process::id() => {
            std::path::Path::new("/proc").join(p.to_string()).exists()
        }
        _ => false,
    }
}

impl Store {
    /// `keep_snapshots`: keep at most this many snapshots beyond the pinned
    /// ones (`None`: remove no snapshot). `keep_previous`: per channel, the
    /// targets of its last N moves are pinned too.
    pub fn gc(&self, keep_snapshots: Option<usize>, keep_previous: usize) -> Result<GcReport> {
        let lock = self.lock()?;
        let mut report = GcReport::default();
        // Temp files of writers that are gone are garbage. A mirror
        // downloads without the store lock, so a temp file whose writer
        // (named by the pid its name starts with) still runs is kept.
        for e in fs::read_dir(self.tmp_dir())? {
            let path = e?.path();
            if path.is_dir() {
                for f in fs::read_dir(&path)? {
                    let f = f?.path();
                    if !writer_alive(&f) {
                        fsutil::remove_file(&f)?;
                        report.temp_files += 1;
                    }
                }
                // An empty shard goes too (a refused .dsc used to leave
                // one for ever); writers make their shard again.
                if fs::read_dir(&path)?.next().is_none() {
                    let _ = std::fs::remove_dir(&path);
                }
            } else if !writer_alive(&path) {
                fsutil::remove_file(&path)?;
                report.temp_files += 1;
            }
        }
        for l in self.work_leftovers()? {
            match self.remove_leftover(&lock, &l) {
                Ok(bytes) => {
                    report.leftover_bytes += bytes;
                    report.leftovers.push(l.path);
                }
                Err(e) => {
                    tracing::warn!("{}: {e}", l.path.display());
                    report.leftovers_kept.push(format!(
                        "{}: {}",
                        l.path.display(),
                        crate::error_chain(&e)
                    ));
                }
            }
        }
        let mut pinned: HashSet<String> = HashSet::new();
        for (name, pointer) in self.list_channels()? {
            pinned.extend(pointer.snapshot);
            if keep_previous > 0 {
                let history = self.channel_history(&name)?;
                pinned.extend(
                    history
                        .iter()
                        .rev()
                        .filter(|e| e.action.moves())
                        .take(keep_previous)
                        .filter_map(|e| e.from.clone()),
                );
            }
        }
        let mut snapshots = self.list_snapshots()?;
        if let Some(keep) = keep_snapshots {
            let cut = snapshots.len().saturating_sub(keep);
            for id in &snapshots[..cut] {
                if !pinned.contains(id) {
                    remove_snapshot(self, &lock, id)?;
                    report.snapshots.push(id.clone());
                }
            }
            snapshots.retain(|id| !report.snapshots.contains(id));
        }
        let live = self.live_blobs(&snapshots)?;
        let pool = self.pool();
        for name in pool.list()? {
            let hash = name.rsplit('/').next().unwrap_or(&name);
            if !live.contains(hash) {
                let path = pool.dir().join(&name);
                report.bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                fsutil::remove_file(&path)?;
                report.blobs += 1;
            }
        }
        // A sidecar goes with its package (after it: one whose package is
        // still there is never orphaned by a gc killed half-way).
        for sha in self.list_contents()? {
            if !live.contains(&sha) {
                fsutil::remove_file(&self.contents_path(&sha))?;
                report.contents += 1;
            }
        }
        report.contents += self.remove_stale_component_contents(&live)?;
        // Packs: those of packages all gone go, those partly gone are
        // rewritten with the live lists (also after the blobs).
        let (removed, rewritten) = self.collect_packs(&live)?;
        report.contents += removed;
        report.contents_packs_rewritten = rewritten;
        // Block maps of indices gone from the pool (a cache, like the above).
        report.block_maps = self.remove_stale_block_maps(&live)?;
        if report.blobs > 0 {
            fsutil::syncfs(pool.dir())?;
        }
        tracing::info!(
            blobs = report.blobs,
            snapshots = report.snapshots.len(),
            "gc done"
        );
        Ok(report)
    }

    /// Blobs the working state and the given snapshots need.
    fn live_blobs(&self, snapshots: &[String]) -> Result<HashSet<String>> {
        // Downloads of an interrupted mirror update, kept for its resumption.
        let mut live: HashSet<String> = self.mirror_pending_blobs()?;
        let mut components: HashSet<String> = HashSet::new();
        for comps in self.load_state()?.values().flat_map(|d| d.values()) {
            components.extend(comps.values().cloned());
        }
        for id in snapshots {
            let snap = self.load_snapshot(id)?;
            live.extend(snap.direct_blobs().map(str::to_string));
            for d in snap.archives.values().flat_map(|a| a.dists.values()) {
                components.extend(d.components.values().cloned());
            }
        }
        for hash in &components {
            let state = self.load_component(hash)?;
            live.extend(state.blobs().map(str::to_string));
            live.insert(hash.clone());
        }
        Ok(live)
    }
}

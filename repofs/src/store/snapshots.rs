//! Snapshots on disk: `snapshots/<id>.json`, written once, never changed.
//!
//! Making a snapshot renders the indices of every component that changed
//! since the latest snapshot (unchanged components and dists reuse the
//! blobs already rendered), signs each changed dist's Release once, and
//! commits by writing the manifest. Nothing is re-rendered or re-signed
//! afterwards: a promotion only moves a pointer. A dist whose components
//! all carry the same upstream release (a `verbatim` mirror) is not
//! rendered: its snapshot serves the upstream's files (`model::verbatim`).

use std::collections::BTreeMap;
use std::io;

use fs_err as fs;

use super::pool::{Batch, IndexBuf};
use super::{load_json, save_json, Error, Result, Store};
use crate::hash::Digests;
use crate::index::{dist as render, release};
use crate::model::snapshot::{check_snapshot_id, plan_snapshot_id};
use crate::model::state_view::StateView;
use crate::model::{ArchiveSnapshot, DistFile, DistSnapshot, Snapshot};
use crate::sign::SigningKeys;

/// The result of `snapshot create`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    pub id: String,
    /// False when nothing changed and the latest snapshot was returned.
    pub new: bool,
}

impl Store {
    /// Snapshot ids, oldest first.
    pub fn list_snapshots(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for e in fs::read_dir(self.root().join("snapshots"))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if check_snapshot_id(id).is_ok() {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    pub fn snapshot_path(&self, id: &str) -> std::path::PathBuf {
        self.root().join("snapshots").join(format!("{id}.json"))
    }

    pub fn load_snapshot(&self, id: &str) -> Result<Snapshot> {
        check_snapshot_id(id)?;
        let path = self.snapshot_path(id);
        if !path.exists() {
            return Err(Error::UnknownSnapshot(id.to_string()));
        }
        load_json(&path)
    }

    /// Freezes the working state. `now` is the snapshot's time.
    ///
    /// "Anything new?" is asked of the newest snapshot made from the
    /// working state, never of a re-dated copy a rollback made: after
    /// `halo channel rollback`, the copy holds older content than the
    /// working state, and comparing against it would make a "new" snapshot
    /// of exactly the content just rolled back, which the next acceptance
    /// would pass and promote again.
    pub fn create_snapshot(&self, now: jiff::Timestamp) -> Result<Created> {
        let _lock = self.lock()?;
        let state = self.load_state()?;
        let ids = self.list_snapshots()?;
        // Ids stay strictly increasing whatever the newest one is.
        let newest_id = ids.last().cloned();
        let mut latest = None;
        for id in ids.iter().rev() {
            let s = self.load_snapshot(id)?;
            if s.restores.is_none() {
                latest = Some(s);
                break;
            }
        }
        let key = self.load_signing_keys()?;
        // Dists whose signatures are not by exactly the keys that sign now (a key was
        // rotated in or retired) are signed anew, even when nothing else changed.
        let mut resign = std::collections::BTreeSet::new();
        if let Some(prev) = &latest {
            let signers = key.signer_fingerprints();
            for (archive, a) in &prev.archives {
                for (dist, d) in &a.dists {
                    if self.store_signers(d)?.is_some_and(|s| s != signers) {
                        resign.insert((archive.clone(), dist.clone()));
                    }
                }
            }
            if prev.state_map() == state && resign.is_empty() {
                return Ok(Created {
                    id: prev.id.clone(),
                    new: false,
                });
            }
        }
        let id = plan_snapshot_id(now.as_millisecond(), newest_id.as_deref());
        let pool = self.pool();
        let mut batch = pool.batch();
        let date = release::render_date(now);
        let mut archives = BTreeMap::new();
        for (archive, dists) in &state {
            let mut snap = ArchiveSnapshot::default();
            for (dist, components) in dists {
                let prev = latest
                    .as_ref()
                    .and_then(|s| s.archives.get(archive))
                    .and_then(|a| a.dists.get(dist));
                let ctx = DistContext {
                    snapshots: self
                        .snapshots_url()
                        .map(|base| release::snapshots_field(base, archive)),
                    store: self,
                    key: &key,
                    date: &date,
                    dist,
                    id: &id,
                    prev,
                    resign: resign.contains(&(archive.clone(), dist.clone())),
                };
                let d = ctx.render(&mut batch, components)?;
                snap.dists.insert(dist.clone(), d);
            }
            archives.insert(archive.clone(), snap);
        }
        super::failpoint::hit("snapshot:before-blobs");
        batch.commit()?;
        super::failpoint::hit("snapshot:before-manifest");
        let snapshot = Snapshot {
            id: id.clone(),
            created: now.to_string(),
            archives,
            restores: None,
        };
        save_json(self, &self.snapshot_path(&id), &snapshot)?;
        tracing::info!(snapshot = %id, "snapshot created");
        Ok(Created { id, new: true })
    }
}

impl Store {
    /// Makes a re-dated copy of snapshot `old` (see `Snapshot::restores`):
    /// the same component states and index blobs, each dist's Release
    /// rendered anew with `now` as its Date and signed. Costs a Release per
    /// dist, whatever the number of packages. Dists served verbatim from an
    /// upstream keep the upstream's signed files (only the upstream can
    /// re-date them). Takes the lock the channel move holds, as the move
    /// commits the copy.
    pub(crate) fn restore_snapshot_locked(
        &self,
        _lock: &super::WriteLock,
        old: &str,
        now: jiff::Timestamp,
    ) -> Result<String> {
        let source = self.load_snapshot(old)?;
        let latest = self.list_snapshots()?.pop();
        let id = plan_snapshot_id(now.as_millisecond(), latest.as_deref());
        let key = self.load_signing_keys()?;
        let pool = self.pool();
        let mut batch = pool.batch();
        let date = release::render_date(now);
        let meta = self.meta();
        let mut archives = source.archives.clone();
        for (archive_name, arch) in archives.iter_mut() {
            let snapshots = self
                .snapshots_url()
                .map(|base| release::snapshots_field(base, archive_name));
            for (dist, d) in arch.dists.iter_mut() {
                let Some(rel) = d.files.iter().find(|f| f.path == "Release") else {
                    continue;
                };
                let text = fs::read(pool.path(&rel.sha256))?;
                if !super::keys::signed_by_store(&meta.origin, d, &text) {
                    continue; // an upstream's own signed Release
                }
                let signed = ["Release", "InRelease", "Release.gpg"];
                d.files.retain(|f| !signed.contains(&f.path.as_str()));
                let listed: Vec<(String, Digests)> = d
                    .files
                    .iter()
                    .map(|f| {
                        let digests = Digests {
                            size: f.size,
                            md5: f.md5.clone(),
                            sha1: String::new(),
                            sha256: f.sha256.clone(),
                        };
                        (f.path.clone(), digests)
                    })
                    .collect();
                let comps: Vec<String> = d.components.keys().cloned().collect();
                let release_text = release::render_release(
                    &release::ReleaseMeta {
                        origin: &meta.origin,
                        label: &meta.label,
                        dist,
                        date: &date,
                        architectures: &d.architectures,
                        components: &comps,
                        description: None,
                        identity: d.identity.as_ref(),
                    },
                    &listed,
                );
                let release_text = release::with_snapshots(release_text, snapshots.as_deref());
                let in_release = key.clearsign(&release_text)?;
                let release_gpg = key.sign_detached(release_text.as_bytes())?;
                for (path, data) in [
                    ("Release", release_text.as_bytes()),
                    ("InRelease", in_release.as_bytes()),
                    ("Release.gpg", release_gpg.as_bytes()),
                ] {
                    let digests = batch.add_bytes(data)?;
                    d.files.push(dist_file(path.to_string(), &digests));
                }
                d.files.sort_by(|a, b| a.path.cmp(&b.path));
            }
        }
        batch.commit()?;
        let snapshot = Snapshot {
            id: id.clone(),
            created: now.to_string(),
            archives,
            restores: Some(old.to_string()),
        };
        save_json(self, &self.snapshot_path(&id), &snapshot)?;
        tracing::info!(snapshot = %id, restores = old, "re-dated copy made");
        Ok(id)
    }
}

struct DistContext<'a> {
    store: &'a Store,
    key: &'a SigningKeys,
    date: &'a str,
    dist: &'a str,
    /// The new snapshot's id: the name of the index diffs it adds.
    id: &'a str,
    prev: Option<&'a DistSnapshot>,
    /// The previous snapshot's signatures are by other keys: sign the
    /// Release anew even if the components did not change.
    resign: bool,
    /// apt's `Snapshots:` value for this archive, when configured.
    snapshots: Option<String>,
}

impl DistContext<'_> {
    fn render(
        &self,
        batch: &mut Batch<'_>,
        components: &BTreeMap<String, String>,
    ) -> Result<DistSnapshot> {
        if let Some(prev) = self.prev.filter(|_| !self.resign) {
            if &prev.components == components {
                // Same content: the signed files of the previous snapshot
                // are still true, byte for byte.
                return Ok(prev.clone());
            }
        }
        let started = std::time::Instant::now();
        // Each state is viewed where it is mapped (`model::state_view`).
        let blobs = components
            .values()
            .map(|hash| Ok(self.store.pool().map(hash)?))
            .collect::<Result<Vec<_>>>()?;
        let mut states = BTreeMap::new();
        for ((comp, hash), blob) in components.iter().zip(&blobs) {
            states.insert(comp.clone(), self.store.view_component(hash, blob)?);
        }
        tracing::debug!(
            dist = self.dist,
            ms = started.elapsed().as_millis() as u64,
            "component states loaded"
        );
        let archs = self.architectures(&states);
        let upstreams: Vec<_> = states.values().map(StateView::upstream).collect();
        if let Some(v) = crate::model::verbatim::plan_verbatim_dist(&upstreams) {
            // A verbatim mirror: the upstream's signed files, unchanged.
            return Ok(DistSnapshot {
                components: components.clone(),
                architectures: archs,
                files: v.files,
                pdiffs: Vec::new(),
                identity: None,
            });
        }
        let mut files: Vec<DistFile> = Vec::new();
        let mut pdiffs: Vec<DistFile> = Vec::new();
        for (comp, state) in &states {
            if let Some((reused, patches)) = self.reusable(comp, &components[comp], &archs) {
                files.extend(reused);
                pdiffs.extend(patches);
                continue;
            }
            let started = std::time::Instant::now();
            files.extend(state.extra_files().iter().cloned());
            let plain = render::render_plain_into(comp, state, &archs, |_, len| {
                index_buffer(self.store, len)
            })?;
            for f in &plain {
                writeback(&f.data);
            }
            let rendered_ms = started.elapsed().as_millis() as u64;
            // The previous snapshot's blocks of the same index, if kept.
            let previous = |path: &str| {
                let f = self.prev?.files.iter().find(|f| f.path == path)?;
                self.store.previous_blocks(&f.sha256)
            };
            let prev_hash = self
                .prev
                .and_then(|p| p.components.get(comp))
                .map(String::as_str);
            // Contents on its own thread, beside Packages: both mostly copy
            // cached blocks now, and neither waits for the other.
            let (compressed, contents) = std::thread::scope(|scope| {
                let contents = scope.spawn(|| {
                    let files = self.store.render_contents(
                        comp,
                        (&components[comp], prev_hash),
                        state,
                        &archs,
                        &previous,
                    )?;
                    // Hashed here too, off the Packages thread.
                    let hashed: Vec<_> = files
                        .into_iter()
                        .map(|(path, data)| {
                            let digests = crate::hash::release_digest(&data);
                            (path, data, digests)
                        })
                        .collect();
                    Ok::<_, Error>(hashed)
                });
                let buffer = |_: &str, len| index_buffer(self.store, len);
                let compressed = render::render_compressed_cached(plain, &previous, &buffer);
                let contents = contents
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (compressed, contents)
            });
            let (compressed, contents) = (compressed?, contents?);
            // Written every time (a few KiB): one torn or stale is replaced.
            for (plain_sha, map) in &compressed.maps {
                self.store.write_block_map(plain_sha, map)?;
            }
            let (reused, recompressed) = (compressed.reused, compressed.compressed);
            let rendered = compressed.files;
            let compressed_form = |p: &str| p.ends_with(".gz") || p.ends_with(".xz");
            for f in rendered.iter().filter(|f| compressed_form(&f.file.path)) {
                writeback(&f.file.data);
            }
            let compressed_ms = started.elapsed().as_millis() as u64;
            for f in &rendered {
                if super::pdiffs::has_diffs(&f.file.path) {
                    let diffs = self.store.index_diffs(
                        batch,
                        self.prev,
                        &f.file.path,
                        &f.file.data,
                        &f.digests,
                        self.id,
                    )?;
                    files.extend(diffs.index);
                    pdiffs.extend(diffs.patches);
                }
            }
            let diffed_ms = started.elapsed().as_millis() as u64;
            for f in rendered {
                let d = batch.add_index(f.file.data, f.digests)?;
                files.push(dist_file(f.file.path, &d));
            }
            for (path, data, digests) in contents {
                let d = batch.add_hashed(&data, digests)?;
                files.push(crate::model::DistFile {
                    path,
                    sha256: d.sha256,
                    md5: d.md5,
                    size: d.size,
                });
            }
            tracing::debug!(
                dist = self.dist,
                component = comp.as_str(),
                rendered_ms,
                compressed_ms,
                blocks_reused = reused,
                blocks_compressed = recompressed,
                diffed_ms,
                stored_ms = started.elapsed().as_millis() as u64,
                "indices rendered"
            );
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let listed: Vec<(String, Digests)> = files
            .iter()
            .map(|f| {
                let d = Digests {
                    size: f.size,
                    md5: f.md5.clone(),
                    sha1: String::new(),
                    sha256: f.sha256.clone(),
                };
                (f.path.clone(), d)
            })
            .collect();
        let comps: Vec<String> = components.keys().cloned().collect();
        let meta = self.store.meta();
        // A mirrored dist keeps its upstream's identity when every
        // component carries the same one.
        let mut ids = states.values().map(StateView::identity);
        let identity = ids
            .next()
            .flatten()
            .filter(|first| states.values().all(|s| s.identity() == Some(*first)))
            .cloned();
        let release_text = release::render_release(
            &release::ReleaseMeta {
                origin: &meta.origin,
                label: &meta.label,
                dist: self.dist,
                date: self.date,
                architectures: &archs,
                components: &comps,
                description: None,
                identity: identity.as_ref(),
            },
            &listed,
        );
        let release_text = release::with_snapshots(release_text, self.snapshots.as_deref());
        let in_release = self.key.clearsign(&release_text)?;
        let release_gpg = self.key.sign_detached(release_text.as_bytes())?;
        for (path, data) in [
            ("Release", release_text.as_bytes()),
            ("InRelease", in_release.as_bytes()),
            ("Release.gpg", release_gpg.as_bytes()),
        ] {
            let d = batch.add_bytes(data)?;
            files.push(dist_file(path.to_string(), &d));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        pdiffs.sort_by(|a, b| a.path.cmp(&b.path));
        // Unmapping a large state (172 MB at 200,000 packages) takes a
        // while; nothing waits for it.
        drop(states);
        std::thread::spawn(move || drop(blobs));
        Ok(DistSnapshot {
            components: components.clone(),
            architectures: archs,
            files,
            pdiffs,
            identity,
        })
    }

    /// Concrete architectures of the packages plus the store's defaults.
    fn architectures(&self, states: &BTreeMap<String, StateView<'_>>) -> Vec<String> {
        let mut archs: Vec<String> = self.store.meta().architectures.clone();
        for s in states.values() {
            archs.extend(s.architectures().map(str::to_string));
        }
        archs.sort();
        archs.dedup();
        archs
    }

    /// The previous snapshot's files (listed, and index diffs) of a
    /// component whose content and architecture list did not change.
    fn reusable(
        &self,
        comp: &str,
        hash: &str,
        archs: &[String],
    ) -> Option<(Vec<DistFile>, Vec<DistFile>)> {
        let prev = self.prev?;
        if prev.components.get(comp).map(String::as_str) != Some(hash)
            || prev.architectures != archs
        {
            return None;
        }
        let prefix = format!("{comp}/");
        // A snapshot made before Contents indices existed: render again.
        let contents = format!("{comp}/Contents-");
        if !prev.files.iter().any(|f| f.path.starts_with(&contents)) {
            return None;
        }
        let under = |files: &[DistFile]| -> Vec<DistFile> {
            files
                .iter()
                .filter(|f| f.path.starts_with(&prefix))
                .cloned()
                .collect()
        };
        Some((under(&prev.files), under(&prev.pdiffs)))
    }
}

/// Memory for an index of `len` bytes, plain or compressed: a large one
/// is spooled into its pool file as it is rendered (see [`Pool::spool`]),
/// where the file system can reserve the space; elsewhere it is kept in
/// memory and written once hashed.
///
/// [`Pool::spool`]: super::pool::Pool::spool
fn index_buffer(store: &Store, len: usize) -> io::Result<IndexBuf> {
    if len < crate::index::blocks::BLOCKS_FROM {
        return Ok(IndexBuf::Heap(vec![0; len]));
    }
    match store.pool().spool(len) {
        Ok(spool) => Ok(IndexBuf::Spool(spool)),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(IndexBuf::Heap(vec![0; len])),
        Err(e) => Err(e),
    }
}

/// Starts writing a complete index to disk. Only a head start for the
/// commit's sync, which reports any error: a failure here is logged.
fn writeback(data: &IndexBuf) {
    if let Err(e) = data.start_writeback() {
        tracing::debug!(error = %e, "early writeback not started");
    }
}

fn dist_file(path: String, d: &Digests) -> DistFile {
    DistFile {
        path,
        sha256: d.sha256.clone(),
        md5: d.md5.clone(),
        size: d.size,
    }
}

/// Removes a snapshot manifest (gc only).
pub(crate) fn remove_snapshot(store: &Store, _lock: &super::WriteLock, id: &str) -> io::Result<()> {
    super::fsutil::remove_file(&store.snapshot_path(id))?;
    super::fsutil::sync_dir(&store.root().join("snapshots"))
}

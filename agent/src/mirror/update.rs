//! Wiring of one mirror update: load, verify, fetch, decide, commit.
//!
//! Only the commit holds the store's writer lock: a first mirror of a
//! large upstream downloads for hours, and a hotfix import or an urgent
//! promotion must not wait for it. The download holds the mirror's own
//! lock (two updates of one mirror never run at once); its blobs are
//! content-addressed and named in the mirror record's `pending` list
//! before they are fetched, so gc keeps them until the commit refers to
//! them.
//!
//! 1. Fetch each dist's `InRelease` (else
//!    `Release` + `Release.gpg`) conditionally and verify it with the
//!    mirror's keyring. A dist whose release is unchanged since the last
//!    committed update (HTTP 304, or the same bytes) is not looked at again
//!    (`verify_release`).
//! 2. Fetch the indices the release lists (by-hash when offered), each
//!    checked against the release's SHA256; parse them; filter.
//! 3. Download the pool files the store lacks, concurrently, committing
//!    finished ones to the pool in batches and recording them as pending in
//!    `mirrors/<name>.json`, so an interrupted update resumes without
//!    fetching them again (and `gc` keeps them meanwhile).
//! 4. Commit (`Store::commit_mirror`, which keeps its order and locks):
//!    component state blobs, then `state.json` (the one commit point), then
//!    the mirror record. Any failure before leaves the mirror's previous
//!    state in place.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures_util::StreamExt;
use repofs::hash::{sha256_hex, Digests};
use repofs::index::read::packages::{self as index, IndexError};
use repofs::index::read::plan::{plan_indices, IndexFetch, IndexKind, Wanted};
use repofs::index::read::release::Release;
use repofs::model::verbatim::UpstreamFiles;
use repofs::model::{ComponentState, DistFile, PoolFile};
use repofs::sign::Keyring;
use repofs::store::mirror_commit::{Dists, MirrorCommit};
use repofs::store::mirrors::{MirrorLock, MirrorRecord};
use repofs::store::state::add_component;
use repofs::Store;
use serde::Serialize;

use super::fetch::{Expected, FetchError, FetchErrorKind, Fetcher};
use super::plan::{self, ComponentInput, Parsed};
use super::verify_release::{FreshRelease, ReleaseCheck, ReleaseOutcome};
use super::{Error, Progress};
use crate::config::MirrorConfig;
use repofs::model::closure::{self, Candidate};

/// Pool files committed per batch while downloading (also every few seconds).
const BATCH_FILES: usize = 256;
const BATCH_SECONDS: u64 = 5;

/// Everything one update needs, resolved by the caller.
pub struct Update<'a> {
    pub store: &'a Store,
    pub mirror: &'a MirrorConfig,
    /// The keyring file's bytes (`None` only for `trusted` mirrors).
    pub keyring: Option<&'a [u8]>,
    pub fetcher: &'a Fetcher,
    pub concurrency: usize,
    pub now: jiff::Timestamp,
    pub progress: &'a dyn Progress,
}

#[derive(Debug, Clone, Serialize)]
pub struct DistReport {
    pub dist: String,
    /// The upstream release had not changed: nothing was fetched for it.
    pub unchanged: bool,
    pub packages: usize,
    pub sources: usize,
}

/// What an update did.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    pub mirror: String,
    /// The mirror's working state changed (the next snapshot will differ).
    pub changed: bool,
    pub dists: Vec<DistReport>,
    /// Pool files downloaded.
    pub files: u64,
    /// Bytes received over HTTP (release files, indices and pool files).
    pub bytes: u64,
    pub requests: u64,
    pub seconds: f64,
}

/// An index fetched, verified and decompressed.
struct FetchedIndex {
    plan: IndexFetch,
    /// The URL it was fetched from (named in errors, kept as entries' origin).
    url: String,
    /// The bytes as fetched (served as they are by verbatim mirrors).
    raw: Vec<u8>,
    /// The decompressed text, which the parsed records borrow.
    text: String,
}

struct FreshDist {
    dist: String,
    release: FreshRelease,
    indices: Vec<FetchedIndex>,
}

/// What the store held of the mirror when the update began.
struct Loaded {
    /// The mirror's archive in the working state.
    current: Dists,
    record: MirrorRecord,
    /// The record describes `current` under the present configuration, so
    /// its releases may be asked for conditionally.
    trusted: bool,
}

/// Step 1's verdict per dist.
struct Releases {
    fresh: Vec<(String, FreshRelease)>,
    unchanged: BTreeSet<String>,
}

/// The planned component states of the fresh dists.
type States = BTreeMap<(String, String), ComponentState>;

/// What the update commits.
#[derive(Default)]
struct Decided {
    /// The dists whose release did not change, as committed.
    unchanged: Dists,
    fresh: Vec<FreshDist>,
    states: States,
}

/// Runs CPU- or disk-bound work (decompression, hashing, pool commits) in
/// place without stalling the other downloads: tokio moves this worker's
/// tasks elsewhere meanwhile. Needs the multi-thread runtime that
/// `commands::mirror` builds.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Update<'_> {
    pub(super) fn dist_url(&self, dist: &str, path: &str) -> String {
        format!("{}dists/{dist}/{path}", self.mirror.base_url())
    }

    pub async fn run(&self) -> Result<UpdateReport, Error> {
        let start = Instant::now();
        let (requests0, bytes0) = (self.fetcher.requests(), self.fetcher.bytes());
        let keyring = self
            .keyring
            .map(Keyring::from_bytes)
            .transpose()
            .map_err(|e| Error::Keyring {
                path: self.mirror.keyring.clone().unwrap_or_default().into(),
                source: Box::new(e),
            })?;
        let fingerprint = self.mirror.fingerprint(self.keyring.unwrap_or_default());
        self.progress.stage("waiting for the mirror's lock");
        let mirror_lock = blocking(|| self.store.lock_mirror(&self.mirror.name))?;
        let mut loaded = self.load(&fingerprint)?;
        let releases = self.fetch_releases(&loaded, keyring.as_ref()).await?;
        let mut report = UpdateReport {
            mirror: self.mirror.name.clone(),
            changed: false,
            dists: Vec::new(),
            files: 0,
            bytes: 0,
            requests: 0,
            seconds: 0.0,
        };
        let mut decided = Decided::default();
        for dist in releases.unchanged {
            let comps = loaded.current.get(&dist).cloned().unwrap_or_default();
            report.dists.push(DistReport {
                dist: dist.clone(),
                unchanged: true,
                packages: 0,
                sources: 0,
            });
            decided.unchanged.insert(dist, comps);
        }
        for (dist, release) in releases.fresh {
            self.progress.stage(&format!("{dist}: indices"));
            let indices = self.fetch_indices(&dist, &release.release).await?;
            decided.fresh.push(FreshDist {
                dist,
                release,
                indices,
            });
        }
        if !decided.fresh.is_empty() {
            let (states, reports) = self.decide(&decided.fresh)?;
            report.dists.extend(reports);
            report.files = self
                .download_missing(&mirror_lock, &states, &mut loaded.record)
                .await?;
            if !self.mirror.verbatim {
                // Contents sidecars of the new packages, outside the store
                // lock, so the next snapshot only reads them.
                self.progress.stage("listing package contents");
                blocking(|| {
                    self.store.ensure_contents(
                        states
                            .values()
                            .flat_map(|s| s.binaries.iter())
                            .map(|b| b.file.sha256.as_str()),
                    )
                })?;
            }
            decided.states = states;
        }
        report.changed = self.commit(&mirror_lock, loaded, fingerprint, decided)?;
        report.dists.sort_by(|a, b| a.dist.cmp(&b.dist));
        report.requests = self.fetcher.requests() - requests0;
        report.bytes = self.fetcher.bytes() - bytes0;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// What the store holds of the mirror (read under the mirror's lock).
    fn load(&self, fingerprint: &str) -> Result<Loaded, Error> {
        let name = self.mirror.name.as_str();
        let state = self.store.load_state()?;
        let record = self.store.load_mirror_record(name)?;
        let current = state.get(name).cloned().unwrap_or_default();
        if record.is_none() && !current.is_empty() {
            return Err(Error::NotAMirror(name.to_string()));
        }
        let record = record.unwrap_or_default();
        // The record describes the committed state only if it agrees with it.
        let trusted = record.config == fingerprint && record.committed == current;
        Ok(Loaded {
            current,
            record,
            trusted,
        })
    }

    fn release_check<'a>(&'a self, keyring: Option<&'a Keyring>) -> ReleaseCheck<'a> {
        ReleaseCheck {
            base_url: self.mirror.base_url(),
            mirror: &self.mirror.name,
            verbatim: self.mirror.verbatim,
            wanted: self.wanted(),
            keyring,
            now: self.now,
        }
    }

    /// Step 1: each dist's release, verified, or found unchanged.
    async fn fetch_releases(
        &self,
        loaded: &Loaded,
        keyring: Option<&Keyring>,
    ) -> Result<Releases, Error> {
        let check = self.release_check(keyring);
        let mut fresh = Vec::new();
        let mut unchanged = BTreeSet::new();
        for dist in &self.mirror.dists {
            self.progress.stage(&format!("{dist}: release"));
            let prev = loaded
                .record
                .dists
                .get(dist)
                .filter(|_| loaded.trusted && loaded.current.contains_key(dist));
            match check.fetch_release(self.fetcher, dist, prev).await? {
                ReleaseOutcome::Unchanged => {
                    unchanged.insert(dist.clone());
                }
                ReleaseOutcome::Fresh(r) => fresh.push((dist.clone(), *r)),
            }
        }
        // A filter's closure spans every dist: when one changed, redo all.
        if !fresh.is_empty() && self.mirror.packages.is_some() && !unchanged.is_empty() {
            for dist in std::mem::take(&mut unchanged) {
                let r = check.fetch_release(self.fetcher, &dist, None).await?;
                if let ReleaseOutcome::Fresh(r) = r {
                    fresh.push((dist, *r));
                }
            }
        }
        Ok(Releases { fresh, unchanged })
    }

    /// The commit: the only part under the store's writer lock. Returns
    /// whether the working state changed.
    fn commit(
        &self,
        mirror_lock: &MirrorLock,
        loaded: Loaded,
        fingerprint: String,
        decided: Decided,
    ) -> Result<bool, Error> {
        let Decided {
            mut unchanged,
            fresh,
            states,
        } = decided;
        let mut releases = loaded.record.dists;
        for d in &fresh {
            releases.insert(d.dist.clone(), d.release.record.clone());
        }
        repofs::store::failpoint::hit("mirror:before-commit");
        self.progress.stage("waiting for the store lock");
        let commit = MirrorCommit {
            before: &loaded.current,
            config: fingerprint,
            releases,
        };
        blocking(|| {
            self.store.commit_mirror(mirror_lock, commit, |batch| {
                if !fresh.is_empty() {
                    self.progress.stage("committing");
                    let signed = self.keyring.is_some();
                    unchanged.extend(self.add_components(batch, &fresh, states, signed)?);
                }
                Ok::<_, Error>(unchanged)
            })
        })
    }

    pub(super) fn wanted(&self) -> Wanted<'_> {
        Wanted {
            components: &self.mirror.components,
            architectures: &self.mirror.architectures,
            sources: self.mirror.sources,
            translations: &self.mirror.translations,
            udebs: self.mirror.udebs,
        }
    }

    /// Fetches, verifies and decompresses the indices of one dist.
    async fn fetch_indices(
        &self,
        dist: &str,
        release: &Release,
    ) -> Result<Vec<FetchedIndex>, Error> {
        let url = self.dist_url(dist, "Release");
        let plans = plan_indices(release, &self.wanted())
            .map_err(|source| Error::Release { url, source })?;
        let mut out = Vec::new();
        for plan in plans {
            // apt's order: by-hash, the canonical name, then each other form
            // the Release lists; only when none verifies is it an error.
            let variants = std::iter::once(plan.clone())
                .chain(plan.fallbacks.iter().map(|v| plan.with_variant(v)));
            let mut first_error = None;
            let mut fetched = None;
            // Whether every form failed because the upstream does not serve it.
            let mut all_missing = true;
            for variant in variants {
                match self.fetch_index(dist, variant).await {
                    Ok(f) => {
                        fetched = Some(f);
                        break;
                    }
                    Err(e) if e.is_user_error() || is_not_found(&e) => {
                        tracing::info!(error = %crate::redact::redact_urls(&super::chain(&e)), "index not usable in this form; trying the next");
                        all_missing &= is_not_found(&e);
                        first_error.get_or_insert(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            match (fetched, first_error) {
                (Some(f), _) => out.push(f),
                // apt ignores a Translation the upstream lists but does not
                // serve (a partial mirror): so does the mirror. The file is
                // left out of the state, so the Release halo renders does
                // not list it either. A form that is served but wrong is
                // still an error.
                (None, Some(_)) if plan.is_opaque() && all_missing => {
                    tracing::warn!(
                        mirror = %self.mirror.name,
                        "{dist}/{} is listed in the upstream's Release but not served (404): left out, as apt does",
                        plan.path
                    );
                }
                (None, Some(e)) => return Err(e),
                (None, None) => unreachable!("an index plan has at least one form"),
            }
        }
        Ok(out)
    }

    /// Fetches one form of an index, checks it against the Release (and
    /// the uncompressed file's entry), decompresses it.
    async fn fetch_index(&self, dist: &str, plan: IndexFetch) -> Result<FetchedIndex, Error> {
        let url = self.dist_url(dist, &plan.fetch_path);
        let expected = Expected {
            size: plan.listed.size,
            sha256: plan.listed.hash.clone(),
        };
        let raw = self.fetcher.fetch_verified(&url, &expected).await?;
        if plan.is_opaque() {
            // Verified against the Release; served as it came.
            return Ok(FetchedIndex {
                plan,
                url,
                raw,
                text: String::new(),
            });
        }
        // The Release's size of the uncompressed file bounds the output.
        let limit = plan
            .plain
            .as_ref()
            .map_or(index::MAX_INDEX_SIZE, |p| p.size.min(index::MAX_INDEX_SIZE));
        let plain =
            blocking(|| index::decompress(&raw, plan.compression, limit)).map_err(|source| {
                Error::Index {
                    url: url.clone(),
                    source,
                }
            })?;
        if let Some(listed) = &plan.plain {
            let plain_url = self.dist_url(dist, plan.plain_path());
            let got = blocking(|| sha256_hex(&plain));
            if plain.len() as u64 != listed.size || got != listed.hash {
                return Err(FetchError {
                    url: plain_url,
                    kind: FetchErrorKind::HashMismatch {
                        got,
                        expected: listed.hash.clone(),
                    },
                }
                .into());
            }
        }
        let text = String::from_utf8(plain).map_err(|_| Error::Index {
            url: url.clone(),
            source: IndexError::NotUtf8,
        })?;
        Ok(FetchedIndex {
            plan,
            url,
            raw,
            text,
        })
    }

    /// Decides the fresh dists' new component states: parses their
    /// indices, applies the `packages` filter, plans each component.
    fn decide(&self, dists: &[FreshDist]) -> Result<(States, Vec<DistReport>), Error> {
        self.progress.stage("parsing indices");
        let inputs = blocking(|| parse_dists(dists))?;
        let keep = match &self.mirror.packages {
            Some(names) => {
                let universe: Vec<Candidate<'_>> = inputs
                    .values()
                    .flat_map(|comps| comps.values())
                    .flat_map(|c| c.candidates())
                    .collect();
                let sel = closure::select(&universe, names, self.mirror.with_deps);
                if !sel.unknown.is_empty() {
                    return Err(Error::UnknownPackages(sel.unknown));
                }
                Some(sel.keep)
            }
            None => None,
        };
        let mut states = States::new();
        let mut reports = Vec::new();
        for (dist, comps) in &inputs {
            let mut dr = DistReport {
                dist: dist.clone(),
                unchanged: false,
                packages: 0,
                sources: 0,
            };
            for (comp, input) in comps {
                let mut state = plan::plan_component(input, keep.as_ref())?;
                if let Some(n) = self.mirror.keep_versions {
                    let dropped = repofs::model::retention::retain_versions(&mut state, n);
                    if !dropped.is_empty() {
                        tracing::info!(
                            mirror = self.mirror.name.as_str(),
                            dist = dist.as_str(),
                            component = comp.as_str(),
                            dropped = dropped.len(),
                            "keep_versions left older versions out"
                        );
                    }
                }
                dr.packages += state.binaries.len();
                dr.sources += state.sources.len();
                states.insert((dist.clone(), comp.clone()), state);
            }
            reports.push(dr);
        }
        Ok((states, reports))
    }

    /// Downloads the pool files `states` name that the store lacks (without
    /// the store lock), named in the record's `pending` list first; returns
    /// how many.
    async fn download_missing(
        &self,
        mirror_lock: &MirrorLock,
        states: &States,
        record: &mut MirrorRecord,
    ) -> Result<u64, Error> {
        let pool = self.store.pool();
        let presence = pool.open_dir();
        let wanted = blocking(|| {
            // Its shard directories stay open only for the plan.
            let probe = presence.as_ref().map(|p| p.probe());
            plan::plan_fetch(states.values(), |h, s| match &probe {
                Some(p) => p.has(h, s),
                None => pool.has(h, s),
            })
        })?;
        if wanted.is_empty() {
            return Ok(0);
        }
        record
            .pending
            .extend(wanted.iter().map(|f| f.sha256.clone()));
        self.store.save_mirror_pending(mirror_lock, record)?;
        self.download(&pool, &wanted).await
    }

    /// The component states (with the verbatim files) into `batch`, which
    /// the store commits under its writer lock before `state.json` names
    /// them. Returns the new dist -> component map of the fresh dists.
    fn add_components(
        &self,
        batch: &mut repofs::store::pool::Batch<'_>,
        dists: &[FreshDist],
        mut states: States,
        signed: bool,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>, Error> {
        let keyring_blob = match (self.mirror.verbatim && signed, self.keyring) {
            (true, Some(k)) => Some(batch.add_bytes(k)?.sha256),
            _ => None,
        };
        let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for d in dists {
            let release_files = match &keyring_blob {
                Some(_) => d
                    .release
                    .files
                    .iter()
                    .map(|(path, data)| Ok(dist_file(path, &batch.add_bytes(data)?)))
                    .collect::<std::io::Result<Vec<_>>>()?,
                None => Vec::new(),
            };
            for comp in &self.mirror.components {
                let Some(mut state) = states.remove(&(d.dist.clone(), comp.clone())) else {
                    continue;
                };
                // Translations are served as fetched beside the indices we
                // render.
                if keyring_blob.is_none() {
                    for idx in d
                        .indices
                        .iter()
                        .filter(|i| i.plan.is_opaque() && i.plan.kind.component() == comp)
                    {
                        state
                            .extra_files
                            .push(dist_file(&idx.plan.path, &batch.add_bytes(&idx.raw)?));
                    }
                }
                if self.mirror.keep_identity {
                    let r = &d.release.release;
                    state.identity = Some(repofs::model::state::ReleaseIdentity {
                        origin: r.origin.clone(),
                        label: r.label.clone(),
                        suite: r.suite.clone(),
                        codename: r.codename.clone(),
                    });
                }
                if let Some(keyring) = &keyring_blob {
                    state.upstream = Some(UpstreamFiles {
                        release: release_files.clone(),
                        indices: verbatim_indices(batch, d, comp)?,
                        keyring: keyring.clone(),
                    });
                }
                let hash = add_component(batch, &state)?;
                out.entry(d.dist.clone())
                    .or_default()
                    .insert(comp.clone(), hash);
            }
        }
        Ok(out)
    }

    /// Downloads `files` into the pool; returns how many. Keeps going after
    /// a failed file so that a retry needs only the failures, commits what
    /// finished, then reports the first failure.
    async fn download(
        &self,
        pool: &repofs::store::Pool,
        files: &[&PoolFile],
    ) -> Result<u64, Error> {
        let total: u64 = files.iter().map(|f| f.size).sum();
        self.progress.start_downloads(files.len() as u64, total);
        let base = self.mirror.base_url();
        let mut results = futures_util::stream::iter(files.iter().map(|f| {
            let url = format!("{base}{}", f.path);
            let expected = Expected {
                size: f.size,
                sha256: f.sha256.clone(),
            };
            async move { self.fetcher.fetch_blob(pool, &url, &expected).await }
        }))
        .buffer_unordered(self.concurrency);
        let mut batch = pool.batch();
        let mut last_commit = Instant::now();
        let (mut done, mut failed, mut first_error) = (0u64, 0usize, None);
        while let Some(result) = results.next().await {
            match result {
                Ok(blob) => {
                    self.progress.downloaded(blob.digests().size);
                    batch.add_finished(blob)?;
                    done += 1;
                    if batch.len() >= BATCH_FILES
                        || last_commit.elapsed().as_secs() >= BATCH_SECONDS
                    {
                        let full = std::mem::replace(&mut batch, pool.batch());
                        blocking(|| full.commit())?;
                        last_commit = Instant::now();
                    }
                }
                Err(e) if !e.is_upstream() => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = %crate::redact::redact_urls(&super::chain(&e)), "download failed");
                    failed += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        drop(results);
        blocking(|| batch.commit())?;
        match first_error {
            Some(first) => Err(Error::Downloads { failed, first }),
            None => Ok(done),
        }
    }
}

/// Whether `e` is the upstream's 404 for the file asked for.
fn is_not_found(e: &Error) -> bool {
    matches!(
        e,
        Error::Fetch(FetchError {
            kind: FetchErrorKind::NotFound,
            ..
        })
    )
}

fn dist_file(path: &str, d: &Digests) -> DistFile {
    DistFile {
        path: path.to_string(),
        sha256: d.sha256.clone(),
        md5: d.md5.clone(),
        size: d.size,
    }
}

/// The index files of `comp` as fetched (and the plain one when listed).
fn verbatim_indices(
    batch: &mut repofs::store::pool::Batch<'_>,
    d: &FreshDist,
    comp: &str,
) -> std::io::Result<Vec<DistFile>> {
    let mut out = Vec::new();
    for idx in d.indices.iter().filter(|i| i.plan.kind.component() == comp) {
        out.push(dist_file(&idx.plan.path, &batch.add_bytes(&idx.raw)?));
        if idx.plan.plain.is_some() && !idx.plan.is_opaque() {
            out.push(dist_file(
                idx.plan.plain_path(),
                &batch.add_bytes(idx.text.as_bytes())?,
            ));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

type Inputs<'a> = BTreeMap<String, BTreeMap<String, ComponentInput<'a>>>;

/// dist -> component -> parsed indices.
fn parse_dists(dists: &[FreshDist]) -> Result<Inputs<'_>, Error> {
    let mut out: Inputs<'_> = BTreeMap::new();
    for d in dists {
        let comps = out.entry(d.dist.clone()).or_default();
        for idx in &d.indices {
            let err = |source| Error::Index {
                url: idx.url.clone(),
                source,
            };
            let input = comps
                .entry(idx.plan.kind.component().to_string())
                .or_default();
            match &idx.plan.kind {
                IndexKind::Packages { .. } => input.packages.push(Parsed {
                    url: idx.url.clone(),
                    records: index::parse_packages(&idx.text).map_err(err)?,
                }),
                IndexKind::Sources { .. } => input.sources.push(Parsed {
                    url: idx.url.clone(),
                    records: index::parse_sources(&idx.text).map_err(err)?,
                }),
                IndexKind::Translation { .. } => {}
            }
        }
    }
    Ok(out)
}

//! `halo fsck`: proves the store sound or names what is not.
//!
//! Checks every blob against its hash, every snapshot manifest (its files,
//! its component states and the pool files they name, Release against its
//! indices, InRelease against the store's public keys, or its retired keys
//! for a snapshot no channel points at), that the public keyring holds
//! every signing key, the working state, and every channel (pointer target
//! exists, history agrees with the pointer).
//! Leftover temp files of crashed writers are reported, not faults; so are
//! the work directories (acceptance roots, exports) of runs that died
//! (`store::work`), which `gc` removes. Holds are checked with their
//! channel: a hold has a reason, and its history says who set it.
//! A verbatim mirror's dist is checked against the upstream keyring its
//! component states name instead of the store key.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use fs_err as fs;

use super::{Result, Store};
use crate::hash::{is_sha256_hex, HashingWriter};
use crate::model::{ComponentState, DistFile, DistSnapshot, Snapshot};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub what: String,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct FsckReport {
    pub blobs: u64,
    pub snapshots: u64,
    pub channels: u64,
    pub temp_files: u64,
    /// Kept Contents lists (sidecars, packs, component lists) checked
    /// against their packages.
    pub contents: u64,
    /// Work directories of runs that are gone (`gc` removes them).
    pub leftovers: Vec<super::work::Leftover>,
    pub problems: Vec<Problem>,
}

impl FsckReport {
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Checker<'a> {
    store: &'a Store,
    report: FsckReport,
    /// Blobs found whole, by hash -> size.
    blobs: HashMap<String, u64>,
    components: HashSet<String>,
    /// Component hash -> the upstream release files and keyring it carries
    /// (verbatim mirrors), for checking a snapshot's signed files.
    upstream: HashMap<String, Option<(Vec<DistFile>, String)>>,
    /// `keys/repo.gpg` (what clients trust) and `keys/retired.gpg`.
    keyring: Option<crate::sign::Keyring>,
    retired: Option<crate::sign::Keyring>,
    /// Snapshots a channel points at: their clients need the current keys.
    served: HashSet<String>,
    /// Package -> the digest of the paths it installs, each package listed
    /// once however many kept lists name it (or why it cannot be listed).
    listed: HashMap<String, std::result::Result<[u8; 32], String>>,
}

impl Store {
    pub fn fsck(&self, progress: &mut dyn FnMut(u64, u64)) -> Result<FsckReport> {
        let mut c = Checker {
            store: self,
            report: FsckReport::default(),
            blobs: HashMap::new(),
            components: HashSet::new(),
            upstream: HashMap::new(),
            keyring: crate::bounded::read_private(
                &self.keys_dir().join("repo.gpg"),
                crate::bounded::KEY_LIMIT,
            )
            .ok()
            .and_then(|k| crate::sign::Keyring::from_bytes(&k).ok()),
            retired: self.load_retired_keys().ok().flatten(),
            served: HashSet::new(),
            listed: HashMap::new(),
        };
        // Damaged pointers are check_channels' to report.
        for (_, pointer) in self.list_channels().unwrap_or_default() {
            c.served.extend(pointer.snapshot);
        }
        c.check_pool(progress)?;
        c.check_contents()?;
        c.check_state()?;
        for id in self.list_snapshots()? {
            c.check_snapshot(&id);
        }
        c.check_channels()?;
        c.check_secret_key();
        c.check_public_keys();
        c.report.temp_files = self.count_temp_files()?;
        c.report.leftovers = self.work_leftovers()?;
        Ok(c.report)
    }
}

impl Store {
    /// Temp files left by writers (in `tmp/` and its shard directories).
    pub fn count_temp_files(&self) -> Result<u64> {
        let mut n = 0;
        for e in fs::read_dir(self.tmp_dir())? {
            let path = e?.path();
            n += if path.is_dir() {
                fs::read_dir(&path)?.count() as u64
            } else {
                1
            };
        }
        Ok(n)
    }
}

impl Checker<'_> {
    fn problem(&mut self, path: PathBuf, what: impl Into<String>) {
        self.report.problems.push(Problem {
            path,
            what: what.into(),
        });
    }

    fn check_pool(&mut self, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
        let pool = self.store.pool();
        let names = pool.list()?;
        let total = names.len() as u64;
        for (i, name) in names.iter().enumerate() {
            progress(i as u64 + 1, total);
            let path = pool.dir().join(name);
            let hash = match name.split_once('/') {
                Some((prefix, hash)) if is_sha256_hex(hash) && hash.starts_with(prefix) => hash,
                _ => {
                    self.problem(path, "stray file in the pool (not <2 hex>/<sha256>)");
                    continue;
                }
            };
            let mut w = HashingWriter::new(std::io::sink());
            let copied = fs::File::open(&path).and_then(|mut f| {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    std::io::Write::write_all(&mut w, &buf[..n])?;
                }
                Ok(())
            });
            if let Err(e) = copied {
                self.problem(path, format!("unreadable: {e}"));
                continue;
            }
            let d = w.finish().1;
            if d.sha256 != hash {
                self.problem(path, format!("content hashes to {}", d.sha256));
                continue;
            }
            self.blobs.insert(hash.to_string(), d.size);
            self.report.blobs += 1;
        }
        Ok(())
    }

    /// Every Contents sidecar of a package in the pool lists what the
    /// package installs. A sidecar whose package is gone is garbage for
    /// `gc`, not damage.
    fn check_contents(&mut self) -> Result<()> {
        for sha in self.store.list_contents()? {
            let path = self.store.contents_path(&sha);
            if !is_sha256_hex(&sha) {
                self.problem(
                    path,
                    "stray file among Contents sidecars (not <2 hex>/<sha256>)",
                );
                continue;
            }
            if !self.blobs.contains_key(&sha) {
                continue;
            }
            self.report.contents += 1;
            let cached = self.store.cached_contents(&sha);
            match self.store.list_package(&sha) {
                Ok(paths) if cached.as_ref() == Some(&paths) => {}
                Ok(_) => self.problem(
                    path,
                    "Contents sidecar disagrees with its package (torn or altered): remove it and the next snapshot makes it again",
                ),
                Err(e) => self.problem(
                    path,
                    format!("its package cannot be listed: {}", crate::error_chain(&e)),
                ),
            }
        }
        for path in self.store.list_packs()? {
            self.check_lists(path);
        }
        Ok(())
    }

    /// A Contents pack: whole, and every list of a
    /// package in the pool is what that package installs. Lists of packages
    /// gone from the pool are garbage for `gc`, not damage.
    fn check_lists(&mut self, path: PathBuf) {
        use super::contents::pack;
        let read = std::fs::File::open(&path).ok().and_then(|f| {
            let index = pack::read_index(&f)?;
            let data = pack::read_data(&f, &index)?;
            Some((index, data))
        });
        let Some((index, data)) = read else {
            return self.problem(
                path,
                "Contents lists torn or altered: remove the file (a cache: the next snapshot lists the packages again)",
            );
        };
        for (k, range) in index.entries() {
            let sha = hex::encode(k);
            if !self.blobs.contains_key(&sha) {
                continue;
            }
            self.report.contents += 1;
            let kept: [u8; 32] = {
                use sha2::Digest;
                sha2::Sha256::digest(data.get(range.clone()).unwrap_or_default()).into()
            };
            match self.package_list(&sha) {
                Ok(d) if d == kept => {}
                Ok(_) => self.problem(
                    path.clone(),
                    format!("Contents list of package {sha} disagrees with the package (altered): remove the file; the next snapshot lists the package again"),
                ),
                Err(e) => self.problem(
                    path.clone(),
                    format!("package {sha} cannot be listed: {e}"),
                ),
            }
        }
    }

    /// The digest of the paths package `sha` installs, listed once.
    fn package_list(&mut self, sha: &str) -> std::result::Result<[u8; 32], String> {
        if let Some(d) = self.listed.get(sha) {
            return d.clone();
        }
        let d = self
            .store
            .list_package(sha)
            .map(|p| super::contents::body_digest(p.iter().map(String::as_str)))
            .map_err(|e| crate::error_chain(&e));
        self.listed.insert(sha.to_string(), d.clone());
        d
    }

    /// The signing key must be readable by its owner alone: anyone who can
    /// read it can sign indices every client of the store trusts.
    fn check_secret_key(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.store.keys_dir().join("secret.asc");
        match fs::metadata(&path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                let mode = m.permissions().mode() & 0o777;
                self.problem(
                    path,
                    format!("secret key has mode {mode:o}: readable by others (chmod 600 it and consider the key exposed)"),
                );
            }
            Ok(_) => {}
            Err(e) => self.problem(path, format!("secret key: {e}")),
        }
    }

    /// Clients trust `keys/repo.gpg`: it must hold every key that signs.
    fn check_public_keys(&mut self) {
        let path = self.store.keys_dir().join("repo.gpg");
        let signing = match self.store.load_signing_keys() {
            Ok(k) => k.fingerprints(),
            Err(e) => {
                let path = self.store.keys_dir().join("secret.asc");
                return self.problem(path, crate::error_chain(&e));
            }
        };
        let published = self
            .keyring
            .as_ref()
            .map(|k| k.fingerprints())
            .unwrap_or_default();
        for f in signing.iter().filter(|f| !published.contains(f)) {
            self.problem(
                path.clone(),
                format!("lacks signing key {f}: clients given it cannot check its signatures"),
            );
        }
    }

    fn need_blob(&mut self, owner: &Path, sha256: &str, size: u64, what: &str) {
        match self.blobs.get(sha256) {
            Some(s) if *s == size => {}
            Some(s) => {
                let s = *s;
                self.problem(
                    owner.to_path_buf(),
                    format!("{what}: blob {sha256} has {s} bytes, expected {size}"),
                );
            }
            None => self.problem(
                owner.to_path_buf(),
                format!("{what}: blob {sha256} is missing or damaged"),
            ),
        }
    }

    fn check_component(&mut self, owner: &Path, hash: &str) {
        if !self.components.insert(hash.to_string()) {
            return;
        }
        let state: ComponentState = match self.store.load_component(hash) {
            Ok(s) => s,
            Err(e) => {
                self.problem(owner.to_path_buf(), format!("component state {hash}: {e}"));
                return;
            }
        };
        for f in state.pool_files() {
            self.need_blob(owner, &f.sha256, f.size, &f.path);
        }
        if let Some(up) = &state.upstream {
            for f in up.release.iter().chain(up.indices.iter()) {
                self.need_blob(owner, &f.sha256, f.size, &format!("upstream {}", f.path));
            }
            if !self.blobs.contains_key(&up.keyring) {
                self.problem(
                    owner.to_path_buf(),
                    format!(
                        "upstream keyring: blob {} is missing or damaged",
                        up.keyring
                    ),
                );
            }
        }
        let up = state.upstream.map(|u| (u.release, u.keyring));
        self.upstream.insert(hash.to_string(), up);
    }

    /// The keyring blob when every component of `dist` carries the same
    /// upstream release (the snapshot then serves it verbatim).
    fn verbatim_keyring(&self, dist: &DistSnapshot) -> Option<String> {
        let mut first: Option<&(Vec<DistFile>, String)> = None;
        for hash in dist.components.values() {
            let up = self.upstream.get(hash)?.as_ref()?;
            match first {
                None => first = Some(up),
                Some(f) if f != up => return None,
                Some(_) => {}
            }
        }
        first.map(|(_, k)| k.clone())
    }

    fn check_state(&mut self) -> Result<()> {
        let path = self.store.root().join("state.json");
        match self.store.load_state() {
            Ok(state) => {
                for comps in state.values().flat_map(|d| d.values()) {
                    for hash in comps.values() {
                        self.check_component(&path, hash);
                    }
                }
            }
            Err(e) => self.problem(path, crate::error_chain(&e)),
        }
        Ok(())
    }

    fn check_snapshot(&mut self, id: &str) {
        let path = self.store.snapshot_path(id);
        self.report.snapshots += 1;
        let snap: Snapshot = match self.store.load_snapshot(id) {
            Ok(s) => s,
            Err(e) => return self.problem(path, crate::error_chain(&e)),
        };
        if snap.id != id {
            self.problem(path.clone(), format!("manifest says it is {}", snap.id));
        }
        for (aname, archive) in &snap.archives {
            for (dname, dist) in &archive.dists {
                for f in dist.files.iter().chain(&dist.pdiffs) {
                    let what = format!("{aname}/dists/{dname}/{}", f.path);
                    self.need_blob(&path, &f.sha256, f.size, &what);
                }
                for hash in dist.components.values() {
                    self.check_component(&path, hash);
                }
                let where_ = format!("{aname}/dists/{dname}");
                match self.verbatim_keyring(dist) {
                    Some(keyring) => {
                        self.check_upstream_release(&path, &where_, dist, &keyring, &snap.created)
                    }
                    None => {
                        let served = self.served.contains(id);
                        self.check_release(&path, &where_, dist, served)
                    }
                }
            }
        }
    }

    /// Release lists exactly the index files, and InRelease is Release
    /// signed by a store key: one in `keys/repo.gpg`, or, for a snapshot no
    /// channel points at, a retired one.
    fn check_release(
        &mut self,
        owner: &Path,
        where_: &str,
        dist: &crate::model::DistSnapshot,
        served: bool,
    ) {
        let find = |name: &str| dist.files.iter().find(|f| f.path == name);
        let (Some(rel), Some(inrel)) = (find("Release"), find("InRelease")) else {
            return self.problem(
                owner.to_path_buf(),
                format!("{where_}: Release or InRelease missing"),
            );
        };
        let pool = self.store.pool();
        let (Ok(rel_text), Ok(inrel_text)) = (pool.read(&rel.sha256), pool.read(&inrel.sha256))
        else {
            return; // already reported as missing blobs
        };
        self.check_listed(
            owner,
            &format!("{where_}/Release"),
            dist,
            &String::from_utf8_lossy(&rel_text),
        );
        let Some(keyring) = &self.keyring else {
            return self.problem(
                self.store.keys_dir().join("repo.gpg"),
                "public key missing or unreadable",
            );
        };
        let now = std::time::SystemTime::now();
        let signed = |k: &crate::sign::Keyring| match k.verify_cleartext(&inrel_text, now) {
            Ok(v) if v.text == rel_text => Ok(()),
            Ok(_) => Err(format!("{where_}/InRelease does not sign Release's text")),
            Err(e) => Err(format!("{where_}/InRelease: {}", crate::error_chain(&e))),
        };
        let Err(current) = signed(keyring) else {
            return;
        };
        match self.retired.as_ref().map(signed) {
            Some(Ok(())) if served => self.problem(
                owner.to_path_buf(),
                format!("{where_}/InRelease is signed only by retired keys, and a channel points at this snapshot: its clients cannot check it (promote a newer snapshot)"),
            ),
            Some(Ok(())) => {}
            _ => self.problem(owner.to_path_buf(), current),
        }
    }

    /// A verbatim mirror's dist: the upstream's InRelease (or Release with
    /// Release.gpg) verifies against the keyring that accepted it, as of the
    /// snapshot's creation (upstream keys expire; the snapshot does not), and
    /// it lists every index file served with its hash.
    fn check_upstream_release(
        &mut self,
        owner: &Path,
        where_: &str,
        dist: &DistSnapshot,
        keyring: &str,
        created: &str,
    ) {
        let pool = self.store.pool();
        let Some(keys) = pool
            .read(keyring)
            .ok()
            .and_then(|k| crate::sign::Keyring::from_bytes(&k).ok())
        else {
            return self.problem(
                owner.to_path_buf(),
                format!("{where_}: upstream keyring unreadable"),
            );
        };
        let when = created
            .parse::<jiff::Timestamp>()
            .map(std::time::SystemTime::from)
            .unwrap_or_else(|_| std::time::SystemTime::now());
        let read = |name: &str| {
            dist.files
                .iter()
                .find(|f| f.path == name)
                .and_then(|f| pool.read(&f.sha256).ok())
        };
        let text = match (read("InRelease"), read("Release"), read("Release.gpg")) {
            (Some(inrel), _, _) => keys.verify_cleartext(&inrel, when).map(|v| v.text),
            (None, Some(rel), Some(sig)) => keys.verify_detached(&rel, &sig, when).map(|_| rel),
            _ => {
                return self.problem(
                    owner.to_path_buf(),
                    format!("{where_}: neither InRelease nor Release with Release.gpg"),
                )
            }
        };
        let text = match text {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) => {
                return self.problem(
                    owner.to_path_buf(),
                    format!("{where_}: upstream signature: {e}"),
                )
            }
        };
        self.check_listed(
            owner,
            &format!("{where_}: the upstream Release"),
            dist,
            &text,
        );
    }

    /// Every index file served is listed in the Release with its own hash
    /// and size, on one line (parsed, not searched for).
    fn check_listed(&mut self, owner: &Path, release: &str, dist: &DistSnapshot, text: &str) {
        let listed = match crate::index::read::release::parse_release(text) {
            Ok(r) => r.sha256,
            Err(e) => {
                return self.problem(
                    owner.to_path_buf(),
                    format!("{release}: {}", crate::error_chain(&e)),
                )
            }
        };
        for f in dist.files.iter().filter(|f| f.path.contains('/')) {
            let entry = listed.get(&f.path);
            if entry.is_none_or(|l| l.hash != f.sha256 || l.size != f.size) {
                self.problem(
                    owner.to_path_buf(),
                    format!("{release} does not list {} with its hash and size", f.path),
                );
            }
        }
    }

    fn check_channels(&mut self) -> Result<()> {
        let snapshots: HashSet<String> = self.store.list_snapshots()?.into_iter().collect();
        for e in fs::read_dir(self.store.root().join("channels"))? {
            let file = e?.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".json") else {
                continue;
            };
            self.report.channels += 1;
            let path = self.store.root().join("channels").join(&file);
            let pointer = match self.store.load_channel(name) {
                Ok(p) => p,
                Err(e) => {
                    self.problem(path, e.to_string());
                    continue;
                }
            };
            if let Some(target) = &pointer.snapshot {
                if !snapshots.contains(target) {
                    self.problem(path.clone(), format!("points at missing snapshot {target}"));
                }
            }
            match self.store.channel_history(name) {
                Ok(h) => {
                    if let Some(hold) = &pointer.hold {
                        let recorded = h
                            .iter()
                            .rev()
                            .find(|e| !e.action.moves())
                            .is_some_and(|e| e.action == crate::model::Action::Hold);
                        if hold.reason.trim().is_empty() || !recorded {
                            self.problem(
                                path.clone(),
                                "held without a reason, or without a hold in its history",
                            );
                        }
                    }
                    let last = h.last();
                    let agrees = match last {
                        Some(e) => e.seq == pointer.seq && Some(&e.to) == pointer.snapshot.as_ref(),
                        None => pointer.seq == 0,
                    };
                    if !agrees {
                        self.problem(
                            path,
                            "history does not end with the move that set the pointer",
                        );
                    }
                }
                Err(e) => self.problem(path, crate::error_chain(&e)),
            }
        }
        Ok(())
    }
}

//! EDGE: the clean root a build runs in (docs/architecture.md, "A clean
//! build root"). The root is `mmdebstrap --variant=buildd` of the
//! configured suite from the channel's snapshot alone (its only apt
//! sources, `signed-by` the store's key), cached as a tarball in
//! `STORE/buildroots/` under the name `root_plan` gives it; a build
//! unpacks the tarball beside its work directory, and every step after
//! runs inside with `sysroot::chroot`: the snapshot's tree read-only at
//! `blueprint::REPO_IN_SYSTEM`, the work directory read-write at
//! [`WORK_IN_ROOT`], no network, a fixed environment. The root is removed
//! when the build ends; the tarball stays for the next build, until what
//! its sources hold changes and a new one replaces it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use fs_err as fs;
use repofs::model::Snapshot;
use serde::{Deserialize, Serialize};

use super::root_plan::{self, RootName};
use super::run::{Log, Stop};
use crate::accept::summary::summarize;
use crate::config::RootConfig;
use crate::process;
use crate::sysroot::blueprint::{self, Bootstrap, Variant, KEYRING_IN_SYSTEM, REPO_IN_SYSTEM};
use crate::sysroot::chroot::{self, Bind, Mode};

/// Where the build's work directory (the tree in `src/`, the results
/// beside it) is bound inside the root.
pub const WORK_IN_ROOT: &str = "/build";

/// What a build root is made from.
#[derive(Debug, Clone)]
pub struct RootSource<'a> {
    pub config: &'a RootConfig,
    /// The channel's snapshot when the build started.
    pub snapshot: &'a Snapshot,
    /// Its APT tree (a repofs mount's `snapshots/<id>`, or an export).
    pub repo: &'a Path,
    /// The store's public key.
    pub keyring: &'a Path,
    /// `STORE/buildroots`.
    pub cache: &'a Path,
    /// Every root the configuration names (this one among them, or not
    /// when the build names its own): the families whose cached roots stay.
    pub configured: &'a [RootConfig],
    pub mode: Mode,
}

/// What a build reports about its root (`--json`).
#[derive(Debug, Clone, Serialize)]
pub struct RootInfo {
    pub channel: String,
    /// The snapshot the build dependencies came from.
    pub snapshot: String,
    /// The cached root's name (`<family>-<key>`).
    pub name: String,
    /// The snapshot the cached root was bootstrapped from: an earlier one
    /// whenever the root's sources have not changed since.
    pub made_from: String,
    /// The cached tarball was used; false when this build bootstrapped it.
    pub reused: bool,
    /// Older roots of the same family this build removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// The record beside a cached tarball.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    made_from: String,
    channel: String,
    suite: String,
    archives: Vec<String>,
    packages: Vec<String>,
    created: String,
}

/// A root unpacked for one build; removed when dropped.
pub struct Unpacked {
    /// Holds `root/`: the directory `chroot::remove` takes.
    dir: PathBuf,
    root: PathBuf,
    mode: Mode,
    pub info: RootInfo,
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        if let Err(e) = chroot::remove(self.mode, &self.dir) {
            tracing::warn!("cannot remove the build root {}: {e:#}", self.dir.display());
        }
    }
}

fn setup(what: &str, e: impl std::fmt::Display) -> Stop {
    Stop::setup(format!("build root: {what}: {e}"))
}

/// Finds or bootstraps the cached root for `src`, and unpacks it into
/// `dir/root`.
pub fn prepare(
    src: &RootSource<'_>,
    dir: &Path,
    limits: super::run::Limits,
    log: Log<'_>,
) -> Result<Unpacked, Stop> {
    let c = src.config;
    src.mode.ids().map_err(|e| setup("sandbox", e))?;
    let sources = blueprint::plan_sources(src.snapshot, &c.suite, &c.archives)
        .map_err(|e| Stop::setup(format!("build root from channel {}: {e}", c.channel)))?;
    let arch = host_arch()?;
    let name = root_plan::plan_root_name(c, &arch, src.snapshot, &sources);
    fs::create_dir_all(src.cache).map_err(|e| setup("cache", e))?;
    let tarball = src.cache.join(format!("{}.tar", name.stem()));
    let record = src.cache.join(format!("{}.json", name.stem()));
    let started = Instant::now();
    let (reused, removed) = if tarball.is_file() {
        (true, Vec::new())
    } else {
        bootstrap(src, &sources, &name, &tarball, limits, log)?;
        let r = Record {
            made_from: src.snapshot.id.clone(),
            channel: c.channel.clone(),
            suite: c.suite.clone(),
            archives: c.archives.clone(),
            packages: c.packages.clone(),
            created: jiff::Timestamp::now().to_string(),
        };
        let text = serde_json::to_string_pretty(&r).map_err(|e| setup("record", e))?;
        fs::write(&record, text).map_err(|e| setup("record", e))?;
        let keep: Vec<String> = src
            .configured
            .iter()
            .map(|r| root_plan::plan_family(r, &arch))
            .collect();
        (false, remove_stale(src.cache, &name, &keep))
    };
    let made_from = fs::read_to_string(&record)
        .ok()
        .and_then(|t| serde_json::from_str::<Record>(&t).ok())
        .map_or_else(|| "unknown".to_string(), |r| r.made_from);
    let info = RootInfo {
        channel: c.channel.clone(),
        snapshot: src.snapshot.id.clone(),
        name: name.stem(),
        made_from,
        reused,
        removed,
    };
    if info.reused {
        log(&format!(
            "halo: build root {} reused (made from snapshot {}; channel {} is at {})",
            info.name, info.made_from, info.channel, info.snapshot
        ));
    } else {
        log(&format!(
            "halo: build root {} bootstrapped from snapshot {} of channel {} in {:.0}s",
            info.name,
            info.snapshot,
            info.channel,
            started.elapsed().as_secs_f64()
        ));
    }
    for old in &info.removed {
        log(&format!("halo: removed the older build root {old}"));
    }
    let root = dir.join("root");
    if dir.exists() {
        chroot::remove(src.mode, dir)
            .map_err(|e| setup("removing a leftover", format!("{e:#}")))?;
    }
    fs::create_dir_all(&root).map_err(|e| setup("unpacking", e))?;
    chroot::give(src.mode, &root).map_err(|e| setup("unpacking", e))?;
    let unpacked = Unpacked {
        dir: dir.to_path_buf(),
        root: root.clone(),
        mode: src.mode,
        info,
    };
    let cmd = chroot::unpack(src.mode, &tarball, &root).map_err(|e| setup("unpacking", e))?;
    let out = process::stream(cmd, None, &mut |_| {})
        .map_err(|e| setup("unpacking", repofs::error_chain(&e)))?;
    if !out.success() {
        return Err(setup(
            &format!("unpacking {}", tarball.display()),
            out.output.tail(5),
        ));
    }
    Ok(unpacked)
}

fn host_arch() -> Result<String, Stop> {
    let out = process::run("dpkg", ["--print-architecture"])
        .map_err(|e| setup("dpkg --print-architecture", e))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// mmdebstrap into a temporary name in the cache, renamed into place when
/// whole: a build never unpacks half a root, and two builds bootstrapping
/// the same root at once each finish with a whole one.
fn bootstrap(
    src: &RootSource<'_>,
    sources: &[blueprint::AptSource],
    name: &RootName,
    tarball: &Path,
    limits: super::run::Limits,
    log: Log<'_>,
) -> Result<(), Stop> {
    let c = src.config;
    // mmdebstrap writes in a directory of its own, given to the sandbox:
    // not in the cache, whose other roots it must not be able to touch.
    let tag = format!(".{}.{}", name.stem(), std::process::id());
    let out_dir = src.cache.join(&tag);
    let partial = out_dir.join("root.tar");
    let list_file = out_dir.join("sources.list");
    let list = blueprint::render_sources_list(
        sources,
        Path::new(REPO_IN_SYSTEM),
        Path::new(KEYRING_IN_SYSTEM),
    )
    .map_err(|e| setup("sources", e))?;
    if out_dir.exists() {
        fs::remove_dir_all(&out_dir).map_err(|e| setup("cache", e))?;
    }
    fs::create_dir(&out_dir).map_err(|e| setup("cache", e))?;
    fs::write(&list_file, list).map_err(|e| setup("sources", e))?;
    chroot::give(src.mode, &out_dir).map_err(|e| setup("sandbox", e))?;
    let args = blueprint::plan_bootstrap(&Bootstrap {
        variant: Variant::Buildd,
        include: &c.packages,
        dist: &c.suite,
        sources,
        root: &partial,
        repo: src.repo,
        keyring: src.keyring,
        system_sources: &list_file,
    })
    .map_err(|e| setup("bootstrap", e));
    let result = args.and_then(|args| {
        log(&format!(
            "halo: bootstrapping build root {} (mmdebstrap --variant=buildd {} from {} of snapshot {})",
            name.stem(),
            c.suite,
            c.archives.join(", "),
            src.snapshot.id
        ));
        let cmd = chroot::mmdebstrap(src.mode, &args, &[src.repo, src.keyring], &out_dir)
            .map_err(|e| setup("sandbox", e))?;
        let out = process::stream(cmd, Some(limits.timeout), log)
            .map_err(|e| setup("mmdebstrap", repofs::error_chain(&e)))?;
        if !out.success() {
            // apt's or dpkg's own words, as an acceptance system's bootstrap gives them.
            let text = out.output.text();
            let lines: Vec<&str> = text.lines().collect();
            let why = summarize(&lines).map(|w| format!(": {w}")).unwrap_or_default();
            return Err(Stop {
                kind: super::run::StopKind::Setup,
                message: format!(
                    "build root: mmdebstrap --variant=buildd {} from channel {} (snapshot {}) failed ({}){why}",
                    c.suite,
                    c.channel,
                    src.snapshot.id,
                    out.describe(Some(limits.timeout))
                ),
                detail: out.output.tail(40),
            });
        }
        fs::rename(&partial, tarball).map_err(|e| setup("cache", e))
    });
    let _ = fs::remove_dir_all(&out_dir);
    result
}

/// Removes the family's older roots, and the roots of families no longer
/// configured; returns their names.
fn remove_stale(cache: &Path, current: &RootName, configured: &[String]) -> Vec<String> {
    let files: Vec<String> = fs::read_dir(cache)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut removed = Vec::new();
    let mut stale = root_plan::plan_stale(current, &files);
    stale.extend(root_plan::plan_unconfigured(current, configured, &files));
    for f in stale {
        match fs::remove_file(cache.join(&f)) {
            Ok(()) => {
                if let Some(stem) = f.strip_suffix(".tar") {
                    removed.push(stem.to_string());
                }
            }
            Err(e) => tracing::warn!("cannot remove the older build root {f}: {e}"),
        }
    }
    removed
}

/// A command that runs `argv` in the unpacked root with the snapshot's
/// tree and the work directory bound, without network, `env` on top of
/// the root's fixed environment.
pub fn command(
    src: &RootSource<'_>,
    root: &Unpacked,
    work: &Path,
    argv: &[&str],
    env: &BTreeMap<String, String>,
    memory: Option<u64>,
) -> Result<Command, crate::sandbox::SandboxError> {
    let binds = [
        Bind {
            host: src.repo,
            inside: REPO_IN_SYSTEM,
            writable: false,
        },
        Bind {
            host: work,
            inside: WORK_IN_ROOT,
            writable: true,
        },
    ];
    chroot::command_with(src.mode, &root.root, &binds, argv, env, memory)
}

/// Installs the tree's build dependencies with the root's own apt from the
/// snapshot; its arguments (a `-P` profile list) go to `apt-get build-dep`.
/// Services are kept from starting, as mmdebstrap does; the root is thrown
/// away, so nothing is undone.
pub const BUILD_DEPS_SCRIPT: &str = r#"set -e
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
apt-get update -q
exec apt-get build-dep -q -y --no-install-recommends "$@" /build/src
"#;

/// Runs its arguments in the tree (`/build/src`).
pub const IN_TREE_SCRIPT: &str = r#"cd /build/src && exec "$@""#;

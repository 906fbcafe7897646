//! EDGE: enters a root (an acceptance system, a build root), bootstraps
//! and unpacks one, and removes it, every time inside a [`sandbox`]: root
//! inside is an unprivileged subordinate id outside, the root is entered
//! with pivot_root, the snapshot's tree is bound read-only at
//! `blueprint::REPO_IN_SYSTEM` (a build's work directory read-write), and
//! the network is a loopback of its own. mmdebstrap itself runs in a
//! sandbox of the host's programs, so the maintainer scripts it runs while
//! it bootstraps are boxed the same way (as root, mmdebstrap's own unshare
//! mode would run them as the host's root in a plain chroot).
//!
//! When a command ends, or its process group is killed at its timeout,
//! its namespaces go with it: nothing is left mounted on the host, and no
//! daemon a maintainer script started outlives its step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::sandbox::{self, IdMap, Sandbox, SandboxError};

/// Who the roots' files belong to: the subordinate ids of the user
/// running halo, read from `/etc/subuid` and `/etc/subgid` whenever a
/// sandbox is made (two small files), so a machine without them learns
/// it in one line at its first sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Mode;

impl Mode {
    pub fn detect() -> Self {
        Self
    }

    /// The id map, or why there is none (one line naming the fix).
    pub fn ids(self) -> Result<IdMap, SandboxError> {
        Ok(sandbox::subids::load()?)
    }
}

/// A host directory mounted inside a root while one command runs.
#[derive(Debug, Clone)]
pub struct Bind<'a> {
    pub host: &'a Path,
    /// An absolute path inside the root (made if missing).
    pub inside: &'a str,
    pub writable: bool,
}

/// The environment inside a system: fixed, so a system behaves the same
/// whoever runs halo; `extra` (the run's `HALO_*`) on top.
fn system_env(extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut env = sandbox::spec::base_env("/root");
    env.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// A command that runs `argv` inside the system at `root`, with the
/// snapshot's tree `repo` bound at `inside`.
pub fn command_in(
    mode: Mode,
    root: &Path,
    repo: &Path,
    inside: &str,
    argv: &[&str],
    env: &BTreeMap<String, String>,
) -> Result<Command, SandboxError> {
    let binds = [Bind {
        host: repo,
        inside,
        writable: false,
    }];
    command_with(mode, root, &binds, argv, env, None)
}

/// A command that runs `argv` inside the root at `root` with `binds`,
/// each process inside limited to `memory` bytes of address space.
pub fn command_with(
    mode: Mode,
    root: &Path,
    binds: &[Bind<'_>],
    argv: &[&str],
    env: &BTreeMap<String, String>,
    memory: Option<u64>,
) -> Result<Command, SandboxError> {
    let mut sb = Sandbox::in_dir(root);
    for b in binds {
        sb = sb.bind(b.host, b.inside, b.writable);
    }
    sb.env = system_env(env);
    sb.memory = memory;
    sb.command(mode.ids()?, argv)
}

/// Makes `dir` (new, empty or not) belong to the sandbox's root, so a
/// sandbox can write in it: a root to unpack into, a work directory.
pub fn give(mode: Mode, dir: &Path) -> Result<(), SandboxError> {
    sandbox::chown_tree(dir, mode.ids()?, 0, 0)
}

/// A command that unpacks the root in `tarball` (made by mmdebstrap) into
/// `root` (an empty directory [`give`]n to the sandbox), inside a sandbox
/// of the host's tar, so the files get the sandbox's ids. `/dev` is left
/// empty: every command gets its own.
pub fn unpack(mode: Mode, tarball: &Path, root: &Path) -> Result<Command, SandboxError> {
    let sb = Sandbox::host_tools(None)
        .bind(tarball, "/in/root.tar", false)
        .bind(root, "/out", true);
    sb.command(
        mode.ids()?,
        &[
            "tar",
            "--extract",
            "--numeric-owner",
            "--preserve-permissions",
            "--exclude=./dev/*",
            "--directory",
            "/out",
            "--file",
            "/in/root.tar",
        ],
    )
}

/// mmdebstrap with `args` in a sandbox of the host's programs. `reads`
/// are bound read-only at their own paths (the snapshot's tree, the key,
/// the system's sources.list), `out` (a directory [`give`]n to the
/// sandbox) read-write at its own path: mmdebstrap's target lies in it,
/// and so do its temporary files.
pub fn mmdebstrap(
    mode: Mode,
    args: &[String],
    reads: &[&Path],
    out: &Path,
) -> Result<Command, SandboxError> {
    let mut sb = Sandbox::host_tools(None);
    for r in reads {
        let at = r.to_string_lossy();
        sb = sb.bind(r, &at, false);
    }
    sb = sb.bind(out, &out.to_string_lossy(), true);
    sb.env
        .insert("TMPDIR".into(), out.to_string_lossy().into_owned());
    let mut argv = vec!["mmdebstrap"];
    argv.extend(args.iter().map(String::as_str));
    sb.command(mode.ids()?, &argv)
}

/// Mount points at or below `dir` in this process's mount namespace.
fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let text = fs_err::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .filter(|p| p.starts_with(dir))
        .collect())
}

/// Removes a system's directory. Refused while anything is mounted below
/// it: removing through a bind mount would delete what it shows.
pub fn remove(_mode: Mode, dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let dir = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let mounted = mounts_under(&dir)?;
    if let Some(m) = mounted.first() {
        bail!(
            "{} is still mounted: not removing {}",
            m.display(),
            dir.display()
        );
    }
    fs_err::remove_dir_all(&dir)?;
    Ok(())
}

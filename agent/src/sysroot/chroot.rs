//! EDGE: enters a root (an acceptance system, a build root), unpacks one
//! from a tarball, and removes it.
//!
//! Every command inside a root runs in private mount and pid namespaces
//! (util-linux `unshare`): /dev (a tmpfs with the harmless device nodes,
//! never the host's disks), /proc, /sys and the binds it asks for (the
//! snapshot's tree read-only at `blueprint::REPO_IN_SYSTEM`; a build's
//! work directory read-write) are mounted for that command alone, so
//! when it ends, or its process group is killed at the timeout, the
//! namespaces and their mounts go with it: nothing is left mounted on the
//! host, and no daemon a maintainer script started outlives its step.
//!
//! As root that is all. As another user the root was made by mmdebstrap's
//! unshare mode, owned by the user's subordinate ids (`/etc/subuid`): the
//! command also runs in a user namespace mapping them the same way
//! (`unshare --map-auto`), so root inside is the system's root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::process;

/// How systems are made and entered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Running as root: namespaces without a user namespace; the root's
    /// files have their real owners.
    Root,
    /// Running as a user: a user namespace over `/etc/subuid`'s ids.
    User,
}

impl Mode {
    #[allow(unsafe_code)]
    pub fn detect() -> Self {
        // SAFETY: geteuid(2) takes nothing and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            Self::Root
        } else {
            Self::User
        }
    }

    /// `unshare` with the namespaces of this mode; the caller appends the
    /// program.
    fn unshare(self) -> Command {
        self.unshare_with(Network::Host)
    }

    fn unshare_with(self, network: Network) -> Command {
        let mut cmd = Command::new("unshare");
        if self == Self::User {
            // The subordinate ids from 0, and this process as their root.
            cmd.args(["--map-auto", "--setuid", "0", "--setgid", "0"]);
        }
        if network == Network::None {
            cmd.arg("--net");
        }
        cmd.args([
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ]);
        cmd
    }
}

/// The environment inside a system: fixed, so a system behaves the same
/// whoever runs halo; `extra` (the run's `HALO_*`) on top.
fn system_env(cmd: &mut Command, extra: &BTreeMap<String, String>) {
    cmd.env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LC_ALL", "C.UTF-8")
        .envs(extra);
}

/// Whether a command inside sees the host's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// The host's (an acceptance test may talk to the world).
    Host,
    /// A new network namespace with nothing but a loopback that is down:
    /// a build must not fetch what the channel does not hold.
    None,
}

/// A host directory mounted inside a root while one command runs.
#[derive(Debug, Clone)]
pub struct Bind<'a> {
    pub host: &'a Path,
    /// An absolute path inside the root (made if missing).
    pub inside: &'a str,
    pub writable: bool,
}

/// Mounts what a command inside needs, then `chroot ROOT ARGV...`.
/// Arguments: ROOT N, then N times ro|rw HOST INSIDE, then ARGV...
const ENTER: &str = r#"set -eu
root=$1 binds=$2
shift 2
mount -t tmpfs -o mode=755,nosuid tmpfs "$root/dev"
for n in null zero full random urandom tty; do
  : > "$root/dev/$n"
  mount --bind "/dev/$n" "$root/dev/$n"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t proc proc "$root/proc"
# A new sysfs needs a network namespace in a user namespace: bind the host's.
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" 2>/dev/null \
  || mount --rbind /sys "$root/sys"
while [ "$binds" -gt 0 ]; do
  mkdir -p "$root$3"
  mount --bind "$2" "$root$3"
  if [ "$1" = ro ]; then mount -o remount,bind,ro "$root$3"; fi
  shift 3
  binds=$((binds - 1))
done
exec chroot "$root" "$@"
"#;

/// A command that runs `argv` inside the system at `root`, with the
/// snapshot's tree `repo` bound at `inside`.
pub fn command_in(
    mode: Mode,
    root: &Path,
    repo: &Path,
    inside: &str,
    argv: &[&str],
    env: &BTreeMap<String, String>,
) -> Command {
    let binds = [Bind {
        host: repo,
        inside,
        writable: false,
    }];
    command_with(mode, Network::Host, root, &binds, argv, env)
}

/// A command that runs `argv` inside the root at `root` with `binds`.
pub fn command_with(
    mode: Mode,
    network: Network,
    root: &Path,
    binds: &[Bind<'_>],
    argv: &[&str],
    env: &BTreeMap<String, String>,
) -> Command {
    let mut cmd = mode.unshare_with(network);
    cmd.args(["sh", "-c", ENTER, "sh"])
        .arg(root)
        .arg(binds.len().to_string());
    for b in binds {
        cmd.arg(if b.writable { "rw" } else { "ro" })
            .arg(b.host)
            .arg(b.inside);
    }
    cmd.args(argv);
    system_env(&mut cmd, env);
    cmd
}

/// A command that unpacks the root in `tarball` (made by mmdebstrap) into
/// `root`, in this mode's namespaces so the files get the owners they had
/// (subordinate ids as a user). `/dev` is left empty: every command gets
/// its own (see `ENTER`), and a user namespace may not make device nodes.
pub fn unpack(mode: Mode, tarball: &Path, root: &Path) -> Command {
    let mut cmd = mode.unshare();
    cmd.args([
        "tar",
        "--extract",
        "--numeric-owner",
        "--preserve-permissions",
    ])
    .args(["--exclude=./dev/*", "--directory"])
    .arg(root)
    .arg("--file")
    .arg(tarball);
    cmd
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
pub fn remove(mode: Mode, dir: &Path) -> Result<()> {
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
    if mode == Mode::User {
        // Files owned by subordinate ids: only root of the user namespace
        // may remove them. It cannot remove the top directory (its parent
        // is ours, unmapped there), which is empty afterwards.
        let inner = dir.join("root");
        if inner.exists() {
            let mut cmd = mode.unshare();
            cmd.args(["rm", "-rf", "--one-file-system"]).arg(&inner);
            // Its complaint about the top directory is expected.
            let _ = process::stream(cmd, None, &mut |_| {});
            let _ = fs_err::remove_dir(&inner);
        }
    }
    fs_err::remove_dir_all(&dir)?;
    Ok(())
}

//! The box that code from outside runs in: a source's unit tests and
//! `debian/rules`, a package's maintainer scripts (while a root is
//! bootstrapped, while an acceptance system installs), mmdebstrap itself.
//!
//! A sandbox is a user namespace whose root is an unprivileged
//! subordinate id on the host (`/etc/subuid`, [`subids`]), with private
//! mount, pid, ipc, uts and network namespaces (loopback only), entered
//! with `pivot_root` and the old root detached, a /dev without block
//! devices, and nothing of the host but what the [`Spec`] binds: the
//! store, its keys and the host's /tmp are not there to reach. Root
//! inside has no capability in the host's namespaces, so the classic
//! escapes (a double chroot, `mknod` of a disk, joining a host process's
//! network namespace) have nothing to work with. When the command ends
//! every process it started dies with its pid namespace.
//!
//! util-linux `unshare` makes the namespaces and writes the id maps
//! (with shadow's `newuidmap`, which checks them against `/etc/subuid`);
//! it then runs this binary's [`init`] (`halo __sandbox-init`) inside,
//! which mounts, pivots and starts the command.

pub mod init;
pub mod spec;
pub mod subids;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use command_fds::{CommandFdExt, FdMapping};

pub use spec::{Bind, Root, Sandbox, Spec};
pub use subids::IdMap;

/// The hidden subcommand `main` hands to [`init::main`].
pub const INIT_ARG: &str = "__sandbox-init";
/// The environment variable carrying the spec to the init.
pub const SPEC_ENV: &str = "HALO_SANDBOX_SPEC";
/// Descriptors the init inherits: this binary, the lifeline, the root
/// directory, then one per bind in the spec's order.
pub const FD_EXE: i32 = 3;
pub const FD_LIFELINE: i32 = 4;
pub const FD_ROOT: i32 = 5;
pub const FD_FIRST_BIND: i32 = 6;

/// A pipe whose write end only this process holds (close-on-exec, so no
/// child inherits it), for as long as it lives. Each sandbox's init reads
/// the other end: end of file means halo is gone, however it died, and the
/// init exits, taking the whole sandbox with it. (A parent-death signal on
/// `unshare` would not do: the kernel clears it when `unshare` changes its
/// ids in the new user namespace.)
fn lifeline() -> Result<OwnedFd, SandboxError> {
    static LIFELINE: std::sync::OnceLock<Result<(OwnedFd, OwnedFd), String>> =
        std::sync::OnceLock::new();
    let pipe = LIFELINE.get_or_init(|| {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e.to_string())
    });
    let err = |e: std::io::Error| SandboxError::Open {
        what: "making",
        path: "the sandbox's lifeline".into(),
        source: e,
    };
    match pipe {
        Ok((read, _write)) => read.try_clone().map_err(err),
        Err(e) => Err(err(std::io::Error::other(e.clone()))),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Subids(#[from] subids::SubidError),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("{what} {path}: {source}")]
    Open {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("changing the owner of {path} to the sandbox's ids: {source}")]
    Chown {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Files halo read that a sandbox must not: its configuration (mirror and
/// git URLs may carry credentials) and the Jenkins token file. Each
/// sandbox of the host's programs hides those among its directories.
static HIDDEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Hides `path` from every sandbox of the host's programs made from now
/// on (`Sandbox::host_tools`).
pub fn hide(path: &Path) {
    let path = path
        .canonicalize()
        .unwrap_or_else(|_| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()));
    let mut hidden = HIDDEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !hidden.contains(&path) {
        hidden.push(path);
    }
}

impl Sandbox {
    /// A sandbox entering `root` (a directory on the host) as its root user.
    pub fn in_dir(root: &Path) -> Self {
        Self {
            root: Root::Dir(root.to_path_buf()),
            binds: Vec::new(),
            masks: Vec::new(),
            uid: 0,
            gid: 0,
            hostname: "halo-sandbox".into(),
            cwd: "/".into(),
            env: spec::base_env("/root"),
            memory: None,
        }
    }

    /// A sandbox of the host's own programs (`Root::HostTools`), with
    /// `store` and everything [`hide`]n hidden should they lie under one of
    /// the directories shown.
    pub fn host_tools(store: Option<&Path>) -> Self {
        let mut s = Self::in_dir(Path::new("/"));
        s.root = Root::HostTools;
        let store = store.map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()));
        let hidden = HIDDEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for p in store.iter().chain(hidden.iter()) {
            if spec::HOST_TOOL_DIRS
                .iter()
                .any(|d| p.starts_with(d) && p != Path::new(d))
            {
                s.masks.push(p.to_string_lossy().into_owned());
            }
        }
        s
    }

    pub fn bind(mut self, host: &Path, inside: &str, writable: bool) -> Self {
        self.binds.push(Bind {
            host: host.to_path_buf(),
            inside: inside.to_string(),
            writable,
        });
        self
    }

    /// The command that runs `argv` in this sandbox, under `ids`.
    pub fn command(&self, ids: IdMap, argv: &[&str]) -> Result<Command, SandboxError> {
        let spec = Spec {
            sandbox: self.clone(),
            argv: argv.iter().map(|a| (*a).to_string()).collect(),
            ids,
        };
        command(&spec)
    }
}

/// A detached copy of the mount tree at `path` (`open_tree`'s clone): the
/// init attaches it inside with `move_mount`. A bind of a path opened
/// outside could not be made inside (the kernel binds only mounts of the
/// caller's own namespace), and resolving the path again inside would
/// need the sandbox's root to search the host's directories.
fn clone_tree(path: &Path) -> Result<OwnedFd, SandboxError> {
    use rustix::mount::OpenTreeFlags as F;
    rustix::mount::open_tree(
        rustix::fs::CWD,
        path,
        F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC | F::AT_RECURSIVE,
    )
    .map_err(|e| SandboxError::Open {
        what: "cloning the mount of",
        path: path.display().to_string(),
        source: e.into(),
    })
}

fn open(
    what: &'static str,
    path: &Path,
    flags: nix::fcntl::OFlag,
) -> Result<OwnedFd, SandboxError> {
    nix::fcntl::open(
        path,
        flags | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| SandboxError::Open {
        what,
        path: path.display().to_string(),
        source: e.into(),
    })
}

/// `unshare` with the namespaces and id maps, running this binary's init
/// with `spec`. The host paths go as descriptors opened here, by the
/// host's user.
pub fn command(spec: &Spec) -> Result<Command, SandboxError> {
    use nix::fcntl::OFlag;
    spec.check()?;
    // This very binary, even if an upgrade replaced its file meanwhile.
    let mut fds = vec![FdMapping {
        parent_fd: open("opening", Path::new("/proc/self/exe"), OFlag::O_RDONLY)?,
        child_fd: FD_EXE,
    }];
    fds.push(FdMapping {
        parent_fd: lifeline()?,
        child_fd: FD_LIFELINE,
    });
    if let Root::Dir(dir) = &spec.sandbox.root {
        fds.push(FdMapping {
            parent_fd: clone_tree(dir)?,
            child_fd: FD_ROOT,
        });
    }
    for (i, b) in spec.sandbox.binds.iter().enumerate() {
        fds.push(FdMapping {
            parent_fd: clone_tree(&b.host)?,
            child_fd: FD_FIRST_BIND + i32::try_from(i).unwrap_or(i32::MAX - FD_FIRST_BIND),
        });
    }
    let json = serde_json::to_string(spec).map_err(|e| SandboxError::Open {
        what: "encoding",
        path: "the sandbox's spec".into(),
        source: std::io::Error::other(e),
    })?;
    let (u, g) = (spec.ids.uids, spec.ids.gids);
    let mut cmd = Command::new("unshare");
    cmd.arg(format!("--map-users={},0,{}", u.start, u.count))
        .arg(format!("--map-groups={},0,{}", g.start, g.count))
        .args([
            "--setuid",
            "0",
            "--setgid",
            "0",
            "--mount",
            "--pid",
            "--ipc",
            "--uts",
            "--net",
            "--fork",
            "--kill-child",
            "--propagation",
            "private",
            "--",
        ])
        .arg(format!("/proc/self/fd/{FD_EXE}"))
        .arg(INIT_ARG)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env(SPEC_ENV, json)
        .current_dir("/");
    cmd.fd_mappings(fds).map_err(|e| SandboxError::Open {
        what: "passing",
        path: "descriptors".into(),
        source: std::io::Error::other(e),
    })?;
    Ok(cmd)
}

/// Gives `dir` and everything below it (symlinks themselves, never what
/// they point to) to the sandbox's user `uid`/`gid` inside: a work
/// directory the sandbox writes in, a directory it unpacks a root into.
pub fn chown_tree(dir: &Path, ids: IdMap, uid: u32, gid: u32) -> Result<(), SandboxError> {
    let (hu, hg) = (ids.uids.start + uid, ids.gids.start + gid);
    let err = |p: &Path, e: std::io::Error| SandboxError::Chown {
        path: p.display().to_string(),
        source: e,
    };
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(hu), Some(hg)).map_err(|e| err(&p, e))?;
        let meta = std::fs::symlink_metadata(&p).map_err(|e| err(&p, e))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&p).map_err(|e| err(&p, e))? {
                stack.push(entry.map_err(|e| err(&p, e))?.path());
            }
        }
    }
    Ok(())
}

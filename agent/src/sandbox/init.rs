//! EDGE: the sandbox's init, `halo __sandbox-init`, run by util-linux
//! `unshare` as root of a new user namespace (root mapped to a
//! subordinate id) and pid 1 of new mount, pid, ipc, uts and network
//! namespaces. It builds the root's mounts, enters it with `pivot_root`
//! and detaches the old root (so nothing of the host is left to climb
//! back to: the double-chroot trick ends at this root), brings up the
//! loopback, sets the limits, starts the command and reaps every process
//! until the command ends. Then it exits with the command's status, and
//! the kernel kills whatever else is left in the pid namespace: a daemon
//! a build forked dies with its step and cannot hold its output pipe.
//!
//! Host paths arrive as inherited descriptors opened by halo outside
//! ([`super::FD_ROOT`], [`super::FD_FIRST_BIND`]...), so the namespace's
//! root never needs search permission on the host's directories (a store
//! under `/root`), and a path swapped after halo checked it is not
//! followed.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::statvfs::{statvfs, FsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::spec::{Root, Spec, HOST_TOOL_DIRS};

/// Exit status of a sandbox that could not be set up (`env`'s convention:
/// 125, the tool failed, not the command).
pub const SETUP_FAILED: i32 = 125;

/// Where the new root is assembled: a tmpfs mounted here in the
/// sandbox's own mount namespace (the host's stays as it is), detached
/// with the old root.
const STAGING: &str = "/tmp";

#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
struct InitError {
    what: String,
    #[source]
    source: std::io::Error,
}

fn ctx<T, E: Into<std::io::Error>>(
    r: Result<T, E>,
    what: impl FnOnce() -> String,
) -> Result<T, InitError> {
    r.map_err(|e| InitError {
        what: what(),
        source: e.into(),
    })
}

/// The init's whole life: never returns.
pub fn main() -> ! {
    let code = match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("halo sandbox: {e}");
            SETUP_FAILED
        }
    };
    std::process::exit(code)
}

fn run() -> Result<i32, InitError> {
    let text = std::env::var(super::SPEC_ENV).map_err(|_| InitError {
        what: "reading the sandbox's spec".into(),
        source: std::io::Error::other(format!(
            "{} is not set: `halo __sandbox-init` is halo's own, not for use by hand",
            super::SPEC_ENV
        )),
    })?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| InitError {
        what: "reading the sandbox's spec".into(),
        source: std::io::Error::other(e),
    })?;
    check_namespace(&spec)?;
    let new_root = assemble(&spec)?;
    ctx(nix::unistd::sethostname(&spec.sandbox.hostname), || {
        "setting the host name".into()
    })?;
    loopback_up()?;
    enter(&new_root)?;
    close_inherited()?;
    watch_lifeline()?;
    limits(&spec)?;
    start(&spec)
}

/// Refuses to touch any mount unless this process is root of a user
/// namespace that maps exactly the spec's subordinate ids: run any other
/// way (by hand, as the host's root), it would remount the host.
fn check_namespace(spec: &Spec) -> Result<(), InitError> {
    let read = |f: &str| ctx(std::fs::read_to_string(f), || format!("reading {f}"));
    let expect = |r: super::subids::Range| format!("0 {} {}", r.start, r.count);
    let uid_map = read("/proc/self/uid_map")?;
    let gid_map = read("/proc/self/gid_map")?;
    let norm = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    if norm(&uid_map) != expect(spec.ids.uids) || norm(&gid_map) != expect(spec.ids.gids) {
        return Err(InitError {
            what: "checking the user namespace".into(),
            source: std::io::Error::other(format!(
                "not inside the sandbox's user namespace (uid_map `{}`, expected `{}`)",
                norm(&uid_map),
                expect(spec.ids.uids)
            )),
        });
    }
    Ok(())
}

/// A descriptor halo placed before exec (command-fds), borrowed.
#[allow(unsafe_code)]
fn inherited(fd: RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: halo put these descriptors in place before exec and nothing
    // in this process closes them before `close_inherited`, which runs
    // after the last use; a number that is not open makes the syscall
    // using it fail with EBADF, which is reported.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

fn fd_path(fd: RawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{fd}"))
}

fn bind(src: &Path, dst: &Path, writable: bool) -> Result<(), InitError> {
    ctx(
        mount(
            Some(src),
            dst,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("binding {} at {}", src.display(), dst.display()),
    )?;
    if !writable {
        read_only(dst)?;
    }
    Ok(())
}

/// Remounts a bind read-only, keeping the flags the kernel locked on it
/// when the namespace was made (nosuid, nodev, noexec, atime): a user
/// namespace may not clear them, so a remount that leaves them out fails.
fn read_only(dst: &Path) -> Result<(), InitError> {
    let st = ctx(statvfs(dst), || format!("statvfs {}", dst.display()))?;
    let f = st.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (have, set) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(have) {
            flags |= set;
        }
    }
    ctx(
        mount(None::<&str>, dst, None::<&str>, flags, None::<&str>),
        || format!("making {} read-only", dst.display()),
    )
}

/// Attaches a mount tree halo cloned outside (a descriptor) at `dst`.
fn attach(fd: RawFd, dst: &Path, writable: bool) -> Result<(), InitError> {
    let fd = inherited(fd);
    ctx(
        rustix::mount::move_mount(
            fd,
            "",
            rustix::fs::CWD,
            dst,
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        ),
        || format!("attaching a mount at {}", dst.display()),
    )?;
    if !writable {
        read_only(dst)?;
    }
    Ok(())
}

fn tmpfs(dst: &Path, options: &str, flags: MsFlags) -> Result<(), InitError> {
    ctx(
        mount(Some("tmpfs"), dst, Some("tmpfs"), flags, Some(options)),
        || format!("mounting a tmpfs at {}", dst.display()),
    )
}

fn mkdir_p(dir: &Path) -> Result<(), InitError> {
    ctx(
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir),
        || format!("creating {}", dir.display()),
    )
}

/// `root` + an absolute path inside.
fn inside(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Builds every mount of the new root; returns where it is.
fn assemble(spec: &Spec) -> Result<PathBuf, InitError> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    ctx(
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        ),
        || "making every mount private".into(),
    )?;
    // Every path below is in this tmpfs or comes through a descriptor:
    // nothing depends on the host's directories being searchable here.
    let staging = Path::new(STAGING);
    tmpfs(staging, "mode=755", nosuid)?;
    let root = staging.join("root");
    mkdir_p(&root)?;
    match &spec.sandbox.root {
        Root::Dir(_) => {
            // A mount of its own, which pivot_root needs.
            attach(super::FD_ROOT, &root, true)?;
        }
        Root::HostTools => {
            tmpfs(&root, "mode=755", nosuid)?;
            for dir in HOST_TOOL_DIRS {
                let host = Path::new(dir);
                let Ok(meta) = std::fs::symlink_metadata(host) else {
                    continue;
                };
                let at = inside(&root, dir);
                if let Some(parent) = at.parent() {
                    mkdir_p(parent)?;
                }
                if meta.file_type().is_symlink() {
                    let to = ctx(std::fs::read_link(host), || format!("reading {dir}"))?;
                    ctx(symlink(&to, &at), || format!("linking {dir}"))?;
                } else if meta.is_dir() {
                    mkdir_p(&at)?;
                    bind(host, &at, false)?;
                }
            }
            for (dir, mode) in [
                ("/tmp", 0o1777),
                ("/var/tmp", 0o1777),
                ("/run", 0o755),
                ("/root", 0o700),
                ("/home", 0o755),
            ] {
                let at = inside(&root, dir);
                mkdir_p(&at)?;
                ctx(
                    std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode)),
                    || format!("chmod {dir}"),
                )?;
            }
        }
    }
    mount_api(&root)?;
    for (i, b) in spec.sandbox.binds.iter().enumerate() {
        let fd = super::FD_FIRST_BIND + i32::try_from(i).unwrap_or(i32::MAX);
        let dst = inside(&root, &b.inside);
        let is_dir = ctx(std::fs::metadata(fd_path(fd)), || {
            format!("bind source for {}", b.inside)
        })?
        .is_dir();
        if is_dir {
            mkdir_p(&dst)?;
        } else {
            if let Some(parent) = dst.parent() {
                mkdir_p(parent)?;
            }
            if std::fs::symlink_metadata(&dst).is_err() {
                ctx(std::fs::File::create(&dst), || {
                    format!("creating {}", b.inside)
                })?;
            }
        }
        attach(fd, &dst, b.writable)?;
    }
    for m in &spec.sandbox.masks {
        let at = inside(&root, m);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.is_dir() => {
                tmpfs(&at, "mode=755,size=4k", nosuid | MsFlags::MS_RDONLY)?
            }
            // A file reads as empty: /dev/null over it.
            Ok(_) => bind(Path::new("/dev/null"), &at, false)?,
            Err(_) => {}
        }
    }
    Ok(root)
}

/// /proc of the new pid namespace, /sys, and a /dev with nothing but the
/// harmless character devices (bound from the host: a user namespace may
/// not make device nodes, and no block device is ever shown).
fn mount_api(root: &Path) -> Result<(), InitError> {
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let proc_dir = root.join("proc");
    mkdir_p(&proc_dir)?;
    ctx(
        mount(
            Some("proc"),
            &proc_dir,
            Some("proc"),
            nosuid | MsFlags::MS_NOEXEC,
            None::<&str>,
        ),
        || "mounting /proc".into(),
    )?;
    let sys = root.join("sys");
    mkdir_p(&sys)?;
    // sysfs of the sandbox's own network namespace; where the kernel
    // refuses it /sys stays empty rather than showing the host's.
    let _ = mount(
        Some("sysfs"),
        &sys,
        Some("sysfs"),
        nosuid | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
        None::<&str>,
    );
    let dev = root.join("dev");
    mkdir_p(&dev)?;
    tmpfs(&dev, "mode=755", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC)?;
    for n in ["null", "zero", "full", "random", "urandom", "tty"] {
        let at = dev.join(n);
        ctx(std::fs::File::create(&at), || format!("creating /dev/{n}"))?;
        bind(&Path::new("/dev").join(n), &at, true)?;
    }
    for (d, mode) in [("pts", 0o755), ("shm", 0o1777)] {
        let at = dev.join(d);
        mkdir_p(&at)?;
        ctx(
            std::fs::set_permissions(&at, std::fs::Permissions::from_mode(mode)),
            || format!("chmod /dev/{d}"),
        )?;
    }
    ctx(
        mount(
            Some("devpts"),
            &dev.join("pts"),
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=620"),
        ),
        || "mounting /dev/pts".into(),
    )?;
    tmpfs(&dev.join("shm"), "mode=1777", nosuid)?;
    for (name, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ctx(symlink(to, dev.join(name)), || {
            format!("linking /dev/{name}")
        })?;
    }
    Ok(())
}

/// pivot_root into `root` with the old root stacked on it, then detach
/// the old root: from here on the host's filesystem is not in this mount
/// namespace at all.
fn enter(root: &Path) -> Result<(), InitError> {
    ctx(nix::unistd::chdir(root), || {
        format!("entering {}", root.display())
    })?;
    ctx(nix::unistd::pivot_root(".", "."), || "pivot_root".into())?;
    ctx(umount2(".", MntFlags::MNT_DETACH), || {
        "detaching the old root".into()
    })?;
    ctx(nix::unistd::chdir("/"), || "chdir /".into())?;
    Ok(())
}

/// Closes every descriptor but 0, 1 and 2. The ones halo passed in point
/// at host directories: an `openat(fd, "..")` from one inherited by the
/// command would climb out of the new root.
fn close_inherited() -> Result<(), InitError> {
    let fds: Vec<RawFd> = ctx(std::fs::read_dir("/proc/self/fd"), || {
        "listing descriptors".into()
    })?
    .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
    .filter(|fd| *fd > 2 && *fd != super::FD_LIFELINE)
    .collect();
    for fd in fds {
        // The directory listing's own descriptor is among them, closed
        // already: EBADF is expected.
        match nix::unistd::close(fd) {
            Ok(()) | Err(nix::errno::Errno::EBADF) => {}
            Err(e) => return ctx(Err(e), || format!("closing descriptor {fd}")),
        }
    }
    Ok(())
}

/// Ends the sandbox when halo ends: a thread waits on the lifeline (see
/// `super::lifeline`) and exits the init at its end of file, and the
/// kernel kills everything else in the pid namespace.
fn watch_lifeline() -> Result<(), InitError> {
    use std::io::Read;
    let fd = inherited(super::FD_LIFELINE);
    let owned = ctx(fd.try_clone_to_owned(), || "taking the lifeline".into())?;
    ctx(
        nix::fcntl::fcntl(
            &owned,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        ),
        || "keeping the lifeline from the command".into(),
    )?;
    let _ = nix::unistd::close(super::FD_LIFELINE);
    let mut pipe = std::fs::File::from(owned);
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        // Nothing is ever written: this returns when halo is gone.
        let _ = pipe.read(&mut byte);
        std::process::exit(128 + libc::SIGKILL);
    });
    Ok(())
}

/// The loopback interface of the new network namespace, up: a test may
/// talk to a server it started, and nothing else is reachable.
#[allow(unsafe_code)]
fn loopback_up() -> Result<(), InitError> {
    let sock = ctx(
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        ),
        || "opening a socket for the loopback".into(),
    )?;
    // SAFETY: ifreq is plain old data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own,
    // on a socket we own; the union member used is the flags.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    ctx(nix::errno::Errno::result(r), || {
        "reading the loopback's flags".into()
    })?;
    // SAFETY: as above; ifru_flags is the member SIOCGIFFLAGS filled.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    ctx(nix::errno::Errno::result(r), || {
        "bringing up the loopback".into()
    })?;
    Ok(())
}

fn limits(spec: &Spec) -> Result<(), InitError> {
    ctx(setrlimit(Resource::RLIMIT_CORE, 0, 0), || {
        "RLIMIT_CORE".into()
    })?;
    if let Some(bytes) = spec.sandbox.memory {
        ctx(setrlimit(Resource::RLIMIT_AS, bytes, bytes), || {
            "RLIMIT_AS".into()
        })?;
    }
    Ok(())
}

/// Starts the command and reaps every process of the namespace (orphans
/// come to pid 1) until the command itself ends; returns its status as an
/// exit code (128 + the signal that killed it).
fn start(spec: &Spec) -> Result<i32, InitError> {
    let mut cmd = Command::new(OsStr::from_bytes(spec.argv[0].as_bytes()));
    cmd.args(&spec.argv[1..])
        .env_clear()
        .envs(&spec.sandbox.env)
        .current_dir(&spec.sandbox.cwd);
    if spec.sandbox.uid != 0 || spec.sandbox.gid != 0 {
        // Leaving root of the namespace drops every capability it had.
        cmd.uid(spec.sandbox.uid).gid(spec.sandbox.gid);
    }
    let child = cmd.spawn().map_err(|e| InitError {
        what: format!("starting {}", spec.argv[0]),
        source: e,
    })?;
    let main = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Ok(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == main => {
                let status = std::process::ExitStatus::from_raw(sig as i32);
                return Ok(128 + status.signal().unwrap_or(sig as i32));
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                return Err(InitError {
                    what: "waiting for the command".into(),
                    source: e.into(),
                })
            }
        }
    }
}

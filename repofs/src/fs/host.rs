//! The host side of a mount: checks that turn the usual mistakes into one
//! clear line before anything is mounted (missing, busy or dead mountpoint,
//! no `/dev/fuse`), detaching into the background once the mount is
//! usable, and unmounting.
//!
//! EDGE: the only code of the mount that calls into libc directly
//! (`fork`, `setsid`, `dup2`, `umount2`, `malloc_trim`), each call in its
//! own small function with its safety argument.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a mount cannot start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("mountpoint {0} does not exist")]
    MissingMountpoint(PathBuf),
    #[error("mountpoint {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("mountpoint {0} is busy: something is mounted there already (unmount it first)")]
    Busy(PathBuf),
    #[error("mountpoint {0} is a dead FUSE mount (transport endpoint is not connected): run `umount {0}`")]
    Dead(PathBuf),
    #[error("/dev/fuse is missing: load the fuse module (`modprobe fuse`), or give the container the device (`--device /dev/fuse`)")]
    NoDevFuse,
    #[error("cannot open /dev/fuse")]
    DevFuse(#[source] io::Error),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> HostError + '_ {
    move |source| HostError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks the mountpoint and returns its canonical path.
pub fn check_mountpoint(path: &Path) -> Result<PathBuf, HostError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(HostError::MissingMountpoint(path.into()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(HostError::Dead(path.into()))
        }
        Err(e) => return Err(io_at(path)(e)),
    };
    if !meta.is_dir() {
        return Err(HostError::NotADirectory(path.into()));
    }
    let canonical = path.canonicalize().map_err(io_at(path))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(io_at(Path::new("/proc/self/mountinfo")))?;
    if is_mount_point(&mountinfo, &canonical) {
        return Err(HostError::Busy(canonical));
    }
    Ok(canonical)
}

/// True when `/proc/self/mountinfo` lists `path` as a mount point.
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    let want = path.as_os_str().as_bytes();
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|field| unescape_mountinfo(field) == want)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Checks that `/dev/fuse` can be opened (fuser's own error is a bare
/// "No such file or directory").
pub fn check_dev_fuse() -> Result<(), HostError> {
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(HostError::NoDevFuse),
        Err(e) => Err(HostError::DevFuse(e)),
    }
}

/// Detaches from the terminal once the mount is usable: forks, the parent
/// exits 0 (without running destructors, which would unmount), the child
/// starts a new session, leaves the cwd (so it does not hold a directory
/// busy) and sends its output to `log` (appended) or `/dev/null`.
///
/// Must be called while the process has one thread (before the FUSE
/// session and the signal thread start).
pub fn daemonize(log: Option<&Path>) -> io::Result<()> {
    let out = match log {
        Some(p) => OpenOptions::new().append(true).create(true).open(p)?,
        None => OpenOptions::new().write(true).open("/dev/null")?,
    };
    let input = File::open("/dev/null")?;
    if fork()? {
        std::process::exit(0);
    }
    setsid();
    redirect(&input, 0)?;
    redirect(&out, 1)?;
    redirect(&out, 2)?;
    std::env::set_current_dir("/")
}

/// Forks; true in the parent.
#[allow(unsafe_code)]
fn fork() -> io::Result<bool> {
    // SAFETY: the caller guarantees the process is single-threaded, so the
    // child is a complete copy (no lock held by a vanished thread); both
    // sides go on with ordinary Rust code.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(false),
        _ => Ok(true),
    }
}

#[allow(unsafe_code)]
fn setsid() {
    // SAFETY: setsid takes no arguments and touches no memory of ours; it
    // fails only for a process group leader, which a fresh child is not.
    unsafe {
        libc::setsid();
    }
}

/// Makes descriptor `fd` a copy of `file`.
#[allow(unsafe_code)]
fn redirect(file: &File, fd: i32) -> io::Result<()> {
    // SAFETY: `file` is open for the duration of the call; dup2 replaces
    // descriptor `fd` (0, 1 or 2), which Rust code only uses through the
    // standard streams, and touches no memory of ours.
    if unsafe { libc::dup2(file.as_raw_fd(), fd) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Gives the heap memory freed since to the kernel. glibc keeps freed
/// memory for reuse, so without this the tens of megabytes of short-lived
/// strings parsed while building a snapshot tree would stay in the RSS.
#[allow(unsafe_code)]
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists and takes no
    // pointer of ours.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Unmounts `mountpoint`; when busy (open files, a cwd inside), detaches
/// it lazily: it leaves the namespace at once, open files finish reading,
/// and the FUSE session ends when the last one closes.
pub fn unmount(mountpoint: &Path) -> io::Result<()> {
    match umount2(mountpoint, 0) {
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            tracing::warn!(mountpoint = %mountpoint.display(), "mount busy: detaching it lazily");
            umount2(mountpoint, libc::MNT_DETACH)
        }
        other => other,
    }
}

#[allow(unsafe_code)]
fn umount2(mountpoint: &Path, flags: i32) -> io::Result<()> {
    let path = CString::new(mountpoint.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::umount2(path.as_ptr(), flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        90 22 0:50 / /tmp/my\\040mount rw,nosuid,nodev shared:40 - fuse.repofs repofs ro\n";

    #[test]
    fn mount_points_are_found_with_escapes() {
        assert!(is_mount_point(MOUNTINFO, Path::new("/tmp/my mount")));
        assert!(is_mount_point(MOUNTINFO, Path::new("/")));
        assert!(!is_mount_point(MOUNTINFO, Path::new("/tmp")));
    }

    #[test]
    fn mountpoint_mistakes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            check_mountpoint(&missing),
            Err(HostError::MissingMountpoint(_))
        ));
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            check_mountpoint(&file),
            Err(HostError::NotADirectory(_))
        ));
        assert!(matches!(
            check_mountpoint(Path::new("/")),
            Err(HostError::Busy(_))
        ));
        assert_eq!(
            check_mountpoint(dir.path()).unwrap(),
            dir.path().canonicalize().unwrap()
        );
    }
}

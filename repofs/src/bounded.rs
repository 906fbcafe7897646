//! The one way halo reads a file it did not write itself: keys, keyrings,
//! token files, configuration, and files of a source tree
//! (`debian/changelog`, `debian/source/format`).
//!
//! Why: such a file is whatever its owner made it. A changelog linked to
//! `/etc/shadow` would have its lines printed into logs and JUnit; a format
//! file linked to `/dev/zero` or a keyring at `/dev/zero` would be read
//! until memory runs out; a `secret.asc` replaced by a FIFO would block
//! `snapshot create` and `fsck` for ever. So the file is opened with
//! `O_NONBLOCK` (a FIFO opens at once instead of waiting for a writer),
//! checked with `fstat` on the open descriptor to be a regular file, and
//! read to at most a limit. Files of a source tree and the store's own key
//! files are also opened with `O_NOFOLLOW`: a symlink there is refused,
//! never followed (the operator's configuration, keyrings and token files
//! may be symlinks to regular files). Errors name the file and what it is,
//! never its content.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Component, Path};

/// Signing keys, keyrings: a real keyring (Debian's archive keyring) is a
/// few hundred KiB.
pub const KEY_LIMIT: u64 = 8 << 20;
/// Secrets such as an API token.
pub const TOKEN_LIMIT: u64 = 64 << 10;
/// A configuration file.
pub const CONFIG_LIMIT: u64 = 8 << 20;
/// A metadata file of a source tree; the longest changelogs in Debian are
/// around 1 MiB.
pub const TREE_FILE_LIMIT: u64 = 8 << 20;

/// `limit` for people: `8 MiB`, `64 KiB`.
fn human(limit: u64) -> String {
    if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else if limit >= 1 << 10 && limit.is_multiple_of(1 << 10) {
        format!("{} KiB", limit >> 10)
    } else {
        format!("{limit} bytes")
    }
}

/// `NAME is WHY`, or `WHY` alone when the caller names the file itself
/// (`shown` empty), so no line says the path twice.
fn named(shown: &str, why: &str) -> String {
    if shown.is_empty() {
        why.to_string()
    } else {
        format!("{shown} is {why}")
    }
}

fn refused(shown: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        named(shown, &format!("{what}, not a regular file")),
    )
}

/// An open/read error, with the file's name when the caller gives one.
fn io_error(shown: &str, e: &io::Error) -> io::Error {
    let text = if shown.is_empty() {
        e.to_string()
    } else {
        format!("{shown}: {e}")
    };
    io::Error::new(e.kind(), text)
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Opens `path` if it is a regular file, naming it `shown` in errors. A
/// missing file keeps `ErrorKind::NotFound`, so callers can tell it apart.
fn open_regular(path: &Path, shown: &str, follow: bool) -> io::Result<File> {
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nofollow | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(shown, "a symbolic link"),
            _ => io_error(shown, &e),
        })?;
    let ft = file
        .metadata()
        .map_err(|e| io_error(shown, &e))?
        .file_type();
    if !ft.is_file() {
        return Err(refused(shown, kind_of(ft)));
    }
    Ok(file)
}

fn read_open(file: File, shown: &str, limit: u64) -> io::Result<Vec<u8>> {
    let too_large = || {
        io::Error::new(
            io::ErrorKind::FileTooLarge,
            named(shown, &format!("larger than {}", human(limit))),
        )
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limit {
        return Err(too_large());
    }
    let mut data = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // One byte over the limit tells a file that grew since fstat.
    file.take(limit + 1)
        .read_to_end(&mut data)
        .map_err(|e| io_error(shown, &e))?;
    if data.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(data)
}

/// The bytes of `path`, a regular file (or a symlink to one; not a FIFO,
/// device or directory) of at most `limit` bytes: the operator's files.
/// Errors do not repeat the path: the caller's context names the file
/// (`keyring PATH: a FIFO, not a regular file`).
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    read_open(open_regular(path, "", true)?, "", limit)
}

/// [`read_regular`], refusing a symlink too: the store's own files, which
/// halo writes as regular files and nobody should redirect.
pub fn read_private(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let shown = path.display().to_string();
    read_open(open_regular(path, &shown, false)?, &shown, limit)
}

/// [`read_regular`] as UTF-8 text (`ErrorKind::InvalidData` when it is not).
pub fn read_regular_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// The bytes of `rel` inside the tree `root`: a regular file of at most
/// `limit` bytes reached without following any symlink, so nothing outside
/// the tree is read. Errors name `rel`, the name the tree's owner knows.
pub fn read_in_tree(root: &Path, rel: &str, limit: u64) -> io::Result<Vec<u8>> {
    let rel_path = Path::new(rel);
    if !rel_path
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{rel}: not a plain path inside the tree"),
        ));
    }
    // Every directory on the way must be a real one: `debian -> /etc`
    // would lead outside as surely as a symlinked file.
    let mut dir = root.to_path_buf();
    let components: Vec<_> = rel_path.components().collect();
    for c in &components[..components.len().saturating_sub(1)] {
        dir.push(c);
        let meta = std::fs::symlink_metadata(&dir).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{rel}: {}: {e}",
                    dir.strip_prefix(root).unwrap_or(&dir).display()
                ),
            )
        })?;
        if meta.file_type().is_symlink() {
            return Err(refused(
                &format!(
                    "{rel}: {}",
                    dir.strip_prefix(root).unwrap_or(&dir).display()
                ),
                "a symbolic link",
            ));
        }
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{rel}: {} is not a directory",
                    dir.strip_prefix(root).unwrap_or(&dir).display()
                ),
            ));
        }
    }
    read_open(open_regular(&root.join(rel_path), rel, false)?, rel, limit)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, b"key").unwrap();
        assert_eq!(read_regular(&p, 3).unwrap(), b"key");
        assert_eq!(read_regular_string(&p, 10).unwrap(), "key");
        let e = read_regular(&p, 2).unwrap_err();
        assert_eq!(e.to_string(), "larger than 2 bytes");
        let e = read_private(&p, 2).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{} is larger than 2 bytes", p.display())
        );
        let e = read_regular(&dir.path().join("none"), 2).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn links_devices_fifos_and_directories_are_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo");
        let start = Instant::now();
        assert!(
            read_regular(&link, KEY_LIMIT).is_ok(),
            "an operator's symlink is followed"
        );
        let e = read_private(&link, KEY_LIMIT).unwrap_err();
        assert!(e.to_string().contains("a symbolic link"), "{e}");
        for (path, what) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            for e in [read_regular(path, KEY_LIMIT), read_private(path, KEY_LIMIT)] {
                let e = e.unwrap_err();
                assert!(e.to_string().contains(what), "{}: {e}", path.display());
            }
        }
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn a_tree_file_is_reached_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src");
        std::fs::create_dir_all(root.join("debian/source")).unwrap();
        std::fs::write(root.join("debian/changelog"), "x (1) u; urgency=low\n").unwrap();
        assert!(read_in_tree(&root, "debian/changelog", 100).is_ok());
        std::os::unix::fs::symlink("/etc/passwd", root.join("debian/source/format")).unwrap();
        let e = read_in_tree(&root, "debian/source/format", 100).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("debian/source/format is a symbolic link"),
            "{e}"
        );
        let other = dir.path().join("elsewhere");
        std::fs::create_dir_all(other.join("debian")).unwrap();
        std::fs::write(other.join("debian/changelog"), "secret").unwrap();
        let linked = dir.path().join("linked");
        std::fs::create_dir_all(&linked).unwrap();
        std::os::unix::fs::symlink(other.join("debian"), linked.join("debian")).unwrap();
        let e = read_in_tree(&linked, "debian/changelog", 100).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(read_in_tree(&root, "../x", 100).is_err());
        assert!(read_in_tree(&root, "/etc/passwd", 100).is_err());
        assert_eq!(
            read_in_tree(&root, "debian/nothing", 100)
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }
}

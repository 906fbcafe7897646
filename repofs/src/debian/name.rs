//! Validation of the names that end up in paths: package names (Debian
//! Policy 5.6.1), architectures, and our own archive, dist, component and
//! channel names. Anything that reaches the file system goes through here
//! first, so no name can escape the pool (`../`, `/`, a leading dot).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("package name {0:?} is not valid (Debian Policy: [a-z0-9][a-z0-9+.-]+)")]
    Package(String),
    #[error("architecture {0:?} is not valid")]
    Arch(String),
    #[error(
        "{what} {name:?} is not valid (use letters, digits, '.', '_', '+', '-'; no leading dot)"
    )]
    Segment { what: &'static str, name: String },
    #[error("file name {0:?} would escape its directory or is not a plain file name")]
    FileName(String),
}

/// Policy 5.6.1: lower-case alphanumerics and `+-.`, at least two
/// characters, starting with an alphanumeric.
pub fn check_package(name: &str) -> Result<(), NameError> {
    let ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b));
    ok.then_some(())
        .ok_or_else(|| NameError::Package(name.to_string()))
}

/// dpkg architecture names: lower-case alphanumerics and `-` (`amd64`,
/// `all`, `arm64`, `kfreebsd-amd64`).
pub fn check_arch(arch: &str) -> Result<(), NameError> {
    let ok = !arch.is_empty()
        && !arch.starts_with('-')
        && arch
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then_some(())
        .ok_or_else(|| NameError::Arch(arch.to_string()))
}

/// A single path segment we choose names for: archive, dist, component,
/// channel. Dists may not contain `/` here even though Debian allows
/// `trusty/updates`: our tree keys on single segments.
pub fn check_segment(what: &'static str, name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b));
    ok.then_some(()).ok_or_else(|| NameError::Segment {
        what,
        name: name.to_string(),
    })
}

/// A file name listed in a `.dsc` or `.changes`: one plain segment, no path.
pub fn check_file_name(name: &str) -> Result<(), NameError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0', '\n'])
        && name.len() <= 255;
    ok.then_some(())
        .ok_or_else(|| NameError::FileName(name.to_string()))
}

/// The pool directory Debian uses for a source package:
/// `pool/<component>/<prefix>/<source>` where the prefix is `libX` for
/// `lib*` sources and the first letter otherwise.
pub fn pool_dir(component: &str, source: &str) -> String {
    let prefix = if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..source.len().min(1)]
    };
    format!("pool/{component}/{prefix}/{source}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in ["hello", "libc6", "g++", "python3.11", "0ad"] {
            check_package(ok).unwrap();
        }
        for bad in ["", "a", "Hello", "../x", "a/b", "-x", ".x", "a_b"] {
            assert!(check_package(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_names_cannot_escape() {
        for bad in ["../x.tar.gz", "a/b", "..", ".", ".hidden", ""] {
            assert!(check_file_name(bad).is_err(), "{bad}");
        }
        check_file_name("hello_1.0.orig.tar.gz").unwrap();
    }

    #[test]
    fn segments() {
        check_segment("dist", "trusty-updates").unwrap();
        for bad in ["", "..", "a/b", ".x", "a b"] {
            assert!(check_segment("dist", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_dirs() {
        assert_eq!(pool_dir("main", "hello"), "pool/main/h/hello");
        assert_eq!(pool_dir("main", "libfoo"), "pool/main/libf/libfoo");
        assert_eq!(pool_dir("main", "lib"), "pool/main/l/lib");
    }
}

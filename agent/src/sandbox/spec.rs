//! What a sandbox is made of (PURE): the root it enters, what is bound
//! into it, who runs inside and within which bounds. The host side
//! (`super::command`) hands a `Spec` to the init inside (`super::init`) as
//! one JSON argument.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::subids::IdMap;

/// The filesystem a sandbox sees as `/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Root {
    /// A root filesystem unpacked on the host (a build root, an
    /// acceptance system), owned by the mapped ids; writable inside.
    Dir(PathBuf),
    /// The host's own programs, read-only (`/usr`, `/etc`, ... bound from
    /// the host) on an empty tmpfs, with a private `/tmp`, `/run` and
    /// home: for work that needs the host's tools (mmdebstrap, a host
    /// build) but none of its data.
    HostTools,
}

/// A host path shown inside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bind {
    pub host: PathBuf,
    /// Absolute, inside the root (made if missing).
    pub inside: String,
    pub writable: bool,
}

/// A sandbox, as a caller describes it (`super::Sandbox::in_dir`,
/// `host_tools`, `bind`); [`Spec`] adds the command and the id map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    pub root: Root,
    pub binds: Vec<Bind>,
    /// Paths (inside) hidden: a directory under an empty read-only tmpfs,
    /// a file under `/dev/null` (the store, halo's configuration, when
    /// they lie below a directory `HostTools` binds).
    pub masks: Vec<String>,
    /// The user and group the command runs as, inside (0: the sandbox's
    /// root, which is `ids`' first host id outside).
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    /// Where the command starts (inside).
    pub cwd: String,
    /// The whole environment of the command.
    pub env: BTreeMap<String, String>,
    /// RLIMIT_AS of every process inside, in bytes.
    pub memory: Option<u64>,
}

/// Everything the init inside needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    #[serde(flatten)]
    pub sandbox: Sandbox,
    pub argv: Vec<String>,
    /// How ids map; the init checks it runs under this map.
    pub ids: IdMap,
}

/// The directories `Root::HostTools` binds read-only from the host when
/// they exist; symlinks among them (`/bin -> usr/bin` on a merged-/usr
/// system) are copied as symlinks.
pub const HOST_TOOL_DIRS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc",
    "/var/lib/dpkg",
    "/var/lib/apt",
    "/var/cache/apt",
    "/var/cache/debconf",
    "/opt",
];

/// The fixed environment inside a root: the same whoever runs halo.
pub fn base_env(home: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("HOME".to_string(), home.to_string()),
        ("LC_ALL".to_string(), "C.UTF-8".to_string()),
    ])
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{0}: a path inside a sandbox must be absolute and plain (no `..`)")]
    Inside(String),
    #[error("a sandboxed command needs a program")]
    NoProgram,
}

impl Spec {
    /// Refuses what the init could misread: relative or climbing inside
    /// paths, an empty argv.
    pub fn check(&self) -> Result<(), SpecError> {
        if self.argv.is_empty() {
            return Err(SpecError::NoProgram);
        }
        let b = &self.sandbox;
        let paths = b
            .binds
            .iter()
            .map(|b| b.inside.as_str())
            .chain(b.masks.iter().map(String::as_str))
            .chain(std::iter::once(b.cwd.as_str()));
        for p in paths {
            if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(SpecError::Inside(p.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::subids::Range;
    use super::*;

    fn spec() -> Spec {
        Spec {
            sandbox: Sandbox {
                root: Root::HostTools,
                binds: vec![Bind {
                    host: "/srv/x".into(),
                    inside: "/build".into(),
                    writable: true,
                }],
                masks: vec![],
                uid: 0,
                gid: 0,
                hostname: "h".into(),
                cwd: "/".into(),
                env: base_env("/root"),
                memory: None,
            },
            argv: vec!["true".into()],
            ids: IdMap {
                uids: Range {
                    start: 100000,
                    count: 65536,
                },
                gids: Range {
                    start: 100000,
                    count: 65536,
                },
            },
        }
    }

    #[test]
    fn inside_paths_are_absolute_and_plain() {
        assert_eq!(spec().check(), Ok(()));
        let mut s = spec();
        s.sandbox.binds[0].inside = "build".into();
        assert!(s.check().is_err());
        let mut s = spec();
        s.sandbox.masks.push("/srv/../etc".into());
        assert!(s.check().is_err());
        let mut s = spec();
        s.argv.clear();
        assert_eq!(s.check(), Err(SpecError::NoProgram));
    }

    #[test]
    fn round_trips_as_json() {
        let s = spec();
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Spec>(&text).unwrap(), s);
    }
}

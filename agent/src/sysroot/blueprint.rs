//! What a system is made of, decided from the snapshot manifest alone: its
//! apt sources (each configured archive's dist with the components the
//! snapshot holds for it), the mmdebstrap command that bootstraps it, and
//! the script that installs its packages. PURE: no disk, no processes;
//! `accept::system` and `build::root` run what this plans.
//!
//! A system sees the snapshot twice, under two names:
//! - while mmdebstrap bootstraps it, apt runs on the host and reads the
//!   host's tree (`file:REPO/<archive>`) with the store's key where the
//!   store keeps it (`signed-by=STORE/keys/repo.gpg`); mmdebstrap's
//!   `file-mirror-automount` hook binds the tree into the root so dpkg
//!   inside can read the `.deb`s;
//! - afterwards the system's own apt (install step, tests) reads the tree
//!   bound at [`REPO_IN_SYSTEM`] with the key copied to
//!   [`KEYRING_IN_SYSTEM`], which is what the system's
//!   `/etc/apt/sources.list` says. Both are `signed-by`, never
//!   `trusted=yes`.

use std::path::Path;

use repofs::model::Snapshot;

/// Where the snapshot's APT tree is bound inside a system (by
/// `sysroot::chroot`, for the install step, the tests and builds).
pub const REPO_IN_SYSTEM: &str = "/run/halo/repo";

/// Where the store's public key lives inside a system.
pub const KEYRING_IN_SYSTEM: &str = "/etc/apt/keyrings/halo.gpg";

/// mmdebstrap's hook that binds `file:` mirrors into the root while it
/// installs (Debian's `mmdebstrap` package ships it).
pub const AUTOMOUNT_HOOKS: &str = "/usr/share/mmdebstrap/hooks/file-mirror-automount";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlueprintError {
    #[error("snapshot {snapshot} has no archive {archive:?} (it has: {known})")]
    NoArchive {
        snapshot: String,
        archive: String,
        known: String,
    },
    #[error("snapshot {snapshot}: archive {archive:?} has no dist {dist:?} (it has: {known})")]
    NoDist {
        snapshot: String,
        archive: String,
        dist: String,
        known: String,
    },
    #[error("snapshot {snapshot}: {archive}/{dist} has no components")]
    NoComponents {
        snapshot: String,
        archive: String,
        dist: String,
    },
    /// apt's one-line sources and mmdebstrap's special hooks split on blanks.
    #[error("{0:?}: a path with blanks cannot go into a sources.list line or an mmdebstrap hook")]
    Blank(String),
}

/// One `deb` line of a system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptSource {
    pub archive: String,
    pub dist: String,
    pub components: Vec<String>,
}

/// The sources of a system that bootstraps `dist` from `archives`: each
/// archive must hold the dist in the snapshot.
pub fn plan_sources(
    snapshot: &Snapshot,
    dist: &str,
    archives: &[String],
) -> Result<Vec<AptSource>, BlueprintError> {
    let list = |keys: Vec<&String>| {
        if keys.is_empty() {
            "none".to_string()
        } else {
            keys.into_iter().cloned().collect::<Vec<_>>().join(", ")
        }
    };
    archives
        .iter()
        .map(|archive| {
            let a = snapshot
                .archives
                .get(archive)
                .ok_or_else(|| BlueprintError::NoArchive {
                    snapshot: snapshot.id.clone(),
                    archive: archive.clone(),
                    known: list(snapshot.archives.keys().collect()),
                })?;
            let d = a.dists.get(dist).ok_or_else(|| BlueprintError::NoDist {
                snapshot: snapshot.id.clone(),
                archive: archive.clone(),
                dist: dist.to_string(),
                known: list(a.dists.keys().collect()),
            })?;
            if d.components.is_empty() {
                return Err(BlueprintError::NoComponents {
                    snapshot: snapshot.id.clone(),
                    archive: archive.clone(),
                    dist: dist.to_string(),
                });
            }
            Ok(AptSource {
                archive: archive.clone(),
                dist: dist.to_string(),
                components: d.components.keys().cloned().collect(),
            })
        })
        .collect()
}

fn no_blanks(path: &Path) -> Result<String, BlueprintError> {
    let text = path.to_string_lossy().into_owned();
    if text.chars().any(char::is_whitespace) {
        return Err(BlueprintError::Blank(text));
    }
    Ok(text)
}

/// One `deb [signed-by=KEYRING] file:BASE/<archive> DIST COMPONENTS` line
/// per source.
pub fn render_sources_list(
    sources: &[AptSource],
    base: &Path,
    keyring: &Path,
) -> Result<String, BlueprintError> {
    let (base, keyring) = (no_blanks(base)?, no_blanks(keyring)?);
    Ok(sources
        .iter()
        .map(|s| {
            format!(
                "deb [signed-by={keyring}] file:{}/{} {} {}\n",
                base.trim_end_matches('/'),
                s.archive,
                s.dist,
                s.components.join(" ")
            )
        })
        .collect())
}

/// What mmdebstrap installs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Essential and apt: an acceptance system, whose packages apt adds.
    Apt,
    /// Essential, apt and build-essential: a build root, whose build
    /// dependencies apt adds.
    Buildd,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Self::Apt => "apt",
            Self::Buildd => "buildd",
        }
    }
}

/// The host's side of a bootstrap.
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    pub variant: Variant,
    /// Further packages to install (`--include`).
    pub include: &'a [String],
    pub dist: &'a str,
    pub sources: &'a [AptSource],
    /// The root to make (mmdebstrap creates it): a directory, or a tar
    /// archive when the name ends in `.tar`.
    pub root: &'a Path,
    /// The snapshot's APT tree on the host.
    pub repo: &'a Path,
    /// The store's public key on the host.
    pub keyring: &'a Path,
    /// A host file holding the system's own sources.list
    /// ([`render_sources_list`] with the in-system paths).
    pub system_sources: &'a Path,
}

/// mmdebstrap's arguments: the variant (nothing but what it names),
/// `--mode=unshare` (as root: private mount and pid namespaces, so nothing
/// it mounts outlives it; as a user: also a user namespace), the snapshot
/// as its only sources, and the root's apt configuration written at the
/// end.
pub fn plan_bootstrap(b: &Bootstrap<'_>) -> Result<Vec<String>, BlueprintError> {
    let keyring = no_blanks(b.keyring)?;
    let system_sources = no_blanks(b.system_sources)?;
    let tar = b.root.extension().is_some_and(|e| e == "tar");
    let mut args: Vec<String> = vec![
        format!("--variant={}", b.variant.name()),
        "--mode=unshare".into(),
        format!("--format={}", if tar { "tar" } else { "directory" }),
        // A root is thrown away (or packed): dpkg need not fsync every file.
        "--dpkgopt=force-unsafe-io".into(),
    ];
    if b.variant == Variant::Buildd {
        // buildd is minbase (Essential and Priority: required) plus
        // build-essential: apt comes only through its priority, which a
        // filtered mirror or an index without priorities loses. The root's
        // own apt installs the build dependencies, so it is named.
        args.push("--include=apt".into());
    }
    for p in b.include {
        args.push(format!("--include={p}"));
    }
    args.push(format!("--hook-dir={AUTOMOUNT_HOOKS}"));
    let keyrings_dir = KEYRING_IN_SYSTEM.rsplit_once('/').map_or("/", |(d, _)| d);
    args.push(format!("--customize-hook=mkdir -p \"$1{keyrings_dir}\""));
    args.push(format!(
        "--customize-hook=upload {keyring} {KEYRING_IN_SYSTEM}"
    ));
    args.push(format!(
        "--customize-hook=upload {system_sources} /etc/apt/sources.list"
    ));
    args.push(b.dist.to_string());
    args.push(b.root.to_string_lossy().into_owned());
    let lines = render_sources_list(b.sources, b.repo, b.keyring)?;
    args.extend(lines.lines().map(str::to_string));
    Ok(args)
}

/// The install step, run with `sh -c` inside the system with the packages
/// as its arguments: services are kept from starting (policy-rc.d, as
/// mmdebstrap and debootstrap do; removed afterwards unless the system
/// had its own), then apt reads the snapshot with the system's own
/// sources and key and installs.
pub const INSTALL_SCRIPT: &str = r#"set -e
export DEBIAN_FRONTEND=noninteractive
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
if [ "$#" -gt 0 ]; then
  apt-get install -q -y "$@"
fi
"#;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use repofs::model::{ArchiveSnapshot, DistSnapshot};

    use super::*;

    fn snapshot() -> Snapshot {
        let dist = |comps: &[&str]| DistSnapshot {
            components: comps
                .iter()
                .map(|c| (c.to_string(), "0".repeat(64)))
                .collect(),
            architectures: vec!["amd64".into()],
            ..Default::default()
        };
        let archive = |dists: Vec<(&str, DistSnapshot)>| ArchiveSnapshot {
            dists: dists.into_iter().map(|(n, d)| (n.to_string(), d)).collect(),
        };
        Snapshot {
            id: "20261205T100000.000Z".into(),
            created: "2026-12-05T10:00:00Z".into(),
            archives: BTreeMap::from([
                (
                    "debian".to_string(),
                    archive(vec![
                        ("bookworm", dist(&["main", "contrib"])),
                        ("trixie", dist(&["main"])),
                    ]),
                ),
                (
                    "rustedhalo".to_string(),
                    archive(vec![("bookworm", dist(&["main"])), ("empty", dist(&[]))]),
                ),
            ]),
            restores: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sources_take_the_components_the_snapshot_holds() {
        let s = plan_sources(&snapshot(), "bookworm", &names(&["debian", "rustedhalo"])).unwrap();
        assert_eq!(s[0].components, ["contrib", "main"]);
        assert_eq!(s[1].archive, "rustedhalo");
        let text = render_sources_list(&s, Path::new(REPO_IN_SYSTEM), Path::new(KEYRING_IN_SYSTEM))
            .unwrap();
        assert_eq!(
            text,
            "deb [signed-by=/etc/apt/keyrings/halo.gpg] file:/run/halo/repo/debian bookworm contrib main\n\
             deb [signed-by=/etc/apt/keyrings/halo.gpg] file:/run/halo/repo/rustedhalo bookworm main\n"
        );
    }

    #[test]
    fn a_missing_archive_dist_or_component_is_named() {
        let e = plan_sources(&snapshot(), "bookworm", &names(&["ubuntu"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "snapshot 20261205T100000.000Z has no archive \"ubuntu\" (it has: debian, rustedhalo)"
        );
        let e = plan_sources(&snapshot(), "trixie", &names(&["debian", "rustedhalo"])).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "archive \"rustedhalo\" has no dist \"trixie\" (it has: bookworm, empty)"
            ),
            "{e}"
        );
        let e = plan_sources(&snapshot(), "empty", &names(&["rustedhalo"])).unwrap_err();
        assert!(matches!(e, BlueprintError::NoComponents { .. }), "{e}");
    }

    #[test]
    fn the_bootstrap_reads_the_host_tree_and_leaves_the_system_its_own_sources() {
        let sources = plan_sources(&snapshot(), "bookworm", &names(&["debian"])).unwrap();
        let (root, repo) = (
            PathBuf::from("/w/root"),
            PathBuf::from("/srv/apt/snapshots/X/"),
        );
        let (key, list) = (
            PathBuf::from("/s/keys/repo.gpg"),
            PathBuf::from("/w/sources.list"),
        );
        let args = plan_bootstrap(&Bootstrap {
            variant: Variant::Apt,
            include: &[],
            dist: "bookworm",
            sources: &sources,
            root: &root,
            repo: &repo,
            keyring: &key,
            system_sources: &list,
        })
        .unwrap();
        assert_eq!(
            &args[..3],
            ["--variant=apt", "--mode=unshare", "--format=directory"]
        );
        assert!(args.contains(
            &"--customize-hook=upload /s/keys/repo.gpg /etc/apt/keyrings/halo.gpg".to_string()
        ));
        assert!(args.contains(
            &"--customize-hook=upload /w/sources.list /etc/apt/sources.list".to_string()
        ));
        assert_eq!(
            &args[args.len() - 3..],
            [
                "bookworm",
                "/w/root",
                "deb [signed-by=/s/keys/repo.gpg] file:/srv/apt/snapshots/X/debian bookworm contrib main"
            ]
        );
        let buildd = plan_bootstrap(&Bootstrap {
            variant: Variant::Buildd,
            include: &["debhelper".to_string()],
            dist: "bookworm",
            sources: &sources,
            root: Path::new("/c/root.tar"),
            repo: &repo,
            keyring: &key,
            system_sources: &list,
        })
        .unwrap();
        assert_eq!(
            &buildd[..6],
            [
                "--variant=buildd",
                "--mode=unshare",
                "--format=tar",
                "--dpkgopt=force-unsafe-io",
                "--include=apt",
                "--include=debhelper"
            ]
        );
        let blank = PathBuf::from("/my store/keys/repo.gpg");
        let e = plan_bootstrap(&Bootstrap {
            variant: Variant::Apt,
            include: &[],
            dist: "bookworm",
            sources: &sources,
            root: &root,
            repo: &repo,
            keyring: &blank,
            system_sources: &list,
        })
        .unwrap_err();
        assert_eq!(e, BlueprintError::Blank("/my store/keys/repo.gpg".into()));
    }
}

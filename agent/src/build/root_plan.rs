//! Which cached build root a build uses, decided from the snapshot
//! manifest alone. PURE.
//!
//! A root is named by its *family* (what it is asked to be: suite,
//! architecture, archives, extra packages) and its *key* (what it is made
//! of: the component states its sources read in the snapshot). The key
//! is the snapshot's content, not its id, so a build that publishes into
//! a dist the root does not read (the usual case: the root reads the
//! distribution's archive, builds land in ours) moves the channel without
//! costing the next build a bootstrap; any change to what the root reads
//! makes a new key, and the family's older roots are then stale.

use repofs::model::Snapshot;
use sha2::{Digest, Sha256};

use crate::config::RootConfig;
use crate::sysroot::blueprint::AptSource;

/// A cached root's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootName {
    pub family: String,
    pub key: String,
}

impl RootName {
    /// `<family>-<key>`: the tarball is this plus `.tar`, its record `.json`.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.family, self.key)
    }
}

fn digest(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // A separator no name may hold, so ("ab","c") and ("a","bc") differ.
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..len].to_string()
}

/// The family of the roots `config` asks for on `arch`: what they are
/// asked to be, whatever they are made from.
pub fn plan_family(config: &RootConfig, arch: &str) -> String {
    let mut asked = vec!["buildd", config.suite.as_str(), arch, "archives"];
    asked.extend(config.archives.iter().map(String::as_str));
    asked.push("packages");
    asked.extend(config.packages.iter().map(String::as_str));
    format!("{}-{arch}-{}", config.suite, digest(&asked, 8))
}

/// The name of the root `config` asks for on `arch`, made from `sources`
/// (planned from `snapshot` by `blueprint::plan_sources`).
pub fn plan_root_name(
    config: &RootConfig,
    arch: &str,
    snapshot: &Snapshot,
    sources: &[AptSource],
) -> RootName {
    let family = plan_family(config, arch);
    let mut made_of: Vec<String> = Vec::new();
    for s in sources {
        let Some(dist) = snapshot
            .archives
            .get(&s.archive)
            .and_then(|a| a.dists.get(&s.dist))
        else {
            continue;
        };
        for (component, state) in &dist.components {
            made_of.push(format!("{}/{}/{component}={state}", s.archive, s.dist));
        }
    }
    let parts: Vec<&str> = made_of.iter().map(String::as_str).collect();
    RootName {
        family,
        key: digest(&parts, 16),
    }
}

/// The files of `family` in the cache other than `current`'s: roots made
/// from what the family's sources held before.
pub fn plan_stale(current: &RootName, files: &[String]) -> Vec<String> {
    let prefix = format!("{}-", current.family);
    let stem = current.stem();
    files
        .iter()
        .filter(|f| {
            f.strip_prefix(&prefix).is_some_and(|rest| {
                // The family's own names: a key and an extension, no more.
                rest.split_once('.').is_some_and(|(key, ext)| {
                    key.len() == current.key.len()
                        && key.chars().all(|c| c.is_ascii_hexdigit())
                        && matches!(ext, "tar" | "json")
                })
            }) && f.split_once('.').map(|(s, _)| s) != Some(stem.as_str())
        })
        .cloned()
        .collect()
}

/// The cached roots (`<family>-<16 hex>.tar|json`, family ending in 8
/// hex) of families neither `current`'s nor `configured`: left over from
/// a root configuration that was changed or removed.
pub fn plan_unconfigured(
    current: &RootName,
    configured: &[String],
    files: &[String],
) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            let Some((stem, ext)) = f.rsplit_once('.') else {
                return false;
            };
            let Some((family, key)) = stem.rsplit_once('-') else {
                return false;
            };
            let hex = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_hexdigit());
            matches!(ext, "tar" | "json")
                && hex(key, current.key.len())
                && family.rsplit_once('-').is_some_and(|(_, d)| hex(d, 8))
                && family != current.family
                && !configured.iter().any(|c| c == family)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use repofs::model::{ArchiveSnapshot, DistSnapshot};

    use super::*;

    fn snapshot(id: &str, debian: &str, ours: &str) -> Snapshot {
        let dist = |state: &str| DistSnapshot {
            components: BTreeMap::from([("main".to_string(), state.to_string())]),
            architectures: vec!["amd64".into()],
            ..Default::default()
        };
        let archive = |dists: Vec<(&str, &str)>| ArchiveSnapshot {
            dists: dists
                .into_iter()
                .map(|(n, s)| (n.to_string(), dist(s)))
                .collect(),
        };
        Snapshot {
            id: id.into(),
            created: "2026-12-05T10:00:00Z".into(),
            archives: BTreeMap::from([
                ("debian".to_string(), archive(vec![("bookworm", debian)])),
                ("rustedhalo".to_string(), archive(vec![("trusty", ours)])),
            ]),
            restores: None,
        }
    }

    fn config() -> RootConfig {
        RootConfig {
            channel: "trusty-unstable".into(),
            suite: "bookworm".into(),
            archives: vec!["debian".into()],
            packages: vec![],
        }
    }

    fn name(s: &Snapshot, c: &RootConfig) -> RootName {
        let sources = crate::sysroot::blueprint::plan_sources(s, &c.suite, &c.archives).unwrap();
        plan_root_name(c, "amd64", s, &sources)
    }

    #[test]
    fn the_key_follows_what_the_root_reads_not_the_snapshot_id() {
        let a = name(&snapshot("A", "d1", "o1"), &config());
        // Our dist moved (a build published), the root's did not: same root.
        assert_eq!(a, name(&snapshot("B", "d1", "o2"), &config()));
        // The distribution's archive changed: a new root of the same family.
        let c = name(&snapshot("C", "d2", "o2"), &config());
        assert_eq!(c.family, a.family);
        assert_ne!(c.key, a.key);
        // Asking for more packages is another family.
        let mut more = config();
        more.packages = vec!["debhelper".into()];
        assert_ne!(name(&snapshot("A", "d1", "o1"), &more).family, a.family);
        assert!(a.family.starts_with("bookworm-amd64-"), "{}", a.family);
    }

    #[test]
    fn older_roots_of_the_family_are_stale_and_nothing_else_is() {
        let a = name(&snapshot("A", "d1", "o1"), &config());
        let c = name(&snapshot("C", "d2", "o1"), &config());
        let mut more = config();
        more.packages = vec!["debhelper".into()];
        let other = name(&snapshot("A", "d1", "o1"), &more);
        let files: Vec<String> = [&a, &c, &other]
            .iter()
            .flat_map(|n| [format!("{}.tar", n.stem()), format!("{}.json", n.stem())])
            .chain([format!(".{}.tar.partial", a.stem()), "README".into()])
            .collect();
        assert_eq!(
            plan_stale(&c, &files),
            [format!("{}.tar", a.stem()), format!("{}.json", a.stem())]
        );
    }

    #[test]
    fn roots_of_families_no_longer_configured_go_and_nothing_else_does() {
        let current = name(&snapshot("A", "d1", "o1"), &config());
        let mut kept_cfg = config();
        kept_cfg.packages = vec!["debhelper".into()];
        let kept = name(&snapshot("A", "d1", "o1"), &kept_cfg);
        let mut gone_cfg = config();
        gone_cfg.suite = "trixie".into();
        gone_cfg.archives = vec!["rustedhalo".into()];
        // Named without planning sources: `trixie` is not in the snapshot,
        // as a suite no longer configured need not be.
        let gone = RootName {
            family: plan_family(&gone_cfg, "amd64"),
            key: "0123456789abcdef".into(),
        };
        assert_ne!(gone.family, current.family);
        let files: Vec<String> = [&current, &kept, &gone]
            .iter()
            .flat_map(|n| [format!("{}.tar", n.stem()), format!("{}.json", n.stem())])
            .chain([
                format!(".{}.tar.partial", gone.stem()),
                "README".into(),
                "notes-2024.tar".into(),
            ])
            .collect();
        let configured = [plan_family(&kept_cfg, "amd64")];
        assert_eq!(
            plan_unconfigured(&current, &configured, &files),
            [
                format!("{}.tar", gone.stem()),
                format!("{}.json", gone.stem())
            ]
        );
        // With nothing configured, every other family's roots go.
        assert_eq!(plan_unconfigured(&current, &[], &files).len(), 4);
    }
}

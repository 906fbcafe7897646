//! `keep_versions`: an archive's working state keeps the newest N versions
//! of each package, so a long-lived mirror or a busy archive does not grow
//! without bound. Pure: it edits one component state. Snapshots keep what
//! they froze (their component states are separate blobs); the bytes of a
//! dropped version leave the pool only when `gc` removes the last snapshot
//! naming it.
//!
//! Binaries are counted per package name and architecture (`hello/amd64`
//! and `hello/arm64` keep N each), sources per package name; "newest" is
//! dpkg's version order.

use std::collections::HashMap;

use super::state::{cmp_versions, ComponentState};

/// Drops all but the newest `keep` versions of each binary (per
/// architecture) and each source package. Returns what it dropped, as
/// `name_version_arch` (`name_version_source` for sources), sorted.
/// `keep` = 0 is refused by the configuration; here it keeps nothing.
pub fn retain_versions(state: &mut ComponentState, keep: usize) -> Vec<String> {
    let mut dropped = Vec::new();
    let drop = drop_mask(
        state
            .binaries
            .iter()
            .map(|b| (b.package.as_str(), b.version.as_str(), b.arch.as_str())),
        keep,
    );
    let mut doomed = drop.into_iter();
    state.binaries.retain(|b| {
        if doomed.next().unwrap_or(false) {
            dropped.push(format!("{}_{}_{}", b.package, b.version, b.arch));
            false
        } else {
            true
        }
    });
    let mut sources: HashMap<&str, Vec<&str>> = HashMap::new();
    for s in &state.sources {
        sources
            .entry(s.package.as_str())
            .or_default()
            .push(s.version.as_str());
    }
    let mut doomed_src: std::collections::HashSet<(String, String)> = Default::default();
    for (name, mut vs) in sources {
        vs.sort_by(|a, b| cmp_versions(b, a));
        vs.dedup();
        for v in vs.into_iter().skip(keep) {
            doomed_src.insert((name.to_string(), v.to_string()));
        }
    }
    state.sources.retain(|s| {
        if doomed_src.contains(&(s.package.clone(), s.version.clone())) {
            dropped.push(format!("{}_{}_source", s.package, s.version));
            false
        } else {
            true
        }
    });
    dropped.sort();
    dropped
}

/// For each binary (name, version, arch), in the order given, whether
/// `keep_versions` drops it: all but the newest `keep` versions of each
/// name and arch. Shared by [`retain_versions`] and the import's compact
/// component (`store::spooled`), which hold binaries differently.
pub fn drop_mask<'a>(
    binaries: impl Iterator<Item = (&'a str, &'a str, &'a str)> + Clone,
    keep: usize,
) -> Vec<bool> {
    // Versions of each (name, arch), newest first.
    let mut versions: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (name, version, arch) in binaries.clone() {
        versions.entry((name, arch)).or_default().push(version);
    }
    let mut doomed: std::collections::HashSet<(&str, &str, &str)> = Default::default();
    for ((name, arch), mut vs) in versions {
        vs.sort_by(|a, b| cmp_versions(b, a));
        vs.dedup();
        for v in vs.into_iter().skip(keep) {
            doomed.insert((name, v, arch));
        }
    }
    binaries.map(|key| doomed.contains(&key)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BinaryEntry, PoolFile};

    fn bin(name: &str, version: &str, arch: &str) -> BinaryEntry {
        BinaryEntry {
            package: name.into(),
            version: version.into(),
            arch: arch.into(),
            stanza: String::new(),
            file: PoolFile {
                path: format!("{name}_{version}_{arch}.deb"),
                sha256: String::new(),
                size: 0,
            },
            origin: String::new(),
        }
    }

    #[test]
    fn keeps_the_newest_n_per_name_and_arch_in_dpkg_order() {
        let mut state = ComponentState {
            binaries: vec![
                bin("a", "1.0~rc1", "amd64"),
                bin("a", "1.0", "amd64"),
                bin("a", "1.0", "arm64"),
                bin("a", "1:0.5", "amd64"),
                bin("b", "2", "all"),
            ],
            ..Default::default()
        };
        state.sort();
        let dropped = retain_versions(&mut state, 2);
        // 1:0.5 is newest (epoch), then 1.0; 1.0~rc1 goes. arm64 keeps its one.
        assert_eq!(dropped, ["a_1.0~rc1_amd64"]);
        let left: Vec<_> = state
            .binaries
            .iter()
            .map(|b| format!("{}_{}_{}", b.package, b.version, b.arch))
            .collect();
        assert_eq!(
            left,
            ["a_1.0_amd64", "a_1.0_arm64", "a_1:0.5_amd64", "b_2_all"]
        );
        assert_eq!(retain_versions(&mut state, 2), Vec::<String>::new());
        assert_eq!(retain_versions(&mut state, 1), ["a_1.0_amd64"]);
    }
}

//! What changed between two snapshots, per archive, dist, component and
//! architecture (`source` for source packages): packages added, removed,
//! upgraded and downgraded, judged by the highest version each side holds.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::state::ComponentState;
use crate::debian::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Upgraded,
    Downgraded,
    /// Same version, different content (possible across archives'
    /// lifetimes, e.g. an upstream mirror that rebuilt a package).
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub archive: String,
    pub dist: String,
    pub component: String,
    pub arch: String,
    pub package: String,
    pub kind: ChangeKind,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Where a component sits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub archive: String,
    pub dist: String,
    pub component: String,
}

/// (arch, package) -> (highest version, content hash) of one component.
fn newest(state: &ComponentState) -> BTreeMap<(String, String), (String, String)> {
    let mut out: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    let binaries = state
        .binaries
        .iter()
        .map(|b| (b.arch.as_str(), &b.package, &b.version, &b.file.sha256));
    let sources = state.sources.iter().map(|s| {
        let sha = s.files.first().map(|f| &f.sha256);
        ("source", &s.package, &s.version, sha.unwrap_or(&s.version))
    });
    for (arch, pkg, ver, sha) in binaries.chain(sources) {
        let slot = out
            .entry((arch.to_string(), pkg.clone()))
            .or_insert_with(|| (ver.clone(), sha.clone()));
        if compare(ver, &slot.0) == Ordering::Greater {
            *slot = (ver.clone(), sha.clone());
        }
    }
    out
}

fn compare(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

/// Diffs two snapshots given as place -> component state (a place missing
/// on one side counts as empty).
pub fn plan_diff(
    old: &BTreeMap<Place, &ComponentState>,
    new: &BTreeMap<Place, &ComponentState>,
) -> Vec<Change> {
    let empty = ComponentState::default();
    let places: BTreeSet<&Place> = old.keys().chain(new.keys()).collect();
    let mut changes = Vec::new();
    for place in places {
        let a = newest(old.get(place).copied().unwrap_or(&empty));
        let b = newest(new.get(place).copied().unwrap_or(&empty));
        let keys: BTreeSet<&(String, String)> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (from, to) = (a.get(key), b.get(key));
            let kind = match (from, to) {
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(f), Some(t)) => match compare(&t.0, &f.0) {
                    Ordering::Greater => ChangeKind::Upgraded,
                    Ordering::Less => ChangeKind::Downgraded,
                    Ordering::Equal if f.1 != t.1 => ChangeKind::Changed,
                    Ordering::Equal => continue,
                },
                (None, None) => continue,
            };
            changes.push(Change {
                archive: place.archive.clone(),
                dist: place.dist.clone(),
                component: place.component.clone(),
                arch: key.0.clone(),
                package: key.1.clone(),
                kind,
                from: from.map(|f| f.0.clone()),
                to: to.map(|t| t.0.clone()),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::state::{BinaryEntry, PoolFile};

    fn state(pkgs: &[(&str, &str)]) -> ComponentState {
        let mut s = ComponentState::default();
        for (p, v) in pkgs {
            s.add_binary(BinaryEntry {
                package: (*p).into(),
                version: (*v).into(),
                arch: "amd64".into(),
                stanza: String::new(),
                file: PoolFile {
                    path: format!("pool/{p}_{v}"),
                    sha256: format!("{p}{v}"),
                    size: 0,
                },
                origin: String::new(),
            })
            .unwrap();
        }
        s
    }

    #[test]
    fn classifies_changes() {
        let place = Place {
            archive: "a".into(),
            dist: "d".into(),
            component: "main".into(),
        };
        let old = state(&[("keep", "1"), ("up", "1.9"), ("down", "2"), ("gone", "1")]);
        let new = state(&[("keep", "1"), ("up", "1.10"), ("down", "1"), ("new", "1")]);
        let o = BTreeMap::from([(place.clone(), &old)]);
        let n = BTreeMap::from([(place, &new)]);
        let kinds: Vec<_> = plan_diff(&o, &n)
            .into_iter()
            .map(|c| (c.package, c.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("down".to_string(), ChangeKind::Downgraded),
                ("gone".to_string(), ChangeKind::Removed),
                ("new".to_string(), ChangeKind::Added),
                ("up".to_string(), ChangeKind::Upgraded),
            ]
        );
    }
}

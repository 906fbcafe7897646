//! PURE: what `halo list` and `halo show` report. `list` reads one
//! archive's working state; `show` follows one package name through the
//! working state, every snapshot and every channel.
//!
//! Both are read-only. `show` is proportional to the number of snapshots
//! (each manifest's component states are scanned; the edge reads a state
//! shared by several snapshots once).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use super::diff::Place;
use super::state::ComponentState;
use crate::debian::Version;

/// A shell-style pattern over package names: `*` any run, `?` one
/// character, everything else itself (as reprepro's and aptly's name
/// patterns).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One package entry of the working state, as `halo list` prints it;
/// `arch` is `source` for a source package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub archive: String,
    pub dist: String,
    pub component: String,
    pub package: String,
    pub version: String,
    pub arch: String,
    /// The pool path (a source package's `.dsc`).
    pub filename: String,
}

/// The entries of `places` whose name matches `pattern` (all without one),
/// in place order, then the component state's own (name, dpkg version,
/// arch), binaries before sources.
pub fn plan_list(places: &[(Place, &ComponentState)], pattern: Option<&str>) -> Vec<Listed> {
    let wanted = |name: &str| pattern.is_none_or(|p| glob_match(p, name));
    let mut out = Vec::new();
    for (place, state) in places {
        let listed = |package: &str, version: &str, arch: &str, filename: &str| Listed {
            archive: place.archive.clone(),
            dist: place.dist.clone(),
            component: place.component.clone(),
            package: package.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
            filename: filename.to_string(),
        };
        for b in state.binaries.iter().filter(|b| wanted(&b.package)) {
            out.push(listed(&b.package, &b.version, &b.arch, &b.file.path));
        }
        for s in state.sources.iter().filter(|s| wanted(&s.package)) {
            let dsc = s.files.first().map_or("", |f| f.path.as_str());
            out.push(listed(&s.package, &s.version, "source", dsc));
        }
    }
    out
}

/// A version of a package in one component: (version, arch).
pub type Found = (String, String);

/// The versions of binaries called `name` and of the source called `name`
/// (arch `source`) in one component state.
pub fn find_package(state: &ComponentState, name: &str) -> Vec<Found> {
    let binaries = state
        .binaries
        .iter()
        .filter(|b| b.package == name)
        .map(|b| (b.version.clone(), b.arch.clone()));
    let sources = state
        .sources
        .iter()
        .filter(|s| s.package == name)
        .map(|s| (s.version.clone(), "source".to_string()));
    binaries.chain(sources).collect()
}

/// The versions found in each place of one state (working or a snapshot's).
pub type FoundAt<'a> = Vec<(Place, &'a [Found])>;

/// One version of the package in one place, and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Holding {
    pub archive: String,
    pub dist: String,
    pub component: String,
    pub package: String,
    pub version: String,
    pub arch: String,
    /// In the working state: the next snapshot will have it.
    pub working: bool,
    /// Snapshots holding it, oldest first.
    pub snapshots: Vec<String>,
    /// Channels pointing at one of those snapshots now.
    pub channels: Vec<String>,
}

/// Where each version of package `name` is: `working` and each snapshot's
/// (id, places) give the versions found per place ([`find_package`]);
/// `channels` are (channel, snapshot it points at). Sorted by place, then
/// dpkg version, then arch.
pub fn plan_show(
    name: &str,
    working: &FoundAt<'_>,
    snapshots: &[(String, FoundAt<'_>)],
    channels: &[(String, Option<String>)],
) -> Vec<Holding> {
    let mut map: BTreeMap<(Place, String, String), Holding> = BTreeMap::new();
    for (place, found) in working {
        for f in found.iter() {
            entry(&mut map, name, place, f).working = true;
        }
    }
    for (id, places) in snapshots {
        for (place, found) in places {
            for f in found.iter() {
                let h = entry(&mut map, name, place, f);
                if h.snapshots.last() != Some(id) {
                    h.snapshots.push(id.clone());
                }
            }
        }
    }
    let mut out: Vec<Holding> = map.into_values().collect();
    for h in &mut out {
        h.snapshots.sort();
        h.channels = channels
            .iter()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| h.snapshots.contains(s)))
            .map(|(c, _)| c.clone())
            .collect();
    }
    out.sort_by(|a, b| {
        (&a.archive, &a.dist, &a.component)
            .cmp(&(&b.archive, &b.dist, &b.component))
            .then_with(|| dpkg_order(&a.version, &b.version))
            .then_with(|| a.arch.cmp(&b.arch))
    });
    out
}

fn entry<'m>(
    map: &'m mut BTreeMap<(Place, String, String), Holding>,
    name: &str,
    place: &Place,
    (version, arch): &Found,
) -> &'m mut Holding {
    let key = (place.clone(), version.clone(), arch.clone());
    map.entry(key).or_insert_with(|| Holding {
        archive: place.archive.clone(),
        dist: place.dist.clone(),
        component: place.component.clone(),
        package: name.to_string(),
        version: version.clone(),
        arch: arch.clone(),
        working: false,
        snapshots: Vec::new(),
        channels: Vec::new(),
    })
}

fn dpkg_order(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(va), Ok(vb)) => va.cmp(&vb).then_with(|| a.cmp(b)),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{BinaryEntry, PoolFile};

    #[test]
    fn globs_match_like_the_shell() {
        for (p, t, want) in [
            ("hello", "hello", true),
            ("hel*", "hello", true),
            ("*lo", "hello", true),
            ("h?llo", "hello", true),
            ("*", "", true),
            ("lib*-dev", "libfoo-dev", true),
            ("lib*-dev", "libfoo-dev1", false),
            ("h*l*o", "hello", true),
            ("hel", "hello", false),
            ("?", "", false),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} {t}");
        }
    }

    fn state(entries: &[(&str, &str, &str)]) -> ComponentState {
        let mut c = ComponentState::default();
        for (p, v, a) in entries {
            c.add_binary(BinaryEntry {
                package: p.to_string(),
                version: v.to_string(),
                arch: a.to_string(),
                stanza: String::new(),
                file: PoolFile {
                    path: format!("pool/{p}_{v}_{a}.deb"),
                    sha256: format!("{p}{v}{a}"),
                    size: 1,
                },
                origin: String::new(),
            })
            .unwrap();
        }
        c
    }

    fn place(dist: &str) -> Place {
        Place {
            archive: "a".into(),
            dist: dist.into(),
            component: "main".into(),
        }
    }

    #[test]
    fn list_filters_by_pattern() {
        let s = state(&[
            ("hello", "1", "all"),
            ("help", "2", "all"),
            ("x", "1", "all"),
        ]);
        let got = plan_list(&[(place("d"), &s)], Some("hel*"));
        let names: Vec<_> = got.iter().map(|l| l.package.as_str()).collect();
        assert_eq!(names, ["hello", "help"]);
        assert_eq!(got[0].filename, "pool/hello_1_all.deb");
        assert_eq!(plan_list(&[(place("d"), &s)], None).len(), 3);
    }

    #[test]
    fn show_follows_versions_into_snapshots_and_channels() {
        let old = state(&[("hello", "1.10", "all"), ("hello", "1.9", "all")]);
        let new = state(&[("hello", "1.10", "all")]);
        let f_old = find_package(&old, "hello");
        let f_new = find_package(&new, "hello");
        let working = vec![(place("d"), f_new.as_slice())];
        let snapshots = vec![
            ("S1".to_string(), vec![(place("d"), f_old.as_slice())]),
            ("S2".to_string(), vec![(place("d"), f_new.as_slice())]),
        ];
        let channels = vec![
            ("stable".to_string(), Some("S1".to_string())),
            ("unstable".to_string(), Some("S2".to_string())),
            ("empty".to_string(), None),
        ];
        let got = plan_show("hello", &working, &snapshots, &channels);
        let summary: Vec<_> = got
            .iter()
            .map(|h| {
                format!(
                    "{} {} {:?} {:?}",
                    h.version, h.working, h.snapshots, h.channels
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                r#"1.9 false ["S1"] ["stable"]"#,
                r#"1.10 true ["S1", "S2"] ["stable", "unstable"]"#
            ]
        );
    }
}

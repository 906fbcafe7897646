//! PURE: taking packages out of an archive's working state and copying them
//! between archives (`halo remove`, `halo copy`): package specs, what they
//! match, and the new component states.
//!
//! Nothing here reads the store: `store::edit` loads the component states,
//! calls one function, and commits what it returns by the one `state.json`
//! rename an import uses. Snapshots keep what they froze: a removal only
//! changes what the next snapshot holds.
//!
//! Copies are planned in `model::copy`, on the specs and entries defined here.
//!
//! What a name matches, as reprepro's `remove` does: binary packages by
//! their own name and source packages by theirs. `halo remove foo` takes out
//! the binaries called `foo` and the source called `foo`, not the binaries
//! a source `foo` built under other names (name those too). A copy takes
//! the same: binaries and the source of that name.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::closure::{self, Candidate};
use super::state::{ComponentState, Conflict};
use crate::debian::{name, Version};

/// `PKG[=VERSION][/ARCH]`: a package name, optionally one version, optionally
/// one architecture (`source` for the source package only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    pub name: String,
    pub version: Option<String>,
    pub arch: Option<String>,
}

/// A spec that is not `PKG[=VERSION][/ARCH]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("package {text:?}: {reason} (write PKG, PKG=VERSION, PKG/ARCH or PKG=VERSION/ARCH)")]
pub struct SpecError {
    pub text: String,
    pub reason: String,
}

impl PackageSpec {
    /// Parses `PKG[=VERSION][/ARCH]`. Versions contain no `/` and names no
    /// `=`, so the text splits unambiguously.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let bad = |reason: String| SpecError {
            text: text.to_string(),
            reason,
        };
        let (rest, arch) = match text.split_once('/') {
            Some((rest, arch)) => (rest, Some(arch)),
            None => (text, None),
        };
        let (pkg, version) = match rest.split_once('=') {
            Some((pkg, version)) => (pkg, Some(version)),
            None => (rest, None),
        };
        name::check_package(pkg).map_err(|e| bad(e.to_string()))?;
        if let Some(v) = version {
            Version::parse(v).map_err(|e| bad(format!("version {v:?}: {e}")))?;
        }
        if let Some(a) = arch {
            name::check_arch(a).map_err(|e| bad(e.to_string()))?;
        }
        Ok(PackageSpec {
            name: pkg.to_string(),
            version: version.map(str::to_string),
            arch: arch.map(str::to_string),
        })
    }

    pub(crate) fn matches_binary(&self, package: &str, version: &str, arch: &str) -> bool {
        package == self.name
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.arch.as_deref().is_none_or(|a| a == arch)
    }

    pub(crate) fn matches_source(&self, package: &str, version: &str) -> bool {
        package == self.name
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.arch.as_deref().is_none_or(|a| a == "source")
    }
}

impl fmt::Display for PackageSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(v) = &self.version {
            write!(f, "={v}")?;
        }
        if let Some(a) = &self.arch {
            write!(f, "/{a}")?;
        }
        Ok(())
    }
}

/// One package entry a removal or copy touched; `arch` is `source` for a
/// source package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct EntryRef {
    pub component: String,
    pub package: String,
    pub version: String,
    pub arch: String,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{} ({})",
            self.package, self.version, self.arch, self.component
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// A spec found nothing where it was applied.
    #[error("{spec} matches no package in {place}")]
    NoMatch { spec: String, place: String },
    /// The archive, dist or component does not exist in the working state.
    #[error("{place} does not exist in the working state")]
    UnknownPlace { place: String },
    /// The archive belongs to a mirror (`halo mirror update` rewrites it).
    #[error("{archive} is the archive of mirror {archive}: {why}")]
    MirrorArchive { archive: String, why: &'static str },
    /// The mirror's `packages` filter keeps what a removal would take out.
    #[error("mirror {archive} keeps {entry} (its `packages` filter selects it): it would come back on the next `halo mirror update`; leave it out of the mirror's `packages` first (docs/config.md)")]
    KeptByMirror { archive: String, entry: String },
    /// The target already holds this name, version and architecture with
    /// other content.
    #[error("copy into {place}")]
    Conflict {
        place: String,
        #[source]
        conflict: Box<Conflict>,
    },
    /// The target archive holds another file at a copied file's pool path.
    #[error("copy into {place}: {path} is already there from {origin} with different content (sha256 {existing}; the copied file has {new})")]
    PoolPath {
        place: String,
        path: String,
        origin: String,
        existing: String,
        new: String,
    },
    /// A stanza of the source archive does not parse (store damage).
    #[error("{key}: its stanza does not parse: {reason}")]
    Stanza { key: String, reason: String },
}

/// What a removal decided: the changed components and what left them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// Component -> new state, for the components that changed.
    pub components: BTreeMap<String, ComponentState>,
    pub removed: Vec<EntryRef>,
}

/// Takes every entry matching any of `specs` out of `components` (the
/// components of one dist, or the one named). Each spec must match at
/// least one entry somewhere in them: a spec matching nothing is an error
/// naming it and `place`, and nothing is removed.
pub fn plan_remove(
    components: &BTreeMap<String, ComponentState>,
    specs: &[PackageSpec],
    place: &str,
) -> Result<Removal, EditError> {
    let mut matched = vec![false; specs.len()];
    let mut out = Removal {
        components: BTreeMap::new(),
        removed: Vec::new(),
    };
    for (comp, state) in components {
        let mut kept = state.clone();
        let mut hit = |is_match: &dyn Fn(&PackageSpec) -> bool| {
            let mut any = false;
            for (i, spec) in specs.iter().enumerate() {
                if is_match(spec) {
                    matched[i] = true;
                    any = true;
                }
            }
            any
        };
        let entry = |package: &str, version: &str, arch: &str| EntryRef {
            component: comp.clone(),
            package: package.to_string(),
            version: version.to_string(),
            arch: arch.to_string(),
        };
        let mut removed = Vec::new();
        kept.binaries.retain(|b| {
            let gone = hit(&|s| s.matches_binary(&b.package, &b.version, &b.arch));
            if gone {
                removed.push(entry(&b.package, &b.version, &b.arch));
            }
            !gone
        });
        kept.sources.retain(|s| {
            let gone = hit(&|spec| spec.matches_source(&s.package, &s.version));
            if gone {
                removed.push(entry(&s.package, &s.version, "source"));
            }
            !gone
        });
        if !removed.is_empty() {
            out.removed.extend(removed);
            out.components.insert(comp.clone(), kept);
        }
    }
    if let Some(i) = matched.iter().position(|m| !m) {
        return Err(EditError::NoMatch {
            spec: specs[i].to_string(),
            place: place.to_string(),
        });
    }
    Ok(out)
}

/// A mirror's `packages` filter, as its configuration says now.
#[derive(Debug, Clone, Copy)]
pub struct MirrorFilter<'a> {
    pub packages: &'a [String],
    pub with_deps: bool,
}

/// Of the entries a removal takes out of `dist` of a mirror's archive, the
/// first that the mirror's filter keeps, or `None` when it leaves them all
/// out (so the next `halo mirror update` will not bring them back). Judged
/// as the update judges, over the packages the mirror holds now (`archive`:
/// every component of every dist, by (dist, component)): binaries by the
/// filter and its closure ([`closure::select`]), a source package by whether
/// a kept binary of its component was built from it.
pub fn kept_by_filter(
    archive: &BTreeMap<(String, String), ComponentState>,
    dist: &str,
    filter: &MirrorFilter<'_>,
    removed: &[EntryRef],
) -> Result<Option<EntryRef>, EditError> {
    let mut places = Vec::new();
    let mut paragraphs = Vec::new();
    for (place, state) in archive {
        for b in &state.binaries {
            paragraphs.push(parse_stanza(b)?);
            places.push((place, b));
        }
    }
    let universe: Vec<Candidate<'_>> = places
        .iter()
        .zip(&paragraphs)
        .map(|((_, b), p)| candidate(b, p))
        .collect();
    let keep = closure::select(&universe, filter.packages, filter.with_deps).keep;
    let kept = |r: &EntryRef| {
        if r.arch != "source" {
            return keep.contains(&(r.package.as_str(), r.version.as_str(), r.arch.as_str()));
        }
        places.iter().zip(&paragraphs).any(|(((d, c), b), p)| {
            d == dist
                && *c == r.component
                && keep.contains(&(b.package.as_str(), b.version.as_str(), b.arch.as_str()))
                && source_name(b, p) == r.package
        })
    };
    Ok(removed.iter().find(|r| kept(r)).cloned())
}

pub(crate) fn parse_stanza(b: &super::BinaryEntry) -> Result<crate::deb822::Paragraph, EditError> {
    crate::deb822::parse_single(&b.stanza).map_err(|e| EditError::Stanza {
        key: format!("{}_{}_{}", b.package, b.version, b.arch),
        reason: e.to_string(),
    })
}

pub(crate) fn candidate<'a>(
    b: &'a super::BinaryEntry,
    p: &'a crate::deb822::Paragraph,
) -> Candidate<'a> {
    Candidate {
        package: &b.package,
        version: &b.version,
        arch: &b.arch,
        depends: p.get("Depends"),
        pre_depends: p.get("Pre-Depends"),
        provides: p.get("Provides"),
    }
}

/// The source a binary was built from: `Source:` without its version, or
/// the binary's own name.
fn source_name<'a>(b: &'a super::BinaryEntry, p: &'a crate::deb822::Paragraph) -> &'a str {
    p.get("Source")
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or(&b.package)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{BinaryEntry, PoolFile, SourceEntry};

    pub(crate) fn bin(package: &str, version: &str, arch: &str, deps: &str) -> BinaryEntry {
        let path = format!("pool/main/x/{package}_{version}_{arch}.deb");
        BinaryEntry {
            package: package.into(),
            version: version.into(),
            arch: arch.into(),
            stanza: format!("Package: {package}\nVersion: {version}\nArchitecture: {arch}\n{deps}Filename: {path}\n"),
            file: PoolFile {
                sha256: format!("sha-{package}-{version}-{arch}"),
                path,
                size: 1,
            },
            origin: format!("{package}.deb"),
        }
    }

    pub(crate) fn src(package: &str, version: &str) -> SourceEntry {
        SourceEntry {
            package: package.into(),
            version: version.into(),
            stanza: format!("Package: {package}\nVersion: {version}\n"),
            files: vec![PoolFile {
                path: format!("pool/main/x/{package}_{version}.dsc"),
                sha256: format!("dsc-{package}-{version}"),
                size: 1,
            }],
            origin: format!("{package}.dsc"),
        }
    }

    pub(crate) fn comp(bins: Vec<BinaryEntry>, srcs: Vec<SourceEntry>) -> ComponentState {
        let mut c = ComponentState {
            binaries: bins,
            sources: srcs,
            ..Default::default()
        };
        c.sort();
        c
    }

    pub(crate) fn specs(texts: &[&str]) -> Vec<PackageSpec> {
        texts
            .iter()
            .map(|t| PackageSpec::parse(t).unwrap())
            .collect()
    }

    pub(crate) fn refs(r: &[EntryRef]) -> Vec<String> {
        r.iter()
            .map(|e| format!("{}={}/{}", e.package, e.version, e.arch))
            .collect()
    }

    pub(crate) fn hello() -> BTreeMap<String, ComponentState> {
        let main = comp(
            vec![
                bin("hello", "1.0", "amd64", ""),
                bin("hello", "2.0", "amd64", ""),
                bin("hello", "2.0", "i386", ""),
                bin("other", "1", "all", ""),
            ],
            vec![src("hello", "1.0"), src("hello", "2.0")],
        );
        let contrib = comp(vec![bin("hello", "2.0", "arm64", "")], vec![]);
        BTreeMap::from([("main".into(), main), ("contrib".into(), contrib)])
    }

    #[test]
    fn specs_parse_name_version_and_arch() {
        let s = PackageSpec::parse("hello=1:2.0-1~b/amd64").unwrap();
        assert_eq!(
            (s.name.as_str(), s.version.as_deref(), s.arch.as_deref()),
            ("hello", Some("1:2.0-1~b"), Some("amd64"))
        );
        assert_eq!(s.to_string(), "hello=1:2.0-1~b/amd64");
        assert_eq!(PackageSpec::parse("hello/source").unwrap().version, None);
        for bad in [
            "",
            "Hello",
            "hello=",
            "hello=1.0/",
            "hello/AMD64",
            "../x",
            "h",
        ] {
            let e = PackageSpec::parse(bad).unwrap_err();
            assert_eq!(e.text, bad);
        }
    }

    #[test]
    fn remove_by_name_takes_every_version_arch_and_the_source() {
        let r = plan_remove(&hello(), &specs(&["hello"]), "a/d").unwrap();
        assert_eq!(
            refs(&r.removed),
            [
                "hello=2.0/arm64",
                "hello=1.0/amd64",
                "hello=2.0/amd64",
                "hello=2.0/i386",
                "hello=1.0/source",
                "hello=2.0/source"
            ]
        );
        assert!(r.components["contrib"].binaries.is_empty());
        assert_eq!(refs_of(&r.components["main"]), ["other=1/all"]);
    }

    fn refs_of(c: &ComponentState) -> Vec<String> {
        let b = c
            .binaries
            .iter()
            .map(|b| format!("{}={}/{}", b.package, b.version, b.arch));
        let s = c
            .sources
            .iter()
            .map(|s| format!("{}={}/source", s.package, s.version));
        b.chain(s).collect()
    }

    #[test]
    fn remove_by_version_and_arch_leaves_the_rest() {
        let r = plan_remove(&hello(), &specs(&["hello=1.0"]), "a/d").unwrap();
        assert_eq!(refs(&r.removed), ["hello=1.0/amd64", "hello=1.0/source"]);
        assert_eq!(r.components.keys().collect::<Vec<_>>(), ["main"]);
        let r = plan_remove(&hello(), &specs(&["hello/i386", "hello=2.0/source"]), "a/d").unwrap();
        assert_eq!(refs(&r.removed), ["hello=2.0/i386", "hello=2.0/source"]);
    }

    #[test]
    fn a_spec_matching_nothing_is_refused_by_name() {
        for missing in ["nope", "hello=3.0", "hello/s390x", "other/source"] {
            let e = plan_remove(&hello(), &specs(&["hello", missing]), "a/d").unwrap_err();
            assert_eq!(
                e,
                EditError::NoMatch {
                    spec: missing.into(),
                    place: "a/d".into()
                }
            );
        }
    }

    #[test]
    fn a_mirror_filter_decides_what_may_be_removed_from_its_archive() {
        let mut main = comp(
            vec![
                bin("app", "1", "amd64", "Depends: lib\n"),
                bin("lib", "1", "amd64", "Source: libsrc (1)\n"),
                bin("gone", "1", "amd64", ""),
            ],
            vec![src("libsrc", "1"), src("gone", "1")],
        );
        main.sort();
        let archive = BTreeMap::from([(("d".to_string(), "main".to_string()), main)]);
        let r = |p: &str, a: &str| EntryRef {
            component: "main".into(),
            package: p.into(),
            version: "1".into(),
            arch: a.into(),
        };
        let packages = ["app".to_string()];
        let with = MirrorFilter {
            packages: &packages,
            with_deps: true,
        };
        let kept =
            |f: &MirrorFilter<'_>, e: &[EntryRef]| kept_by_filter(&archive, "d", f, e).unwrap();
        assert_eq!(
            kept(&with, &[r("gone", "amd64"), r("gone", "source")]),
            None
        );
        assert_eq!(
            kept(&with, &[r("gone", "amd64"), r("lib", "amd64")]),
            Some(r("lib", "amd64"))
        );
        assert_eq!(
            kept(&with, &[r("libsrc", "source")]),
            Some(r("libsrc", "source"))
        );
        let without = MirrorFilter {
            packages: &packages,
            with_deps: false,
        };
        assert_eq!(
            kept(&without, &[r("lib", "amd64"), r("libsrc", "source")]),
            None
        );
        assert_eq!(
            kept(&without, &[r("app", "amd64")]),
            Some(r("app", "amd64"))
        );
    }
}

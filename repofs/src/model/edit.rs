//! PURE: taking packages out of an archive's working state and copying them
//! between archives (`halo remove`, `halo copy`): package specs, what they
//! match, and the new component states.
//!
//! Nothing here reads the store: `store::edit` loads the component states,
//! calls one function, and commits what it returns by the one `state.json`
//! rename an import uses. Snapshots keep what they froze: a removal only
//! changes what the next snapshot holds.
//!
//! What a name matches, as reprepro's `remove` does: binary packages by
//! their own name and source packages by theirs. `halo remove foo` takes out
//! the binaries called `foo` and the source called `foo`, not the binaries
//! a source `foo` built under other names (name those too). A copy takes
//! the same: binaries and the source of that name.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::closure::{self, Candidate, Pick};
use super::state::{pool_paths, Added, ComponentState, Conflict};
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

    fn matches_binary(&self, package: &str, version: &str, arch: &str) -> bool {
        package == self.name
            && self.version.as_deref().is_none_or(|v| v == version)
            && self.arch.as_deref().is_none_or(|a| a == arch)
    }

    fn matches_source(&self, package: &str, version: &str) -> bool {
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
    #[error("copy into {place}: {conflict}")]
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

fn parse_stanza(b: &super::BinaryEntry) -> Result<crate::deb822::Paragraph, EditError> {
    crate::deb822::parse_single(&b.stanza).map_err(|e| EditError::Stanza {
        key: format!("{}_{}_{}", b.package, b.version, b.arch),
        reason: e.to_string(),
    })
}

fn candidate<'a>(b: &'a super::BinaryEntry, p: &'a crate::deb822::Paragraph) -> Candidate<'a> {
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

/// What a copy decided: the target's changed components, what was added
/// and what the target held already (same name, version, arch, content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    pub components: BTreeMap<String, ComponentState>,
    pub copied: Vec<EntryRef>,
    pub unchanged: Vec<EntryRef>,
}

/// Where a copy reads and writes, with their component states.
#[derive(Debug, Clone, Copy)]
pub struct CopyInput<'a> {
    /// The source dist's components (all, or the one named), by name.
    pub from: &'a BTreeMap<String, ComponentState>,
    /// `archive/dist[/component]` of the source, for messages.
    pub from_place: &'a str,
    /// Every component of every dist of the target archive, by (dist,
    /// component): one pool path holds one content archive-wide.
    pub to_archive: &'a BTreeMap<(String, String), ComponentState>,
    /// The target dist.
    pub to_dist: &'a str,
    /// `archive/dist` of the target, for messages.
    pub to_place: &'a str,
}

/// Copies the packages `specs` name from `input.from` into the target dist,
/// component by component under the same names. A spec without a version
/// takes the newest version (dpkg order) of each architecture, and of the
/// source package; with `with_deps`, the binaries' `Depends` and
/// `Pre-Depends` are resolved within the source components
/// ([`closure::Pick::Newest`]) and copied too. Pool files are shared, so
/// a copy adds entries and copies no bytes.
pub fn plan_copy(
    input: &CopyInput<'_>,
    specs: &[PackageSpec],
    with_deps: bool,
) -> Result<CopyPlan, EditError> {
    let (bins, srcs) = select_for_copy(input.from, specs, input.from_place)?;
    let bins = if with_deps {
        with_dependencies(input.from, &bins)?
    } else {
        bins
    };
    let mut paths = pool_paths(input.to_archive.values());
    let mut plan = CopyPlan {
        components: BTreeMap::new(),
        copied: Vec::new(),
        unchanged: Vec::new(),
    };
    let conflict = |conflict| EditError::Conflict {
        place: input.to_place.to_string(),
        conflict: Box::new(conflict),
    };
    for (comp, i) in bins {
        let entry = &input.from[&comp].binaries[i];
        let target = target_component(&mut plan, input, &comp);
        let r = EntryRef {
            component: comp.clone(),
            package: entry.package.clone(),
            version: entry.version.clone(),
            arch: entry.arch.clone(),
        };
        // The same name, version and arch first: the more telling refusal.
        let added = target.add_binary(entry.clone()).map_err(conflict)?;
        claim_paths(&mut paths, &[(&entry.file, &entry.origin)], input.to_place)?;
        match added {
            Added::New => plan.copied.push(r),
            Added::Unchanged => plan.unchanged.push(r),
        }
    }
    for (comp, i) in srcs {
        let entry = &input.from[&comp].sources[i];
        let target = target_component(&mut plan, input, &comp);
        let r = EntryRef {
            component: comp.clone(),
            package: entry.package.clone(),
            version: entry.version.clone(),
            arch: "source".into(),
        };
        let added = target.add_source(entry.clone()).map_err(conflict)?;
        let files: Vec<_> = entry.files.iter().map(|f| (f, &entry.origin)).collect();
        claim_paths(&mut paths, &files, input.to_place)?;
        match added {
            Added::New => plan.copied.push(r),
            Added::Unchanged => plan.unchanged.push(r),
        }
    }
    // Only components that gained something change.
    let changed: std::collections::BTreeSet<&String> =
        plan.copied.iter().map(|r| &r.component).collect();
    plan.components.retain(|c, _| changed.contains(c));
    Ok(plan)
}

/// The target's component `comp`, loaded from the target archive the first
/// time it is needed (new components start empty).
fn target_component<'p>(
    plan: &'p mut CopyPlan,
    input: &CopyInput<'_>,
    comp: &str,
) -> &'p mut ComponentState {
    plan.components.entry(comp.to_string()).or_insert_with(|| {
        input
            .to_archive
            .get(&(input.to_dist.to_string(), comp.to_string()))
            .cloned()
            .unwrap_or_default()
    })
}

/// Records the copied files' pool paths in the target archive, refusing a
/// path that holds other content there.
fn claim_paths(
    paths: &mut BTreeMap<String, (String, String)>,
    files: &[(&super::PoolFile, &String)],
    place: &str,
) -> Result<(), EditError> {
    for (f, origin) in files {
        match paths.get(&f.path) {
            Some((sha, other)) if *sha != f.sha256 => {
                return Err(EditError::PoolPath {
                    place: place.to_string(),
                    path: f.path.clone(),
                    origin: other.clone(),
                    existing: sha.clone(),
                    new: f.sha256.clone(),
                })
            }
            _ => {
                paths.insert(f.path.clone(), (f.sha256.clone(), (*origin).clone()));
            }
        }
    }
    Ok(())
}

/// (component, index) of the binaries and sources the specs select.
type Picked = (Vec<(String, usize)>, Vec<(String, usize)>);

fn select_for_copy(
    from: &BTreeMap<String, ComponentState>,
    specs: &[PackageSpec],
    place: &str,
) -> Result<Picked, EditError> {
    let (mut bins, mut srcs) = (Vec::new(), Vec::new());
    for spec in specs {
        let b: Vec<(String, usize)> = from
            .iter()
            .flat_map(|(c, s)| s.binaries.iter().enumerate().map(move |(i, e)| (c, i, e)))
            .filter(|(_, _, e)| spec.matches_binary(&e.package, &e.version, &e.arch))
            .map(|(c, i, _)| (c.clone(), i))
            .collect();
        let s: Vec<(String, usize)> = from
            .iter()
            .flat_map(|(c, s)| s.sources.iter().enumerate().map(move |(i, e)| (c, i, e)))
            .filter(|(_, _, e)| spec.matches_source(&e.package, &e.version))
            .map(|(c, i, _)| (c.clone(), i))
            .collect();
        if b.is_empty() && s.is_empty() {
            return Err(EditError::NoMatch {
                spec: spec.to_string(),
                place: place.to_string(),
            });
        }
        if spec.version.is_some() {
            bins.extend(b);
            srcs.extend(s);
            continue;
        }
        // The newest version of each architecture, and of the source.
        let version = |c: &String, i: usize| from[c].binaries[i].version.as_str();
        let arch = |c: &String, i: usize| from[c].binaries[i].arch.as_str();
        let mut newest: BTreeMap<&str, &str> = BTreeMap::new();
        for (c, i) in &b {
            let slot = newest.entry(arch(c, *i)).or_insert(version(c, *i));
            if closure::newer(version(c, *i), slot) {
                *slot = version(c, *i);
            }
        }
        bins.extend(
            b.iter()
                .filter(|(c, i)| newest[arch(c, *i)] == version(c, *i))
                .cloned(),
        );
        let src_version = |(c, i): &(String, usize)| from[c].sources[*i].version.as_str();
        let best = s
            .iter()
            .map(src_version)
            .reduce(|a, v| match closure::newer(v, a) {
                true => v,
                false => a,
            });
        srcs.extend(s.iter().filter(|e| Some(src_version(e)) == best).cloned());
    }
    bins.sort();
    bins.dedup();
    srcs.sort();
    srcs.dedup();
    Ok((bins, srcs))
}

/// `roots` and every binary of `from` they need (`Depends`, `Pre-Depends`).
fn with_dependencies(
    from: &BTreeMap<String, ComponentState>,
    roots: &[(String, usize)],
) -> Result<Vec<(String, usize)>, EditError> {
    let mut places = Vec::new();
    let mut paragraphs = Vec::new();
    for (c, s) in from {
        for (i, b) in s.binaries.iter().enumerate() {
            paragraphs.push(parse_stanza(b)?);
            places.push((c.clone(), i));
        }
    }
    let universe: Vec<Candidate<'_>> = places
        .iter()
        .zip(&paragraphs)
        .map(|((c, i), p)| candidate(&from[c].binaries[*i], p))
        .collect();
    let root_idx: Vec<usize> = roots
        .iter()
        .filter_map(|r| places.iter().position(|p| p == r))
        .collect();
    let kept = closure::closure(&universe, &root_idx, Pick::Newest);
    Ok(places
        .into_iter()
        .zip(kept)
        .filter(|(_, k)| *k)
        .map(|(p, _)| p)
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::{BinaryEntry, PoolFile, SourceEntry};

    fn bin(package: &str, version: &str, arch: &str, deps: &str) -> BinaryEntry {
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

    fn src(package: &str, version: &str) -> SourceEntry {
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

    fn comp(bins: Vec<BinaryEntry>, srcs: Vec<SourceEntry>) -> ComponentState {
        let mut c = ComponentState {
            binaries: bins,
            sources: srcs,
            ..Default::default()
        };
        c.sort();
        c
    }

    fn specs(texts: &[&str]) -> Vec<PackageSpec> {
        texts
            .iter()
            .map(|t| PackageSpec::parse(t).unwrap())
            .collect()
    }

    fn refs(r: &[EntryRef]) -> Vec<String> {
        r.iter()
            .map(|e| format!("{}={}/{}", e.package, e.version, e.arch))
            .collect()
    }

    fn hello() -> BTreeMap<String, ComponentState> {
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

    fn copy(
        from: &BTreeMap<String, ComponentState>,
        to: &BTreeMap<(String, String), ComponentState>,
        texts: &[&str],
        deps: bool,
    ) -> Result<CopyPlan, EditError> {
        let input = CopyInput {
            from,
            from_place: "a/d",
            to_archive: to,
            to_dist: "d2",
            to_place: "b/d2",
        };
        plan_copy(&input, &specs(texts), deps)
    }

    #[test]
    fn copy_without_version_takes_the_newest_of_each_arch_and_source() {
        let mut from = hello();
        from.get_mut("main")
            .unwrap()
            .add_binary(bin("hello", "1.5", "s390x", ""))
            .unwrap();
        let p = copy(&from, &BTreeMap::new(), &["hello"], false).unwrap();
        assert_eq!(
            refs(&p.copied),
            [
                "hello=2.0/arm64",
                "hello=1.5/s390x",
                "hello=2.0/amd64",
                "hello=2.0/i386",
                "hello=2.0/source"
            ]
        );
        assert_eq!(p.components.keys().collect::<Vec<_>>(), ["contrib", "main"]);
        let p = copy(&from, &BTreeMap::new(), &["hello=1.0/amd64"], false).unwrap();
        assert_eq!(refs(&p.copied), ["hello=1.0/amd64"]);
    }

    #[test]
    fn copy_with_deps_resolves_within_the_source() {
        let main = comp(
            vec![
                bin("app", "1", "amd64", "Depends: lib (>= 2), missing\n"),
                bin("lib", "1", "amd64", ""),
                bin("lib", "2", "amd64", "Pre-Depends: base\n"),
                bin("lib", "3", "amd64", ""),
                bin("base", "1", "all", ""),
                bin("unrelated", "1", "all", ""),
            ],
            vec![],
        );
        let from = BTreeMap::from([("main".to_string(), main)]);
        let p = copy(&from, &BTreeMap::new(), &["app"], true).unwrap();
        assert_eq!(refs(&p.copied), ["app=1/amd64", "lib=3/amd64"]);
        let p = copy(&from, &BTreeMap::new(), &["app", "lib=2"], true).unwrap();
        assert_eq!(
            refs(&p.copied),
            ["app=1/amd64", "base=1/all", "lib=2/amd64", "lib=3/amd64"]
        );
    }

    #[test]
    fn copy_again_is_unchanged_and_other_content_is_a_conflict() {
        let from = hello();
        let first = copy(&from, &BTreeMap::new(), &["other"], false).unwrap();
        let to: BTreeMap<(String, String), ComponentState> = first
            .components
            .into_iter()
            .map(|(c, s)| (("d2".to_string(), c), s))
            .collect();
        let again = copy(&from, &to, &["other", "hello=1.0"], false).unwrap();
        assert_eq!(refs(&again.unchanged), ["other=1/all"]);
        assert_eq!(refs(&again.copied), ["hello=1.0/amd64", "hello=1.0/source"]);
        let mut changed = hello();
        let main = changed.get_mut("main").unwrap();
        main.binaries.retain(|b| b.package != "other");
        let mut other = bin("other", "1", "all", "");
        other.file.sha256 = "rebuilt".into();
        other.file.path = "pool/main/x/other_1_all-rebuilt.deb".into();
        main.add_binary(other.clone()).unwrap();
        let e = copy(&changed, &to, &["other"], false).unwrap_err();
        assert!(matches!(e, EditError::Conflict { .. }), "{e:?}");
        // the same pool path with other content, in another dist of the target
        let moved: BTreeMap<(String, String), ComponentState> = to
            .into_iter()
            .map(|((_, c), s)| (("elsewhere".to_string(), c), s))
            .collect();
        let main = changed.get_mut("main").unwrap();
        main.binaries.retain(|b| b.package != "other");
        other.file.path = "pool/main/x/other_1_all.deb".into();
        main.add_binary(other).unwrap();
        let e = copy(&changed, &moved, &["other"], false).unwrap_err();
        assert!(e.to_string().contains("pool/main/x/other_1_all.deb"), "{e}");
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

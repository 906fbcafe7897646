//! PURE: `halo copy`: which entries of a source dist the specs select
//! (with `--with-deps`, their dependency closure within it), and the target
//! dist's new component states. Pool files are shared: a copy adds entries
//! and copies no bytes; within the target archive one pool path still holds
//! one content, and the same name, version and architecture with other
//! content is refused, as an import refuses it.

use std::collections::BTreeMap;

use super::closure::{self, Candidate, Pick};
use super::edit::{candidate, parse_stanza, EditError, EntryRef, PackageSpec};
use super::state::{pool_paths, Added, ComponentState};

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
    use crate::model::edit::tests::{bin, comp, hello, refs, specs};

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
}

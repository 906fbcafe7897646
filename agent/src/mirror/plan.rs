//! PURE: from the upstream's verified, parsed indices to the mirror's new
//! component states, and from those to the pool files still to download.
//!
//! Entries keep the upstream's stanza byte for byte (its `Filename` is the
//! upstream pool path, which is also the path in our tree), so a re-signed
//! snapshot lists exactly what the upstream listed. Pool files are named by
//! SHA-256: a file the store holds is never fetched again, whichever
//! mirror, dist or import brought it.

use std::collections::hash_map::Entry;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use rayon::prelude::*;
use repofs::model::state::{cmp_versions, EntryIndex};
use repofs::model::{BinaryEntry, ComponentState, PoolFile, SourceEntry};

use repofs::index::read::packages::{PackageRecord, SourceRecord};
use repofs::model::closure::{Candidate, Key};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the upstream lists {key} twice with different content: sha256 {first} in {first_index} and {second} in {second_index}")]
    Duplicate {
        key: String,
        first: String,
        first_index: String,
        second: String,
        second_index: String,
    },
    #[error(
        "the upstream lists {path} twice with different content (sha256 {first} and {second})"
    )]
    PathConflict {
        path: String,
        first: String,
        second: String,
    },
}

/// One fetched index, parsed.
#[derive(Debug, Clone)]
pub struct Parsed<R> {
    /// Where it came from (named in errors and kept as the entries' origin).
    pub url: String,
    pub records: Vec<R>,
}

/// Everything fetched for one component of one dist.
#[derive(Debug, Clone, Default)]
pub struct ComponentInput<'a> {
    /// One per architecture index.
    pub packages: Vec<Parsed<PackageRecord<'a>>>,
    pub sources: Vec<Parsed<SourceRecord<'a>>>,
}

impl<'a> ComponentInput<'a> {
    /// The packages as the dependency filter sees them.
    pub fn candidates(&self) -> impl Iterator<Item = Candidate<'a>> + '_ {
        self.packages.iter().flat_map(|p| {
            p.records.iter().map(|r| Candidate {
                package: r.package,
                version: r.version,
                arch: r.arch,
                depends: r.depends,
                pre_depends: r.pre_depends,
                provides: r.provides,
            })
        })
    }
}

fn with_newline(stanza: &str) -> String {
    let mut s = String::with_capacity(stanza.len() + 1);
    s.push_str(stanza);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// A binary chosen for the state, still borrowed from its index.
type Chosen<'r, 'a> = (&'r PackageRecord<'a>, &'r str);

/// The binaries of `input` to keep, each identity once, in the state's
/// order (name, dpkg version, arch): decided on the borrowed records, so
/// no string is copied for an entry that is dropped or compared. When
/// filtering, `sources_wanted` gets the kept binaries' source names.
fn choose_binaries<'r, 'a>(
    input: &'r ComponentInput<'a>,
    keep: Option<&std::collections::HashSet<Key<'_>>>,
    sources_wanted: &mut HashSet<&'r str>,
) -> Result<Vec<Chosen<'r, 'a>>, PlanError> {
    let total = input.packages.iter().map(|p| p.records.len()).sum();
    let mut chosen: Vec<Chosen<'r, 'a>> = Vec::with_capacity(total);
    let mut by_key: HashMap<(&str, &str, &str), usize> = HashMap::with_capacity(total);
    for parsed in &input.packages {
        for r in &parsed.records {
            if keep.is_some_and(|k| !k.contains(&(r.package, r.version, r.arch))) {
                continue;
            }
            if keep.is_some() {
                sources_wanted.insert(r.source_name());
            }
            match by_key.entry((r.package, r.version, r.arch)) {
                Entry::Vacant(e) => {
                    e.insert(chosen.len());
                    chosen.push((r, &parsed.url));
                }
                // The same package in two indices (arch `all` is listed
                // under every architecture): one entry, if the content is one.
                Entry::Occupied(e) => {
                    let (old, old_url) = chosen[*e.get()];
                    if !old.sha256.eq_ignore_ascii_case(r.sha256) {
                        return Err(PlanError::Duplicate {
                            key: format!("{}_{}_{}", r.package, r.version, r.arch),
                            first: old.sha256.to_ascii_lowercase(),
                            first_index: old_url.to_string(),
                            second: r.sha256.to_ascii_lowercase(),
                            second_index: parsed.url.clone(),
                        });
                    }
                }
            }
        }
    }
    chosen.par_sort_unstable_by(|(a, _), (b, _)| {
        a.package
            .cmp(b.package)
            .then_with(|| cmp_versions(a.version, b.version))
            .then_with(|| a.arch.cmp(b.arch))
    });
    Ok(chosen)
}

fn binary_entry((r, url): &Chosen<'_, '_>) -> BinaryEntry {
    BinaryEntry {
        package: r.package.to_string(),
        version: r.version.to_string(),
        arch: r.arch.to_string(),
        stanza: with_newline(r.stanza),
        file: PoolFile {
            path: r.filename.to_string(),
            sha256: r.sha256.to_ascii_lowercase(),
            size: r.size,
        },
        origin: url.to_string(),
    }
}

/// The component state for `input`, keeping only `keep` when filtering.
///
/// Duplicates are found and the order decided on the borrowed records;
/// the entries (a copy of every stanza: 50 MB for Debian's main) are then
/// made on every core, already in order.
pub fn plan_component(
    input: &ComponentInput<'_>,
    keep: Option<&std::collections::HashSet<Key<'_>>>,
) -> Result<ComponentState, PlanError> {
    let mut state = ComponentState::default();
    let mut sources_wanted: HashSet<&str> = HashSet::new();
    let chosen = choose_binaries(input, keep, &mut sources_wanted)?;
    state.binaries = chosen.par_iter().map(binary_entry).collect();
    drop(chosen);
    // Sources are fewer; the state's own index dedupes them.
    let mut index: EntryIndex = ComponentState::default().index();
    for parsed in &input.sources {
        for r in &parsed.records {
            if keep.is_some() && !sources_wanted.contains(r.package) {
                continue;
            }
            let entry = SourceEntry {
                package: r.package.to_string(),
                version: r.version.to_string(),
                stanza: with_newline(r.stanza),
                files: r
                    .files
                    .iter()
                    .map(|f| PoolFile {
                        path: format!("{}/{}", r.directory, f.name),
                        sha256: f.sha256.to_ascii_lowercase(),
                        size: f.size,
                    })
                    .collect(),
                origin: parsed.url.clone(),
            };
            state
                .push_source(&mut index, entry)
                .map_err(|c| PlanError::Duplicate {
                    key: c.key,
                    first: c.existing_sha256,
                    first_index: c.existing_origin,
                    second: c.new_sha256,
                    second_index: c.new_origin,
                })?;
        }
    }
    // The binaries are in order already: this sorts the sources (and
    // checks the binaries in one pass).
    state.sort();
    Ok(state)
}

/// The pool files of `states` that the pool lacks (`has(sha256, size)`),
/// each blob once, sorted by path. Refuses one path with two contents:
/// the archive has one `pool/` tree for all its dists.
///
/// `has` is asked once per distinct blob, on every core: it is a `stat`
/// per pool file, 63,000 of them for Debian's main.
pub fn plan_fetch<'s>(
    states: impl IntoIterator<Item = &'s ComponentState>,
    has: impl Fn(&str, u64) -> bool + Sync,
) -> Result<Vec<PoolFile>, PlanError> {
    let mut paths: HashMap<&str, &str> = HashMap::new();
    let mut distinct: Vec<&PoolFile> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for state in states {
        for f in state.pool_files() {
            if let Some(prev) = paths.insert(&f.path, &f.sha256) {
                if prev != f.sha256 {
                    return Err(PlanError::PathConflict {
                        path: f.path.clone(),
                        first: prev.to_string(),
                        second: f.sha256.clone(),
                    });
                }
            }
            if seen.insert(&f.sha256) {
                distinct.push(f);
            }
        }
    }
    let mut wanted: Vec<PoolFile> = distinct
        .into_par_iter()
        .filter(|f| !has(&f.sha256, f.size))
        .cloned()
        .collect();
    wanted.par_sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use repofs::index::read::packages::parse_packages;
    use repofs::model::closure::select;

    fn sha(n: u8) -> String {
        format!("{n:02x}").repeat(32)
    }

    fn stanza(p: &str, v: &str, arch: &str, n: u8) -> String {
        format!(
            "Package: {p}\nVersion: {v}\nArchitecture: {arch}\nFilename: pool/main/{p}_{v}_{arch}.deb\nSize: {n}\nSHA256: {}\n\n",
            sha(n)
        )
    }

    /// A component of binary indices only: (url, Packages text) each.
    fn binaries<'a>(indices: &[(&str, &'a str)]) -> ComponentInput<'a> {
        ComponentInput {
            packages: indices
                .iter()
                .map(|&(url, text)| Parsed {
                    url: url.into(),
                    records: parse_packages(text).unwrap(),
                })
                .collect(),
            sources: vec![],
        }
    }

    #[test]
    fn keeps_upstream_stanzas_and_dedupes_arch_all_across_indices() {
        let amd64 = format!(
            "{}{}",
            stanza("a", "1", "amd64", 1),
            stanza("doc", "1", "all", 2)
        );
        let all = stanza("doc", "1", "all", 2);
        let input = binaries(&[("u/binary-amd64", &amd64), ("u/binary-all", &all)]);
        let state = plan_component(&input, None).unwrap();
        assert_eq!(state.binaries.len(), 2);
        assert_eq!(
            state.binaries[0].stanza,
            stanza("a", "1", "amd64", 1).trim_end().to_string() + "\n"
        );
        assert_eq!(state.binaries[1].file.path, "pool/main/doc_1_all.deb");

        let u: Vec<_> = input.candidates().collect();
        let sel = select(&u, &["a".into()], false);
        let state = plan_component(&input, Some(&sel.keep)).unwrap();
        assert_eq!(state.binaries.len(), 1);
    }

    #[test]
    fn different_content_under_one_identity_is_refused() {
        let one = stanza("a", "1", "amd64", 1);
        let two = stanza("a", "1", "amd64", 3);
        let input = binaries(&[("first", &one), ("second", &two)]);
        let e = plan_component(&input, None).unwrap_err().to_string();
        assert!(
            e.contains("a_1_amd64") && e.contains("first") && e.contains("second"),
            "{e}"
        );
    }

    #[test]
    fn fetch_list_skips_held_blobs_and_duplicates() {
        let text = format!(
            "{}{}",
            stanza("a", "1", "amd64", 1),
            stanza("b", "1", "amd64", 2)
        );
        let input = binaries(&[("u", &text)]);
        let s = plan_component(&input, None).unwrap();
        let held = sha(1);
        let list = plan_fetch([&s, &s], |h, _| h == held).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].path, "pool/main/b_1_amd64.deb");

        let mut other = s.clone();
        other.binaries[0].file.sha256 = sha(9);
        let e = plan_fetch([&s, &other], |_, _| false).unwrap_err();
        assert!(matches!(e, PlanError::PathConflict { .. }), "{e}");
    }
}

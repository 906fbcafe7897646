//! PURE: from the upstream's verified, parsed indices to the mirror's new
//! component states, and from those to the pool files still to download.
//!
//! Entries keep the upstream's stanza byte for byte (its `Filename` is the
//! upstream pool path, which is also the path in our tree), so a re-signed
//! snapshot lists exactly what the upstream listed. Pool files are named by
//! SHA-256: a file the store holds is never fetched again, whichever
//! mirror, dist or import brought it.

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

/// A record in the sort that orders and dedupes the binaries: the first
/// 16 bytes of its package name (big-endian, zero-padded), so most
/// comparisons are decided without reading the index text again; then
/// its place in the input, so equal identities stay in input order.
struct SortKey<'r, 'a> {
    prefix: u128,
    record: &'r PackageRecord<'a>,
    url: &'r str,
    position: usize,
}

impl<'r, 'a> SortKey<'r, 'a> {
    fn new(record: &'r PackageRecord<'a>, url: &'r str, position: usize) -> Self {
        Self {
            prefix: key16(record.package, 0),
            record,
            url,
            position,
        }
    }

    /// The state's order: name, dpkg version, arch.
    fn cmp_identity(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.record, other.record);
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| a.package.cmp(b.package))
            .then_with(|| cmp_versions(a.version, b.version))
            .then_with(|| a.arch.cmp(b.arch))
    }

    fn same_identity(&self, other: &Self) -> bool {
        let (a, b) = (self.record, other.record);
        self.prefix == other.prefix
            && a.package == b.package
            && a.version == b.version
            && a.arch == b.arch
    }
}

/// The binaries of `input` to keep, each identity once, in the state's
/// order (name, dpkg version, arch): decided on the borrowed records, so
/// no string is copied for an entry that is dropped or compared. When
/// filtering, `sources_wanted` gets the kept binaries' source names.
///
/// Duplicates are found by sorting (on every core) rather than in a hash
/// map filled on one: an identity's first listing in input order is
/// kept, and the error is the one a pass in input order meets first (the
/// earliest listing that differs from its identity's first).
fn choose_binaries<'r, 'a>(
    input: &'r ComponentInput<'a>,
    keep: Option<&std::collections::HashSet<Key<'_>>>,
    sources_wanted: &mut HashSet<&'r str>,
) -> Result<Vec<Chosen<'r, 'a>>, PlanError> {
    let total = input.packages.iter().map(|p| p.records.len()).sum();
    let mut keys: Vec<SortKey<'r, 'a>> = Vec::with_capacity(total);
    for parsed in &input.packages {
        let base = keys.len();
        match keep {
            None => keys.par_extend(
                parsed
                    .records
                    .par_iter()
                    .enumerate()
                    .map(|(i, r)| SortKey::new(r, &parsed.url, base + i)),
            ),
            Some(keep) => {
                for r in &parsed.records {
                    if keep.contains(&(r.package, r.version, r.arch)) {
                        sources_wanted.insert(r.source_name());
                        let position = keys.len();
                        keys.push(SortKey::new(r, &parsed.url, position));
                    }
                }
            }
        }
    }
    keys.par_sort_unstable_by(|a, b| a.cmp_identity(b).then(a.position.cmp(&b.position)));
    let mut chosen: Vec<Chosen<'r, 'a>> = Vec::with_capacity(keys.len());
    // (position, error) of the earliest conflicting listing.
    let mut conflict: Option<(usize, PlanError)> = None;
    let mut first = 0;
    for (i, k) in keys.iter().enumerate() {
        let kept = &keys[first];
        if i > 0 && kept.same_identity(k) {
            // The same package in two indices (arch `all` is listed
            // under every architecture): one entry, if the content is one.
            let (old, r) = (kept.record, k.record);
            if !old.sha256.eq_ignore_ascii_case(r.sha256)
                && conflict.as_ref().is_none_or(|(p, _)| k.position < *p)
            {
                let error = PlanError::Duplicate {
                    key: format!("{}_{}_{}", r.package, r.version, r.arch),
                    first: old.sha256.to_ascii_lowercase(),
                    first_index: kept.url.to_string(),
                    second: r.sha256.to_ascii_lowercase(),
                    second_index: k.url.to_string(),
                };
                conflict = Some((k.position, error));
            }
            continue;
        }
        first = i;
        chosen.push((k.record, k.url));
    }
    match conflict {
        Some((_, e)) => Err(e),
        None => Ok(chosen),
    }
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
    // The binaries are in order already (`choose_binaries`); the sources
    // take the state's order here.
    state.sources.sort_unstable_by(|a, b| {
        a.package
            .cmp(&b.package)
            .then_with(|| cmp_versions(&a.version, &b.version))
    });
    Ok(state)
}

/// The first 16 bytes of `s` from byte `at` on (zero-padded), as one
/// number that orders as those bytes do: compared first, it decides most
/// comparisons of a sort without reading the strings again.
fn key16(s: &str, at: usize) -> u128 {
    let mut bytes = [0u8; 16];
    let tail = s.as_bytes().get(at..).unwrap_or_default();
    let n = tail.len().min(16);
    bytes[..n].copy_from_slice(&tail[..n]);
    u128::from_be_bytes(bytes)
}

/// The first listing of a path already listed with another content.
fn path_conflict(files: &[&PoolFile]) -> Option<PlanError> {
    let mut paths: HashMap<&str, &str> = HashMap::with_capacity(files.len());
    for f in files {
        if let Some(prev) = paths.insert(&f.path, &f.sha256) {
            if prev != f.sha256 {
                return Some(PlanError::PathConflict {
                    path: f.path.clone(),
                    first: prev.to_string(),
                    second: f.sha256.clone(),
                });
            }
        }
    }
    None
}

/// The pool files of `states` that the pool lacks (`has(sha256, size)`),
/// each blob once, sorted by path (borrowed from the states: a list of
/// 63,000 is not copied). Refuses one path with two contents:
/// the archive has one `pool/` tree for all its dists.
///
/// `has` is asked once per distinct blob, on every core: it is a `stat`
/// per pool file, 63,000 of them for Debian's main (a
/// `repofs::store::pool::PoolProbe` answers most of them without one when
/// the pool is new). The paths are checked meanwhile on another core.
pub fn plan_fetch<'s>(
    states: impl IntoIterator<Item = &'s ComponentState>,
    has: impl Fn(&str, u64) -> bool + Sync,
) -> Result<Vec<&'s PoolFile>, PlanError> {
    let files: Vec<&PoolFile> = states.into_iter().flat_map(|s| s.pool_files()).collect();
    let (conflict, wanted) = rayon::join(
        || path_conflict(&files),
        || {
            let mut seen: HashSet<&str> = HashSet::with_capacity(files.len());
            let distinct: Vec<&PoolFile> = files
                .iter()
                .copied()
                .filter(|f| seen.insert(&f.sha256))
                .collect();
            drop(seen);
            distinct
                .into_par_iter()
                .filter(|f| !has(&f.sha256, f.size))
                .collect::<Vec<&PoolFile>>()
        },
    );
    if let Some(e) = conflict {
        return Err(e);
    }
    // Sorted as (key, reference) past the paths' common prefix (`pool/`
    // and the component). Paths are distinct
    // here: one path has one content, and each content is listed once.
    let common = wanted.first().map_or(0, |first| {
        wanted
            .par_iter()
            .map(|f| {
                first
                    .path
                    .bytes()
                    .zip(f.path.bytes())
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .min()
            .unwrap_or(0)
    });
    let mut keyed: Vec<(u128, &PoolFile)> = wanted
        .into_par_iter()
        .map(|f| (key16(&f.path, common), f))
        .collect();
    keyed.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
    Ok(keyed.into_par_iter().map(|(_, f)| f).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use repofs::index::read::packages::parse_packages;
    use repofs::model::closure::select;
    use repofs::model::BinaryEntry;

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

    /// The choice as it was made before (a hash map filled in input
    /// order, then a sort): the oracle for the sort-based one.
    fn choose_in_one_pass<'r, 'a>(
        input: &'r ComponentInput<'a>,
    ) -> Result<Vec<Chosen<'r, 'a>>, PlanError> {
        let mut chosen: Vec<Chosen<'r, 'a>> = Vec::new();
        let mut by_key: HashMap<(&str, &str, &str), usize> = HashMap::new();
        for parsed in &input.packages {
            for r in &parsed.records {
                match by_key.entry((r.package, r.version, r.arch)) {
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(chosen.len());
                        chosen.push((r, &parsed.url));
                    }
                    std::collections::hash_map::Entry::Occupied(e) => {
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
        chosen.sort_by(|(a, _), (b, _)| {
            a.package
                .cmp(b.package)
                .then_with(|| cmp_versions(a.version, b.version))
                .then_with(|| a.arch.cmp(b.arch))
        });
        Ok(chosen)
    }

    proptest::proptest! {
        #[test]
        fn the_sorted_choice_is_the_one_pass_choice(
            indices in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec![
                            "a", "b", "libverylongname-abcdefgh", "libverylongname-abcdefgz", "a0",
                        ]),
                        proptest::sample::select(vec!["1", "1.0", "1.00", "2~rc1", "0:1", "1-1"]),
                        proptest::sample::select(vec!["amd64", "all"]),
                        proptest::sample::select(vec![1u8, 2]),
                        proptest::bool::ANY,
                    ),
                    0..12,
                ),
                0..4,
            ),
        ) {
            let texts: Vec<String> = indices
                .iter()
                .map(|recs| {
                    recs.iter()
                        .map(|&(p, v, a, n, upper)| {
                            let s = stanza(p, v, a, n);
                            if upper { s.replace(&sha(n), &sha(n).to_ascii_uppercase()) } else { s }
                        })
                        .collect()
                })
                .collect();
            let urls: Vec<String> = (0..texts.len()).map(|i| format!("u{i}")).collect();
            let pairs: Vec<(&str, &str)> =
                urls.iter().zip(&texts).map(|(u, t)| (u.as_str(), t.as_str())).collect();
            let input = binaries(&pairs);
            let ids = |c: Vec<Chosen<'_, '_>>| -> Vec<(String, String)> {
                c.iter().map(|(r, u)| (r.stanza.to_string(), u.to_string())).collect()
            };
            let want = choose_in_one_pass(&input).map(ids);
            let got = choose_binaries(&input, None, &mut HashSet::new()).map(ids);
            proptest::prop_assert_eq!(got, want);
        }
    }

    /// The fetch list as it was made before (in one pass): the oracle.
    fn fetch_in_one_pass(
        states: &[&ComponentState],
        has: impl Fn(&str, u64) -> bool,
    ) -> Result<Vec<PoolFile>, PlanError> {
        let mut paths: HashMap<&str, &str> = HashMap::new();
        let mut distinct: Vec<&PoolFile> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        for f in states.iter().flat_map(|s| s.pool_files()) {
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
        let mut wanted: Vec<PoolFile> = distinct
            .into_iter()
            .filter(|f| !has(&f.sha256, f.size))
            .cloned()
            .collect();
        wanted.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(wanted)
    }

    proptest::proptest! {
        #[test]
        fn the_fetch_list_is_the_one_pass_list(
            states in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec![
                            "pool/main/a/a/a.deb",
                            "pool/main/a/a/b.deb",
                            "pool/main/l/libverylongname/libverylongname_1_amd64.deb",
                            "pool/main/l/libverylongname/libverylongname_1_arm64.deb",
                            "pool/main/l/libverylongname/libverylongname_10_amd64.deb",
                            "pool/main/l/libverylongname/libverylongname_1_amd64.debx",
                            "x",
                        ]),
                        0u8..4,
                    ),
                    0..10,
                ),
                1..3,
            ),
            held in proptest::collection::vec(proptest::bool::ANY, 4),
        ) {
            let states: Vec<ComponentState> = states
                .iter()
                .map(|files| ComponentState {
                    binaries: files
                        .iter()
                        .map(|&(path, n)| BinaryEntry {
                            package: "p".into(),
                            version: "1".into(),
                            arch: "all".into(),
                            stanza: String::new(),
                            file: PoolFile { path: path.into(), sha256: sha(n), size: n.into() },
                            origin: String::new(),
                        })
                        .collect(),
                    ..ComponentState::default()
                })
                .collect();
            let refs: Vec<&ComponentState> = states.iter().collect();
            let has = |h: &str, _| (0u8..4).any(|n| held[usize::from(n)] && h == sha(n));
            let got = plan_fetch(refs.iter().copied(), has)
                .map(|w| w.into_iter().cloned().collect::<Vec<_>>());
            proptest::prop_assert_eq!(got, fetch_in_one_pass(&refs, has));
        }
    }

    #[test]
    fn the_state_comes_out_in_the_states_own_order() {
        let text: String = [("b", "1.10"), ("a", "2"), ("b", "1.9"), ("b", "1.9")]
            .iter()
            .map(|(p, v)| stanza(p, v, "all", 1))
            .collect();
        let sources: String = ["z", "a", "m"]
            .iter()
            .map(|p| {
                format!(
                    "Package: {p}\nVersion: 1\nDirectory: pool/main/{p}\n\
Checksums-Sha256:\n {} 1 {p}_1.dsc\n\n",
                    sha(1)
                )
            })
            .collect();
        let mut input = binaries(&[("u", &text)]);
        input.sources.push(Parsed {
            url: "s".into(),
            records: repofs::index::read::packages::parse_sources(&sources).unwrap(),
        });
        let state = plan_component(&input, None).unwrap();
        let mut sorted = state.clone();
        sorted.sort();
        assert_eq!(state, sorted);
        assert_eq!(state.binaries.len(), 3);
        assert_eq!(state.sources.len(), 3);
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

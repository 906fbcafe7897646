//! PURE: dependency closures over a set of binary packages, the one
//! implementation behind the mirror's `packages` filter (`with_deps`) and
//! `halo copy --with-deps`.
//!
//! Both resolve the way a client with every one of those packages in its
//! sources.list would:
//!
//! - for each kept package, each `Depends`/`Pre-Depends` group
//!   (`a (>= 1) | b`) is resolved to its *first* alternative the universe
//!   can satisfy, as apt prefers it: a real package of that name whose
//!   version meets the constraint (dpkg order), or a package that
//!   `Provides` the name (a versioned constraint needs a versioned
//!   Provides);
//! - a group nothing in the universe satisfies is skipped (it is satisfied
//!   from elsewhere, e.g. the distribution's own mirror);
//! - architecture qualifiers (`:any`, `:native`) and restrictions are
//!   ignored.
//!
//! They differ in how much of a satisfiable alternative they keep
//! ([`Pick`]): a mirror keeps *every* package satisfying it on any of its
//! architectures (a client may want any of them); a copy keeps the
//! *newest* satisfying version of each package name, on an architecture
//! the dependent package can use (its own, or `all`), which is what apt
//! would install.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::debian::Version;

/// A package as the filter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub package: &'a str,
    pub version: &'a str,
    pub arch: &'a str,
    pub depends: Option<&'a str>,
    pub pre_depends: Option<&'a str>,
    pub provides: Option<&'a str>,
}

/// (package, version, arch): identifies a binary across dists.
pub type Key<'a> = (&'a str, &'a str, &'a str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Relation<'a> {
    name: &'a str,
    constraint: Option<(Op, &'a str)>,
}

/// Parses one alternative: `name[:arch] [(op version)] [[archs]] [<profiles>]`.
fn parse_relation(text: &str) -> Option<Relation<'_>> {
    let text = text.trim();
    let name_end = text
        .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
        .unwrap_or(text.len());
    let name = text[..name_end].split(':').next()?.trim();
    if name.is_empty() {
        return None;
    }
    let rest = &text[name_end..];
    let constraint = rest.find('(').and_then(|open| {
        let close = rest[open..].find(')')? + open;
        let inner = rest[open + 1..close].trim();
        let split = inner
            .find(|c: char| !matches!(c, '<' | '>' | '='))
            .unwrap_or(inner.len());
        let op = match &inner[..split] {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            _ => return None,
        };
        Some((op, inner[split..].trim()))
    });
    Some(Relation { name, constraint })
}

fn satisfies(version: &str, constraint: Option<(Op, &str)>) -> bool {
    let Some((op, want)) = constraint else {
        return true;
    };
    let (Ok(have), Ok(want)) = (Version::parse(version), Version::parse(want)) else {
        return false;
    };
    let ord = have.cmp(&want);
    match op {
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Eq => ord.is_eq(),
        Op::Ge => ord.is_ge(),
        Op::Gt => ord.is_gt(),
    }
}

/// The kept packages, and the named packages found nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection<'a> {
    pub keep: HashSet<Key<'a>>,
    pub unknown: Vec<String>,
}

/// How much of a satisfiable alternative a closure keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Every package satisfying it, on every architecture (mirrors).
    Every,
    /// The newest satisfying version of each package name and
    /// architecture the dependent package can use (copies).
    Newest,
}

/// Applies `packages` (and with `with_deps`, the closure) to `universe`:
/// the mirror's filter. Roots are every version of every named package.
pub fn select<'a>(
    universe: &[Candidate<'a>],
    packages: &[String],
    with_deps: bool,
) -> Selection<'a> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in universe.iter().enumerate() {
        by_name.entry(c.package).or_default().push(i);
    }
    let mut roots = Vec::new();
    let mut unknown = Vec::new();
    for name in packages {
        match by_name.get(name.as_str()) {
            Some(found) => roots.extend(found.iter().copied()),
            None => unknown.push(name.clone()),
        }
    }
    let kept = if with_deps {
        closure(universe, &roots, Pick::Every)
    } else {
        let mut kept = vec![false; universe.len()];
        roots.iter().for_each(|&i| kept[i] = true);
        kept
    };
    let keep = universe
        .iter()
        .zip(kept)
        .filter(|(_, k)| *k)
        .map(|(c, _)| (c.package, c.version, c.arch))
        .collect();
    Selection { keep, unknown }
}

/// The packages of `universe` that `roots` (indices into it) need,
/// themselves included: `kept[i]` for each package of the universe.
pub fn closure(universe: &[Candidate<'_>], roots: &[usize], pick: Pick) -> Vec<bool> {
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    // virtual name -> (provider index, provided version)
    let mut providers: HashMap<&str, Vec<(usize, Option<&str>)>> = HashMap::new();
    for (i, c) in universe.iter().enumerate() {
        by_name.entry(c.package).or_default().push(i);
        for p in c.provides.into_iter().flat_map(|p| p.split(',')) {
            if let Some(r) = parse_relation(p) {
                let v = r.constraint.filter(|(op, _)| *op == Op::Eq).map(|(_, v)| v);
                providers.entry(r.name).or_default().push((i, v));
            }
        }
    }
    let mut kept = vec![false; universe.len()];
    let mut queue: VecDeque<usize> = roots.iter().copied().collect();
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut kept[i], true) {
            continue;
        }
        let c = &universe[i];
        let groups = [c.pre_depends, c.depends]
            .into_iter()
            .flatten()
            .flat_map(|d| d.split(','));
        for group in groups {
            for alt in group.split('|').filter_map(parse_relation) {
                let mut found: Vec<usize> = by_name
                    .get(alt.name)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|&j| satisfies(universe[j].version, alt.constraint))
                    .collect();
                found.extend(
                    providers
                        .get(alt.name)
                        .into_iter()
                        .flatten()
                        .filter(|(_, v)| match (alt.constraint, v) {
                            (None, _) => true,
                            (Some(_), None) => false,
                            (Some(c), Some(v)) => satisfies(v, Some(c)),
                        })
                        .map(|(j, _)| *j),
                );
                if pick == Pick::Newest {
                    found = newest_usable(universe, c.arch, found);
                }
                if !found.is_empty() {
                    queue.extend(found.into_iter().filter(|&j| !kept[j]));
                    break;
                }
            }
        }
    }
    kept
}

/// Of `found`, those a package of architecture `arch` can use, reduced to
/// the newest version of each package name and architecture.
fn newest_usable(universe: &[Candidate<'_>], arch: &str, found: Vec<usize>) -> Vec<usize> {
    let usable = |a: &str| a == arch || a == "all" || arch == "all";
    let mut best: HashMap<(&str, &str), usize> = HashMap::new();
    for j in found {
        let c = &universe[j];
        if !usable(c.arch) {
            continue;
        }
        let slot = best.entry((c.package, c.arch)).or_insert(j);
        if newer(c.version, universe[*slot].version) {
            *slot = j;
        }
    }
    let mut out: Vec<usize> = best.into_values().collect();
    out.sort_unstable();
    out
}

/// `a` sorts after `b` in dpkg order (unparsable versions never win).
pub fn newer(a: &str, b: &str) -> bool {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(a), Ok(b)) => a > b,
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand<'a>(package: &'a str, version: &'a str, deps: Option<&'a str>) -> Candidate<'a> {
        Candidate {
            package,
            version,
            arch: "amd64",
            depends: deps,
            pre_depends: None,
            provides: None,
        }
    }

    fn names(s: &Selection<'_>) -> Vec<String> {
        let mut v: Vec<String> = s.keep.iter().map(|(p, v, _)| format!("{p}={v}")).collect();
        v.sort();
        v
    }

    fn universe() -> Vec<Candidate<'static>> {
        vec![
            cand(
                "app",
                "1",
                Some("libfoo (>= 2), missing | helper, base:any"),
            ),
            cand("libfoo", "1", None),
            cand("libfoo", "2", Some("libc-like")),
            cand("libfoo", "2~rc1", None),
            cand("helper", "1", Some("mail-transport-agent")),
            Candidate {
                provides: Some("mail-transport-agent, other-virtual (= 2)"),
                ..cand("postfix", "3", None)
            },
            Candidate {
                pre_depends: Some("dpkg (>= 1)"),
                ..cand("base", "1", None)
            },
            cand("dpkg", "1.2", None),
            cand("libc-like", "2", None),
            cand("app-doc", "1", Some("app")),
            cand("unrelated", "1", None),
        ]
    }

    #[test]
    fn without_deps_only_the_named_packages_every_version() {
        let u = universe();
        let s = select(&u, &["libfoo".into(), "nope".into()], false);
        assert_eq!(names(&s), ["libfoo=1", "libfoo=2", "libfoo=2~rc1"]);
        assert_eq!(s.unknown, ["nope"]);
    }

    #[test]
    fn with_deps_the_closure_first_satisfiable_alternative_and_providers() {
        let u = universe();
        let s = select(&u, &["app".into()], true);
        assert_eq!(
            names(&s),
            [
                "app=1",
                "base=1",
                "dpkg=1.2",
                "helper=1",
                "libc-like=2",
                "libfoo=2",
                "postfix=3"
            ]
        );
        assert!(s.unknown.is_empty());
    }

    #[test]
    fn relations_parse_like_dpkg() {
        let r = parse_relation(" libc6:any (>= 2.17) [amd64] ").unwrap();
        assert_eq!(r.name, "libc6");
        assert_eq!(r.constraint, Some((Op::Ge, "2.17")));
        assert_eq!(
            parse_relation("foo (<< 1:2~b)").unwrap().constraint,
            Some((Op::Lt, "1:2~b"))
        );
        assert_eq!(
            parse_relation("foo(=1)").unwrap().constraint,
            Some((Op::Eq, "1"))
        );
        assert_eq!(parse_relation("  "), None);
        assert!(satisfies("1.10", Some((Op::Gt, "1.9"))));
        assert!(!satisfies("1.0~rc1", Some((Op::Ge, "1.0"))));
        assert!(satisfies("2", Some((Op::Le, "2"))));
    }

    #[test]
    fn versioned_dependencies_need_versioned_provides() {
        let u = vec![
            cand("a", "1", Some("other-virtual (>= 2)")),
            Candidate {
                provides: Some("other-virtual (= 2)"),
                ..cand("p1", "1", None)
            },
            Candidate {
                provides: Some("other-virtual"),
                ..cand("p2", "1", None)
            },
        ];
        assert_eq!(names(&select(&u, &["a".into()], true)), ["a=1", "p1=1"]);
    }

    #[test]
    fn newest_keeps_one_usable_version_per_package_and_arch() {
        let u = vec![
            cand("app", "1", Some("lib (>= 1), helper")),
            cand("lib", "1", None),
            cand("lib", "3", Some("base")),
            cand("lib", "2", None),
            Candidate {
                arch: "i386",
                ..cand("lib", "4", None)
            },
            Candidate {
                arch: "all",
                ..cand("helper", "1", None)
            },
            Candidate {
                arch: "all",
                ..cand("helper", "2", None)
            },
            cand("base", "1", None),
            cand("unrelated", "1", None),
        ];
        let kept = closure(&u, &[0], Pick::Newest);
        let got: Vec<String> = u
            .iter()
            .zip(&kept)
            .filter(|(_, k)| **k)
            .map(|(c, _)| format!("{}={}/{}", c.package, c.version, c.arch))
            .collect();
        assert_eq!(
            got,
            ["app=1/amd64", "lib=3/amd64", "helper=2/all", "base=1/amd64"]
        );
        let every = closure(&u, &[0], Pick::Every);
        assert_eq!(every.iter().filter(|k| **k).count(), 8, "{every:?}");
    }
}

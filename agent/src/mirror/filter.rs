//! PURE: the `packages` filter and its dependency closure (`with_deps`).
//!
//! The closure is taken over the whole mirror (every dist and component the
//! mirror fetches), the way a client with all of the mirror's dists in its
//! sources.list would resolve:
//!
//! - roots: every version of every named package;
//! - for each kept package, each `Depends`/`Pre-Depends` group
//!   (`a (>= 1) | b`) is resolved to its *first* alternative the mirror can
//!   satisfy, as apt prefers it, and every package satisfying that
//!   alternative is kept: each real package of that name whose version
//!   meets the constraint (dpkg order), and each package that `Provides`
//!   the name (a versioned constraint needs a versioned Provides);
//! - a group nothing in the mirror satisfies is skipped (it is satisfied
//!   from elsewhere, e.g. the distribution's own mirror);
//! - architecture qualifiers (`:any`, `:native`) and restrictions are
//!   ignored: every architecture the mirror fetches is considered.

use std::collections::{HashMap, HashSet, VecDeque};

use repofs::debian::Version;

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

/// Applies `packages` (and with `with_deps`, the closure) to `universe`.
pub fn select<'a>(
    universe: &[Candidate<'a>],
    packages: &[String],
    with_deps: bool,
) -> Selection<'a> {
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
    let mut queue = VecDeque::new();
    let mut unknown = Vec::new();
    for name in packages {
        match by_name.get(name.as_str()) {
            Some(idx) => queue.extend(idx.iter().copied()),
            None => unknown.push(name.clone()),
        }
    }
    while let Some(i) = queue.pop_front() {
        if std::mem::replace(&mut kept[i], true) || !with_deps {
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
                if !found.is_empty() {
                    queue.extend(found.into_iter().filter(|&j| !kept[j]));
                    break;
                }
            }
        }
    }
    let keep = universe
        .iter()
        .zip(kept)
        .filter(|(_, k)| *k)
        .map(|(c, _)| (c.package, c.version, c.arch))
        .collect();
    Selection { keep, unknown }
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
}

//! The decisions of a build, with no I/O: the version a `version = "git"`
//! build gets, the changelog entry that carries it, where a `3.0 (quilt)`
//! package's orig tarball may come from, and what dpkg's tools said.

use repofs::debian::version::Version;
use repofs::store::builds::BuildRecord;

/// The formats `debian/source/format` can name that we build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SourceFormat {
    /// `1.0`, also when `debian/source/format` is missing (dpkg's default).
    One,
    Native,
    Quilt,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(
        "debian/source/format says {0:?}: halo builds `3.0 (native)`, `3.0 (quilt)` and `1.0`"
    )]
    UnknownFormat(String),
    #[error("changelog version {0:?} is not a valid Debian version")]
    BadVersion(String),
    #[error("a `3.0 (native)` package cannot have a Debian revision (version {0:?})")]
    NativeWithRevision(String),
    #[error("a `3.0 (quilt)` package needs a Debian revision (version {0:?})")]
    QuiltWithoutRevision(String),
}

/// Parses `debian/source/format`; `None` is a missing file.
pub fn parse_source_format(text: Option<&str>) -> Result<SourceFormat, PlanError> {
    match text.map(str::trim) {
        None | Some("1.0") => Ok(SourceFormat::One),
        Some("3.0 (native)") => Ok(SourceFormat::Native),
        Some("3.0 (quilt)") => Ok(SourceFormat::Quilt),
        Some(other) => Err(PlanError::UnknownFormat(other.to_string())),
    }
}

/// Checks that the version fits the format, as dpkg-source would, but
/// before anything is built.
pub fn check_version_format(version: &str, format: SourceFormat) -> Result<(), PlanError> {
    let v = Version::parse(version).map_err(|_| PlanError::BadVersion(version.to_string()))?;
    match format {
        SourceFormat::Native if !v.revision().is_empty() => {
            Err(PlanError::NativeWithRevision(version.to_string()))
        }
        SourceFormat::Quilt if v.revision().is_empty() => {
            Err(PlanError::QuiltWithoutRevision(version.to_string()))
        }
        _ => Ok(()),
    }
}

/// The upstream part of a version: no epoch, no Debian revision.
pub fn upstream_version(version: &str) -> &str {
    let no_epoch = version.split_once(':').map_or(version, |(_, rest)| rest);
    no_epoch.rsplit_once('-').map_or(no_epoch, |(up, _)| up)
}

/// The version of a `version = "git"` build: the changelog's version with
/// `+git<UTC YYYYMMDDhhmmss>.<short sha>` appended, which lands in the
/// Debian revision (or the version of a native package). The commit's
/// time makes every later commit sort higher, so apt prefers the newest
/// commit's build; the short sha says which commit it is.
pub fn plan_git_version(
    changelog_version: &str,
    commit_time: jiff::Timestamp,
    sha: &str,
) -> String {
    let stamp = commit_time.strftime("%Y%m%d%H%M%S");
    let short = &sha[..sha.len().min(7)];
    format!("{changelog_version}+git{stamp}.{short}")
}

/// The DEP-14 tag of an upstream version: `upstream/<mangled>`, where `~`
/// becomes `_`, `:` becomes `%`, and the sequences git refuses in a ref
/// (`..`, a trailing `.`, a trailing `.lock`) get a `#`.
pub fn plan_upstream_tag(upstream: &str) -> String {
    let mut v = upstream.replace('~', "_").replace(':', "%");
    while v.contains("..") {
        v = v.replace("..", ".#.");
    }
    if let Some(stem) = v.strip_suffix(".lock") {
        v = format!("{stem}.#lock");
    }
    if v.ends_with('.') {
        v.push('#');
    }
    format!("upstream/{v}")
}

/// `<source>_<upstream>.orig.tar.`: every orig tarball name starts so.
pub fn orig_tarball_prefix(source: &str, upstream: &str) -> String {
    format!("{source}_{upstream}.orig.tar.")
}

/// The compressions dpkg-source accepts for an orig tarball, in the order
/// a tarball beside a tree is looked for.
pub const ORIG_EXTENSIONS: [&str; 4] = ["xz", "gz", "bz2", "lzma"];

/// What the top `debian/changelog` entry says (from dpkg-parsechangelog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogTop {
    pub source: String,
    pub version: String,
    pub distribution: String,
    pub maintainer: String,
}

/// Reads `dpkg-parsechangelog`'s deb822 output.
pub fn parse_changelog_fields(text: &str) -> Option<ChangelogTop> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    Some(ChangelogTop {
        source: field("Source")?,
        version: field("Version")?,
        distribution: field("Distribution")?,
        maintainer: field("Maintainer")?,
    })
}

/// A changelog entry for a git build, to put above the existing ones.
/// Its date is the commit's, so `SOURCE_DATE_EPOCH` (which dpkg takes from
/// the changelog) and with it the built files depend on the commit only.
pub fn render_changelog_entry(
    top: &ChangelogTop,
    version: &str,
    sha: &str,
    branch: &str,
    date: jiff::Timestamp,
) -> String {
    let date = date.strftime("%a, %d %b %Y %H:%M:%S +0000");
    format!(
        "{} ({version}) {}; urgency=medium\n\n  * Built by halo from git commit {sha} ({branch}).\n\n -- {}  {date}\n\n",
        top.source, top.distribution, top.maintainer
    )
}

/// The packages `dpkg-checkbuilddeps` says are missing, as it lists them.
pub fn parse_unmet_build_deps(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        let (_, rest) = l.split_once("Unmet build dependencies:")?;
        Some(rest.trim().to_string())
    })
}

/// The build dependencies apt found nowhere in its sources, from the
/// "unmet dependencies" block `apt-get build-dep` prints: each relation
/// it calls not installable (or a virtual package nothing provides), as
/// written in `debian/control`. `None` when apt refused for another reason
/// (a conflict, a broken dependency deeper down): then its own `E:` line
/// is the message.
pub fn parse_apt_unmet_build_deps(output: &str) -> Option<String> {
    let mut lines = output.lines();
    lines.find(|l| l.starts_with("The following packages have unmet dependencies"))?;
    let missing: Vec<&str> = lines
        .take_while(|l| l.starts_with(' '))
        .filter_map(|l| {
            let (_, rel) = l.split_once("Depends: ")?;
            rel.strip_suffix(" but it is not installable")
                .or_else(|| {
                    rel.strip_suffix(
                        " which is a virtual package and is not provided by any available package",
                    )
                })
                .or_else(|| rel.split_once(" but it is not installable").map(|(r, _)| r))
        })
        .collect();
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// Whether a source needs building: its branch head is not the commit the
/// last successful build recorded.
pub fn is_due(head: &str, last_built: Option<&str>) -> bool {
    last_built != Some(head)
}

/// Where a source stands against its branch head, from its build records
/// (oldest first): what `halo sources status` and `halo status` show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing<'a> {
    /// The last build published from a commit.
    pub last: Option<&'a BuildRecord>,
    /// The head's last attempt, when it failed: not rebuilt until the
    /// branch moves (or `halo build --retry`).
    pub failed: Option<&'a BuildRecord>,
    /// Whether `halo build --all` (and the agent) would build it now.
    pub due: bool,
}

pub fn plan_standing<'a>(records: &'a [BuildRecord], head: Option<&str>) -> Standing<'a> {
    let last = records
        .iter()
        .rev()
        .find(|r| r.commit.is_some() && !r.is_failed());
    let failed = head.and_then(|h| {
        records
            .iter()
            .rev()
            .find(|r| r.commit.as_deref() == Some(h))
            .filter(|r| r.is_failed())
    });
    let due =
        failed.is_none() && head.is_some_and(|h| is_due(h, last.and_then(|r| r.commit.as_deref())));
    Standing { last, failed, due }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_names_the_build_dependencies_it_cannot_find() {
        let out = "Reading state information...\n\
Some packages could not be installed. This may mean that you have\n\
The following packages have unmet dependencies:\n \
builddeps:/build/src : Depends: halo-no-such-package (>= 9) but it is not installable\n                \
Depends: libfoo-dev but it is not installable\n                \
Depends: mail-transport-agent which is a virtual package and is not provided by any available package\n\n                \
Depends: libbar but it is not going to be installed\n\
E: Unable to correct problems, you have held broken packages.\n";
        assert_eq!(
            parse_apt_unmet_build_deps(out).as_deref(),
            Some("halo-no-such-package (>= 9), libfoo-dev, mail-transport-agent")
        );
        let deeper = "The following packages have unmet dependencies:\n builddeps:. : Depends: libbar but it is not going to be installed\nE: Unable to correct problems\n";
        assert_eq!(parse_apt_unmet_build_deps(deeper), None);
        assert_eq!(
            parse_apt_unmet_build_deps("E: Unable to locate package x"),
            None
        );
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn git_versions_sort_by_commit_time_above_the_changelog_version() {
        let a = plan_git_version("1.0-1", ts("2026-12-05T10:00:00Z"), "abcdef0123456789");
        assert_eq!(a, "1.0-1+git20261205100000.abcdef0");
        let b = plan_git_version("1.0-1", ts("2026-12-05T10:00:01Z"), "0000000aaaa");
        let order = |x: &str, y: &str| Version::parse(x).unwrap().cmp(&Version::parse(y).unwrap());
        assert_eq!(order(&a, "1.0-1"), std::cmp::Ordering::Greater);
        assert_eq!(order(&b, &a), std::cmp::Ordering::Greater);
        // Still below the next real release.
        assert_eq!(order(&b, "1.0-2"), std::cmp::Ordering::Less);
        let native = plan_git_version("2.3", ts("2026-01-02T03:04:05Z"), "1234567");
        assert_eq!(native, "2.3+git20260102030405.1234567");
        check_version_format(&native, SourceFormat::Native).unwrap();
        check_version_format(&a, SourceFormat::Quilt).unwrap();
    }

    #[test]
    fn dep14_tags_mangle_what_git_refuses() {
        assert_eq!(plan_upstream_tag("1.0"), "upstream/1.0");
        assert_eq!(plan_upstream_tag("1.0~rc1"), "upstream/1.0_rc1");
        assert_eq!(plan_upstream_tag("2:1.0"), "upstream/2%1.0");
        assert_eq!(plan_upstream_tag("1..2"), "upstream/1.#.2");
        assert_eq!(plan_upstream_tag("1.2."), "upstream/1.2.#");
        assert_eq!(plan_upstream_tag("1.lock"), "upstream/1.#lock");
    }

    #[test]
    fn upstream_version_drops_epoch_and_revision() {
        assert_eq!(upstream_version("1:2.10-3"), "2.10");
        assert_eq!(upstream_version("2.10-3+git1.a"), "2.10");
        assert_eq!(upstream_version("1.0-rc-1"), "1.0-rc");
        assert_eq!(upstream_version("3.1"), "3.1");
        assert_eq!(orig_tarball_prefix("hello", "2.10"), "hello_2.10.orig.tar.");
    }

    #[test]
    fn formats_and_their_versions() {
        assert_eq!(parse_source_format(None).unwrap(), SourceFormat::One);
        assert_eq!(
            parse_source_format(Some("3.0 (quilt)\n")).unwrap(),
            SourceFormat::Quilt
        );
        assert_eq!(
            parse_source_format(Some("3.0 (native)")).unwrap(),
            SourceFormat::Native
        );
        assert!(parse_source_format(Some("3.0 (git)")).is_err());
        assert!(check_version_format("1.0-1", SourceFormat::Native).is_err());
        assert!(check_version_format("1.0", SourceFormat::Quilt).is_err());
        assert!(check_version_format("1.0", SourceFormat::One).is_ok());
        assert!(check_version_format("a b", SourceFormat::One).is_err());
    }

    #[test]
    fn changelog_entry_is_what_dpkg_parsechangelog_reads() {
        let top = parse_changelog_fields(
            "Source: hello\nVersion: 1.0-1\nDistribution: trusty\nUrgency: medium\nMaintainer: A B <a@b.c>\nDate: x\n",
        )
        .unwrap();
        assert_eq!(top.maintainer, "A B <a@b.c>");
        let e = render_changelog_entry(
            &top,
            "1.0-1+git1.abc",
            "abcdef",
            "master",
            ts("2026-12-05T10:00:00Z"),
        );
        assert_eq!(
            e,
            "hello (1.0-1+git1.abc) trusty; urgency=medium\n\n  * Built by halo from git commit abcdef (master).\n\n -- A B <a@b.c>  Sat, 05 Dec 2026 10:00:00 +0000\n\n"
        );
        assert!(parse_changelog_fields("Source: x\n").is_none());
    }

    #[test]
    fn a_failed_head_is_not_due_and_the_last_published_build_stays() {
        use repofs::store::builds::{BuildFailure, BuildStatus};
        let rec = |commit: &str, failed: bool| BuildRecord {
            source: "s".into(),
            commit: Some(commit.into()),
            status: if failed {
                BuildStatus::Failed
            } else {
                BuildStatus::Published
            },
            version: (!failed).then(|| format!("1.0+{commit}")),
            archive: "a".into(),
            dist: "d".into(),
            component: "main".into(),
            snapshot: None,
            channel: None,
            failure: failed.then(|| BuildFailure {
                step: "test".into(),
                reason: "exit status 1".into(),
            }),
            when: String::new(),
            who: String::new(),
        };
        let records = [rec("a", false), rec("b", true)];
        let s = plan_standing(&records, Some("b"));
        assert_eq!(s.last.and_then(|r| r.commit.as_deref()), Some("a"));
        assert_eq!(s.failed.and_then(|r| r.commit.as_deref()), Some("b"));
        assert!(!s.due);
        // The branch moved: due again, the failure was another commit's.
        let s = plan_standing(&records, Some("c"));
        assert!(s.failed.is_none() && s.due);
        // Retried and published: up to date.
        let records = [rec("a", false), rec("b", true), rec("b", false)];
        let s = plan_standing(&records, Some("b"));
        assert!(s.failed.is_none() && !s.due);
        // No head (the remote did not answer): nothing is due.
        assert!(!plan_standing(&records, None).due);
    }

    #[test]
    fn unmet_build_deps_and_due() {
        let err = "dpkg-checkbuilddeps: error: Unmet build dependencies: libfoo-dev (>= 2) bar\n";
        assert_eq!(
            parse_unmet_build_deps(err).unwrap(),
            "libfoo-dev (>= 2) bar"
        );
        assert!(parse_unmet_build_deps("all fine").is_none());
        assert!(is_due("abc", None));
        assert!(is_due("abc", Some("def")));
        assert!(!is_due("abc", Some("abc")));
    }
}

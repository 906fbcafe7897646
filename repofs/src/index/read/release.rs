//! PURE: an upstream's `Release` (the signed text of `InRelease`, or
//! `Release` checked against `Release.gpg`): what it promises and whether
//! it covers what a mirror asks for. One parser for every reader: the
//! mirror and `fsck` (the indices a served Release lists).
//!
//! Follows apt: checksums come from the `SHA256` list (MD5Sum alone is not
//! trusted), and `Valid-Until` in the past refuses the release (a replayed
//! or stale upstream).

use std::collections::BTreeMap;

use crate::deb822;

use super::plan::Wanted;

/// A checksum entry of a Release file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub size: u64,
    pub hash: String,
}

/// What a verified Release promises, reduced to what the mirror acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub origin: Option<String>,
    pub label: Option<String>,
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub valid_until: Option<jiff::Timestamp>,
    pub acquire_by_hash: bool,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `No-Support-for-Architecture-all: Packages`: arch `all` packages are
    /// in every `binary-<arch>` index, `binary-all` is not needed.
    pub all_in_arch_indices: bool,
    /// Path (relative to `dists/<dist>/`) -> SHA256 entry.
    pub sha256: BTreeMap<String, Listed>,
    /// Paths the Release lists under any checksum (to tell "no SHA256" from
    /// "not listed").
    pub listed_any: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("not a Release file")]
    Syntax(#[from] deb822::ParseError),
    #[error("not a Release file: text is not UTF-8")]
    NotUtf8,
    #[error("{field} line {line:?} is not `<hash> <size> <path>`")]
    ChecksumLine { field: &'static str, line: String },
    #[error("{field} {value:?} is not an RFC 2822 date")]
    Date { field: &'static str, value: String },
    #[error("expired: Valid-Until {valid_until} is in the past (the upstream is stale, or an old Release is being replayed)")]
    Expired { valid_until: String },
    #[error("lists no component {component} (Components: {listed})")]
    MissingComponent { component: String, listed: String },
    #[error("lists no architecture {arch} (Architectures: {listed})")]
    MissingArchitecture { arch: String, listed: String },
    #[error("lists no {path} (none of .xz, .gz or plain)")]
    NoIndex { path: String },
    #[error("lists {path} without a SHA256 checksum")]
    NoSha256 { path: String },
}

/// Parses the (already verified) text of a Release.
pub fn parse_release(text: &str) -> Result<Release, ReleaseError> {
    let p = deb822::parse_single(text)?;
    let words = |f: &str| -> Vec<String> {
        p.get(f)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let valid_until = match p.get("Valid-Until") {
        Some(v) => Some(parse_date(v).ok_or_else(|| ReleaseError::Date {
            field: "Valid-Until",
            value: v.to_string(),
        })?),
        None => None,
    };
    let mut release = Release {
        origin: p.get("Origin").map(str::to_string),
        label: p.get("Label").map(str::to_string),
        suite: p.get("Suite").map(str::to_string),
        codename: p.get("Codename").map(str::to_string),
        valid_until,
        acquire_by_hash: p
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("yes")),
        architectures: words("Architectures"),
        components: words("Components"),
        all_in_arch_indices: p
            .get("No-Support-for-Architecture-all")
            .is_some_and(|v| v.trim() == "Packages"),
        sha256: BTreeMap::new(),
        listed_any: BTreeMap::new(),
    };
    for field in ["MD5Sum", "SHA1", "SHA256", "SHA512"] {
        let Some(value) = p.get(field) else { continue };
        for line in value.lines().filter(|l| !l.trim().is_empty()) {
            let mut w = line.split_whitespace();
            let (Some(hash), Some(size), Some(path), None) =
                (w.next(), w.next(), w.next(), w.next())
            else {
                return Err(ReleaseError::ChecksumLine {
                    field,
                    line: line.trim().to_string(),
                });
            };
            let size: u64 = size.parse().map_err(|_| ReleaseError::ChecksumLine {
                field,
                line: line.trim().to_string(),
            })?;
            release.listed_any.insert(path.to_string(), size);
            if field == "SHA256" {
                release.sha256.insert(
                    path.to_string(),
                    Listed {
                        size,
                        hash: hash.to_ascii_lowercase(),
                    },
                );
            }
        }
    }
    Ok(release)
}

/// Parses a Release date (`Sat, 10 Jun 2023 08:55:26 UTC`, or `+0000`).
pub fn parse_date(value: &str) -> Option<jiff::Timestamp> {
    let v = value.trim();
    let (head, zone) = v.rsplit_once(' ')?;
    let zone = match zone {
        "UTC" | "GMT" | "UT" | "Z" => "+0000",
        z => z,
    };
    jiff::Timestamp::strptime("%a, %d %b %Y %H:%M:%S %z", format!("{head} {zone}")).ok()
}

/// Refuses a release that has expired or does not cover what is wanted.
pub fn check_release(
    release: &Release,
    wanted: &Wanted<'_>,
    now: jiff::Timestamp,
) -> Result<(), ReleaseError> {
    check_valid_until(release.valid_until, now)?;
    for c in wanted.components {
        if !release.components.is_empty() && !release.components.contains(c) {
            return Err(ReleaseError::MissingComponent {
                component: c.clone(),
                listed: release.components.join(" "),
            });
        }
    }
    for a in wanted.architectures {
        if !release.architectures.is_empty() && !release.architectures.contains(a) {
            return Err(ReleaseError::MissingArchitecture {
                arch: a.clone(),
                listed: release.architectures.join(" "),
            });
        }
    }
    Ok(())
}

/// Refuses a release past its `Valid-Until`, as apt does. Also applied to
/// an unchanged release on a no-op update: a 304 must not keep serving a
/// release that has since expired.
pub fn check_valid_until(
    valid_until: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> Result<(), ReleaseError> {
    match valid_until {
        Some(v) if v < now => Err(ReleaseError::Expired {
            valid_until: v.to_string(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::index::read::plan::Wanted;

    /// Shaped like apt-ftparchive's output.
    pub(crate) const RELEASE: &str = concat!(
        "Origin: Test\nLabel: Test\nSuite: stable\nCodename: bookworm\n",
        "Date: Sat, 10 Jun 2023 08:55:26 UTC\nValid-Until: Sat, 17 Jun 2023 08:55:26 UTC\n",
        "Acquire-By-Hash: yes\nArchitectures: amd64 arm64\nComponents: main contrib\n",
        "MD5Sum:\n",
        " 0cc175b9c0f1b6a831c399e269772661 10 main/binary-amd64/Packages\n",
        " 0cc175b9c0f1b6a831c399e269772662 8 main/binary-amd64/Packages.gz\n",
        " 0cc175b9c0f1b6a831c399e269772663 7 main/binary-amd64/Packages.xz\n",
        " 0cc175b9c0f1b6a831c399e269772664 7 contrib/binary-amd64/Packages.xz\n",
        "SHA256:\n",
        " AAAA000000000000000000000000000000000000000000000000000000000001 10 main/binary-amd64/Packages\n",
        " aaaa000000000000000000000000000000000000000000000000000000000002 8 main/binary-amd64/Packages.gz\n",
        " aaaa000000000000000000000000000000000000000000000000000000000003 7 main/binary-amd64/Packages.xz\n",
        " aaaa000000000000000000000000000000000000000000000000000000000005 9 main/source/Sources.gz\n",
    );

    pub(crate) fn wanted<'a>(c: &'a [String], a: &'a [String]) -> Wanted<'a> {
        Wanted {
            components: c,
            architectures: a,
            sources: false,
            translations: &[],
            udebs: false,
        }
    }

    pub(crate) fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_fields_and_sha256_list() {
        let r = parse_release(RELEASE).unwrap();
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.valid_until, Some(ts("2023-06-17T08:55:26Z")));
        assert!(r.acquire_by_hash);
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(r.sha256.len(), 4);
        assert_eq!(
            r.sha256["main/binary-amd64/Packages"].hash,
            "aaaa000000000000000000000000000000000000000000000000000000000001"
        );
        assert_eq!(r.listed_any["contrib/binary-amd64/Packages.xz"], 7);
    }

    #[test]
    fn a_checksum_line_that_is_not_hash_size_path_is_refused() {
        let bad = RELEASE.replace(" 9 main/source/Sources.gz", " main/source/Sources.gz");
        let e = parse_release(&bad).unwrap_err();
        assert!(
            matches!(
                e,
                ReleaseError::ChecksumLine {
                    field: "SHA256",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn dates_in_the_forms_upstreams_write() {
        let want = ts("2023-06-10T08:55:26Z");
        for d in [
            "Sat, 10 Jun 2023 08:55:26 UTC",
            "Sat, 10 Jun 2023 08:55:26 +0000",
            "Sat, 10 Jun 2023 10:55:26 +0200",
            "Sat, 10 Jun 2023 08:55:26 GMT",
        ] {
            assert_eq!(parse_date(d), Some(want), "{d}");
        }
        assert_eq!(parse_date("yesterday"), None);
        let bad = RELEASE.replace("Sat, 17 Jun 2023 08:55:26 UTC", "soon");
        assert!(matches!(
            parse_release(&bad),
            Err(ReleaseError::Date {
                field: "Valid-Until",
                ..
            })
        ));
    }

    #[test]
    fn refuses_expired_and_incomplete_releases() {
        let r = parse_release(RELEASE).unwrap();
        let (c, a) = (vec!["main".to_string()], vec!["amd64".to_string()]);
        assert!(check_release(&r, &wanted(&c, &a), ts("2023-06-12T00:00:00Z")).is_ok());
        let e = check_release(&r, &wanted(&c, &a), ts("2023-06-18T00:00:00Z")).unwrap_err();
        assert!(matches!(e, ReleaseError::Expired { .. }), "{e}");
        let now = ts("2023-06-12T00:00:00Z");
        let e = check_release(&r, &wanted(&["universe".into()], &a), now).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists no component universe (Components: main contrib)"
        );
        let e = check_release(&r, &wanted(&c, &["i386".into()]), now).unwrap_err();
        assert!(matches!(e, ReleaseError::MissingArchitecture { .. }), "{e}");
    }
}

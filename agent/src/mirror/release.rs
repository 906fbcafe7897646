//! PURE: an upstream's `Release` (the signed text of `InRelease`, or
//! `Release` checked against `Release.gpg`): what it promises, whether it
//! covers what the mirror asks for, and which index files to fetch.
//!
//! Follows apt: checksums come from the `SHA256` list (MD5Sum alone is not
//! trusted), `Valid-Until` in the past refuses the release (a replayed or
//! stale upstream), compressed variants are preferred (`.xz`, then `.gz`,
//! then plain), and `Acquire-By-Hash: yes` means fetching
//! `<dir>/by-hash/SHA256/<hex>` so a concurrent upstream publish cannot
//! hand us an index that does not match the Release we verified.

use std::collections::BTreeMap;

use repofs::deb822;

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

/// What a mirror asks of one dist.
#[derive(Debug, Clone)]
pub struct Wanted<'a> {
    pub components: &'a [String],
    pub architectures: &'a [String],
    pub sources: bool,
    /// Languages whose `i18n/Translation-<lang>` is mirrored when listed.
    pub translations: &'a [String],
    /// Mirror the installer's `debian-installer/binary-<arch>` too.
    pub udebs: bool,
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

/// Which index an [`IndexFetch`] is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum IndexKind {
    Packages {
        component: String,
        arch: String,
    },
    Sources {
        component: String,
    },
    /// `i18n/Translation-<lang>`: served as fetched (apt show's long
    /// descriptions), never parsed.
    Translation {
        component: String,
        lang: String,
    },
}

impl IndexKind {
    pub fn component(&self) -> &str {
        match self {
            IndexKind::Packages { component, .. }
            | IndexKind::Sources { component }
            | IndexKind::Translation { component, .. } => component,
        }
    }
}

/// How an index file is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Gzip,
    /// Only for translations, which are served as fetched, never opened.
    Bzip2,
    None,
}

/// One index file to fetch and verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFetch {
    pub kind: IndexKind,
    /// The file's name under `dists/<dist>/` (`main/binary-amd64/Packages.xz`).
    pub path: String,
    /// What to request under `dists/<dist>/` (the by-hash name when the
    /// upstream offers it).
    pub fetch_path: String,
    pub compression: Compression,
    pub listed: Listed,
    /// The uncompressed file's entry, when the Release lists it: the
    /// decompressed content is checked against it too.
    pub plain: Option<Listed>,
    /// What to try when this one is missing or does not verify, in apt's
    /// order: the canonical name after the by-hash one, then each other
    /// compression the Release lists (a partial mirror, or one mid-sync).
    pub fallbacks: Vec<IndexVariant>,
}

/// One form of an index: a name to request and what it must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexVariant {
    pub path: String,
    pub fetch_path: String,
    pub compression: Compression,
    pub listed: Listed,
}

impl IndexFetch {
    /// The same index, fetched as `v` instead.
    pub fn with_variant(&self, v: &IndexVariant) -> IndexFetch {
        IndexFetch {
            path: v.path.clone(),
            fetch_path: v.fetch_path.clone(),
            compression: v.compression,
            listed: v.listed.clone(),
            fallbacks: Vec::new(),
            ..self.clone()
        }
    }

    /// The uncompressed file's name (`main/binary-amd64/Packages`): its
    /// entry in the Release is [`IndexFetch::plain`].
    pub fn plain_path(&self) -> &str {
        match self.compression {
            Compression::None => &self.path,
            _ => self.path.rsplit_once('.').map_or(&self.path, |(p, _)| p),
        }
    }

    /// Served as fetched, never opened (translations).
    pub fn is_opaque(&self) -> bool {
        matches!(self.kind, IndexKind::Translation { .. })
    }
}

/// The index files to fetch for `wanted`, best variant each.
pub fn plan_indices(
    release: &Release,
    wanted: &Wanted<'_>,
) -> Result<Vec<IndexFetch>, ReleaseError> {
    let mut archs: Vec<&str> = wanted.architectures.iter().map(String::as_str).collect();
    // apt fetches binary-all when the Release has it and does not say that
    // the per-arch indices hold arch `all` already; so do we.
    if release.architectures.iter().any(|a| a == "all") && !release.all_in_arch_indices {
        archs.push("all");
    }
    let mut out = Vec::new();
    for comp in wanted.components {
        for arch in &archs {
            let base = format!("{comp}/binary-{arch}/Packages");
            let kind = IndexKind::Packages {
                component: comp.clone(),
                arch: arch.to_string(),
            };
            match plan_index(release, &base, kind) {
                Err(ReleaseError::NoIndex { .. }) if *arch == "all" => {}
                other => out.push(other?),
            }
            if wanted.udebs && *arch != "all" {
                let base = format!("{comp}/debian-installer/binary-{arch}/Packages");
                let kind = IndexKind::Packages {
                    component: comp.clone(),
                    arch: arch.to_string(),
                };
                out.push(plan_index(release, &base, kind)?);
            }
        }
        for lang in wanted.translations {
            let base = format!("{comp}/i18n/Translation-{lang}");
            let kind = IndexKind::Translation {
                component: comp.clone(),
                lang: lang.clone(),
            };
            // Optional: most repositories publish none.
            match plan_variants(release, &base, kind, &TRANSLATION_FORMS) {
                Ok(plan) => out.push(plan),
                Err(ReleaseError::NoIndex { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if wanted.sources {
            let base = format!("{comp}/source/Sources");
            let kind = IndexKind::Sources {
                component: comp.clone(),
            };
            out.push(plan_index(release, &base, kind)?);
        }
    }
    Ok(out)
}

/// The forms of Packages and Sources, in the order they are tried.
const INDEX_FORMS: [(&str, Compression); 3] = [
    (".xz", Compression::Xz),
    (".gz", Compression::Gzip),
    ("", Compression::None),
];

/// The forms of a translation (Debian publishes `.bz2`).
const TRANSLATION_FORMS: [(&str, Compression); 4] = [
    (".xz", Compression::Xz),
    (".bz2", Compression::Bzip2),
    (".gz", Compression::Gzip),
    ("", Compression::None),
];

fn plan_index(release: &Release, base: &str, kind: IndexKind) -> Result<IndexFetch, ReleaseError> {
    plan_variants(release, base, kind, &INDEX_FORMS)
}

fn plan_variants(
    release: &Release,
    base: &str,
    kind: IndexKind,
    forms: &[(&str, Compression)],
) -> Result<IndexFetch, ReleaseError> {
    let mut variants: Vec<IndexVariant> = Vec::new();
    for &(ext, compression) in forms {
        let path = format!("{base}{ext}");
        let Some(listed) = release.sha256.get(&path) else {
            if release.listed_any.contains_key(&path) && variants.is_empty() {
                return Err(ReleaseError::NoSha256 { path });
            }
            continue;
        };
        if release.acquire_by_hash {
            let dir = base.rsplit_once('/').map_or("", |(d, _)| d);
            variants.push(IndexVariant {
                path: path.clone(),
                fetch_path: format!("{dir}/by-hash/SHA256/{}", listed.hash),
                compression,
                listed: listed.clone(),
            });
        }
        variants.push(IndexVariant {
            path: path.clone(),
            fetch_path: path,
            compression,
            listed: listed.clone(),
        });
    }
    if variants.is_empty() {
        return Err(ReleaseError::NoIndex {
            path: base.to_string(),
        });
    }
    let first = variants.remove(0);
    let plain = release.sha256.get(base).cloned();
    Ok(IndexFetch {
        kind,
        path: first.path,
        fetch_path: first.fetch_path,
        compression: first.compression,
        listed: first.listed,
        plain: plain.filter(|_| first.compression != Compression::None),
        fallbacks: variants,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like apt-ftparchive's output.
    const RELEASE: &str = concat!(
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

    fn wanted<'a>(c: &'a [String], a: &'a [String]) -> Wanted<'a> {
        Wanted {
            components: c,
            architectures: a,
            sources: false,
            translations: &[],
            udebs: false,
        }
    }

    fn ts(s: &str) -> jiff::Timestamp {
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

    #[test]
    fn prefers_xz_and_by_hash_and_knows_the_plain_hash() {
        let r = parse_release(RELEASE).unwrap();
        let (c, a) = (vec!["main".to_string()], vec!["amd64".to_string()]);
        let mut w = wanted(&c, &a);
        w.sources = true;
        let plan = plan_indices(&r, &w).unwrap();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].path, "main/binary-amd64/Packages.xz");
        assert_eq!(
            plan[0].fetch_path,
            "main/binary-amd64/by-hash/SHA256/aaaa000000000000000000000000000000000000000000000000000000000003"
        );
        assert_eq!(plan[0].compression, Compression::Xz);
        assert_eq!(plan[0].plain.as_ref().unwrap().size, 10);
        assert_eq!(plan[0].plain_path(), "main/binary-amd64/Packages");
        assert_eq!(plan[1].path, "main/source/Sources.gz");
        assert_eq!(plan[1].compression, Compression::Gzip);
        assert_eq!(plan[1].plain, None);

        let plain_only = RELEASE.replace("Acquire-By-Hash: yes\n", "");
        let r = parse_release(&plain_only).unwrap();
        let plan = plan_indices(&r, &wanted(&c, &a)).unwrap();
        assert_eq!(plan[0].fetch_path, "main/binary-amd64/Packages.xz");
    }

    #[test]
    fn an_index_without_sha256_or_not_listed_is_refused() {
        let r = parse_release(RELEASE).unwrap();
        let a = vec!["amd64".to_string()];
        let e = plan_indices(&r, &wanted(&["contrib".into()], &a)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists contrib/binary-amd64/Packages.xz without a SHA256 checksum"
        );
        let e = plan_indices(&r, &wanted(&["main".into()], &["arm64".into()])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "lists no main/binary-arm64/Packages (none of .xz, .gz or plain)"
        );
    }

    #[test]
    fn binary_all_is_fetched_only_when_apt_would() {
        let r = parse_release(&RELEASE.replace("amd64 arm64", "all amd64 arm64")).unwrap();
        let (c, a) = (vec!["main".to_string()], vec!["amd64".to_string()]);
        // Listed "all" but no binary-all index: skipped, not an error.
        assert_eq!(plan_indices(&r, &wanted(&c, &a)).unwrap().len(), 1);
        let text = RELEASE.replace("amd64 arm64", "all amd64").replace(
            "SHA256:\n",
            "SHA256:\n aaaa000000000000000000000000000000000000000000000000000000000009 3 main/binary-all/Packages\n",
        );
        let r = parse_release(&text).unwrap();
        let plan = plan_indices(&r, &wanted(&c, &a)).unwrap();
        assert_eq!(plan[1].path, "main/binary-all/Packages");
        let r = parse_release(&text.replace(
            "Acquire-By-Hash",
            "No-Support-for-Architecture-all: Packages\nAcquire-By-Hash",
        ))
        .unwrap();
        assert_eq!(plan_indices(&r, &wanted(&c, &a)).unwrap().len(), 1);
    }
}

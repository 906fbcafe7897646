//! PURE: which index files of an upstream dist to fetch, and in which
//! forms, for what a mirror asks.
//!
//! Follows apt: compressed variants are preferred (`.xz`, then `.gz`, then
//! plain), and `Acquire-By-Hash: yes` means fetching
//! `<dir>/by-hash/SHA256/<hex>` so a concurrent upstream publish cannot
//! hand us an index that does not match the Release we verified.

use super::release::{Listed, Release, ReleaseError};

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
    use crate::index::read::release::parse_release;
    use crate::index::read::release::tests::{wanted, RELEASE};

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

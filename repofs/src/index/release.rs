//! The `Release` file of a dist: what it says about the dist and the
//! checksums of every index file under it.
//!
//! Lists MD5Sum and SHA256 only, as Debian's archive does: apt fetches
//! `by-hash/<strongest listed hash>/`, and the trees we serve carry
//! `by-hash/SHA256`. No `Valid-Until`: a snapshot is immutable and must stay
//! installable for as long as it exists.

use crate::hash::Digests;

/// What the header of a `Release` says.
#[derive(Debug, Clone)]
pub struct ReleaseMeta<'a> {
    pub origin: &'a str,
    pub label: &'a str,
    /// Suite and Codename: the dist name clients put in sources.list.
    pub dist: &'a str,
    /// RFC 2822 date in UTC, as apt expects (`Fri, 27 Nov 2026 02:52:47 UTC`).
    pub date: &'a str,
    pub architectures: &'a [String],
    pub components: &'a [String],
    pub description: Option<&'a str>,
    /// A mirrored dist's upstream identity, kept instead of ours (issue
    /// 12: unattended-upgrades' Allowed-Origins and origin pins match it).
    pub identity: Option<&'a crate::model::state::ReleaseIdentity>,
}

/// Renders `Release` for `files` (paths relative to `dists/<dist>/`).
pub fn render_release<'a>(meta: &ReleaseMeta<'a>, files: &[(String, Digests)]) -> String {
    let mut s = String::new();
    let id = meta.identity;
    let pick = |kept: Option<&Option<String>>, ours: &'a str| -> String {
        kept.and_then(|k| k.as_deref()).unwrap_or(ours).to_string()
    };
    s.push_str(&format!(
        "Origin: {}\n",
        pick(id.map(|i| &i.origin), meta.origin)
    ));
    s.push_str(&format!(
        "Label: {}\n",
        pick(id.map(|i| &i.label), meta.label)
    ));
    s.push_str(&format!(
        "Suite: {}\n",
        pick(id.map(|i| &i.suite), meta.dist)
    ));
    s.push_str(&format!(
        "Codename: {}\n",
        pick(id.map(|i| &i.codename), meta.dist)
    ));
    s.push_str(&format!("Date: {}\n", meta.date));
    s.push_str("Acquire-By-Hash: yes\n");
    s.push_str(&format!(
        "Architectures: {}\n",
        meta.architectures.join(" ")
    ));
    s.push_str(&format!("Components: {}\n", meta.components.join(" ")));
    if let Some(d) = meta.description {
        s.push_str(&format!("Description: {d}\n"));
    }
    let width = files
        .iter()
        .map(|(_, d)| d.size.to_string().len())
        .max()
        .unwrap_or(1);
    for (title, pick) in [
        (
            "MD5Sum",
            (|d: &Digests| d.md5.clone()) as fn(&Digests) -> String,
        ),
        ("SHA256", |d: &Digests| d.sha256.clone()),
    ] {
        s.push_str(title);
        s.push_str(":\n");
        for (path, d) in files {
            s.push_str(&format!(" {} {:>width$} {}\n", pick(d), d.size, path));
        }
    }
    s
}

/// `release` with apt's `Snapshots:` field (apt 3.0: `apt --snapshot ID`
/// fetches from the URL with `@SNAPSHOTID@` replaced by ID), placed after
/// the header fields and before the checksums.
pub fn with_snapshots(release: String, url: Option<&str>) -> String {
    let Some(url) = url else {
        return release;
    };
    match release.find("\nMD5Sum:\n") {
        Some(at) => format!("{}\nSnapshots: {url}{}", &release[..at], &release[at..]),
        None => format!("{release}Snapshots: {url}\n"),
    }
}

/// The value of `Snapshots:` for `archive`, served under `base`. The
/// trailing `/` matters: apt appends `dists/...` to it as it stands.
pub fn snapshots_field(base: &str, archive: &str) -> String {
    format!("{base}/snapshots/@SNAPSHOTID@/{archive}/")
}

/// The date format of `Release` files.
pub fn render_date(ts: jiff::Timestamp) -> String {
    ts.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::digest;

    #[test]
    fn release_lists_md5_and_sha256_only() {
        let archs = vec!["amd64".to_string()];
        let comps = vec!["main".to_string()];
        let meta = ReleaseMeta {
            origin: "o",
            label: "l",
            dist: "trusty",
            date: "Fri, 27 Nov 2026 02:52:47 UTC",
            architectures: &archs,
            components: &comps,
            description: None,
            identity: None,
        };
        let r = render_release(&meta, &[("main/binary-amd64/Packages".into(), digest(b""))]);
        let p = crate::deb822::parse_single(&r).unwrap();
        assert_eq!(p.get("Suite"), Some("trusty"));
        assert_eq!(p.get("Acquire-By-Hash"), Some("yes"));
        assert!(p.get("SHA1").is_none() && p.get("SHA512").is_none());
        assert_eq!(
            p.get("SHA256"),
            Some("\n e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 0 main/binary-amd64/Packages")
        );
    }

    #[test]
    fn the_snapshots_field_goes_before_the_checksums() {
        let r = "Origin: o\nDate: x\nMD5Sum:\n a 1 f\nSHA256:\n b 1 f\n".to_string();
        let url = snapshots_field("https://apt.example.org", "rustedhalo");
        let with = with_snapshots(r.clone(), Some(&url));
        assert_eq!(
            with,
            "Origin: o\nDate: x\nSnapshots: https://apt.example.org/snapshots/@SNAPSHOTID@/rustedhalo/\nMD5Sum:\n a 1 f\nSHA256:\n b 1 f\n"
        );
        let p = crate::deb822::parse_single(&with).unwrap();
        assert_eq!(p.get("Snapshots"), Some(url.as_str()));
        assert_eq!(with_snapshots(r.clone(), None), r);
    }

    #[test]
    fn date_is_rfc2822_utc() {
        let ts: jiff::Timestamp = "2026-11-27T02:52:47Z".parse().unwrap();
        assert_eq!(render_date(ts), "Fri, 27 Nov 2026 02:52:47 UTC");
    }
}

//! Debian package versions (`[epoch:]upstream[-revision]`), ordered exactly as
//! `dpkg --compare-versions` orders them (dpkg's `verrevcmp`).
//!
//! Validation follows dpkg's `parseversion`: an epoch must be a number, the
//! upstream part must start with a digit and may hold alphanumerics and
//! `.+-~:` (a `-` only when there is a revision), the revision alphanumerics
//! and `.+~`.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version is empty")]
    Empty,
    #[error("version {0:?}: epoch is not a number")]
    BadEpoch(String),
    #[error("version {0:?}: upstream part must start with a digit")]
    NoLeadingDigit(String),
    #[error("version {0:?}: contains a character dpkg does not allow")]
    BadCharacter(String),
    #[error("version {0:?}: revision is empty")]
    EmptyRevision(String),
}

/// A validated version; `Ord` is dpkg's order, `Eq` is textual equality
/// (`1.0` and `1.0-0` compare equal but are different versions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    text: String,
    epoch: u64,
    upstream_start: usize,
    revision_start: Option<usize>,
}

/// Where the parts of a valid version start, within its trimmed text.
#[derive(Debug, Clone, Copy)]
struct Parts {
    epoch: u64,
    upstream_start: usize,
    revision_start: Option<usize>,
}

impl Parts {
    /// dpkg's `parseversion` checks, on the trimmed text `t`, without
    /// allocating unless it fails.
    fn of(t: &str) -> Result<Self, VersionError> {
        if t.is_empty() {
            return Err(VersionError::Empty);
        }
        let bad = |f: fn(String) -> VersionError| f(t.to_string());
        // Byte searches (`:` and `-` are ASCII, so a byte index is a
        // character boundary): versions are short, too short for the
        // `char` searcher's set-up to pay, and every versioned relation of
        // a 50 MB index is checked.
        let (epoch, upstream_start) = match t.bytes().position(|b| b == b':') {
            Some(i) => {
                let e = &t[..i];
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad(VersionError::BadEpoch));
                }
                (e.parse().map_err(|_| bad(VersionError::BadEpoch))?, i + 1)
            }
            None => (0, 0),
        };
        let rest = &t[upstream_start..];
        let revision_start = rest
            .bytes()
            .rposition(|b| b == b'-')
            .map(|i| upstream_start + i + 1);
        let upstream = match revision_start {
            Some(r) => &t[upstream_start..r - 1],
            None => rest,
        };
        if !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad(VersionError::NoLeadingDigit));
        }
        if !upstream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'-' | b'~' | b':'))
        {
            return Err(bad(VersionError::BadCharacter));
        }
        if let Some(r) = revision_start {
            let rev = &t[r..];
            if rev.is_empty() {
                return Err(bad(VersionError::EmptyRevision));
            }
            if !rev
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~'))
            {
                return Err(bad(VersionError::BadCharacter));
            }
        }
        Ok(Self {
            epoch,
            upstream_start,
            revision_start,
        })
    }

    fn upstream<'t>(&self, t: &'t str) -> &'t str {
        match self.revision_start {
            Some(r) => &t[self.upstream_start..r - 1],
            None => &t[self.upstream_start..],
        }
    }

    fn revision<'t>(&self, t: &'t str) -> &'t str {
        self.revision_start.map_or("", |r| &t[r..])
    }

    /// dpkg's order of two versions given as (parts, trimmed text).
    fn cmp(&self, a: &str, other: &Self, b: &str) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(self.upstream(a), other.upstream(b)))
            .then_with(|| verrevcmp(self.revision(a), other.revision(b)))
    }
}

impl Version {
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let t = text.trim();
        let p = Parts::of(t)?;
        Ok(Self {
            text: t.to_string(),
            epoch: p.epoch,
            upstream_start: p.upstream_start,
            revision_start: p.revision_start,
        })
    }

    /// Whether `text` is a version dpkg accepts, as [`Version::parse`]
    /// decides, without allocating: hot loops (every versioned relation of
    /// a 50 MB upstream index) check without keeping the value.
    pub fn check(text: &str) -> Result<(), VersionError> {
        Parts::of(text.trim()).map(|_| ())
    }

    /// dpkg's order of two version texts, as [`Version::parse`] then
    /// `cmp` would give it, without allocating; `None` when either is not a
    /// valid version.
    pub fn cmp_texts(a: &str, b: &str) -> Option<Ordering> {
        let (a, b) = (a.trim(), b.trim());
        let (pa, pb) = (Parts::of(a).ok()?, Parts::of(b).ok()?);
        Some(pa.cmp(a, &pb, b))
    }

    fn parts(&self) -> Parts {
        Parts {
            epoch: self.epoch,
            upstream_start: self.upstream_start,
            revision_start: self.revision_start,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        match self.revision_start {
            Some(r) => &self.text[self.upstream_start..r - 1],
            None => &self.text[self.upstream_start..],
        }
    }

    pub fn revision(&self) -> &str {
        self.revision_start.map_or("", |r| &self.text[r..])
    }

    /// The version without its epoch: what goes into a `.deb`'s file name.
    pub fn without_epoch(&self) -> &str {
        &self.text[self.upstream_start..]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&self.text, &other.parts(), &other.text)
    }
}

/// dpkg's character weight in the non-digit part: `~` sorts before
/// everything (even the end of the string), letters before other characters.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: alternate non-digit and digit runs.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let mut first_diff = 0;
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(a[i]) - i32::from(b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        Version::parse(a).unwrap().cmp(&Version::parse(b).unwrap())
    }

    #[test]
    fn tilde_sorts_before_everything() {
        assert_eq!(cmp("1.0~rc1", "1.0"), Ordering::Less);
        assert_eq!(cmp("1.0~~", "1.0~"), Ordering::Less);
        assert_eq!(cmp("1.0~rc1-1", "1.0-1"), Ordering::Less);
    }

    #[test]
    fn epochs_and_revisions() {
        assert_eq!(cmp("1:0.1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("1.0-1", "1.0-2"), Ordering::Less);
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("1.10", "1.9"), Ordering::Greater);
        assert_eq!(cmp("1.0a", "1.0+"), Ordering::Less);
        assert_eq!(cmp("1.001", "1.1"), Ordering::Equal);
    }

    #[test]
    fn parts() {
        let v = Version::parse("2:1.2-3-4ubuntu1").unwrap();
        assert_eq!(v.epoch(), 2);
        assert_eq!(v.upstream(), "1.2-3");
        assert_eq!(v.revision(), "4ubuntu1");
        assert_eq!(v.without_epoch(), "1.2-3-4ubuntu1");
    }

    #[test]
    fn rejects_what_dpkg_rejects() {
        for bad in [
            "", "a1.0", "x:1.0", "1.0-", "1.0/2", "1.0 2", "1:", "1.0-a_b", "../1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
            assert_eq!(Version::check(bad), Version::parse(bad).map(|_| ()));
            assert_eq!(Version::cmp_texts(bad, "1.0"), None);
        }
    }

    #[test]
    fn the_allocation_free_forms_agree_with_parse() {
        let texts = [
            "1.0",
            " 1.0 ",
            "1.0-0",
            "1:0.1",
            "2.0",
            "1.0~rc1",
            "1.0~rc1-1",
            "1.10",
            "1.9",
            "1.001",
            "1.1",
            "1.0a",
            "1.0+",
            "0:1.0-1",
            "1.2-3-4ubuntu1",
        ];
        for a in texts {
            assert_eq!(Version::check(a), Ok(()));
            for b in texts {
                assert_eq!(Version::cmp_texts(a, b), Some(cmp(a, b)), "{a} {b}");
            }
        }
    }
}

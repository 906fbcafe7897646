//! Snapshot manifests and their time-based ids.
//!
//! A snapshot names, for every archive and dist, the component state blobs
//! it froze and the rendered files under `dists/<dist>/` (indices, Release,
//! InRelease, Release.gpg) by blob hash. Everything else (the pool tree,
//! by-hash names) is derived, so a manifest stays a few kilobytes however
//! large the archives are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One rendered file under `dists/<dist>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistFile {
    /// Relative to `dists/<dist>/`: `main/binary-amd64/Packages.gz`, `InRelease`.
    pub path: String,
    pub sha256: String,
    /// Kept so a later snapshot can list a reused index in its Release
    /// without reading it again.
    pub md5: String,
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistSnapshot {
    /// Component name -> hash of its `ComponentState` blob.
    pub components: BTreeMap<String, String>,
    pub architectures: Vec<String>,
    pub files: Vec<DistFile>,
    /// Served under `dists/<dist>/` but not listed in the Release: the
    /// patches the `*.diff/Index` files in `files` name (apt checks them
    /// against the Index, which the Release covers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pdiffs: Vec<DistFile>,
    /// The upstream identity the dist's Release carries (a mirrored dist
    /// that keeps it), so a re-dated copy renders the same fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<super::state::ReleaseIdentity>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveSnapshot {
    pub dists: BTreeMap<String, DistSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub archives: BTreeMap<String, ArchiveSnapshot>,
    /// A re-dated copy of this snapshot: same packages and indices, a
    /// Release signed anew with a later Date, made when a channel moves
    /// back to an older snapshot (apt refuses a Release older than the one
    /// it has, so the old snapshot itself would never reach its clients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
}

/// The working state as snapshots see it: archive -> dist -> component ->
/// state blob hash.
pub type StateMap = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

impl Snapshot {
    /// The component map of this snapshot in working-state form, to decide
    /// whether anything changed since.
    pub fn state_map(&self) -> StateMap {
        self.archives
            .iter()
            .map(|(a, arch)| {
                let dists = arch
                    .dists
                    .iter()
                    .map(|(d, dist)| (d.clone(), dist.components.clone()))
                    .collect();
                (a.clone(), dists)
            })
            .collect()
    }

    /// The identity of what this snapshot holds: a SHA-256 over its
    /// component map (archive, dist, component -> state blob), so a
    /// re-dated copy has the digest of what it restores, and two snapshots
    /// of the same working state have the same digest whatever their ids,
    /// dates and signatures. The gate uses it to keep content that was
    /// rolled back out of a channel from returning to it.
    pub fn content_digest(&self) -> String {
        let mut text = String::new();
        for (archive, dists) in self.state_map() {
            for (dist, components) in dists {
                for (component, blob) in components {
                    text.push_str(&format!("{archive}\t{dist}\t{component}\t{blob}\n"));
                }
            }
        }
        crate::hash::sha256_hex(text.as_bytes())
    }

    /// Every blob the manifest names directly (not the packages inside
    /// the component states).
    pub fn direct_blobs(&self) -> impl Iterator<Item = &str> {
        self.archives.values().flat_map(|a| {
            a.dists.values().flat_map(|d| {
                d.components
                    .values()
                    .map(String::as_str)
                    .chain(d.files.iter().map(|f| f.sha256.as_str()))
                    .chain(d.pdiffs.iter().map(|f| f.sha256.as_str()))
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("snapshot id {0:?} is not of the form YYYYMMDDTHHMMSS.mmmZ")]
pub struct BadSnapshotId(pub String);

/// Snapshot ids are UTC times with millisecond precision,
/// `20261127T025247.123Z`: they sort as strings in creation order, and they
/// are safe path segments.
pub fn check_snapshot_id(id: &str) -> Result<(), BadSnapshotId> {
    let b = id.as_bytes();
    let ok = b.len() == 20
        && b[8] == b'T'
        && b[15] == b'.'
        && b[19] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 15 | 19) || c.is_ascii_digit());
    ok.then_some(())
        .ok_or_else(|| BadSnapshotId(id.to_string()))
}

/// The id for a snapshot made at `now_ms` (milliseconds since the epoch),
/// strictly after `latest` even when the clock stepped back, so ids always
/// sort in creation order.
pub fn plan_snapshot_id(now_ms: i64, latest: Option<&str>) -> String {
    let mut ms = now_ms;
    if let Some(latest) = latest.and_then(parse_id_ms) {
        ms = ms.max(latest + 1);
    }
    format_id_ms(ms)
}

fn format_id_ms(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.strftime("%Y%m%dT%H%M%S.%3fZ").to_string()
}

fn parse_id_ms(id: &str) -> Option<i64> {
    check_snapshot_id(id).ok()?;
    let ts = jiff::Timestamp::strptime("%Y%m%dT%H%M%S.%fZ%z", format!("{id}+0000")).ok()?;
    Some(ts.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_in_creation_order_even_when_the_clock_steps_back() {
        let a = plan_snapshot_id(1_795_000_000_000, None);
        check_snapshot_id(&a).unwrap();
        let b = plan_snapshot_id(1_795_000_000_000, Some(&a));
        let c = plan_snapshot_id(1_700_000_000_000, Some(&b));
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(parse_id_ms(&a), Some(1_795_000_000_000));
    }

    #[test]
    fn ids_are_checked() {
        for bad in ["", "../x", "20261127T025247Z", "20261127T025247.12aZ"] {
            assert!(check_snapshot_id(bad).is_err(), "{bad}");
        }
    }
}

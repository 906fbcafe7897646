//! Build records: `builds/<source>.jsonl`, one JSON line per published
//! build (source, commit, version, the snapshot it landed in) or failed
//! build (commit, the step that failed, why), appended and fsynced. They
//! decide whether a branch head was built already, or failed already, so a
//! scheduler that runs every few minutes builds each commit once: a commit
//! whose build or tests failed is not built again until the branch moves
//! (or `halo build --retry`). Only failures that are the commit's are
//! recorded; a failing surrounding (a missing tool, the network) is not,
//! and the next run tries again.
//!
//! A crash mid-append leaves a torn last line, which readers skip. A build
//! is recorded after its snapshot exists, so a record never names a
//! snapshot that is not there; a crash before the record only means the
//! commit is built again (and its identical files import as unchanged).

use std::path::PathBuf;

use fs_err as fs;
use serde::{Deserialize, Serialize};

use super::{fsutil, Error, Result, Store};
use crate::debian::name;

/// What became of a recorded build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    /// Imported, in a snapshot (records written before failures were
    /// recorded have no status: they are all published).
    #[default]
    Published,
    /// The build or its tests failed: the commit's fault.
    Failed,
}

/// Where and why a failed build stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildFailure {
    /// The step that failed: `checkout`, `build-deps`, `test`, `build`,
    /// `publish`.
    pub step: String,
    /// One line.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRecord {
    pub source: String,
    /// The git commit built; `None` for a tree built with `--path`.
    pub commit: Option<String>,
    #[serde(default)]
    pub status: BuildStatus,
    /// The version built (a failure before the version was known has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub archive: String,
    pub dist: String,
    pub component: String,
    /// The snapshot that first held this build (none for a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The channel moved to it, if any.
    #[serde(default)]
    pub channel: Option<String>,
    /// Set when `status` is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<BuildFailure>,
    /// RFC 3339, UTC.
    pub when: String,
    pub who: String,
}

impl BuildRecord {
    pub fn is_failed(&self) -> bool {
        self.status == BuildStatus::Failed
    }
}

impl Store {
    fn builds_path(&self, source: &str) -> PathBuf {
        self.root().join("builds").join(format!("{source}.jsonl"))
    }

    /// Appends a record. Takes no lock: appends of one line are atomic
    /// enough for records that are only ever read as "the last for X".
    pub fn record_build(&self, record: &BuildRecord) -> Result<()> {
        name::check_segment("source", &record.source)?;
        let dir = self.root().join("builds");
        fsutil::create_dir_synced(&dir)?;
        let line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        fsutil::append_line(&self.builds_path(&record.source), &line)?;
        Ok(())
    }

    /// Every record of `source`, oldest first; none for a source never built.
    pub fn load_builds(&self, source: &str) -> Result<Vec<BuildRecord>> {
        name::check_segment("source", source)?;
        let path = self.builds_path(source);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<BuildRecord>(line.trim_end()) {
                Ok(r) if line.ends_with('\n') => out.push(r),
                // A torn last line: a crashed append.
                _ if i + 1 == lines.len() => {}
                Ok(_) => {}
                Err(e) => {
                    return Err(Error::Corrupt {
                        path,
                        reason: format!("line {}: {e}", i + 1),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The newest record of `source` that published `commit`.
    pub fn find_build(&self, source: &str, commit: &str) -> Result<Option<BuildRecord>> {
        Ok(self
            .load_builds(source)?
            .into_iter()
            .rev()
            .find(|r| r.commit.as_deref() == Some(commit) && !r.is_failed()))
    }

    /// The newest record of `source` about `commit`, published or failed:
    /// what the last attempt at that commit came to.
    pub fn last_attempt(&self, source: &str, commit: &str) -> Result<Option<BuildRecord>> {
        Ok(self
            .load_builds(source)?
            .into_iter()
            .rev()
            .find(|r| r.commit.as_deref() == Some(commit)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(commit: &str) -> BuildRecord {
        BuildRecord {
            source: "hello".into(),
            commit: Some(commit.into()),
            status: BuildStatus::Published,
            version: Some("1.0".into()),
            archive: "rustedhalo".into(),
            dist: "trusty".into(),
            component: "main".into(),
            snapshot: Some("20261205T100000.000Z".into()),
            channel: None,
            failure: None,
            when: "2026-12-05T10:00:00Z".into(),
            who: "t@h".into(),
        }
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let meta = super::super::StoreMeta {
            format: super::super::FORMAT,
            origin: "t".into(),
            label: "t".into(),
            architectures: vec!["amd64".into()],
            created: String::new(),
        };
        let key = crate::sign::SigningKey::generate("t <t@t>").unwrap();
        let store = Store::init(dir.path(), meta, &key).unwrap();
        assert!(store.load_builds("hello").unwrap().is_empty());
        store.record_build(&record("a")).unwrap();
        store.record_build(&record("b")).unwrap();
        assert_eq!(
            store
                .find_build("hello", "a")
                .unwrap()
                .unwrap()
                .commit
                .as_deref(),
            Some("a")
        );
        assert!(store.find_build("hello", "c").unwrap().is_none());
        // A failure of a commit is its last attempt, not a build of it.
        store
            .record_build(&BuildRecord {
                status: BuildStatus::Failed,
                version: None,
                snapshot: None,
                failure: Some(BuildFailure {
                    step: "test".into(),
                    reason: "unit tests failed".into(),
                }),
                ..record("c")
            })
            .unwrap();
        assert!(store.find_build("hello", "c").unwrap().is_none());
        assert!(store
            .last_attempt("hello", "c")
            .unwrap()
            .unwrap()
            .is_failed());
        // Records written before statuses existed read as published.
        let old = r#"{"source":"hello","commit":"d","version":"0.9","archive":"a","dist":"d","component":"c","snapshot":"20261205T100000.000Z","channel":null,"when":"w","who":"t@h"}"#;
        let parsed: BuildRecord = serde_json::from_str(old).unwrap();
        assert_eq!(parsed.status, BuildStatus::Published);
        fsutil::append_line(&store.builds_path("hello"), "{\"source\":").unwrap();
        let path = store.builds_path("hello");
        let text = fs::read_to_string(&path).unwrap();
        fsutil::write_atomic(&store.tmp_dir(), &path, text.trim_end().as_bytes()).unwrap();
        assert_eq!(store.load_builds("hello").unwrap().len(), 3);
        assert!(store.load_builds("../x").is_err());
    }
}

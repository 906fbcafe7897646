//! What an acceptance run found, kept in the store so that `halo serve`'s
//! page can show each testcase and its output after the run's console is
//! gone: `STORE/acceptance/reports/<key>.json`, one per run, the newest
//! [`KEEP`] kept. The verdict itself lives in `runs.jsonl` (the gate reads
//! that); these are for people.

use std::path::PathBuf;

use repofs::model::acceptance::Verdict;
use repofs::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::junit::{Outcome, Suite};

/// Reports kept; older ones are removed when a new one is saved.
pub const KEEP: usize = 200;
/// The tail of a testcase's output kept (a build log can be megabytes).
pub const OUTPUT_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// The file's key: a run id can be a URL, unfit for a path.
    pub id: String,
    pub run: String,
    pub snapshot: String,
    /// The channel judged for (the stable one for `halo accept`, the
    /// gated one for `halo gate`).
    pub channel: String,
    pub verdict: Verdict,
    /// RFC 3339, when the report was saved.
    pub when: String,
    pub suites: Vec<SuiteRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteRecord {
    pub name: String,
    pub cases: Vec<CaseRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    pub name: String,
    pub classname: String,
    pub time: f64,
    /// `passed`, `failed`, `error` or `skipped`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The failure's detail and the step's output, at most
    /// [`OUTPUT_LIMIT`] bytes (the tail).
    pub output: String,
}

impl RunReport {
    pub fn failed(&self) -> impl Iterator<Item = &CaseRecord> {
        self.suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| c.outcome == "failed" || c.outcome == "error")
    }
}

fn tail(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &text[start..])
}

/// The records of `suites`, outputs redacted and cut to their tail.
pub fn records(suites: &[Suite]) -> Vec<SuiteRecord> {
    suites
        .iter()
        .map(|s| SuiteRecord {
            name: s.name.clone(),
            cases: s
                .cases
                .iter()
                .map(|c| {
                    let (outcome, message, detail) = match &c.outcome {
                        Outcome::Passed => ("passed", None, ""),
                        Outcome::Failed { message, detail } => {
                            ("failed", Some(message.clone()), detail.as_str())
                        }
                        Outcome::Error { message, detail } => {
                            ("error", Some(message.clone()), detail.as_str())
                        }
                        Outcome::Skipped { message } => ("skipped", Some(message.clone()), ""),
                    };
                    let mut output = String::new();
                    if !detail.is_empty() {
                        output.push_str(detail);
                        output.push('\n');
                    }
                    output.push_str(&c.system_out);
                    CaseRecord {
                        name: c.name.clone(),
                        classname: c.classname.clone(),
                        time: c.time,
                        outcome: outcome.to_string(),
                        message: message.map(|m| crate::redact::redact_urls(&m)),
                        output: crate::redact::redact_urls(&tail(&output, OUTPUT_LIMIT)),
                    }
                })
                .collect(),
        })
        .collect()
}

fn dir(store: &Store) -> PathBuf {
    store.root().join("acceptance").join("reports")
}

/// The key of a run: the first 24 hex digits of its id's SHA-256.
pub fn key(run: &str) -> String {
    hex::encode(Sha256::digest(run.as_bytes()))[..24].to_string()
}

/// Saves the report of run `run` (replacing an earlier one of the same
/// run) and drops the oldest beyond [`KEEP`]. A failure is logged, never
/// the run's: the verdict is already recorded.
pub fn save(
    store: &dyn crate::repository::Repository,
    run: &str,
    snapshot: &str,
    channel: &str,
    verdict: Verdict,
    suites: &[Suite],
) {
    let report = RunReport {
        id: key(run),
        run: run.to_string(),
        snapshot: snapshot.to_string(),
        channel: channel.to_string(),
        verdict,
        when: jiff::Timestamp::now().to_string(),
        suites: records(suites),
    };
    // On the store's host, or through `halo serve` (`POST /api/v1/runs/reports`).
    if let Err(e) = store.save_run_report(&report) {
        tracing::warn!("cannot keep the report of run {run}: {e}");
    }
}

/// The report of the acceptance run a daemon cycle made, if it made one.
pub fn save_cycle(
    store: &dyn crate::repository::Repository,
    stable: &str,
    cycle: &crate::workflow::cycle::CycleReport,
) {
    use crate::workflow::cycle::AcceptanceStage;
    if let Some(AcceptanceStage::Ran {
        run,
        testing,
        verdict,
        ..
    }) = &cycle.acceptance
    {
        save(store, run, testing, stable, *verdict, &cycle.suites);
    }
}

/// Writes one report into the store (the server does this for a remote run).
pub fn write(store: &Store, report: &RunReport) -> std::io::Result<()> {
    let dir = dir(store);
    fs_err::create_dir_all(&dir)?;
    let data = serde_json::to_vec(report).map_err(std::io::Error::other)?;
    repofs::store::fsutil::write_atomic(
        &store.tmp_dir(),
        &dir.join(format!("{}.json", report.id)),
        &data,
    )?;
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = fs_err::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() > KEEP {
        files.sort();
        for (_, path) in &files[..files.len() - KEEP] {
            let _ = fs_err::remove_file(path);
        }
    }
    Ok(())
}

/// One report by key.
pub fn load(store: &Store, id: &str) -> Option<RunReport> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let data = fs_err::read(dir(store).join(format!("{id}.json"))).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Every kept report, oldest first.
pub fn load_all(store: &Store) -> Vec<RunReport> {
    let Ok(entries) = fs_err::read_dir(dir(store)) else {
        return Vec::new();
    };
    let mut out: Vec<RunReport> = entries
        .filter_map(Result::ok)
        .filter_map(|e| serde_json::from_slice(&fs_err::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.when.cmp(&b.when));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::Case;

    #[test]
    fn outputs_keep_their_tail_and_no_secret() {
        let suites = vec![Suite {
            name: "acceptance".into(),
            timestamp: None,
            cases: vec![Case {
                name: "smoke".into(),
                classname: "tests".into(),
                time: 1.0,
                outcome: Outcome::Failed {
                    message: "exit 1".into(),
                    detail: "boom".into(),
                },
                system_out: format!("{}end https://u:pw@h/x", "x".repeat(OUTPUT_LIMIT * 2)),
            }],
        }];
        let r = records(&suites);
        let c = &r[0].cases[0];
        assert_eq!(c.outcome, "failed");
        assert!(c.output.len() < OUTPUT_LIMIT + 100);
        assert!(c.output.ends_with("end https://u:***@h/x"));
        assert_eq!(key("run").len(), 24);
    }
}

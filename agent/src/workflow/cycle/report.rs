//! The cycle's report, stage by stage, as typed values (shared by the
//! cycle that writes it, `halo agent` that prints it and `halo status`
//! that reads it back from `STORE/agent/last-cycle.json`), and its one-line
//! summary. PURE: no I/O.

use repofs::model::acceptance::Verdict;
use serde::{Deserialize, Serialize};

use crate::junit::Suite;
use crate::workflow::build::BuildStatus;
use crate::workflow::exit::{EXIT_INFRA, EXIT_OK};

/// What became of one mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MirrorOutcome {
    Changed,
    Unchanged,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MirrorStage {
    pub mirror: String,
    pub outcome: MirrorOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildStage {
    pub source: String,
    pub status: BuildStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Why it failed, or why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotStage {
    /// The snapshot made, or the latest one when nothing changed.
    pub id: Option<String>,
    /// A snapshot was made by this cycle.
    pub new: bool,
    /// Why none was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_not: Option<String>,
}

/// What acceptance did with unstable's snapshot this cycle.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum AcceptanceStage {
    /// Nothing to judge: unstable is empty, stable holds it already, or
    /// a run judged it before (`verdict`), or it was handed over before.
    NothingToJudge {
        why: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        verdict: Option<Verdict>,
    },
    /// Neither `[jenkins]` nor any test or system: nothing can judge it.
    NotConfigured { why: String },
    /// The acceptance job was started for it.
    Triggered { snapshot: String, queue: String },
    /// The accept workflow ran here.
    Ran {
        run: String,
        /// Testing was frozen at this snapshot for the run.
        testing: String,
        verdict: Verdict,
        failed: Vec<String>,
        count: usize,
    },
    /// It could not be judged this cycle (the next one tries again).
    Failed { snapshot: String, error: String },
}

/// Whether stable moved this cycle, and why (not).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StableStage {
    pub channel: String,
    pub moved: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub why: String,
}

/// One cycle, stage by stage: logged, printed (`--json`), kept in
/// `STORE/agent/last-cycle.json` for `halo status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CycleReport {
    pub started: String,
    pub seconds: f64,
    /// 0 all well, 1 acceptance rejected or a build failed, 2 a step could
    /// not run.
    pub exit_code: u8,
    /// The verdict of the acceptance run this cycle made, if it made one.
    pub verdict: Option<Verdict>,
    pub mirrors: Vec<MirrorStage>,
    pub builds: Vec<BuildStage>,
    pub snapshot: SnapshotStage,
    /// Unstable's channel and where it points after the cycle.
    pub unstable: String,
    pub unstable_at: Option<String>,
    /// Unstable was moved by this cycle.
    pub unstable_moved: bool,
    pub acceptance: Option<AcceptanceStage>,
    pub stable: StableStage,
    /// Steps that could not run, one line each.
    pub errors: Vec<String>,
    /// The one-line summary.
    pub line: String,
    /// The JUnit of what ran (builds, acceptance, the cycle's own steps).
    #[serde(skip)]
    pub suites: Vec<Suite>,
}

impl CycleReport {
    pub(super) fn new() -> Self {
        Self {
            started: jiff::Timestamp::now().to_string(),
            seconds: 0.0,
            exit_code: EXIT_OK,
            verdict: None,
            mirrors: Vec::new(),
            builds: Vec::new(),
            snapshot: SnapshotStage::default(),
            unstable: String::new(),
            unstable_at: None,
            unstable_moved: false,
            acceptance: None,
            stable: StableStage::default(),
            errors: Vec::new(),
            line: String::new(),
            suites: Vec::new(),
        }
    }

    pub(super) fn raise(&mut self, code: u8) {
        self.exit_code = self.exit_code.max(code);
    }

    pub(super) fn error(&mut self, text: String) {
        tracing::error!("{text}");
        self.errors.push(text);
        self.raise(EXIT_INFRA);
    }
}

/// The cycle on one line: every stage, failures named.
pub fn summary_line(r: &CycleReport) -> String {
    let mut parts = vec![];
    if !r.mirrors.is_empty() {
        let m: Vec<String> = r
            .mirrors
            .iter()
            .map(|m| match (&m.outcome, &m.error) {
                (MirrorOutcome::Failed, Some(e)) => format!("{} FAILED ({e})", m.mirror),
                (o, _) => format!("{} {}", m.mirror, mirror_word(*o)),
            })
            .collect();
        parts.push(format!("mirrors: {}", m.join(", ")));
    }
    if !r.builds.is_empty() {
        let b: Vec<String> = r.builds.iter().map(build_words).collect();
        parts.push(format!("builds: {}", b.join(", ")));
    }
    parts.push(
        match (&r.snapshot.id, r.snapshot.new, &r.snapshot.why_not) {
            (Some(id), true, _) => format!("snapshot {id} (new)"),
            (_, _, Some(why)) => format!("no new snapshot ({why})"),
            (None, _, None) => "no snapshot".into(),
            (Some(id), false, None) => format!("snapshot {id}"),
        },
    );
    if r.unstable_moved {
        parts.push(format!(
            "{} -> {}",
            r.unstable,
            r.unstable_at.as_deref().unwrap_or("-")
        ));
    }
    if let Some(a) = &r.acceptance {
        parts.push(acceptance_words(a));
    }
    if !r.stable.channel.is_empty() {
        parts.push(if r.stable.moved {
            format!(
                "{}: {} -> {}",
                r.stable.channel,
                r.stable.from.as_deref().unwrap_or("-"),
                r.stable.to.as_deref().unwrap_or("-")
            )
        } else {
            format!("{} not moved: {}", r.stable.channel, r.stable.why)
        });
    }
    let mut line = format!("cycle: {}", parts.join("; "));
    if !r.errors.is_empty() {
        line.push_str(&format!("; errors: {}", r.errors.join("; ")));
    }
    line.push_str(&format!(" (exit {})", r.exit_code));
    line
}

fn mirror_word(o: MirrorOutcome) -> &'static str {
    match o {
        MirrorOutcome::Changed => "changed",
        MirrorOutcome::Unchanged => "unchanged",
        MirrorOutcome::Failed => "FAILED",
    }
}

fn build_words(b: &BuildStage) -> String {
    let version = b.version.as_deref().unwrap_or("");
    match b.status {
        BuildStatus::Built => format!("{} {version} built", b.source),
        BuildStatus::Skipped => format!("{} up to date", b.source),
        BuildStatus::Failed | BuildStatus::Error => format!(
            "{} {} ({})",
            b.source,
            if b.status == BuildStatus::Failed {
                "FAILED"
            } else {
                "ERROR"
            },
            b.reason.as_deref().unwrap_or("no reason given")
        ),
    }
}

fn acceptance_words(a: &AcceptanceStage) -> String {
    match a {
        AcceptanceStage::NothingToJudge { why, .. } => format!("nothing to judge: {why}"),
        AcceptanceStage::NotConfigured { .. } => "acceptance not configured".into(),
        AcceptanceStage::Triggered { snapshot, queue } => {
            format!("acceptance of {snapshot} triggered: {queue}")
        }
        AcceptanceStage::Ran {
            testing,
            verdict: Verdict::Rejected,
            failed,
            count,
            ..
        } => format!(
            "acceptance REJECTED {testing}: {} of {count} failed ({})",
            failed.len(),
            failed.join(", ")
        ),
        AcceptanceStage::Ran {
            testing,
            verdict: Verdict::Passed,
            count,
            ..
        } => format!("acceptance passed {testing}: {count} tests"),
        AcceptanceStage::Failed { snapshot, .. } => {
            format!("acceptance of {snapshot} could not run")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::exit::EXIT_REJECTED;

    #[test]
    fn a_rejection_and_a_failed_build_are_in_the_line() {
        let mut r = CycleReport::new();
        r.builds.push(BuildStage {
            source: "app".into(),
            status: BuildStatus::Failed,
            version: None,
            commit: None,
            reason: Some("tests: exit status 1".into()),
        });
        r.snapshot = SnapshotStage {
            id: Some("S1".into()),
            new: true,
            why_not: None,
        };
        r.acceptance = Some(AcceptanceStage::Ran {
            run: "r".into(),
            testing: "S1".into(),
            verdict: Verdict::Rejected,
            failed: vec!["smoke".into()],
            count: 2,
        });
        r.stable = StableStage {
            channel: "trusty".into(),
            why: "acceptance rejected S1".into(),
            ..StableStage::default()
        };
        r.exit_code = EXIT_REJECTED;
        let line = summary_line(&r);
        assert_eq!(
            line,
            "cycle: builds: app FAILED (tests: exit status 1); snapshot S1 (new); \
             acceptance REJECTED S1: 1 of 2 failed (smoke); trusty not moved: \
             acceptance rejected S1 (exit 1)"
        );
    }
}

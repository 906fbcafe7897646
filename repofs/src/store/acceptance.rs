//! The acceptance gate on disk: `channels/<name>.lease` (the lease of a
//! running acceptance run, replaced by rename, removed when the run ends),
//! `channels/<name>.gate` (whether the channel takes only accepted
//! snapshots) and `acceptance/runs.jsonl` (every run's events: freeze,
//! pass, fail, promote, lease taken over; appended and fsynced). The rules
//! themselves are `model::acceptance`; `Store::move_channel` applies them.

use std::path::PathBuf;

use fs_err as fs;
use serde::{Deserialize, Serialize};

use super::{fsutil, load_json, save_json, Error, Result, Store};
use crate::debian::name;
use crate::model::acceptance::{
    plan_lease, GateError, GatePolicy, Lease, LeaseDecision, TakeOverReason, Verdict,
};
use crate::model::process::Liveness;

/// What happened in a run: the writer (`halo accept`) and every reader
/// (the gate in `move_channel`, the agent deciding whether a snapshot was
/// judged, `halo status`) share this type, so no one compares strings.
/// On disk: kebab-case (`"lease-taken-over"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunEventKind {
    /// Testing was moved to the snapshot under the run's lease.
    Freeze,
    /// Every check passed: the snapshot may enter the gated channel.
    Pass,
    /// A check failed: the snapshot is rejected for the channel.
    Fail,
    /// The gated channel was moved to the snapshot.
    Promote,
    /// The run took over an expired (or forced) lease of another run.
    LeaseTakenOver,
    /// A gate change recorded by an operator.
    Gate,
    /// A kind written by a newer halo: kept readable, never a verdict.
    #[serde(other)]
    Other,
}

impl RunEventKind {
    /// The verdict this event gives, if it is one.
    pub fn verdict(self) -> Option<Verdict> {
        match self {
            RunEventKind::Pass => Some(Verdict::Passed),
            RunEventKind::Fail => Some(Verdict::Rejected),
            _ => None,
        }
    }
}

impl std::fmt::Display for RunEventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            RunEventKind::Freeze => "freeze",
            RunEventKind::Pass => "pass",
            RunEventKind::Fail => "fail",
            RunEventKind::Promote => "promote",
            RunEventKind::LeaseTakenOver => "lease-taken-over",
            RunEventKind::Gate => "gate",
            RunEventKind::Other => "other",
        };
        f.write_str(text)
    }
}

/// One line of `acceptance/runs.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunEvent {
    /// The run id (its `BUILD_URL` under Jenkins).
    pub run: String,
    pub event: RunEventKind,
    pub snapshot: String,
    /// The channel the event is about (testing; stable for pass/promote).
    pub channel: String,
    /// RFC 3339, UTC.
    pub when: String,
    pub who: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Store {
    fn lease_path(&self, channel: &str) -> PathBuf {
        self.root()
            .join("channels")
            .join(format!("{channel}.lease"))
    }

    fn gate_path(&self, channel: &str) -> PathBuf {
        self.root().join("channels").join(format!("{channel}.gate"))
    }

    fn runs_path(&self) -> PathBuf {
        self.root().join("acceptance").join("runs.jsonl")
    }

    pub fn load_lease(&self, channel: &str) -> Result<Option<Lease>> {
        name::check_segment("channel", channel)?;
        let path = self.lease_path(channel);
        if !path.exists() {
            return Ok(None);
        }
        load_json(&path).map(Some)
    }

    /// Takes (or renews) the lease on `channel` for `wanted.run`. Refused
    /// while another run's lease is live and its holder may still run,
    /// unless `force`. Returns the lease it replaced, and why, when it took
    /// one over: expired, its holder seen gone on this host (a run killed
    /// outright), or forced.
    pub fn acquire_lease(
        &self,
        channel: &str,
        wanted: Lease,
        now_ms: i64,
        force: bool,
    ) -> Result<Option<(Lease, TakeOverReason)>> {
        let _lock = self.lock()?;
        self.load_channel(channel)?;
        let current = self.load_lease(channel)?;
        let holder = current.as_ref().map_or(Liveness::Unknown, |l| {
            super::process::liveness(&l.holder.process)
        });
        let decision = plan_lease(channel, current.as_ref(), wanted, now_ms, force, holder)?;
        let (lease, previous) = match decision {
            LeaseDecision::Acquire(l) => (l, None),
            LeaseDecision::TakeOver {
                previous,
                lease,
                why,
            } => (lease, Some((previous, why))),
        };
        save_json(self, &self.lease_path(channel), &lease)?;
        Ok(previous)
    }

    /// Pushes the lease's expiry on, if `run` still holds it.
    pub fn renew_lease(&self, channel: &str, run: &str, expires_ms: i64) -> Result<()> {
        let _lock = self.lock()?;
        match self.load_lease(channel)? {
            Some(mut l) if l.run == run => {
                l.expires_ms = expires_ms;
                save_json(self, &self.lease_path(channel), &l)
            }
            _ => Err(GateError::NotHolder {
                channel: channel.to_string(),
                run: run.to_string(),
            }
            .into()),
        }
    }

    /// Gives the lease up, if `run` holds it.
    pub fn release_lease(&self, channel: &str, run: &str) -> Result<()> {
        let _lock = self.lock()?;
        if let Some(l) = self.load_lease(channel)? {
            if l.run == run {
                fsutil::remove_file(&self.lease_path(channel))?;
                fsutil::sync_parent(&self.lease_path(channel))?;
            }
        }
        Ok(())
    }

    pub fn load_gate(&self, channel: &str) -> Result<GatePolicy> {
        name::check_segment("channel", channel)?;
        let path = self.gate_path(channel);
        if !path.exists() {
            return Ok(GatePolicy::default());
        }
        load_json(&path)
    }

    pub fn save_gate(&self, channel: &str, policy: &GatePolicy) -> Result<()> {
        let lock = self.lock()?;
        self.write_gate(&lock, channel, policy)
    }

    pub(crate) fn write_gate(
        &self,
        _lock: &super::WriteLock,
        channel: &str,
        policy: &GatePolicy,
    ) -> Result<()> {
        self.load_channel(channel)?;
        save_json(self, &self.gate_path(channel), policy)
    }

    /// Appends one event to the run log.
    pub fn record_run_event(&self, event: &RunEvent) -> Result<()> {
        let path = self.runs_path();
        if let Some(dir) = path.parent() {
            fsutil::create_dir_synced(dir)?;
        }
        let line = serde_json::to_string(event).map_err(std::io::Error::other)?;
        fsutil::append_line(&path, &line)?;
        Ok(())
    }

    /// Every event, oldest first (a torn last line is skipped).
    pub fn load_run_events(&self) -> Result<Vec<RunEvent>> {
        let path = self.runs_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_str::<RunEvent>(line.trim_end()) {
                Ok(e) if line.ends_with('\n') => out.push(e),
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

    /// Whether an acceptance run passed `snapshot` for `channel`.
    pub fn passed_acceptance(&self, channel: &str, snapshot: &str) -> Result<bool> {
        Ok(self.load_run_events()?.iter().any(|e| {
            e.event == RunEventKind::Pass && e.channel == channel && e.snapshot == snapshot
        }))
    }

    /// The latest verdict any run gave `snapshot` for `channel`: a
    /// snapshot with one was judged and is not handed to acceptance again.
    pub fn load_verdict(&self, channel: &str, snapshot: &str) -> Result<Option<Verdict>> {
        Ok(self
            .load_run_events()?
            .iter()
            .rev()
            .filter(|e| e.channel == channel && e.snapshot == snapshot)
            .find_map(|e| e.event.verdict()))
    }
}

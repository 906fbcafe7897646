//! The acceptance gate's rules, with no I/O: who may move a channel while
//! an acceptance run holds its lease, and which snapshots a gated channel
//! (stable) may be moved to. The store applies them inside every channel
//! move, under its writer lock, so no command can go around them.
//!
//! - A lease on a channel (testing, during a run) lets only the run that
//!   holds it move the channel, until it expires; an expired lease is
//!   taken over. `force` overrides and is recorded.
//! - A gated channel takes a snapshot only when an acceptance run passed
//!   it for that channel, when the channel held it before (a rollback), or
//!   when forced with a reason.

use serde::{Deserialize, Serialize};

use super::channel::{Action, HistoryEntry, MoveRequest};

/// What an acceptance run decided about a snapshot. Written by the
/// acceptance workflow, read by the gate, the agent and `halo status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every check passed.
    Passed,
    /// At least one check failed.
    Rejected,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Passed => "passed",
            Verdict::Rejected => "rejected",
        })
    }
}

/// Who holds a lease: enough for an operator to find the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub user: String,
    /// Jenkins' `BUILD_URL` when Jenkins runs the acceptance job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} pid {} on {}", self.user, self.pid, self.host)?;
        if let Some(u) = &self.build_url {
            write!(f, " ({u})")?;
        }
        Ok(())
    }
}

/// `channels/<name>.lease`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The run's token; moves that carry it may move the channel.
    pub run: String,
    pub holder: Holder,
    /// Milliseconds since the epoch.
    pub acquired_ms: i64,
    pub expires_ms: i64,
}

impl Lease {
    pub fn is_live(&self, now_ms: i64) -> bool {
        self.expires_ms > now_ms
    }
}

/// `channels/<name>.gate`: whether the channel only takes accepted snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatePolicy {
    pub requires_acceptance: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("channel {channel} is held by acceptance run {run} of {holder} until {expires}: nothing changed (--force overrides and is recorded)")]
    Leased {
        channel: String,
        run: String,
        holder: String,
        expires: String,
    },
    #[error("channel {channel} only takes snapshots that passed acceptance, and {snapshot} did not (run `halo accept`, or --force with a --reason)")]
    NotAccepted { channel: String, snapshot: String },
    #[error("--force needs a --reason: it is recorded in the channel history")]
    ForceWithoutReason,
    #[error("acceptance run {run} does not hold the lease on {channel}")]
    NotHolder { channel: String, run: String },
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Whether the lease (if any) lets `req` move the channel at `now_ms`.
pub fn check_lease(
    lease: Option<&Lease>,
    req: &MoveRequest<'_>,
    now_ms: i64,
) -> Result<(), GateError> {
    let Some(l) = lease.filter(|l| l.is_live(now_ms)) else {
        return Ok(());
    };
    if req.lease == Some(l.run.as_str()) || req.force {
        return Ok(());
    }
    Err(GateError::Leased {
        channel: req.channel.to_string(),
        run: l.run.clone(),
        holder: l.holder.to_string(),
        expires: rfc3339(l.expires_ms),
    })
}

/// Whether a gated channel may take `req.target`. `passed` says whether an
/// acceptance run passed that snapshot for this channel.
pub fn check_gate(
    policy: &GatePolicy,
    req: &MoveRequest<'_>,
    history: &[HistoryEntry],
    passed: bool,
) -> Result<(), GateError> {
    if req.force && req.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(GateError::ForceWithoutReason);
    }
    if !policy.requires_acceptance || req.force || passed {
        return Ok(());
    }
    // A rollback (or re-promotion) to what the channel held before.
    let held_before = history
        .iter()
        .any(|e| e.to == req.target || e.content() == req.target);
    if held_before && req.action != Action::Accept {
        return Ok(());
    }
    Err(GateError::NotAccepted {
        channel: req.channel.to_string(),
        snapshot: req.target.to_string(),
    })
}

/// What taking a lease does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// The channel was free.
    Acquire(Lease),
    /// A lease whose holder stopped renewing it (it died) is taken over.
    TakeOver { previous: Lease, lease: Lease },
}

/// Decides a lease request: refused while another live lease exists,
/// unless forced.
pub fn plan_lease(
    channel: &str,
    current: Option<&Lease>,
    wanted: Lease,
    now_ms: i64,
    force: bool,
) -> Result<LeaseDecision, GateError> {
    match current {
        None => Ok(LeaseDecision::Acquire(wanted)),
        Some(c) if c.run == wanted.run => Ok(LeaseDecision::Acquire(wanted)),
        Some(c) if c.is_live(now_ms) && !force => Err(GateError::Leased {
            channel: channel.to_string(),
            run: c.run.clone(),
            holder: c.holder.to_string(),
            expires: rfc3339(c.expires_ms),
        }),
        Some(c) => Ok(LeaseDecision::TakeOver {
            previous: c.clone(),
            lease: wanted,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(run: &str, expires_ms: i64) -> Lease {
        Lease {
            run: run.into(),
            holder: Holder {
                host: "h".into(),
                pid: 7,
                user: "jenkins".into(),
                build_url: Some("https://ci/job/acc/3/".into()),
            },
            acquired_ms: 0,
            expires_ms,
        }
    }

    fn req<'a>(
        target: &'a str,
        lease: Option<&'a str>,
        force: bool,
        reason: Option<&'a str>,
    ) -> MoveRequest<'a> {
        MoveRequest {
            channel: "trusty-testing",
            target,
            expect: None,
            action: Action::Promote,
            who: "me@h",
            when: "",
            reason,
            lease,
            force,
        }
    }

    #[test]
    fn a_live_lease_admits_only_its_run_or_force() {
        let l = lease("run-1", 1000);
        let err = check_lease(Some(&l), &req("S", None, false, None), 999).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("run-1") && text.contains("jenkins pid 7 on h (https://ci/job/acc/3/)"),
            "{text}"
        );
        assert!(check_lease(Some(&l), &req("S", Some("run-1"), false, None), 999).is_ok());
        assert!(check_lease(Some(&l), &req("S", Some("run-2"), false, None), 999).is_err());
        assert!(check_lease(Some(&l), &req("S", None, true, Some("why")), 999).is_ok());
        // Expired: as if there were none.
        assert!(check_lease(Some(&l), &req("S", None, false, None), 1000).is_ok());
        assert!(check_lease(None, &req("S", None, false, None), 0).is_ok());
    }

    #[test]
    fn leases_are_taken_over_only_when_expired_or_forced() {
        let held = lease("run-1", 1000);
        let want = lease("run-2", 5000);
        assert!(matches!(
            plan_lease("t", None, want.clone(), 0, false),
            Ok(LeaseDecision::Acquire(_))
        ));
        assert!(matches!(
            plan_lease("t", Some(&held), want.clone(), 999, false),
            Err(GateError::Leased { .. })
        ));
        assert!(matches!(
            plan_lease("t", Some(&held), want.clone(), 1000, false),
            Ok(LeaseDecision::TakeOver { .. })
        ));
        assert!(matches!(
            plan_lease("t", Some(&held), want.clone(), 0, true),
            Ok(LeaseDecision::TakeOver { .. })
        ));
        // Renewal by the holder.
        assert!(matches!(
            plan_lease("t", Some(&held), lease("run-1", 9000), 0, false),
            Ok(LeaseDecision::Acquire(_))
        ));
    }

    #[test]
    fn a_gated_channel_takes_accepted_held_before_or_forced_snapshots() {
        let gated = GatePolicy {
            requires_acceptance: true,
        };
        let held = vec![HistoryEntry {
            seq: 1,
            when: String::new(),
            who: String::new(),
            action: Action::Accept,
            from: None,
            to: "OLD".into(),
            reason: None,
            forced: false,
            run: None,
            restores: None,
        }];
        let plain = req("NEW", None, false, None);
        assert!(matches!(
            check_gate(&gated, &plain, &held, false),
            Err(GateError::NotAccepted { .. })
        ));
        assert!(check_gate(&gated, &plain, &held, true).is_ok());
        assert!(check_gate(&gated, &req("OLD", None, false, None), &held, false).is_ok());
        assert!(check_gate(
            &gated,
            &req("NEW", None, true, Some("hotfix")),
            &held,
            false
        )
        .is_ok());
        assert_eq!(
            check_gate(&gated, &req("NEW", None, true, None), &held, false),
            Err(GateError::ForceWithoutReason)
        );
        assert!(check_gate(&GatePolicy::default(), &plain, &held, false).is_ok());
    }
}

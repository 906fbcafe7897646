//! The acceptance gate's rules, with no I/O: who may move a channel while
//! an acceptance run holds its lease, and which snapshots a gated channel
//! (stable) may be moved to. The store applies them inside every channel
//! move, under its writer lock, so no command can go around them.
//!
//! - A held channel (`halo channel hold`) moves only by force, with a
//!   reason; the move records the hold it overrode.
//! - A lease on a channel (testing, during a run) lets only the run that
//!   holds it move the channel, until it expires or its holder is seen
//!   gone (same host, same boot, no such process); such a lease is taken
//!   over. `force` overrides and is recorded.
//! - A gated channel takes a snapshot only when an acceptance run passed
//!   it for that channel, when the channel held it before (a rollback), or
//!   when forced with a reason; and never, unless forced, content that a
//!   rollback took out of it (a snapshot with the same content digest).

use serde::{Deserialize, Serialize};

use super::channel::{Action, HistoryEntry, Hold, MoveRequest};
use super::process::{Liveness, ProcessStamp};

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

/// Who holds a lease: enough for an operator to find the run, and for
/// another run on the same host to tell that it died.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host, pid, boot id and start time of the holding process.
    #[serde(flatten)]
    pub process: ProcessStamp,
    pub user: String,
    /// Jenkins' `BUILD_URL` when Jenkins runs the acceptance job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_url: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} pid {} on {}",
            self.user, self.process.pid, self.process.host
        )?;
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
    #[error("channel {channel} is {hold}: nothing moved (halo channel release {channel}, or --force with a --reason overrides it and is recorded)")]
    Held { channel: String, hold: Hold },
    #[error("channel {channel} does not take {snapshot}: its content was rolled back out of {channel} by {who} at {when}{} (only different content that passes, or --force with a --reason, moves it)", reason.as_deref().map_or(String::new(), |r| format!(" ({r})")))]
    RolledBack {
        channel: String,
        snapshot: String,
        who: String,
        when: String,
        reason: Option<String>,
    },
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
/// `holder` is what this host can tell of the lease's holding process: a
/// lease whose holder is gone holds nothing.
pub fn check_lease(
    lease: Option<&Lease>,
    req: &MoveRequest<'_>,
    now_ms: i64,
    holder: Liveness,
) -> Result<(), GateError> {
    let Some(l) = lease.filter(|l| l.is_live(now_ms) && holder != Liveness::Gone) else {
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

/// Whether a hold lets `req` move the channel: only a forced move with a
/// reason does, and it returns the hold it overrides (to be recorded).
pub fn check_hold(hold: Option<&Hold>, req: &MoveRequest<'_>) -> Result<Option<Hold>, GateError> {
    let Some(h) = hold else { return Ok(None) };
    if !req.force {
        return Err(GateError::Held {
            channel: req.channel.to_string(),
            hold: h.clone(),
        });
    }
    if req.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(GateError::ForceWithoutReason);
    }
    Ok(Some(h.clone()))
}

/// The rollback that took `content` out of the channel, if that content
/// has not been brought back by force since.
pub fn find_withdrawal<'a>(history: &'a [HistoryEntry], content: &str) -> Option<&'a HistoryEntry> {
    for e in history.iter().rev() {
        if e.withdraws.as_deref() == Some(content) {
            return Some(e);
        }
        if e.forced && e.content.as_deref() == Some(content) {
            return None;
        }
    }
    None
}

/// Whether a gated channel may take `req.target`. `passed` says whether an
/// acceptance run passed that snapshot for this channel; `content` is the
/// target's content digest.
pub fn check_gate(
    policy: &GatePolicy,
    req: &MoveRequest<'_>,
    history: &[HistoryEntry],
    passed: bool,
    content: Option<&str>,
) -> Result<(), GateError> {
    if req.force && req.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(GateError::ForceWithoutReason);
    }
    if !policy.requires_acceptance || req.force {
        return Ok(());
    }
    if let Some(w) = content.and_then(|c| find_withdrawal(history, c)) {
        return Err(GateError::RolledBack {
            channel: req.channel.to_string(),
            snapshot: req.target.to_string(),
            who: w.who.clone(),
            when: w.when.clone(),
            reason: w.reason.clone(),
        });
    }
    if passed {
        return Ok(());
    }
    // A rollback (or re-promotion) to what the channel held before.
    let held_before = history
        .iter()
        .filter(|e| e.action.moves())
        .any(|e| e.to == req.target || e.content() == req.target);
    if held_before && req.action != Action::Accept {
        return Ok(());
    }
    Err(GateError::NotAccepted {
        channel: req.channel.to_string(),
        snapshot: req.target.to_string(),
    })
}

/// Why a lease was taken over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TakeOverReason {
    /// Its holder stopped renewing it and it ran out.
    Expired,
    /// Its holder ran on this host, which says the process is gone.
    HolderGone,
    /// `--force`.
    Forced,
}

impl std::fmt::Display for TakeOverReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TakeOverReason::Expired => "it expired",
            TakeOverReason::HolderGone => "its holder is gone (no such process on this host)",
            TakeOverReason::Forced => "--force",
        })
    }
}

/// What taking a lease does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseDecision {
    /// The channel was free.
    Acquire(Lease),
    /// A lease whose holder died (it is seen gone, or it stopped renewing
    /// and the lease ran out) is taken over, or one is forced.
    TakeOver {
        previous: Lease,
        lease: Lease,
        why: TakeOverReason,
    },
}

/// Decides a lease request: refused while another live lease exists whose
/// holder may still run, unless forced. `holder` is what this host can
/// tell of the current lease's holding process.
pub fn plan_lease(
    channel: &str,
    current: Option<&Lease>,
    wanted: Lease,
    now_ms: i64,
    force: bool,
    holder: Liveness,
) -> Result<LeaseDecision, GateError> {
    let take = |c: &Lease, why| {
        Ok(LeaseDecision::TakeOver {
            previous: c.clone(),
            lease: wanted.clone(),
            why,
        })
    };
    match current {
        None => Ok(LeaseDecision::Acquire(wanted)),
        Some(c) if c.run == wanted.run => Ok(LeaseDecision::Acquire(wanted)),
        Some(c) if !c.is_live(now_ms) => take(c, TakeOverReason::Expired),
        Some(c) if holder == Liveness::Gone => take(c, TakeOverReason::HolderGone),
        Some(c) if force => take(c, TakeOverReason::Forced),
        Some(c) => Err(GateError::Leased {
            channel: channel.to_string(),
            run: c.run.clone(),
            holder: c.holder.to_string(),
            expires: rfc3339(c.expires_ms),
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
                process: ProcessStamp {
                    host: "h".into(),
                    pid: 7,
                    boot_id: None,
                    started: None,
                },
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
        let err =
            check_lease(Some(&l), &req("S", None, false, None), 999, Liveness::Alive).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("run-1") && text.contains("jenkins pid 7 on h (https://ci/job/acc/3/)"),
            "{text}"
        );
        assert!(check_lease(
            Some(&l),
            &req("S", Some("run-1"), false, None),
            999,
            Liveness::Alive
        )
        .is_ok());
        assert!(check_lease(
            Some(&l),
            &req("S", Some("run-2"), false, None),
            999,
            Liveness::Alive
        )
        .is_err());
        assert!(check_lease(
            Some(&l),
            &req("S", None, true, Some("why")),
            999,
            Liveness::Alive
        )
        .is_ok());
        // Expired: as if there were none.
        assert!(check_lease(
            Some(&l),
            &req("S", None, false, None),
            1000,
            Liveness::Alive
        )
        .is_ok());
        assert!(check_lease(None, &req("S", None, false, None), 0, Liveness::Alive).is_ok());
    }

    #[test]
    fn leases_are_taken_over_only_when_expired_or_forced() {
        let held = lease("run-1", 1000);
        let want = lease("run-2", 5000);
        assert!(matches!(
            plan_lease("t", None, want.clone(), 0, false, Liveness::Alive),
            Ok(LeaseDecision::Acquire(_))
        ));
        assert!(matches!(
            plan_lease("t", Some(&held), want.clone(), 999, false, Liveness::Alive),
            Err(GateError::Leased { .. })
        ));
        assert!(matches!(
            plan_lease("t", Some(&held), want.clone(), 1000, false, Liveness::Alive),
            Ok(LeaseDecision::TakeOver { .. })
        ));
        assert!(matches!(
            plan_lease("t", Some(&held), want.clone(), 0, true, Liveness::Alive),
            Ok(LeaseDecision::TakeOver { .. })
        ));
        // Renewal by the holder.
        assert!(matches!(
            plan_lease(
                "t",
                Some(&held),
                lease("run-1", 9000),
                0,
                false,
                Liveness::Alive
            ),
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
            content: Some("C-OLD".into()),
            withdraws: None,
            overrode_hold: None,
        }];
        let plain = req("NEW", None, false, None);
        assert!(matches!(
            check_gate(&gated, &plain, &held, false, None),
            Err(GateError::NotAccepted { .. })
        ));
        assert!(check_gate(&gated, &plain, &held, true, None).is_ok());
        assert!(check_gate(&gated, &req("OLD", None, false, None), &held, false, None).is_ok());
        assert!(check_gate(
            &gated,
            &req("NEW", None, true, Some("hotfix")),
            &held,
            false,
            None
        )
        .is_ok());
        assert_eq!(
            check_gate(&gated, &req("NEW", None, true, None), &held, false, None),
            Err(GateError::ForceWithoutReason)
        );
        assert!(check_gate(&GatePolicy::default(), &plain, &held, false, None).is_ok());
    }

    #[test]
    fn a_lease_of_a_gone_holder_holds_nothing_and_is_taken_over_at_once() {
        let held = lease("run-1", 1000);
        let plain = req("S", None, false, None);
        assert!(check_lease(Some(&held), &plain, 0, Liveness::Gone).is_ok());
        assert!(check_lease(Some(&held), &plain, 0, Liveness::Unknown).is_err());
        assert!(matches!(
            plan_lease(
                "t",
                Some(&held),
                lease("run-2", 9000),
                0,
                false,
                Liveness::Gone
            ),
            Ok(LeaseDecision::TakeOver {
                why: TakeOverReason::HolderGone,
                ..
            })
        ));
        // Another host's lease: only time tells.
        assert!(plan_lease(
            "t",
            Some(&held),
            lease("run-2", 9000),
            0,
            false,
            Liveness::Unknown
        )
        .is_err());
        assert!(matches!(
            plan_lease(
                "t",
                Some(&held),
                lease("run-2", 9000),
                1000,
                false,
                Liveness::Unknown
            ),
            Ok(LeaseDecision::TakeOver {
                why: TakeOverReason::Expired,
                ..
            })
        ));
    }

    #[test]
    fn a_held_channel_moves_only_by_force_with_a_reason() {
        let hold = Hold {
            reason: "incident 42".into(),
            who: "op@h".into(),
            since: "2026-12-01T00:00:00Z".into(),
        };
        let err = check_hold(Some(&hold), &req("S", None, false, None)).unwrap_err();
        assert!(err.to_string().contains("incident 42"), "{err}");
        // Not even the run holding the lease.
        assert!(check_hold(Some(&hold), &req("S", Some("run-1"), false, None)).is_err());
        assert_eq!(
            check_hold(Some(&hold), &req("S", None, true, None)),
            Err(GateError::ForceWithoutReason)
        );
        assert_eq!(
            check_hold(Some(&hold), &req("S", None, true, Some("hotfix"))).unwrap(),
            Some(hold.clone())
        );
        assert_eq!(
            check_hold(None, &req("S", None, false, None)).unwrap(),
            None
        );
    }

    #[test]
    fn content_rolled_back_out_of_a_gated_channel_returns_only_by_force() {
        let gated = GatePolicy {
            requires_acceptance: true,
        };
        let entry =
            |action, to: &str, content: &str, withdraws: Option<&str>, forced| HistoryEntry {
                seq: 1,
                when: "2026-12-01T00:00:00Z".into(),
                who: "op@h".into(),
                action,
                from: None,
                to: to.into(),
                reason: Some("bad".into()),
                forced,
                run: None,
                restores: None,
                content: Some(content.into()),
                withdraws: withdraws.map(str::to_string),
                overrode_hold: None,
            };
        let mut history = vec![
            entry(Action::Accept, "A", "CA", None, false),
            entry(Action::Accept, "B", "CB", None, false),
            entry(Action::Rollback, "A2", "CA", Some("CB"), false),
        ];
        // A new snapshot with B's content, passed: still refused.
        let accept = MoveRequest {
            action: Action::Accept,
            ..req("B3", Some("run"), false, None)
        };
        let err = check_gate(&gated, &accept, &history, true, Some("CB")).unwrap_err();
        assert!(matches!(err, GateError::RolledBack { .. }), "{err}");
        assert!(err.to_string().contains("rolled back"), "{err}");
        // Different content that passed moves it.
        assert!(check_gate(&gated, &accept, &history, true, Some("CC")).is_ok());
        // Force (with a reason) brings it back, and lifts the withdrawal.
        assert!(check_gate(
            &gated,
            &req("B3", None, true, Some("fixed")),
            &history,
            false,
            Some("CB")
        )
        .is_ok());
        history.push(entry(Action::Promote, "B3", "CB", None, true));
        assert!(check_gate(&gated, &accept, &history, true, Some("CB")).is_ok());
        // An ungated channel does not care.
        assert!(check_gate(
            &GatePolicy::default(),
            &accept,
            &history[..3],
            true,
            Some("CB")
        )
        .is_ok());
    }
}

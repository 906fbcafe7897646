//! Channels: named pointers to snapshots, moved by compare-and-swap, with
//! an append-only history.
//!
//! The pointer carries a sequence number; the history entry with the same
//! number describes the move that set it. A history line whose number is
//! beyond the pointer's is the trace of a promotion that crashed before its
//! pointer was renamed into place: it never happened, readers skip it and
//! the next writer drops it.
//!
//! A channel can be held (`halo channel hold`): the hold lives in the
//! pointer itself, so it is committed by the same rename as a move, and
//! setting or lifting it is a history entry (`hold`, `release`) that bumps
//! `seq` without changing the snapshot.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPointer {
    pub snapshot: Option<String>,
    /// Number of moves so far; the history entry with this `seq` set it.
    pub seq: u64,
    /// Set while the channel is held: nothing moves it but a forced move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
}

/// Why and by whom a channel is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub reason: String,
    /// `user@host`.
    pub who: String,
    /// RFC 3339, UTC.
    pub since: String,
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "held by {} since {}: {}",
            self.who, self.since, self.reason
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub when: String,
    /// `user@host` of the writer.
    pub who: String,
    pub action: Action,
    pub from: Option<String>,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The move overrode a lease or the acceptance gate (`--force`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    /// The acceptance run that made the move (its `BUILD_URL` when Jenkins
    /// ran it, else its run id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// The older snapshot this move went back to, when `to` is its
    /// re-dated copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<String>,
    /// `Snapshot::content_digest` of `to` (recorded since holds and
    /// withdrawals exist; absent in older entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// On a rollback: the content digest of the snapshot the channel left.
    /// That content does not come back to a gated channel unless forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdraws: Option<String>,
    /// A forced move of a held channel: the hold it overrode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrode_hold: Option<Hold>,
}

impl HistoryEntry {
    /// The snapshot whose content the channel took: `restores` for a
    /// re-dated copy, else `to`.
    pub fn content(&self) -> &str {
        self.restores.as_deref().unwrap_or(&self.to)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Promote,
    Rollback,
    /// An acceptance run froze testing at the snapshot it tests.
    Freeze,
    /// An acceptance run passed and moved stable to what it tested.
    Accept,
    /// The channel was held (`halo channel hold`); it did not move.
    Hold,
    /// Its hold was lifted (`halo channel release`); it did not move.
    Release,
}

impl Action {
    /// Whether an entry of this action moved the channel (hold and
    /// release entries only mark a change of its hold).
    pub fn moves(self) -> bool {
        !matches!(self, Action::Hold | Action::Release)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoteError {
    #[error("channel {channel} points at {}, not at {expected} as --expect says: someone else moved it; nothing changed", actual.as_deref().unwrap_or("nothing"))]
    Stale {
        channel: String,
        expected: String,
        actual: Option<String>,
    },
    #[error("channel {0} has no history to roll back to")]
    NoHistory(String),
    #[error("channel {0} points at no snapshot yet: there is nothing to hold")]
    HoldEmpty(String),
    #[error("channel {channel} is already {hold}: release it first")]
    AlreadyHeld { channel: String, hold: Hold },
    #[error("channel {0} is not held")]
    NotHeld(String),
}

/// What a promotion will do.
#[derive(Debug, Clone, PartialEq, Eq)]
// One value per channel move, never stored in bulk: boxing the entry would
// buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Transition {
    /// The channel already points there: nothing to write.
    Unchanged,
    Move {
        pointer: ChannelPointer,
        entry: HistoryEntry,
    },
}

/// Everything a move needs besides the current pointer.
#[derive(Debug, Clone)]
pub struct MoveRequest<'a> {
    pub channel: &'a str,
    pub target: &'a str,
    /// `Some("-")`-style "nothing" is spelled `Some("none")`.
    pub expect: Option<&'a str>,
    pub action: Action,
    pub who: &'a str,
    pub when: &'a str,
    pub reason: Option<&'a str>,
    /// The acceptance run making the move: it may move a channel it leased.
    pub lease: Option<&'a str>,
    /// Override a lease or the acceptance gate (needs a reason; recorded).
    pub force: bool,
}

/// Decides a channel move: the compare-and-swap check and the new pointer.
pub fn plan_move(
    current: &ChannelPointer,
    req: &MoveRequest<'_>,
) -> Result<Transition, PromoteError> {
    if let Some(expected) = req.expect {
        let matches = match &current.snapshot {
            Some(s) => s == expected,
            None => expected == "none",
        };
        if !matches {
            return Err(PromoteError::Stale {
                channel: req.channel.to_string(),
                expected: expected.to_string(),
                actual: current.snapshot.clone(),
            });
        }
    }
    if current.snapshot.as_deref() == Some(req.target) {
        return Ok(Transition::Unchanged);
    }
    let seq = current.seq + 1;
    Ok(Transition::Move {
        pointer: ChannelPointer {
            snapshot: Some(req.target.to_string()),
            seq,
            hold: current.hold.clone(),
        },
        entry: HistoryEntry {
            seq,
            when: req.when.to_string(),
            who: req.who.to_string(),
            action: req.action,
            from: current.snapshot.clone(),
            to: req.target.to_string(),
            reason: req.reason.map(str::to_string),
            forced: req.force,
            run: req.lease.map(str::to_string),
            restores: None,
            content: None,
            withdraws: None,
            overrode_hold: None,
        },
    })
}

/// Who sets or lifts a hold, and why.
#[derive(Debug, Clone)]
pub struct HoldRequest<'a> {
    pub channel: &'a str,
    /// `Some(reason)` holds, `None` releases.
    pub hold: Option<&'a str>,
    pub who: &'a str,
    pub when: &'a str,
    /// For a release: why (recorded).
    pub reason: Option<&'a str>,
}

/// Decides a hold or a release: a new pointer (same snapshot, `seq` + 1)
/// and its history entry. Holding a held channel or releasing a free one
/// is refused, so the history never says something happened that did not.
pub fn plan_hold(
    current: &ChannelPointer,
    req: &HoldRequest<'_>,
) -> Result<(ChannelPointer, HistoryEntry), PromoteError> {
    let Some(snapshot) = current.snapshot.clone() else {
        return Err(PromoteError::HoldEmpty(req.channel.to_string()));
    };
    let (hold, action, reason) = match (req.hold, &current.hold) {
        (Some(_), Some(h)) => {
            return Err(PromoteError::AlreadyHeld {
                channel: req.channel.to_string(),
                hold: h.clone(),
            })
        }
        (None, None) => return Err(PromoteError::NotHeld(req.channel.to_string())),
        (Some(why), None) => (
            Some(Hold {
                reason: why.to_string(),
                who: req.who.to_string(),
                since: req.when.to_string(),
            }),
            Action::Hold,
            Some(why.to_string()),
        ),
        (None, Some(_)) => (None, Action::Release, req.reason.map(str::to_string)),
    };
    let seq = current.seq + 1;
    Ok((
        ChannelPointer {
            snapshot: Some(snapshot.clone()),
            seq,
            hold,
        },
        HistoryEntry {
            seq,
            when: req.when.to_string(),
            who: req.who.to_string(),
            action,
            from: Some(snapshot.clone()),
            to: snapshot,
            reason,
            forced: false,
            run: None,
            restores: None,
            content: None,
            withdraws: None,
            overrode_hold: None,
        },
    ))
}

/// The history that really happened: entries up to the pointer's `seq`.
pub fn committed_history(
    pointer: &ChannelPointer,
    entries: Vec<HistoryEntry>,
) -> Vec<HistoryEntry> {
    entries
        .into_iter()
        .filter(|e| e.seq <= pointer.seq)
        .collect()
}

/// Whether a move to `target` goes back in time: clients that read the
/// current snapshot's Release would refuse `target`'s older one. Snapshot
/// ids sort in creation order; a re-dated copy counts as what it restores
/// would not, so compare ids. Accept and freeze moves are not re-dated:
/// they must point at exactly the snapshot that is (or was) tested.
pub fn moves_back(current: Option<&str>, target: &str, action: Action) -> bool {
    matches!(action, Action::Promote | Action::Rollback) && current.is_some_and(|c| target < c)
}

/// Where `rollback` without `--to` goes: the snapshot the channel pointed
/// at before its latest move (holds and releases are not moves).
pub fn plan_rollback_target(
    channel: &str,
    history: &[HistoryEntry],
) -> Result<String, PromoteError> {
    history
        .iter()
        .rev()
        .find(|e| e.action.moves())
        .and_then(|e| e.from.clone())
        .ok_or_else(|| PromoteError::NoHistory(channel.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(target: &'a str, expect: Option<&'a str>) -> MoveRequest<'a> {
        MoveRequest {
            channel: "trusty",
            target,
            expect,
            action: Action::Promote,
            who: "me@host",
            when: "2026-11-27T00:00:00Z",
            reason: None,
            lease: None,
            force: false,
        }
    }

    #[test]
    fn stale_expect_is_refused() {
        let cur = ChannelPointer {
            snapshot: Some("A".into()),
            seq: 1,
            hold: None,
        };
        let err = plan_move(&cur, &req("B", Some("C"))).unwrap_err();
        assert!(matches!(err, PromoteError::Stale { .. }));
        assert!(plan_move(&cur, &req("B", Some("A"))).is_ok());
        let empty = ChannelPointer::default();
        assert!(plan_move(&empty, &req("B", Some("none"))).is_ok());
        assert!(plan_move(&empty, &req("B", Some("A"))).is_err());
    }

    #[test]
    fn moves_bump_seq_and_record_from() {
        let cur = ChannelPointer {
            snapshot: Some("A".into()),
            seq: 4,
            hold: None,
        };
        match plan_move(&cur, &req("B", None)).unwrap() {
            Transition::Move { pointer, entry } => {
                assert_eq!(pointer.seq, 5);
                assert_eq!(entry.seq, 5);
                assert_eq!(entry.from.as_deref(), Some("A"));
            }
            Transition::Unchanged => panic!("expected a move"),
        }
        assert_eq!(
            plan_move(&cur, &req("A", None)).unwrap(),
            Transition::Unchanged
        );
    }

    #[test]
    fn uncommitted_history_is_ignored() {
        let p = ChannelPointer {
            snapshot: Some("B".into()),
            seq: 1,
            hold: None,
        };
        let mk = |seq, to: &str| HistoryEntry {
            seq,
            when: String::new(),
            who: String::new(),
            action: Action::Promote,
            from: Some("A".into()),
            to: to.into(),
            reason: None,
            forced: false,
            run: None,
            restores: None,
            content: None,
            withdraws: None,
            overrode_hold: None,
        };
        let h = committed_history(&p, vec![mk(1, "B"), mk(2, "C")]);
        assert_eq!(h.len(), 1);
        assert_eq!(plan_rollback_target("c", &h).unwrap(), "A");
        assert!(plan_rollback_target("c", &[]).is_err());
    }

    #[test]
    fn a_hold_bumps_seq_keeps_the_snapshot_and_survives_moves() {
        let cur = ChannelPointer {
            snapshot: Some("A".into()),
            seq: 2,
            hold: None,
        };
        let hold = |reason| HoldRequest {
            channel: "trusty",
            hold: reason,
            who: "op@h",
            when: "2026-12-01T00:00:00Z",
            reason: None,
        };
        let (held, entry) = plan_hold(&cur, &hold(Some("incident 42"))).unwrap();
        assert_eq!((held.seq, held.snapshot.as_deref()), (3, Some("A")));
        assert_eq!(held.hold.as_ref().unwrap().reason, "incident 42");
        assert_eq!((entry.action, entry.to.as_str()), (Action::Hold, "A"));
        assert!(matches!(
            plan_hold(&held, &hold(Some("again"))),
            Err(PromoteError::AlreadyHeld { .. })
        ));
        assert!(matches!(
            plan_hold(&cur, &hold(None)),
            Err(PromoteError::NotHeld(_))
        ));
        assert!(matches!(
            plan_hold(&ChannelPointer::default(), &hold(Some("x"))),
            Err(PromoteError::HoldEmpty(_))
        ));
        // A (forced) move keeps the hold; only a release lifts it.
        match plan_move(&held, &req("B", None)).unwrap() {
            Transition::Move { pointer, .. } => assert!(pointer.hold.is_some()),
            Transition::Unchanged => panic!("expected a move"),
        }
        let (free, entry) = plan_hold(&held, &hold(None)).unwrap();
        assert!(free.hold.is_none());
        assert_eq!((free.seq, entry.action), (4, Action::Release));
        // Rollback looks past holds and releases to the last real move.
        let mut moved = entry.clone();
        moved.action = Action::Promote;
        moved.from = Some("Z".into());
        assert_eq!(
            plan_rollback_target("trusty", &[moved, entry]).unwrap(),
            "Z"
        );
    }
}

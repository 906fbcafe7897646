//! Channels: named pointers to snapshots, moved by compare-and-swap, with
//! an append-only history.
//!
//! The pointer carries a sequence number; the history entry with the same
//! number describes the move that set it. A history line whose number is
//! beyond the pointer's is the trace of a promotion that crashed before its
//! pointer was renamed into place: it never happened, readers skip it and
//! the next writer drops it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPointer {
    pub snapshot: Option<String>,
    /// Number of moves so far; the history entry with this `seq` set it.
    pub seq: u64,
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
        },
    })
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
/// at before its latest move.
pub fn plan_rollback_target(
    channel: &str,
    history: &[HistoryEntry],
) -> Result<String, PromoteError> {
    history
        .last()
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
        };
        let h = committed_history(&p, vec![mk(1, "B"), mk(2, "C")]);
        assert_eq!(h.len(), 1);
        assert_eq!(plan_rollback_target("c", &h).unwrap(), "A");
        assert!(plan_rollback_target("c", &[]).is_err());
    }
}

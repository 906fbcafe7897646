//! What a channel shows through the mount: the snapshot it points at now,
//! and which snapshots it pointed at before still answer for paths the
//! current one lacks.
//!
//! apt reads `InRelease` and then, in separate requests, the indices it
//! lists (by hash) and the packages those list. A promotion between the two
//! must not turn into a 404 or a "Hash Sum mismatch", so under
//! `channels/<c>/` a path missing from the current snapshot falls back to:
//!
//! - for `.../by-hash/...` names: the last `byhash_keep` snapshots the
//!   channel pointed at (by-hash names are content addresses, so serving an
//!   old one is always correct);
//! - for any other path (pool files above all): the snapshots the channel
//!   left less than `grace` ago.
//!
//! A path the current snapshot has always wins. PURE: the pointer and
//! history come in, `now` comes in.

use std::time::Duration;

use crate::model::channel::committed_history;
use crate::model::{ChannelPointer, HistoryEntry};

/// How many earlier targets are remembered at most.
const MAX_PREVIOUS: usize = 64;

/// A snapshot a channel pointed at before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Previous {
    pub snapshot: String,
    /// When the channel last moved away from it (ms since the epoch, from
    /// the history's `when`); `None` when unreadable (treated as long ago).
    pub left_ms: Option<i64>,
}

/// A channel as the mount serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelView {
    pub target: Option<String>,
    pub seq: u64,
    /// Earlier targets, most recently left first, without the current one.
    pub previous: Vec<Previous>,
}

/// The fallback rules (mount options `byhash_keep=` and `grace=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackPolicy {
    pub byhash_keep: usize,
    pub grace: Duration,
}

impl Default for FallbackPolicy {
    fn default() -> Self {
        Self {
            byhash_keep: 4,
            grace: Duration::from_secs(600),
        }
    }
}

/// The view of a channel from its pointer and its history (entries beyond
/// the pointer's `seq`, the trace of an interrupted promotion, are ignored).
pub fn plan_channel_view(pointer: &ChannelPointer, history: Vec<HistoryEntry>) -> ChannelView {
    let history = committed_history(pointer, history);
    let mut previous: Vec<Previous> = Vec::new();
    for entry in history.iter().rev().filter(|e| e.action.moves()) {
        let Some(from) = &entry.from else { continue };
        if pointer.snapshot.as_ref() == Some(from) || previous.iter().any(|p| &p.snapshot == from) {
            continue;
        }
        previous.push(Previous {
            snapshot: from.clone(),
            left_ms: parse_ms(&entry.when),
        });
        if previous.len() == MAX_PREVIOUS {
            break;
        }
    }
    ChannelView {
        target: pointer.snapshot.clone(),
        seq: pointer.seq,
        previous,
    }
}

fn parse_ms(when: &str) -> Option<i64> {
    when.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// True for the by-hash names apt fetches indices by.
pub fn is_by_hash(path: &str) -> bool {
    path.contains("/by-hash/")
}

impl ChannelView {
    /// The earlier targets that still answer for `path` at `now_ms`, most
    /// recent first.
    pub fn fallbacks(&self, policy: &FallbackPolicy, path: &str, now_ms: i64) -> Vec<&str> {
        let by_hash = is_by_hash(path);
        let grace_ms = i64::try_from(policy.grace.as_millis()).unwrap_or(i64::MAX);
        self.previous
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                let recent = p
                    .left_ms
                    .is_some_and(|left| now_ms.saturating_sub(left) <= grace_ms);
                (by_hash && *i < policy.byhash_keep) || recent
            })
            .map(|(_, p)| p.snapshot.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Action;

    fn entry(seq: u64, from: Option<&str>, to: &str, when: &str) -> HistoryEntry {
        HistoryEntry {
            seq,
            when: when.into(),
            who: "t@h".into(),
            action: Action::Promote,
            from: from.map(str::to_string),
            to: to.into(),
            reason: None,
            forced: false,
            run: None,
            restores: None,
            content: None,
            withdraws: None,
            overrode_hold: None,
        }
    }

    fn flip_flop() -> ChannelView {
        let pointer = ChannelPointer {
            snapshot: Some("B".into()),
            seq: 4,
            hold: None,
        };
        let history = vec![
            entry(1, None, "A", "2026-11-27T10:00:00Z"),
            entry(2, Some("A"), "B", "2026-11-27T10:01:00Z"),
            entry(3, Some("B"), "C", "2026-11-27T10:02:00Z"),
            entry(4, Some("C"), "B", "2026-11-27T10:03:00Z"),
            // an interrupted promotion: never happened
            entry(5, Some("B"), "D", "2026-11-27T10:04:00Z"),
        ];
        plan_channel_view(&pointer, history)
    }

    #[test]
    fn previous_targets_are_most_recent_first_without_the_current_one() {
        let v = flip_flop();
        assert_eq!(v.target.as_deref(), Some("B"));
        let ids: Vec<_> = v.previous.iter().map(|p| p.snapshot.as_str()).collect();
        assert_eq!(ids, ["C", "A"]);
        assert_eq!(v.previous[0].left_ms, parse_ms("2026-11-27T10:03:00Z"));
    }

    #[test]
    fn by_hash_keeps_n_targets_and_other_paths_a_grace_period() {
        let v = flip_flop();
        let at = |s: &str| parse_ms(s).unwrap();
        let policy = FallbackPolicy {
            byhash_keep: 1,
            grace: Duration::from_secs(90),
        };
        let by_hash = "rustedhalo/dists/trusty/main/binary-amd64/by-hash/SHA256/ab";
        let pool = "rustedhalo/pool/main/h/hello/hello_1_all.deb";
        // A minute after the last move: C is within grace, A (left 10:01) is not.
        let now = at("2026-11-27T10:04:00Z");
        assert_eq!(v.fallbacks(&policy, pool, now), ["C"]);
        assert_eq!(v.fallbacks(&policy, by_hash, now), ["C"]);
        let long = FallbackPolicy {
            grace: Duration::from_secs(200),
            ..policy
        };
        assert_eq!(v.fallbacks(&long, pool, now), ["C", "A"]);
        assert_eq!(v.fallbacks(&long, by_hash, now), ["C", "A"]);
        // Much later: pool paths are gone, by-hash keeps the last target.
        let now = at("2026-11-28T00:00:00Z");
        assert!(v.fallbacks(&policy, pool, now).is_empty());
        assert_eq!(v.fallbacks(&policy, by_hash, now), ["C"]);
        let none = FallbackPolicy {
            byhash_keep: 0,
            grace: Duration::ZERO,
        };
        assert!(v.fallbacks(&none, by_hash, now).is_empty());
    }
}

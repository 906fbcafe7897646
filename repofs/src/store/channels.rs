//! Channels on disk: `channels/<name>.json` (the pointer, replaced by
//! rename) and `channels/<name>.history` (JSON lines, appended and
//! fsynced before the pointer moves).
//!
//! A crash between the two leaves a history line beyond the pointer's
//! `seq` (or a torn last line): readers skip it, the next writer cuts it.
//! A hold is part of the pointer, so holding and releasing are committed
//! the same way.

use std::path::PathBuf;

use fs_err as fs;

use super::{fsutil, load_json, save_json, Error, Result, Store, WriteLock};
use crate::debian::name;
use crate::model::acceptance;
use crate::model::channel::{self, committed_history, HoldRequest, MoveRequest};
use crate::model::process::Liveness;
use crate::model::{Action, ChannelPointer, HistoryEntry, Transition};

/// The raw history file: parsed entries and the byte length of the
/// well-formed prefix.
pub struct HistoryFile {
    pub entries: Vec<(HistoryEntry, u64)>,
    pub torn_tail: bool,
}

impl Store {
    fn pointer_path(&self, name: &str) -> PathBuf {
        self.root().join("channels").join(format!("{name}.json"))
    }

    fn history_path(&self, name: &str) -> PathBuf {
        self.root().join("channels").join(format!("{name}.history"))
    }

    /// Creates an empty channel (no snapshot yet); an existing one is kept.
    pub(crate) fn create_channel(&self, _lock: &WriteLock, name: &str) -> Result<()> {
        name::check_segment("channel", name)?;
        let path = self.pointer_path(name);
        if !path.exists() {
            save_json(self, &path, &ChannelPointer::default())?;
        }
        Ok(())
    }

    pub fn list_channels(&self) -> Result<Vec<(String, ChannelPointer)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.root().join("channels"))? {
            let file = e?.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".json") {
                if name::check_segment("channel", name).is_ok() {
                    out.push((name.to_string(), self.load_channel(name)?));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub fn load_channel(&self, name: &str) -> Result<ChannelPointer> {
        name::check_segment("channel", name)?;
        let path = self.pointer_path(name);
        if !path.exists() {
            return Err(Error::UnknownChannel(name.to_string()));
        }
        load_json(&path)
    }

    /// The snapshot a channel points at, refusing an empty channel.
    pub fn channel_target(&self, name: &str) -> Result<String> {
        self.load_channel(name)?
            .snapshot
            .ok_or_else(|| Error::EmptyChannel(name.to_string()))
    }

    pub fn load_history_file(&self, name: &str) -> Result<HistoryFile> {
        let path = self.history_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e.into()),
        };
        let mut entries = Vec::new();
        let mut offset = 0u64;
        let mut torn_tail = false;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        for (i, line) in lines.iter().enumerate() {
            let last = i + 1 == lines.len();
            match serde_json::from_str::<HistoryEntry>(line.trim_end()) {
                Ok(e) if line.ends_with('\n') => {
                    offset += line.len() as u64;
                    entries.push((e, offset));
                }
                _ if last => torn_tail = true,
                Err(e) => {
                    return Err(Error::Corrupt {
                        path,
                        reason: format!("line {}: {e}", i + 1),
                    })
                }
                Ok(_) => torn_tail = true,
            }
        }
        Ok(HistoryFile { entries, torn_tail })
    }

    /// The moves that happened, oldest first.
    pub fn channel_history(&self, name: &str) -> Result<Vec<HistoryEntry>> {
        let pointer = self.load_channel(name)?;
        let file = self.load_history_file(name)?;
        Ok(committed_history(
            &pointer,
            file.entries.into_iter().map(|(e, _)| e).collect(),
        ))
    }

    /// Moves a channel: compare-and-swap on the pointer, history first.
    ///
    /// The acceptance gate is applied here, under the lock, for every
    /// writer: a channel leased by an acceptance run moves only for that run
    /// (or `force`), a gated channel only to accepted snapshots, snapshots it
    /// held before, or by `force` with a reason.
    pub fn move_channel(&self, req: &MoveRequest<'_>) -> Result<Transition> {
        let lock = self.lock()?;
        self.move_channel_locked(&lock, req)
    }

    /// Moves stable to the snapshot an acceptance run passed, only while
    /// `testing` still points at it: if testing moved under the run (a
    /// forced promotion), what stable would get is not what was tested.
    pub fn move_channel_if(
        &self,
        req: &MoveRequest<'_>,
        testing: &str,
        tested: &str,
    ) -> Result<Transition> {
        let lock = self.lock()?;
        let now = self.load_channel(testing)?.snapshot;
        if now.as_deref() != Some(tested) {
            return Err(Error::Usage(format!(
                "{testing} moved during the run (it points at {}, the run tested {tested}): {} not promoted",
                now.as_deref().unwrap_or("nothing"),
                req.channel
            )));
        }
        self.move_channel_locked(&lock, req)
    }

    fn move_channel_locked(&self, lock: &WriteLock, req: &MoveRequest<'_>) -> Result<Transition> {
        let current = self.load_channel(req.channel)?;
        // The target must exist; a manifest never disappears while
        // a writer holds the lock.
        let content = self.load_snapshot(req.target)?.content_digest();
        // The hold first: an operator stopped the channel, whatever runs
        // and whatever else is wrong with the request.
        let overrode_hold = acceptance::check_hold(current.hold.as_ref(), req)?;
        // Then the lease: while a live run holds the channel, "held by run
        // X" is the answer.
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let lease = self.load_lease(req.channel)?;
        let holder = lease.as_ref().map_or(Liveness::Unknown, |l| {
            super::process::liveness(&l.holder.process)
        });
        acceptance::check_lease(lease.as_ref(), req, now_ms, holder)?;
        let transition = channel::plan_move(&current, req)?;
        if let Transition::Unchanged = transition {
            return Ok(transition);
        }
        let gate = self.load_gate(req.channel)?;
        let history = self.channel_history(req.channel)?;
        if gate.requires_acceptance || req.force {
            let passed = self.passed_acceptance(req.channel, req.target)?;
            acceptance::check_gate(&gate, req, &history, passed, Some(&content))?;
        }
        // What a rollback takes out of the channel stays out of it.
        let withdraws = match (&current.snapshot, req.action) {
            (Some(from), Action::Rollback) => Some(self.load_snapshot(from)?.content_digest()),
            _ => None,
        };
        let transition = match transition {
            Transition::Move { pointer, mut entry } => {
                entry.content = Some(content.clone());
                entry.withdraws = withdraws.clone();
                entry.overrode_hold = overrode_hold.clone();
                Transition::Move { pointer, entry }
            }
            Transition::Unchanged => Transition::Unchanged,
        };
        // Back to an older snapshot: the channel gets a re-dated copy, or
        // clients that read the current Release would never see the move.
        let transition = match &transition {
            Transition::Move { .. }
                if channel::moves_back(current.snapshot.as_deref(), req.target, req.action) =>
            {
                let copy =
                    self.restore_snapshot_locked(lock, req.target, jiff::Timestamp::now())?;
                let again = MoveRequest {
                    target: &copy,
                    ..req.clone()
                };
                match channel::plan_move(&current, &again)? {
                    Transition::Move { pointer, mut entry } => {
                        entry.restores = Some(req.target.to_string());
                        entry.content = Some(content);
                        entry.withdraws = withdraws;
                        entry.overrode_hold = overrode_hold;
                        Transition::Move { pointer, entry }
                    }
                    Transition::Unchanged => Transition::Unchanged,
                }
            }
            _ => transition,
        };
        if let Transition::Move { pointer, entry } = &transition {
            self.cut_uncommitted_history(lock, req.channel, &current)?;
            let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
            fsutil::append_line(&self.history_path(req.channel), &line)?;
            super::failpoint::hit("promote:before-pointer");
            save_json(self, &self.pointer_path(req.channel), pointer)?;
            tracing::info!(channel = req.channel, from = ?entry.from, to = %entry.to, "channel moved");
        }
        Ok(transition)
    }

    /// Holds a channel (`hold: Some(reason)`) or releases it (`None`):
    /// history first, then the pointer with its new hold, as a move.
    pub fn hold_channel(&self, req: &HoldRequest<'_>) -> Result<HistoryEntry> {
        let lock = self.lock()?;
        let current = self.load_channel(req.channel)?;
        let (pointer, entry) = channel::plan_hold(&current, req)?;
        self.cut_uncommitted_history(&lock, req.channel, &current)?;
        let line = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
        fsutil::append_line(&self.history_path(req.channel), &line)?;
        super::failpoint::hit("hold:before-pointer");
        save_json(self, &self.pointer_path(req.channel), &pointer)?;
        tracing::info!(channel = req.channel, action = ?entry.action, "channel hold changed");
        Ok(entry)
    }

    /// Refuses, with the hold's reason, when `channel` is held: for the
    /// workflows (accept, build, the agent's cycle) to say so before they
    /// start work whose result could not land.
    pub fn check_not_held(&self, channel: &str) -> Result<()> {
        match self.load_channel(channel)?.hold {
            Some(hold) => Err(crate::model::acceptance::GateError::Held {
                channel: channel.to_string(),
                hold,
            }
            .into()),
            None => Ok(()),
        }
    }

    /// Drops history lines a crashed writer left beyond the pointer.
    fn cut_uncommitted_history(
        &self,
        _lock: &WriteLock,
        name: &str,
        pointer: &ChannelPointer,
    ) -> Result<()> {
        let file = self.load_history_file(name)?;
        let keep = file
            .entries
            .iter()
            .take_while(|(e, _)| e.seq <= pointer.seq)
            .last()
            .map_or(0, |(_, end)| *end);
        let committed_all = file.entries.iter().all(|(e, _)| e.seq <= pointer.seq);
        if file.torn_tail || !committed_all {
            tracing::warn!(
                channel = name,
                "dropping history of an interrupted promotion"
            );
            fsutil::truncate(&self.history_path(name), keep)?;
        }
        Ok(())
    }
}

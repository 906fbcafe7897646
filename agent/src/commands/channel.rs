//! `halo promote` and `halo channel list|history|rollback|hold|release`:
//! every one a single compare-and-swap of a channel pointer (a hold lives
//! in the pointer).

use std::process::ExitCode;

use anyhow::Result;
use repofs::model::channel::{plan_rollback_target, HoldRequest, MoveRequest};
use repofs::model::{Action, Transition};
use repofs::Store;

use crate::cli::{ChannelCommand, PromoteArgs};
use crate::output::Output;

pub fn promote(store: &Store, args: &PromoteArgs, out: &Output) -> Result<ExitCode> {
    let target = match (&args.snapshot, &args.from) {
        (Some(id), _) => id.clone(),
        (None, Some(from)) => store.channel_target(from)?,
        (None, None) => unreachable!("clap requires --snapshot or --from"),
    };
    let reason = args
        .reason
        .clone()
        .or_else(|| args.from.as_ref().map(|f| format!("promoted from {f}")));
    if args.force && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(super::UserError(
            "--force needs a --reason: it is recorded in the channel history".into(),
        )
        .into());
    }
    move_channel(
        store,
        &Move {
            channel: &args.to,
            target: &target,
            expect: args.expect.as_deref(),
            action: Action::Promote,
            reason: reason.as_deref(),
            force: args.force,
        },
        out,
    )
}

/// What `promote` and `rollback` ask for.
struct Move<'a> {
    channel: &'a str,
    target: &'a str,
    expect: Option<&'a str>,
    action: Action,
    reason: Option<&'a str>,
    force: bool,
}

fn move_channel(store: &Store, m: &Move<'_>, out: &Output) -> Result<ExitCode> {
    let (channel, target) = (m.channel, m.target);
    let who = super::whoami();
    let when = jiff::Timestamp::now().to_string();
    let req = MoveRequest {
        channel,
        target,
        expect: m.expect,
        action: m.action,
        who: &who,
        when: &when,
        reason: m.reason,
        lease: None,
        force: m.force,
    };
    let (from, to, restores, moved, overrode) = match store.move_channel(&req)? {
        Transition::Unchanged => (
            Some(target.to_string()),
            target.to_string(),
            None,
            false,
            None,
        ),
        Transition::Move { entry, .. } => (
            entry.from,
            entry.to,
            entry.restores,
            true,
            entry.overrode_hold,
        ),
    };
    if let Some(h) = &overrode {
        out.line(format!(
            "{channel}: --force overrides its hold ({h}); the hold stays until `halo channel release {channel}`"
        ))?;
    }
    if moved {
        out.line(format!(
            "{channel}: {} -> {to}{}",
            from.as_deref().unwrap_or("-"),
            restores.as_deref().map_or(String::new(), |r| format!(
                " (restores {r}: a re-dated copy, so clients that already updated see the move)"
            ))
        ))?;
    } else {
        out.line(format!("{channel}: already at {target}"))?;
    }
    out.json(&serde_json::json!({
        "channel": channel, "from": from, "to": to, "restores": restores, "moved": moved,
        "overrode_hold": overrode,
    }))?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(store: &Store, cmd: &ChannelCommand, out: &Output) -> Result<ExitCode> {
    match cmd {
        ChannelCommand::List => {
            let channels = store.list_channels()?;
            for (name, p) in &channels {
                let mut line = format!("{name}\t{}", p.snapshot.as_deref().unwrap_or("-"));
                if let Some(h) = &p.hold {
                    line.push_str(&format!("\t{h}"));
                }
                out.line(line)?;
            }
            let json: Vec<_> = channels
                .iter()
                .map(|(name, p)| serde_json::json!({"channel": name, "snapshot": p.snapshot, "seq": p.seq, "hold": p.hold}))
                .collect();
            out.json(&json)?;
        }
        ChannelCommand::History { channel } => {
            let history = store.channel_history(channel)?;
            for e in &history {
                let mut why = e.reason.clone().unwrap_or_default();
                if e.forced {
                    why = format!("[forced] {why}");
                }
                if let Some(h) = &e.overrode_hold {
                    why.push_str(&format!(" (overrode the hold of {}: {})", h.who, h.reason));
                }
                out.line(format!(
                    "{}\t{}\t{:?}\t{} -> {}\t{}",
                    e.when,
                    e.who,
                    e.action,
                    e.from.as_deref().unwrap_or("-"),
                    e.to,
                    why
                ))?;
            }
            out.json(&history)?;
        }
        ChannelCommand::Rollback {
            channel,
            to,
            reason,
            force,
        } => {
            if *force && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(super::UserError(
                    "--force needs a --reason: it is recorded in the channel history".into(),
                )
                .into());
            }
            let current = store.load_channel(channel)?;
            let target = match to {
                Some(id) => id.clone(),
                None => plan_rollback_target(channel, &store.channel_history(channel)?)
                    .map_err(repofs::Error::from)?,
            };
            let expect = current.snapshot.as_deref().unwrap_or("none");
            return move_channel(
                store,
                &Move {
                    channel,
                    target: &target,
                    expect: Some(expect),
                    action: Action::Rollback,
                    reason: reason.as_deref(),
                    force: *force,
                },
                out,
            );
        }
        ChannelCommand::Hold { channel, reason } => {
            hold(store, channel, Some(reason), None, out)?;
        }
        ChannelCommand::Release { channel, reason } => {
            hold(store, channel, None, reason.as_deref(), out)?;
        }
        ChannelCommand::Gate { channel, off } => {
            let policy = repofs::model::acceptance::GatePolicy {
                requires_acceptance: !off,
            };
            store.save_gate(channel, &policy)?;
            out.line(if *off {
                format!("{channel}: takes any snapshot")
            } else {
                format!("{channel}: takes only snapshots that passed acceptance")
            })?;
            out.json(&serde_json::json!({"channel": channel, "gated": !off}))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `channel hold` (`hold: Some(reason)`) and `channel release`.
fn hold(
    store: &Store,
    channel: &str,
    hold: Option<&str>,
    reason: Option<&str>,
    out: &Output,
) -> Result<()> {
    if hold.is_some_and(|r| r.trim().is_empty()) {
        return Err(super::UserError("--reason must say why the channel is held".into()).into());
    }
    let who = super::whoami();
    let when = jiff::Timestamp::now().to_string();
    let entry = store.hold_channel(&HoldRequest {
        channel,
        hold,
        who: &who,
        when: &when,
        reason,
    })?;
    let pointer = store.load_channel(channel)?;
    match &pointer.hold {
        Some(h) => out.line(format!(
            "{channel}: {h}; nothing moves it until `halo channel release {channel}` (or a forced promote)"
        ))?,
        None => out.line(format!("{channel}: released; it moves again"))?,
    }
    out.json(&serde_json::json!({
        "channel": channel, "snapshot": entry.to, "action": entry.action,
        "hold": pointer.hold, "seq": entry.seq,
    }))?;
    Ok(())
}

//! `halo promote` and `halo channel list|history|rollback`: every one a
//! single compare-and-swap of a channel pointer.

use std::process::ExitCode;

use anyhow::Result;
use repofs::model::channel::{plan_rollback_target, MoveRequest};
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
    move_channel(
        store,
        &args.to,
        &target,
        args.expect.as_deref(),
        Action::Promote,
        reason.as_deref(),
        out,
    )
}

fn move_channel(
    store: &Store,
    channel: &str,
    target: &str,
    expect: Option<&str>,
    action: Action,
    reason: Option<&str>,
    out: &Output,
) -> Result<ExitCode> {
    let who = super::whoami();
    let when = jiff::Timestamp::now().to_string();
    let req = MoveRequest {
        channel,
        target,
        expect,
        action,
        who: &who,
        when: &when,
        reason,
    };
    let (from, moved) = match store.move_channel(&req)? {
        Transition::Unchanged => (Some(target.to_string()), false),
        Transition::Move { entry, .. } => (entry.from, true),
    };
    if moved {
        out.line(format!(
            "{channel}: {} -> {target}",
            from.as_deref().unwrap_or("-")
        ))?;
    } else {
        out.line(format!("{channel}: already at {target}"))?;
    }
    out.json(&serde_json::json!({
        "channel": channel, "from": from, "to": target, "moved": moved,
    }))?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(store: &Store, cmd: &ChannelCommand, out: &Output) -> Result<ExitCode> {
    match cmd {
        ChannelCommand::List => {
            let channels = store.list_channels()?;
            for (name, p) in &channels {
                out.line(format!("{name}\t{}", p.snapshot.as_deref().unwrap_or("-")))?;
            }
            let json: Vec<_> = channels
                .iter()
                .map(|(name, p)| serde_json::json!({"channel": name, "snapshot": p.snapshot, "seq": p.seq}))
                .collect();
            out.json(&json)?;
        }
        ChannelCommand::History { channel } => {
            let history = store.channel_history(channel)?;
            for e in &history {
                out.line(format!(
                    "{}\t{}\t{:?}\t{} -> {}\t{}",
                    e.when,
                    e.who,
                    e.action,
                    e.from.as_deref().unwrap_or("-"),
                    e.to,
                    e.reason.as_deref().unwrap_or("")
                ))?;
            }
            out.json(&history)?;
        }
        ChannelCommand::Rollback {
            channel,
            to,
            reason,
        } => {
            let current = store.load_channel(channel)?;
            let target = match to {
                Some(id) => id.clone(),
                None => plan_rollback_target(channel, &store.channel_history(channel)?)?,
            };
            let expect = current.snapshot.as_deref().unwrap_or("none");
            return move_channel(
                store,
                channel,
                &target,
                Some(expect),
                Action::Rollback,
                reason.as_deref(),
                out,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

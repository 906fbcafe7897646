//! The pipeline's writes: a snapshot, a channel move (compare-and-swap;
//! an acceptance run's promotion only while testing still holds what it
//! tested), the testing lease, run events, build records. Each is the
//! store's own operation; `who` and `when` are the server's (the token's
//! name with the agent's `user@host`, its clock).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use repofs::model::channel::MoveRequest;
use repofs::model::Transition;
use repofs::store::acceptance::RunEvent;
use repofs::store::builds::BuildRecord;
use serde::Deserialize;

use super::{blocking, parse, require, segment, who, WriteError, WriteResult};
use crate::repository::wire::{
    Done, LeaseBody, LeaseTaken, MoveBody, Moved, RenewBody, SnapshotMade,
};
use crate::serve::auth::Caller;
use crate::serve::state::AppState;
use crate::serve::tokens::Role;

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub async fn create_snapshot(
    caller: Caller,
    State(state): State<AppState>,
) -> WriteResult<Json<SnapshotMade>> {
    require(&caller, Role::Writer)?;
    blocking(move || {
        let c = state.store.create_snapshot(jiff::Timestamp::now())?;
        Ok(Json(SnapshotMade {
            id: c.id,
            new: c.new,
        }))
    })
    .await
}

/// Moves a channel. A gated channel (stable) or `force` needs `stable`:
/// the gate is read before anything else, and the store applies it again
/// under its lock.
pub async fn move_channel(
    caller: Caller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    body: Bytes,
) -> WriteResult<Json<Moved>> {
    require(&caller, Role::Writer)?;
    segment("channel", &channel)?;
    let req: MoveBody = parse(&body)?;
    blocking(move || {
        let store = &state.store;
        store.load_channel(&channel)?;
        if req.force || store.load_gate(&channel)?.requires_acceptance {
            require(&caller, Role::Stable)?;
        }
        let who = who(&caller, req.client.as_deref());
        let when = jiff::Timestamp::now().to_string();
        let move_req = MoveRequest {
            channel: &channel,
            target: &req.target,
            expect: req.expect.as_deref(),
            action: req.action,
            who: &who,
            when: &when,
            reason: req.reason.as_deref(),
            lease: req.lease.as_deref(),
            force: req.force,
        };
        let t = match (&req.if_channel, &req.if_snapshot) {
            (Some(c), Some(s)) => store.move_channel_if(&move_req, c, s)?,
            (None, None) => store.move_channel(&move_req)?,
            _ => {
                return Err(WriteError::bad_request(
                    "if_channel and if_snapshot go together",
                ))
            }
        };
        Ok(Json(match t {
            Transition::Move { pointer, entry } => Moved {
                moved: true,
                pointer: Some(pointer),
                entry: Some(entry),
            },
            Transition::Unchanged => Moved {
                moved: false,
                pointer: None,
                entry: None,
            },
        }))
    })
    .await
}

/// Takes `channel`'s lease for the run; its times are the server's clock
/// (the length the agent asked for kept). Forcing needs `stable`.
pub async fn take_lease(
    caller: Caller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    body: Bytes,
) -> WriteResult<Json<LeaseTaken>> {
    require(&caller, Role::Writer)?;
    segment("channel", &channel)?;
    let LeaseBody { mut lease, force } = parse(&body)?;
    if force {
        require(&caller, Role::Stable)?;
    }
    let length = lease.expires_ms.saturating_sub(lease.acquired_ms);
    if length <= 0 {
        return Err(WriteError::bad_request(
            "the lease's length must be positive",
        ));
    }
    blocking(move || {
        let now = now_ms();
        lease.acquired_ms = now;
        lease.expires_ms = now.saturating_add(length);
        let previous = state
            .store
            .acquire_lease(&channel, lease.clone(), now, force)?;
        let (previous, reason) = match previous {
            Some((p, why)) => (Some(p), Some(why.to_string())),
            None => (None, None),
        };
        Ok(Json(LeaseTaken {
            lease,
            previous,
            reason,
        }))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct RunParam {
    run: String,
}

fn run_param(
    q: Result<Query<RunParam>, axum::extract::rejection::QueryRejection>,
) -> WriteResult<String> {
    q.map(|Query(p)| p.run)
        .map_err(|e| WriteError::bad_request(format!("?run=RUN: {e}")))
}

pub async fn renew_lease(
    caller: Caller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    run: Result<Query<RunParam>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> WriteResult<Json<Done>> {
    require(&caller, Role::Writer)?;
    segment("channel", &channel)?;
    let run = run_param(run)?;
    let RenewBody { length_ms } = parse(&body)?;
    let length = Duration::from_millis(length_ms);
    blocking(move || {
        let expires =
            now_ms().saturating_add(i64::try_from(length.as_millis()).unwrap_or(i64::MAX));
        state.store.renew_lease(&channel, &run, expires)?;
        Ok(Json(Done { ok: true }))
    })
    .await
}

pub async fn release_lease(
    caller: Caller,
    State(state): State<AppState>,
    Path(channel): Path<String>,
    run: Result<Query<RunParam>, axum::extract::rejection::QueryRejection>,
) -> WriteResult<Json<Done>> {
    require(&caller, Role::Writer)?;
    segment("channel", &channel)?;
    let run = run_param(run)?;
    blocking(move || {
        state.store.release_lease(&channel, &run)?;
        Ok(Json(Done { ok: true }))
    })
    .await
}

/// One event of an acceptance run (`halo accept --status` and the gate
/// read them); `who` and `when` are the server's.
pub async fn record_run_event(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> WriteResult<Json<Done>> {
    require(&caller, Role::Writer)?;
    let mut event: RunEvent = parse(&body)?;
    segment("channel", &event.channel)?;
    segment("snapshot", &event.snapshot)?;
    event.who = who(&caller, Some(&event.who));
    event.when = jiff::Timestamp::now().to_string();
    blocking(move || {
        state.store.record_run_event(&event)?;
        Ok(Json(Done { ok: true }))
    })
    .await
}

/// A build's record (published or failed); `who` and `when` are the
/// server's.
pub async fn record_build(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> WriteResult<Json<Done>> {
    require(&caller, Role::Writer)?;
    let mut record: BuildRecord = parse(&body)?;
    record.who = who(&caller, Some(&record.who));
    record.when = jiff::Timestamp::now().to_string();
    blocking(move || {
        state.store.record_build(&record)?;
        Ok(Json(Done { ok: true }))
    })
    .await
}

/// An acceptance run's testcases, for the page (`crate::workflow::runs`).
pub async fn save_run_report(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> WriteResult<Json<Done>> {
    require(&caller, Role::Writer)?;
    let mut report: crate::workflow::runs::RunReport = parse(&body)?;
    // The file's key is the server's to derive, never a path from outside.
    report.id = crate::workflow::runs::key(&report.run);
    segment("snapshot", &report.snapshot)?;
    segment("channel", &report.channel)?;
    blocking(move || {
        crate::workflow::runs::write(&state.store, &report)?;
        Ok(Json(Done { ok: true }))
    })
    .await
}

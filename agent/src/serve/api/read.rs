//! The read API: what the page and remote agents read. No token needed;
//! nothing here changes the store.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use repofs::model::diff::Change;
use repofs::store::acceptance::RunEvent;
use repofs::store::builds::BuildRecord;
use repofs::Store;
use serde::{Deserialize, Serialize};

use crate::serve::error::{ApiError, ApiResult};
use crate::serve::state::{blocking, AppState};
use crate::workflow::runs::{self, RunReport};

/// Builds shown per source in `/builds`.
const BUILDS_SHOWN: usize = 20;
/// Runs listed in `/runs`, newest first.
const RUNS_SHOWN: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/status", get(status))
        .route("/channels", get(channels))
        .route("/channels/{name}", get(channel))
        .route("/channels/{name}/history", get(history))
        .route("/snapshots", get(snapshots))
        .route("/snapshots/{id}", get(snapshot))
        .route("/diff", get(diff))
        .route("/promotions", get(promotions))
        .route("/runs", get(run_list))
        .route("/runs/events", get(run_events))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/output", get(run_output))
        .route("/builds", get(builds))
        .route("/builds/{source}", get(source_builds))
}

/// `halo status --json` without asking git for branch heads (a page
/// polls this), plus the server's own facts.
async fn status(State(state): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    blocking(move || {
        let view = crate::commands::status::status_view(&state.store, &state.config, false)?;
        let mut value =
            serde_json::to_value(view).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "server".into(),
                serde_json::json!({
                    "version": env!("CARGO_PKG_VERSION"),
                    "started": jiff::Timestamp::try_from(state.started)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                    "testing": state.config.acceptance.testing,
                    "stable": state.config.acceptance.stable,
                }),
            );
        }
        Ok(Json(value))
    })
    .await
}

#[derive(Debug, Serialize)]
pub struct ChannelInfo {
    pub name: String,
    pub snapshot: Option<String>,
    /// When its snapshot was made (RFC 3339).
    pub created: Option<String>,
    pub seq: u64,
    pub gated: bool,
    pub hold: Option<repofs::model::channel::Hold>,
}

fn channel_infos(store: &Store) -> ApiResult<Vec<ChannelInfo>> {
    let mut out = Vec::new();
    for (name, p) in store.list_channels()? {
        let created = match &p.snapshot {
            Some(id) => store.load_snapshot(id).ok().map(|s| s.created),
            None => None,
        };
        out.push(ChannelInfo {
            gated: store.load_gate(&name)?.requires_acceptance,
            snapshot: p.snapshot,
            created,
            seq: p.seq,
            hold: p.hold,
            name,
        });
    }
    Ok(out)
}

async fn channels(State(state): State<AppState>) -> ApiResult<Json<Vec<ChannelInfo>>> {
    blocking(move || channel_infos(&state.store).map(Json)).await
}

/// The channel's pointer exactly as the store keeps it.
async fn channel(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<repofs::model::channel::ChannelPointer>> {
    blocking(move || Ok(Json(state.store.load_channel(&name)?))).await
}

async fn history(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<repofs::model::channel::HistoryEntry>>> {
    blocking(move || Ok(Json(state.store.channel_history(&name)?))).await
}

/// Snapshot ids, oldest first.
async fn snapshots(State(state): State<AppState>) -> ApiResult<Json<Vec<String>>> {
    blocking(move || Ok(Json(state.store.list_snapshots()?))).await
}

/// The snapshot's manifest as the store keeps it.
async fn snapshot(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<repofs::model::snapshot::Snapshot>> {
    blocking(move || Ok(Json(state.store.load_snapshot(&id)?))).await
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Serialize)]
pub struct DiffAnswer {
    pub from: String,
    pub to: String,
    pub from_snapshot: Option<String>,
    pub to_snapshot: Option<String>,
    /// What `to` has that `from` has not: `None` when either side is an
    /// empty channel.
    pub changes: Option<Vec<Change>>,
}

/// A channel name or a snapshot id to the snapshot it is (`None`: an
/// empty channel).
fn resolve(store: &Store, name: &str) -> ApiResult<Option<String>> {
    match store.load_channel(name) {
        Ok(p) => Ok(p.snapshot),
        Err(repofs::Error::UnknownChannel(_)) => {
            store.load_snapshot(name).map_err(|e| match e {
                repofs::Error::UnknownSnapshot(_) | repofs::Error::Snapshot(_) => {
                    ApiError::not_found(format!("no channel or snapshot {name}"))
                        .kind("unknown-snapshot")
                }
                e => e.into(),
            })?;
            Ok(Some(name.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

fn diff_between(store: &Store, from: &str, to: &str) -> ApiResult<DiffAnswer> {
    let from_snapshot = resolve(store, from)?;
    let to_snapshot = resolve(store, to)?;
    let changes = match (&from_snapshot, &to_snapshot) {
        (Some(a), Some(b)) => Some(crate::commands::snapshot::diff_snapshots(store, a, b)?),
        _ => None,
    };
    Ok(DiffAnswer {
        from: from.to_string(),
        to: to.to_string(),
        from_snapshot,
        to_snapshot,
        changes,
    })
}

/// `?from=A&to=B`: channels or snapshots.
async fn diff(
    State(state): State<AppState>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<DiffAnswer>> {
    blocking(move || diff_between(&state.store, &q.from, &q.to).map(Json)).await
}

/// What each next promotion would bring: for each adjacent pair of the
/// pipeline (`from` -> testing -> stable), the diff from the later
/// channel to the earlier one.
async fn promotions(State(state): State<AppState>) -> ApiResult<Json<Vec<DiffAnswer>>> {
    blocking(move || {
        let acc = &state.config.acceptance;
        let pairs = [(&acc.testing, &acc.from), (&acc.stable, &acc.testing)];
        let mut out = Vec::new();
        for (later, earlier) in pairs {
            // A pipeline whose channels were renamed away is not an error
            // of the page's.
            match diff_between(&state.store, later, earlier) {
                Ok(d) => out.push(d),
                Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Json(out))
    })
    .await
}

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub run: String,
    pub snapshot: String,
    pub channel: String,
    pub verdict: repofs::model::acceptance::Verdict,
    pub when: String,
    pub count: usize,
    pub failed: Vec<String>,
}

impl From<&RunReport> for RunSummary {
    fn from(r: &RunReport) -> Self {
        Self {
            id: r.id.clone(),
            run: r.run.clone(),
            snapshot: r.snapshot.clone(),
            channel: r.channel.clone(),
            verdict: r.verdict,
            when: r.when.clone(),
            count: r.suites.iter().map(|s| s.cases.len()).sum(),
            failed: r.failed().map(|c| c.name.clone()).collect(),
        }
    }
}

/// The kept acceptance runs, newest first.
async fn run_list(State(state): State<AppState>) -> ApiResult<Json<Vec<RunSummary>>> {
    blocking(move || {
        Ok(Json(
            runs::load_all(&state.store)
                .iter()
                .rev()
                .take(RUNS_SHOWN)
                .map(RunSummary::from)
                .collect(),
        ))
    })
    .await
}

/// The last events of `runs.jsonl` (freeze, pass, fail, promote...),
/// oldest first.
async fn run_events(State(state): State<AppState>) -> ApiResult<Json<Vec<RunEvent>>> {
    blocking(move || {
        let events = state.store.load_run_events()?;
        let skip = events.len().saturating_sub(100);
        Ok(Json(events.into_iter().skip(skip).collect()))
    })
    .await
}

fn load_run(store: &Store, id: &str) -> ApiResult<RunReport> {
    runs::load(store, id).ok_or_else(|| ApiError::not_found(format!("no run report {id}")))
}

/// One run with every testcase and its output.
async fn run(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<RunReport>> {
    blocking(move || load_run(&state.store, &id).map(Json)).await
}

#[derive(Debug, Deserialize)]
pub struct CaseQuery {
    pub suite: usize,
    pub case: usize,
}

/// A testcase's output as text (`?suite=I&case=J`): the page links here.
async fn run_output(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<CaseQuery>,
) -> ApiResult<impl IntoResponse> {
    let text = blocking(move || {
        let r = load_run(&state.store, &id)?;
        r.suites
            .get(q.suite)
            .and_then(|s| s.cases.get(q.case))
            .map(|c| c.output.clone())
            .ok_or_else(|| ApiError::not_found("no such testcase"))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// Sources with records: the configured ones and any other that
/// published (a `--path` build, a remote agent's).
fn source_names(state: &AppState) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = state
        .config
        .sources
        .iter()
        .map(|s| s.name.clone())
        .collect();
    if let Ok(entries) = fs_err::read_dir(state.store.root().join("builds")) {
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(source) = name.strip_suffix(".jsonl") {
                names.insert(source.to_string());
            }
        }
    }
    names
}

/// The last builds of each source, newest first.
async fn builds(
    State(state): State<AppState>,
) -> ApiResult<Json<BTreeMap<String, Vec<BuildRecord>>>> {
    blocking(move || {
        let mut out = BTreeMap::new();
        for name in source_names(&state) {
            let records = state.store.load_builds(&name)?;
            out.insert(name, records.into_iter().rev().take(BUILDS_SHOWN).collect());
        }
        Ok(Json(out))
    })
    .await
}

/// Every record of one source, oldest first (`[]` for one never built).
async fn source_builds(
    State(state): State<AppState>,
    Path(source): Path<String>,
) -> ApiResult<Json<Vec<BuildRecord>>> {
    blocking(move || Ok(Json(state.store.load_builds(&source)?))).await
}

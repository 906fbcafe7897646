//! EDGE: what the agent leaves in `STORE/agent/` (a remote agent: in its
//! work directory) for its next cycle and for
//! `halo status`, each a small JSON file replaced atomically:
//!
//! - `state.json`: the snapshot last handed to the acceptance job, so a
//!   snapshot is handed over once and a failed trigger is made again;
//! - `controller.json`: the agent's last contact with the Jenkins
//!   controller (reachable or not, when, why not);
//! - `mirrors.json`: per mirror, the last refresh tried, the last that
//!   worked, and the last error;
//! - `progress.json`: the stage a running cycle is in;
//! - `last-cycle.json`: the last cycle's report.
//!
//! A record that cannot be read is treated as absent (it only informs):
//! the cycle still runs, and status says what it does not know.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::repository::Repository;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// `STORE/agent/state.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AgentState {
    /// The snapshot last handed to the acceptance job.
    pub handed: Option<String>,
}

/// `STORE/agent/controller.json`: the agent's last attempt to reach the
/// controller (registration, or a trigger).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ControllerStatus {
    pub url: String,
    pub reachable: bool,
    /// RFC 3339, UTC.
    pub checked: String,
    /// What the attempt was: `register`, `trigger`.
    pub attempt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One mirror in `STORE/agent/mirrors.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MirrorStatus {
    /// The last update tried (RFC 3339).
    pub last_attempt: Option<String>,
    /// The last update that worked.
    pub last_refresh: Option<String>,
    /// Why the last update failed; none once one works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `STORE/agent/progress.json`: what a running cycle does now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress {
    /// `mirror`, `build`, `snapshot`, `accept`, `trigger`.
    pub stage: String,
    /// The mirror or source, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    pub since: String,
    pub pid: u32,
}

fn dir(store: &dyn Repository) -> PathBuf {
    store.state_dir().join("agent")
}

fn load<T: DeserializeOwned>(store: &dyn Repository, name: &str) -> Option<T> {
    let path = dir(store).join(name);
    let data = fs_err::read(&path).ok()?;
    match serde_json::from_slice(&data) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!("{}: unreadable, ignored: {e}", path.display());
            None
        }
    }
}

fn save<T: Serialize>(store: &dyn Repository, name: &str, value: &T) -> std::io::Result<()> {
    fs_err::create_dir_all(dir(store))?;
    let data = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    repofs::store::fsutil::write_atomic(
        &store.state_dir().join("tmp"),
        &dir(store).join(name),
        &data,
    )
    .map_err(std::io::Error::other)
}

/// A record that informs only: failing to write it is logged.
fn save_or_warn<T: Serialize>(store: &dyn Repository, name: &str, value: &T) {
    if let Err(e) = save(store, name, value) {
        tracing::warn!("cannot write STORE/agent/{name}: {e}");
    }
}

pub fn load_state(store: &dyn Repository) -> AgentState {
    load(store, "state.json").unwrap_or_default()
}

pub fn save_state(store: &dyn Repository, state: &AgentState) -> std::io::Result<()> {
    save(store, "state.json", state)
}

pub fn load_controller(store: &dyn Repository) -> Option<ControllerStatus> {
    load(store, "controller.json")
}

pub fn save_controller(store: &dyn Repository, status: &ControllerStatus) {
    save_or_warn(store, "controller.json", status);
}

pub fn load_mirrors(store: &dyn Repository) -> BTreeMap<String, MirrorStatus> {
    load(store, "mirrors.json").unwrap_or_default()
}

/// Records one mirror update's outcome (`None`: it worked).
pub fn save_mirror_outcome(store: &dyn Repository, mirror: &str, error: Option<String>) {
    let mut all = load_mirrors(store);
    let now = jiff::Timestamp::now().to_string();
    let entry = all.entry(mirror.to_string()).or_default();
    entry.last_attempt = Some(now.clone());
    if error.is_none() {
        entry.last_refresh = Some(now);
    }
    entry.error = error;
    save_or_warn(store, "mirrors.json", &all);
}

pub fn load_progress(store: &dyn Repository) -> Option<Progress> {
    load(store, "progress.json")
}

pub fn save_progress(store: &dyn Repository, stage: &str, item: Option<&str>) {
    tracing::info!(stage, item, "cycle stage");
    save_or_warn(
        store,
        "progress.json",
        &Progress {
            stage: stage.to_string(),
            item: item.map(str::to_string),
            since: jiff::Timestamp::now().to_string(),
            pid: std::process::id(),
        },
    );
}

pub fn load_last_cycle<T: DeserializeOwned>(store: &dyn Repository) -> Option<T> {
    load(store, "last-cycle.json")
}

pub fn save_last_cycle<T: Serialize>(store: &dyn Repository, report: &T) {
    save_or_warn(store, "last-cycle.json", report);
}

/// The cycle lock's file: held by the process running a cycle.
pub fn cycle_lock_path(store: &dyn Repository) -> PathBuf {
    dir(store).join("cycle.lock")
}

/// Whether some process holds the cycle lock now (a cycle is running).
pub fn cycle_running(store: &dyn Repository) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .open(cycle_lock_path(store))
    else {
        return false;
    };
    match file.try_lock_shared() {
        Ok(()) => false,
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(_)) => false,
    }
}

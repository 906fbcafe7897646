//! The one interface through which the workflows (build, accept, gate,
//! the agent's cycle) reach the store, with two implementations: the
//! store on this host ([`repofs::Store`], its locks and compare-and-swap:
//! `local`) and a client of `halo serve` on the repository host (the same
//! operations and compare-and-swap, authenticated: [`Remote`]). A remote
//! agent is not a second code path: the workflows do not know which one
//! they have.
//!
//! Every operation answers in `repofs::Result`: the client turns the
//! server's JSON error back into the `repofs::Error` the store would have
//! returned (a lost compare-and-swap is `PromoteError::Stale` on both),
//! so the workflows' decisions and exit codes are the same.
//!
//! What is this host's own (work directories, build-root caches, the
//! agent's records, the public keyring and the APT tree a sandbox reads)
//! is here too: under the store on the repository host, under the remote
//! agent's work directory elsewhere.

mod local;
pub mod remote;
pub mod wire;

use std::path::{Path, PathBuf};
use std::time::Duration;

use repofs::model::acceptance::{Lease, Verdict};
use repofs::model::channel::MoveRequest;
use repofs::model::{ChannelPointer, Snapshot, Transition};
use repofs::store::acceptance::RunEvent;
use repofs::store::builds::BuildRecord;
use repofs::store::import::{ImportReport, Target};
use repofs::store::snapshots::Created;
use repofs::store::Result;

pub use remote::Remote;

/// Where the store is, as the tests and systems are told
/// (`HALO_STORE` or `HALO_SERVER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Store(PathBuf),
    Server(String),
}

/// A claimed scratch directory (`repofs::store::work`); a remote agent's
/// scratch space is its own, with nothing to claim in a store.
#[derive(Debug)]
pub struct Claim(Option<repofs::store::work::WorkClaim>);

impl Claim {
    /// Keeps the claim: the directory is left for `halo gc`.
    pub fn leave_for_gc(&mut self) {
        if let Some(c) = &mut self.0 {
            c.leave_for_gc();
        }
    }
}

/// The store's operations as the workflows use them.
pub trait Repository: Send + Sync {
    fn location(&self) -> Location;

    /// The store itself, on its own host: what only the store's host does
    /// (mirror updates, the cycle lock) needs it.
    fn local_store(&self) -> Option<&repofs::Store>;

    /// An owned handle, for a thread that outlives the borrow (the lease
    /// renewer).
    fn boxed(&self) -> Box<dyn Repository>;

    // Reads.
    fn load_channel(&self, name: &str) -> Result<ChannelPointer>;

    fn channel_target(&self, name: &str) -> Result<String> {
        self.load_channel(name)?
            .snapshot
            .ok_or_else(|| repofs::Error::EmptyChannel(name.to_string()))
    }

    /// Refuses, with the hold's reason, when `channel` is held.
    fn check_not_held(&self, channel: &str) -> Result<()> {
        match self.load_channel(channel)?.hold {
            Some(hold) => Err(repofs::model::acceptance::GateError::Held {
                channel: channel.to_string(),
                hold,
            }
            .into()),
            None => Ok(()),
        }
    }

    fn load_snapshot(&self, id: &str) -> Result<Snapshot>;

    /// Every build record of `source`, oldest first.
    fn load_builds(&self, source: &str) -> Result<Vec<BuildRecord>>;

    /// The latest published build of `commit`.
    fn find_build(&self, source: &str, commit: &str) -> Result<Option<BuildRecord>> {
        Ok(self
            .load_builds(source)?
            .into_iter()
            .rev()
            .find(|r| r.commit.as_deref() == Some(commit) && !r.is_failed()))
    }

    /// The latest attempt at `commit`, published or failed.
    fn last_attempt(&self, source: &str, commit: &str) -> Result<Option<BuildRecord>> {
        Ok(self
            .load_builds(source)?
            .into_iter()
            .rev()
            .find(|r| r.commit.as_deref() == Some(commit)))
    }

    fn load_verdict(&self, channel: &str, snapshot: &str) -> Result<Option<Verdict>>;

    // Writes.
    /// Imports `files` (a .changes brings the files it lists, as
    /// `repofs::store::import` does), all or nothing. `keep` is the
    /// archive's `keep_versions` where the caller's configuration decides
    /// it (a local store); a server applies its own configuration instead,
    /// so one store has one retention whoever imports into it.
    fn import(
        &self,
        target: &Target<'_>,
        files: &[PathBuf],
        keep: Option<usize>,
    ) -> Result<ImportReport>;

    /// A snapshot of the store now (the store's clock).
    fn create_snapshot(&self) -> Result<Created>;

    fn move_channel(&self, req: &MoveRequest<'_>) -> Result<Transition>;

    /// `move_channel` only while `testing` still points at `tested`.
    fn move_channel_if(
        &self,
        req: &MoveRequest<'_>,
        testing: &str,
        tested: &str,
    ) -> Result<Transition>;

    /// Takes `channel`'s lease for `wanted.run`; the lease's length is
    /// `expires_ms - acquired_ms`, counted on the store's clock. Returns the
    /// lease taken over and why, as text.
    fn acquire_lease(
        &self,
        channel: &str,
        wanted: Lease,
        force: bool,
    ) -> Result<Option<(Lease, String)>>;

    /// Extends `run`'s lease to `length` from now (the store's clock).
    fn renew_lease(&self, channel: &str, run: &str, length: Duration) -> Result<()>;

    fn release_lease(&self, channel: &str, run: &str) -> Result<()>;

    fn record_run_event(&self, event: &RunEvent) -> Result<()>;

    fn record_build(&self, record: &BuildRecord) -> Result<()>;

    /// Keeps an acceptance run's testcases for the server's page
    /// (`crate::workflow::runs`).
    fn save_run_report(&self, report: &crate::workflow::runs::RunReport) -> Result<()>;

    // This host's side.
    /// Where this host keeps its scratch and records: the store's root,
    /// or the remote agent's work directory.
    fn state_dir(&self) -> PathBuf;

    /// Scratch directories (builds, roots, exports): `state_dir()/work`.
    fn work_dir(&self) -> PathBuf {
        self.state_dir().join("work")
    }

    /// Claims `work_dir()/<name>` for this process.
    fn claim_work(&self, name: &str, run: Option<&str>) -> Result<Claim>;

    /// The store's public keyring, as a file on this host.
    fn keyring(&self) -> Result<PathBuf>;

    /// Writes snapshot `id`'s APT tree under `dir` (new or empty).
    fn export(&self, id: &str, dir: &Path) -> Result<()>;
}

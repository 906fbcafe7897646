//! The store on this host: every operation is the store's own, under its
//! writer lock, exactly as before there was an interface.

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
use repofs::Store;

use super::{Claim, Location, Repository};

impl Repository for Store {
    fn location(&self) -> Location {
        Location::Store(self.root().to_path_buf())
    }

    fn local_store(&self) -> Option<&Store> {
        Some(self)
    }

    fn boxed(&self) -> Box<dyn Repository> {
        Box::new(self.clone())
    }

    fn load_channel(&self, name: &str) -> Result<ChannelPointer> {
        Store::load_channel(self, name)
    }

    fn channel_target(&self, name: &str) -> Result<String> {
        Store::channel_target(self, name)
    }

    fn check_not_held(&self, channel: &str) -> Result<()> {
        Store::check_not_held(self, channel)
    }

    fn load_snapshot(&self, id: &str) -> Result<Snapshot> {
        Store::load_snapshot(self, id)
    }

    fn load_builds(&self, source: &str) -> Result<Vec<BuildRecord>> {
        Store::load_builds(self, source)
    }

    fn find_build(&self, source: &str, commit: &str) -> Result<Option<BuildRecord>> {
        Store::find_build(self, source, commit)
    }

    fn last_attempt(&self, source: &str, commit: &str) -> Result<Option<BuildRecord>> {
        Store::last_attempt(self, source, commit)
    }

    fn load_verdict(&self, channel: &str, snapshot: &str) -> Result<Option<Verdict>> {
        Store::load_verdict(self, channel, snapshot)
    }

    fn import(
        &self,
        target: &Target<'_>,
        files: &[PathBuf],
        keep: Option<usize>,
    ) -> Result<ImportReport> {
        repofs::store::import::import_keeping(self, target, files, keep, &mut |_| {})
    }

    fn create_snapshot(&self) -> Result<Created> {
        Store::create_snapshot(self, jiff::Timestamp::now())
    }

    fn move_channel(&self, req: &MoveRequest<'_>) -> Result<Transition> {
        Store::move_channel(self, req)
    }

    fn move_channel_if(
        &self,
        req: &MoveRequest<'_>,
        testing: &str,
        tested: &str,
    ) -> Result<Transition> {
        Store::move_channel_if(self, req, testing, tested)
    }

    fn acquire_lease(
        &self,
        channel: &str,
        wanted: Lease,
        force: bool,
    ) -> Result<Option<(Lease, String)>> {
        let now = wanted.acquired_ms;
        Ok(Store::acquire_lease(self, channel, wanted, now, force)?
            .map(|(lease, why)| (lease, why.to_string())))
    }

    fn renew_lease(&self, channel: &str, run: &str, length: Duration) -> Result<()> {
        let expires = jiff::Timestamp::now().as_millisecond()
            + i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
        Store::renew_lease(self, channel, run, expires)
    }

    fn release_lease(&self, channel: &str, run: &str) -> Result<()> {
        Store::release_lease(self, channel, run)
    }

    fn record_run_event(&self, event: &RunEvent) -> Result<()> {
        Store::record_run_event(self, event)
    }

    fn record_build(&self, record: &BuildRecord) -> Result<()> {
        Store::record_build(self, record)
    }

    fn save_run_report(&self, report: &crate::workflow::runs::RunReport) -> Result<()> {
        Ok(crate::workflow::runs::write(self, report)?)
    }

    fn state_dir(&self) -> PathBuf {
        self.root().to_path_buf()
    }

    fn work_dir(&self) -> PathBuf {
        Store::work_dir(self)
    }

    fn claim_work(&self, name: &str, run: Option<&str>) -> Result<Claim> {
        Ok(Claim(Some(Store::claim_work(self, name, run)?)))
    }

    fn keyring(&self) -> Result<PathBuf> {
        Ok(fs_err::canonicalize(self.keys_dir().join("repo.gpg"))?)
    }

    fn export(&self, id: &str, dir: &Path) -> Result<()> {
        Store::export(self, id, dir).map(|_| ())
    }
}

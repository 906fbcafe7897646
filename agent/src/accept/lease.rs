//! EDGE: holds an acceptance run's lease on testing: renews it from a
//! thread every quarter of its length while the run lives, and gives it up
//! when dropped. A run killed outright stops renewing; its lease expires and
//! the next run takes it over.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::repository::Repository;

pub struct LeaseGuard {
    store: Box<dyn Repository>,
    channel: String,
    run: String,
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<JoinHandle<()>>,
}

impl LeaseGuard {
    /// Starts renewing a lease the caller has just acquired.
    pub fn hold(store: &dyn Repository, channel: &str, run: &str, length: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let (s, c, r) = (store.boxed(), channel.to_string(), run.to_string());
        let every = (length / 4).max(Duration::from_millis(50));
        let renewer = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if let Err(e) = s.renew_lease(&c, &r, length) {
                    tracing::error!(channel = c, "cannot renew the acceptance lease: {e}");
                }
            }
        });
        Self {
            store: store.boxed(),
            channel: channel.to_string(),
            run: run.to_string(),
            stop: Some(stop),
            renewer: Some(renewer),
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
        if let Err(e) = self.store.release_lease(&self.channel, &self.run) {
            tracing::error!(
                channel = self.channel,
                "cannot release the acceptance lease: {e}"
            );
        }
    }
}

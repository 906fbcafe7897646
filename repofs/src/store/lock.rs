//! The single writer lock: an exclusive `flock` on `STORE/lock`, released
//! by the kernel when the holder exits, even by `kill -9`, so a crashed
//! writer never leaves the store locked.

use std::io;
use std::path::Path;

/// Held for the duration of a write; dropping it releases the lock.
#[derive(Debug)]
pub struct WriteLock {
    _file: std::fs::File,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("another writer has held the store for {0:?}: gave up (--wait-timeout)")]
    Busy(std::time::Duration),
}

impl WriteLock {
    /// Takes the lock, waiting at most `wait` (`None`: as long as it takes)
    /// and saying so when it has to wait.
    pub fn acquire_within(
        path: &Path,
        wait: Option<std::time::Duration>,
    ) -> Result<Self, LockError> {
        let Some(limit) = wait else {
            return Ok(Self::acquire(path)?);
        };
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?
            .into_parts()
            .0;
        let started = std::time::Instant::now();
        let mut said = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= limit {
                        return Err(LockError::Busy(limit));
                    }
                    if !said {
                        tracing::warn!("waiting for another writer to release {}", path.display());
                        said = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
    }

    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?
            .into_parts()
            .0;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::warn!("waiting for another writer to release {}", path.display());
                file.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(Self { _file: file })
    }
}

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

impl WriteLock {
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
                tracing::info!("waiting for another writer to release {}", path.display());
                file.lock()?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        Ok(Self { _file: file })
    }
}

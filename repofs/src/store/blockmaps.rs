//! Block maps: `blocks/<xx>/<sha256>`, for each large plain index blob
//! (`<sha256>`), the map of its blocks and of their pieces in its `.gz` and
//! `.xz` blobs (`index::blocks`), so the next snapshot copies the
//! compressed pieces of unchanged blocks instead of compressing them again.
//!
//! A map is a cache: derived from the index, written by rename without a
//! fsync of its own (the snapshot's `syncfs` makes it durable), checked
//! when read (its own digest; the blobs it names, their digests and the
//! framing of every piece), and a map that is missing, torn or does not fit
//! its blobs only means the next index is compressed whole. `gc` removes
//! the maps of indices it removed; `fsck` need not look at them.

use std::io::Write;
use std::path::PathBuf;

use fs_err as fs;

use super::fsutil::TempFile;
use super::{Result, Store};
use crate::index::blocks::{BlockMap, Previous};

impl Store {
    pub fn blocks_dir(&self) -> PathBuf {
        self.root().join("blocks")
    }

    /// Where the map of plain index blob `sha256` lives.
    pub fn block_map_path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("__");
        self.blocks_dir().join(prefix).join(sha256)
    }

    /// The map of plain index blob `plain` with the blobs it names, if all
    /// are whole and fit each other.
    pub fn previous_blocks(&self, plain: &str) -> Option<Previous> {
        let data = std::fs::read(self.block_map_path(plain)).ok()?;
        let map = BlockMap::decode(&data)?;
        let pool = self.pool();
        let read = |r: &Option<crate::index::blocks::BlobRef>| match r {
            None => Some(super::pool::Mapped::default()),
            Some(r) => pool.map(&r.sha256).ok(),
        };
        let (gz, xz) = (read(&map.gz)?, read(&map.xz)?);
        let prev = Previous::new(map, gz, xz).map(|p| match pool.map(plain) {
            Ok(old) => p.with_plain(old),
            Err(_) => p,
        });
        if prev.is_none() {
            tracing::warn!(
                index = plain,
                "block map does not fit its blobs: compressing whole"
            );
        }
        prev
    }

    /// Keeps the map of plain index blob `plain` (unsynced: see above).
    pub fn write_block_map(&self, plain: &str, map: &BlockMap) -> Result<()> {
        let dest = self.block_map_path(plain);
        if let Some(dir) = dest.parent() {
            if !dir.is_dir() {
                fs::create_dir_all(dir)?;
            }
        }
        let mut tmp = TempFile::new(&self.tmp_dir())?;
        tmp.file().write_all(&map.encode())?;
        tmp.close()?.rename_to(&dest)?;
        Ok(())
    }

    /// Removes the maps of indices not in `live` (gc); returns how many.
    pub(crate) fn remove_stale_block_maps(
        &self,
        live: &std::collections::HashSet<String>,
    ) -> Result<u64> {
        let dir = self.blocks_dir();
        let mut n = 0;
        if !dir.is_dir() {
            return Ok(0);
        }
        for prefix in fs::read_dir(&dir)? {
            let prefix = prefix?.path();
            for f in fs::read_dir(&prefix)? {
                let path = f?.path();
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !live.contains(&name) {
                    super::fsutil::remove_file(&path)?;
                    n += 1;
                }
            }
            if fs::read_dir(&prefix)?.next().is_none() {
                let _ = std::fs::remove_dir(&prefix);
            }
        }
        Ok(n)
    }
}

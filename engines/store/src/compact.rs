//! Compaction: the file given back to the filesystem after a large purge. redb reuses the pages
//! of deleted records, so a store whose history turns over keeps a steady size without it.

use std::path::Path;

use redb::{CompactionMode, Database};

use super::{FILE, StoreError, lock_dir};

/// What a compaction did: the file's size before and after, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compacted {
    /// The size before.
    pub before: u64,
    /// The size after.
    pub after: u64,
}

/// Compacts the store in `dir`: redb moves the pages in use to the front of the file and
/// truncates the rest. The directory's lock is held meanwhile, so the store of a running
/// server is refused ([`StoreError::Locked`]); a directory without a store is an error.
pub fn compact(dir: &Path) -> Result<Compacted, StoreError> {
    let path = dir.join(FILE);
    if !path.is_file() {
        let missing = format!("there is no store in {}", dir.display());
        return Err(std::io::Error::new(std::io::ErrorKind::NotFound, missing).into());
    }
    let _lock = lock_dir(dir)?;
    let before = std::fs::metadata(&path)?.len();
    let mut db = Database::open(&path)?;
    db.compact(CompactionMode::Balanced)?;
    drop(db);
    let after = std::fs::metadata(&path)?.len();
    Ok(Compacted { before, after })
}

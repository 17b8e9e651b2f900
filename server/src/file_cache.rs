//! The immutable-file cache: versioned (`{version}.{role}.json`) and
//! checksummed (`{role}.{sha256}.json`) files kept in memory, least recently
//! used evicted first, within a byte budget (`--file-cache-bytes`).
//!
//! A checksummed file never changes. A versioned one changes only when its
//! repository is deleted and published again from version 1, so a deletion
//! clears this cache: in the deleting process at commit, and on PostgreSQL
//! in the others by a `NOTIFY` on the deletions channel (a listener that
//! lost its connection clears it too). As in [`crate::cache`], a read that
//! raced a clear does not put its file back (epochs).

use crate::cache::Epochs;
use crate::storage::StoredFile;
use hashlink::LruCache;

/// Which immutable file of a role.
#[derive(Debug, Clone, Copy)]
pub enum FileKey<'a> {
    Version(u64),
    Sha256(&'a str),
}

pub struct FileCache {
    max_bytes: usize,
    epochs: Epochs<State>,
}

struct State {
    /// Keyed by [`key`]: one string, so a lookup allocates once.
    entries: LruCache<String, StoredFile>,
    bytes: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            entries: LruCache::new_unbounded(),
            bytes: 0,
        }
    }
}

/// What an entry costs beyond its bytes (key, bookkeeping).
const OVERHEAD: usize = 128;

fn key(gun: &str, role: &str, file: FileKey<'_>) -> String {
    // `/` cannot be in a role name and `@`/`#` in neither: unambiguous.
    match file {
        FileKey::Version(v) => format!("{gun}/{role}@{v}"),
        FileKey::Sha256(h) => format!("{gun}/{role}#{h}"),
    }
}

fn size(file: &StoredFile) -> usize {
    file.bytes.len() + OVERHEAD
}

impl FileCache {
    /// A cache of at most `max_bytes` (0: off).
    pub fn new(max_bytes: usize) -> FileCache {
        FileCache {
            max_bytes,
            epochs: Epochs::new(State::default()),
        }
    }

    /// The epoch a read starts in; pass it to [`Self::put`].
    pub fn epoch(&self) -> u64 {
        self.epochs.epoch()
    }

    pub fn get(&self, gun: &str, role: &str, file: FileKey<'_>) -> Option<StoredFile> {
        if self.max_bytes == 0 {
            return None;
        }
        self.epochs
            .state()
            .entries
            .get(&key(gun, role, file))
            .cloned()
    }

    /// Keep `stored`, found by a read that started in `epoch`, unless the
    /// cache was cleared since; evict the least recently used to fit.
    pub fn put(&self, gun: &str, role: &str, file: FileKey<'_>, stored: StoredFile, epoch: u64) {
        let cost = size(&stored);
        if cost > self.max_bytes {
            return;
        }
        let Some(mut state) = self.epochs.state_at(epoch) else {
            return;
        };
        if let Some(old) = state.entries.insert(key(gun, role, file), stored) {
            state.bytes -= size(&old);
        }
        state.bytes += cost;
        while state.bytes > self.max_bytes {
            match state.entries.remove_lru() {
                Some((_, old)) => state.bytes -= size(&old),
                None => break,
            }
        }
    }

    /// Forget everything (a repository was deleted, or deletions may have
    /// been missed).
    pub fn clear(&self) {
        self.epochs.clear();
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.epochs.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: u64, size: usize) -> StoredFile {
        StoredFile {
            role: "targets".into(),
            version,
            sha256: format!("{version:064x}"),
            bytes: vec![b'x'; size].into(),
            expires_at: None,
        }
    }

    /// Put version `v` of `a`'s targets, `size` bytes, read now.
    fn put(cache: &FileCache, v: u64, size: usize) {
        cache.put(
            "a",
            "targets",
            FileKey::Version(v),
            file(v, size),
            cache.epoch(),
        );
    }

    fn version(cache: &FileCache, v: u64) -> Option<StoredFile> {
        cache.get("a", "targets", FileKey::Version(v))
    }

    #[test]
    fn least_recently_used_go_first_within_the_budget() {
        let cache = FileCache::new(3 * (100 + OVERHEAD));
        for v in 1..=3 {
            put(&cache, v, 100);
        }
        // Touch 1, so 2 is the least recently used.
        assert_eq!(version(&cache, 1).unwrap().version, 1);
        put(&cache, 4, 100);
        assert!(version(&cache, 2).is_none());
        for v in [1, 3, 4] {
            assert!(version(&cache, v).is_some(), "{v}");
        }
        assert!(cache.bytes() <= 3 * (100 + OVERHEAD));
        // Larger than the whole budget: not kept, nothing evicted for it.
        put(&cache, 5, 10_000);
        assert!(version(&cache, 5).is_none());
        assert!(version(&cache, 4).is_some());
    }

    #[test]
    fn versions_and_checksums_and_repositories_do_not_collide() {
        let cache = FileCache::new(1 << 20);
        let sha = format!("{:064x}", 7);
        put(&cache, 7, 1);
        assert!(cache.get("a", "targets", FileKey::Sha256(&sha)).is_none());
        assert!(cache.get("a", "snapshot", FileKey::Version(7)).is_none());
        assert!(cache.get("a/targets", "7", FileKey::Version(7)).is_none());
        assert!(cache.get("b", "targets", FileKey::Version(7)).is_none());
    }

    #[test]
    fn a_read_from_before_a_clear_is_not_put_back() {
        let cache = FileCache::new(1 << 20);
        let before = cache.epoch();
        cache.clear();
        cache.put("a", "targets", FileKey::Version(1), file(1, 1), before);
        assert!(version(&cache, 1).is_none());
        let off = FileCache::new(0);
        put(&off, 1, 1);
        assert!(version(&off, 1).is_none());
    }
}

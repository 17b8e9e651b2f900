//! The read cache: the current file of each (GUN, role) served from memory
//! instead of a database query per request.
//!
//! Correctness rests on three things:
//! - every write transaction invalidates its GUN here when it commits
//!   (`RepoTx::commit`), so this process never serves a version older than
//!   one it committed;
//! - on PostgreSQL the same commit sends `NOTIFY` (delivered only if it
//!   commits), and every process listens and invalidates, so another
//!   process's publish is seen as soon as the notification arrives;
//! - every entry lives at most `ttl` (default 1 s) whatever happens to the
//!   notifications (a dropped listener connection, a slow network): the
//!   documented bound on how long a process may serve the previous version
//!   of a file another process replaced.
//!
//! A reader that loaded a file while an invalidation ran does not put the
//! older file back: each put carries the epoch its read started in, and an
//! invalidation moves the epoch on.

use crate::storage::StoredFile;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A cache's state behind its lock, and the epoch that clearing it (or
/// invalidating part of it) moves on: a read carries the epoch it started
/// in, and what it found is not put back once the epoch has moved. Both
/// caches keep their state in one (this one and
/// [`crate::file_cache::FileCache`]).
pub(crate) struct Epochs<S> {
    epoch: AtomicU64,
    state: Mutex<S>,
}

impl<S> Epochs<S> {
    pub(crate) fn new(state: S) -> Self {
        Epochs {
            epoch: AtomicU64::new(0),
            state: Mutex::new(state),
        }
    }

    /// The epoch a read starts in.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, if nothing was cleared or invalidated since `epoch`.
    pub(crate) fn state_at(&self, epoch: u64) -> Option<MutexGuard<'_, S>> {
        let state = self.state();
        (self.epoch() == epoch).then_some(state)
    }

    /// The state, the epoch moved on: what the caller removes from it now
    /// is not put back by a read that started before.
    pub(crate) fn advance(&self) -> MutexGuard<'_, S> {
        let state = self.state();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        state
    }

    /// Forget everything.
    pub(crate) fn clear(&self)
    where
        S: Default,
    {
        *self.advance() = S::default();
    }
}

pub struct ReadCache {
    ttl: Duration,
    max_bytes: usize,
    epochs: Epochs<State>,
}

#[derive(Default)]
struct State {
    /// GUN, then role: looked up by `&str` without allocating.
    entries: HashMap<String, HashMap<String, Entry>>,
    bytes: usize,
}

struct Entry {
    /// `None`: the role has no current file (cached absence).
    file: Option<StoredFile>,
    loaded: Instant,
}

impl Entry {
    fn size(&self) -> usize {
        self.file.as_ref().map_or(0, |f| f.bytes.len()) + 64
    }
}

impl ReadCache {
    /// A cache whose entries live at most `ttl` (zero: no caching) and
    /// hold at most `max_bytes` of metadata in all.
    pub fn new(ttl: Duration, max_bytes: usize) -> ReadCache {
        ReadCache {
            ttl,
            max_bytes,
            epochs: Epochs::new(State::default()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.epochs.state()
    }

    /// The epoch a read starts in; pass it to [`Self::put`].
    pub fn epoch(&self) -> u64 {
        self.epochs.epoch()
    }

    /// The cached current file of `role` (`Some(None)`: known to have
    /// none), if fresh.
    pub fn get(&self, gun: &str, role: &str) -> Option<Option<StoredFile>> {
        self.get_with(gun, role, |file| file.cloned())
    }

    /// What `read` makes of the cached current file of `role` (`None`
    /// passed: known to have none), if fresh; for a reader that needs less
    /// than a copy of the file (the timestamp read path wants the
    /// snapshot's expiry only).
    pub fn get_with<T>(
        &self,
        gun: &str,
        role: &str,
        read: impl FnOnce(Option<&StoredFile>) -> T,
    ) -> Option<T> {
        if !self.enabled() {
            return None;
        }
        let state = self.state();
        let entry = state.entries.get(gun)?.get(role)?;
        (entry.loaded.elapsed() < self.ttl).then(|| read(entry.file.as_ref()))
    }

    /// Remember what a read that started in `epoch` found, unless an
    /// invalidation happened since.
    pub fn put(&self, gun: &str, role: &str, file: Option<StoredFile>, epoch: u64) {
        if !self.enabled() {
            return;
        }
        let entry = Entry {
            file,
            loaded: Instant::now(),
        };
        if entry.size() > self.max_bytes {
            return;
        }
        let Some(mut state) = self.epochs.state_at(epoch) else {
            return;
        };
        let size = entry.size();
        let roles = state.entries.entry(gun.to_string()).or_default();
        if let Some(old) = roles.insert(role.to_string(), entry) {
            state.bytes -= old.size();
        }
        state.bytes += size;
        if state.bytes > self.max_bytes {
            self.evict(&mut state);
        }
    }

    /// Drop expired entries, then the oldest, until within the budget.
    fn evict(&self, state: &mut State) {
        let ttl = self.ttl;
        for roles in state.entries.values_mut() {
            roles.retain(|_, e| e.loaded.elapsed() < ttl);
        }
        state.entries.retain(|_, roles| !roles.is_empty());
        let mut by_age: Vec<(String, String, Instant)> = state
            .entries
            .iter()
            .flat_map(|(gun, roles)| {
                roles
                    .iter()
                    .map(move |(role, e)| (gun.clone(), role.clone(), e.loaded))
            })
            .collect();
        by_age.sort_by_key(|(_, _, loaded)| *loaded);
        let mut bytes: usize = state
            .entries
            .values()
            .flat_map(HashMap::values)
            .map(Entry::size)
            .sum();
        for (gun, role, _) in by_age {
            if bytes <= self.max_bytes {
                break;
            }
            if let Some(roles) = state.entries.get_mut(&gun) {
                if let Some(e) = roles.remove(&role) {
                    bytes -= e.size();
                }
                if roles.is_empty() {
                    state.entries.remove(&gun);
                }
            }
        }
        state.bytes = bytes;
    }

    /// Forget everything about `gun` (it changed).
    pub fn invalidate(&self, gun: &str) {
        let mut state = self.epochs.advance();
        if let Some(roles) = state.entries.remove(gun) {
            let freed: usize = roles.values().map(Entry::size).sum();
            state.bytes -= freed;
        }
    }

    /// Forget everything (notifications may have been missed).
    pub fn clear(&self) {
        self.epochs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(version: u64, size: usize) -> StoredFile {
        StoredFile {
            role: "timestamp".into(),
            version,
            sha256: String::new(),
            bytes: vec![b'x'; size].into(),
            expires_at: None,
        }
    }

    #[test]
    fn a_put_from_before_an_invalidation_is_dropped() {
        let cache = ReadCache::new(Duration::from_secs(60), 1 << 20);
        let before = cache.epoch();
        cache.invalidate("a");
        cache.put("a", "timestamp", Some(file(1, 10)), before);
        assert!(cache.get("a", "timestamp").is_none());
        cache.put("a", "timestamp", Some(file(2, 10)), cache.epoch());
        assert_eq!(cache.get("a", "timestamp").unwrap().unwrap().version, 2);
        cache.invalidate("a");
        assert!(cache.get("a", "timestamp").is_none());
    }

    #[test]
    fn entries_expire_and_the_budget_holds() {
        let cache = ReadCache::new(Duration::from_millis(50), 1000);
        cache.put("a", "timestamp", None, cache.epoch());
        assert!(matches!(cache.get("a", "timestamp"), Some(None)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("a", "timestamp").is_none());
        for n in 0..20 {
            cache.put(
                &format!("g{n}"),
                "targets",
                Some(file(1, 100)),
                cache.epoch(),
            );
        }
        assert!(cache.state().bytes <= 1000);
        assert!(cache.get("g19", "targets").is_some(), "the newest stays");
        assert!(cache.get("g0", "targets").is_none(), "the oldest went");
        let off = ReadCache::new(Duration::ZERO, 1000);
        off.put("a", "timestamp", Some(file(1, 1)), off.epoch());
        assert!(off.get("a", "timestamp").is_none());
    }
}

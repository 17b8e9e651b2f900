//! A least-recently-used map within a byte budget: what the server's
//! copies of stored files are kept in (`gzip_cache`, `kept_current`).
//! Nothing invalidates an entry: a gzip copy is keyed by its file's
//! sha256, and a kept repository (keyed by GUN) holds each file's sha256,
//! which its user checks against the store's. Each costs what
//! [`Cost::cost`] says.

use hashlink::LruCache;
use std::sync::Mutex;

/// What keeping a value costs, in bytes (bookkeeping included).
pub(crate) trait Cost {
    fn cost(&self) -> usize;
}

pub(crate) struct BudgetLru<V> {
    max_bytes: usize,
    state: Mutex<State<V>>,
}

struct State<V> {
    /// Each value with its cost when it was put: what taking or evicting
    /// it gives back, so `bytes` is the sum of what is kept by
    /// construction. (Recounting a kept repository at its next publish
    /// walked its cold 1,024-entry listing, 36 µs; the publish walks it
    /// soon after anyway, and its median did not move: BENCHMARKS.md,
    /// 2026-12-08.)
    entries: LruCache<String, (V, usize)>,
    bytes: usize,
}

impl<V: Cost> BudgetLru<V> {
    /// Values costing at most `max_bytes` in all (0: none kept).
    pub(crate) fn new(max_bytes: usize) -> BudgetLru<V> {
        BudgetLru {
            max_bytes,
            state: Mutex::new(State {
                entries: LruCache::new_unbounded(),
                bytes: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State<V>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value kept under `key`, if any (now the most recently used).
    pub(crate) fn get(&self, key: &str) -> Option<V>
    where
        V: Clone,
    {
        if self.max_bytes == 0 {
            return None;
        }
        self.state()
            .entries
            .get(key)
            .map(|(value, _)| value.clone())
    }

    /// The value kept under `key`, if any, taken out.
    pub(crate) fn take(&self, key: &str) -> Option<V> {
        if self.max_bytes == 0 {
            return None;
        }
        let mut state = self.state();
        let (value, cost) = state.entries.remove(key)?;
        state.bytes -= cost;
        Some(value)
    }

    /// Keep `value` under `key` (replacing what was), evicting the least
    /// recently used to fit; a value larger than the whole budget is not kept.
    pub(crate) fn put(&self, key: &str, value: V) {
        let cost = value.cost();
        if cost > self.max_bytes {
            return;
        }
        let mut state = self.state();
        if let Some((_, old)) = state.entries.insert(key.to_string(), (value, cost)) {
            state.bytes -= old;
        }
        state.bytes += cost;
        while state.bytes > self.max_bytes {
            match state.entries.remove_lru() {
                Some((_, (_, old))) => state.bytes -= old,
                None => break,
            }
        }
    }

    /// What the kept values cost in all.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.state().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Sized(usize);
    impl Cost for Sized {
        fn cost(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn the_least_recently_used_go_first_and_the_budget_holds() {
        let lru = BudgetLru::new(30);
        lru.put("a", Sized(10));
        lru.put("b", Sized(10));
        lru.put("c", Sized(10));
        assert_eq!(lru.get("a"), Some(Sized(10))); // "b" is now the least recent
        lru.put("d", Sized(10));
        assert_eq!(lru.get("b"), None);
        assert_eq!(lru.bytes(), 30);
        lru.put("a", Sized(20)); // replaced: "c" and "d" cost 20, so "c" goes
        assert_eq!(lru.get("c"), None);
        assert_eq!(lru.bytes(), 30);
        assert_eq!(lru.take("a"), Some(Sized(20)));
        assert_eq!(lru.take("a"), None);
        assert_eq!(lru.bytes(), 10);
        lru.put("huge", Sized(31));
        assert_eq!(lru.get("huge"), None);
    }

    /// A value whose cost would come out otherwise now (a kept
    /// repository's does not change, but is not asked twice) gives back
    /// what it was put with.
    #[test]
    fn a_value_gives_back_the_cost_it_was_put_with() {
        use std::{cell::Cell, rc::Rc};
        struct Varying(Rc<Cell<usize>>);
        impl Cost for Varying {
            fn cost(&self) -> usize {
                self.0.get()
            }
        }
        let cost = Rc::new(Cell::new(10));
        let lru = BudgetLru::new(30);
        lru.put("a", Varying(cost.clone()));
        lru.put("b", Varying(Rc::new(Cell::new(10))));
        cost.set(25);
        assert!(lru.take("a").is_some());
        assert_eq!(lru.bytes(), 10);
        lru.put("a", Varying(Rc::new(Cell::new(20))));
        lru.put("c", Varying(Rc::new(Cell::new(5))));
        assert_eq!(lru.bytes(), 25, "b evicted at its own 10");
    }

    #[test]
    fn a_budget_of_zero_keeps_nothing() {
        let lru = BudgetLru::new(0);
        lru.put("a", Sized(0));
        assert_eq!(lru.get("a"), None);
        assert_eq!(lru.take("a"), None);
    }
}

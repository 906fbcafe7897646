//! Bounded caches of what the mount parsed: snapshot trees and snapshot
//! summaries, each an LRU of fixed capacity, so memory grows with the
//! snapshots in use, not with the number that exist.
//!
//! Values are `Arc`s handed out by clone; a value evicted while a request
//! still uses it lives until that request ends. Loading happens outside
//! the lock: two requests missing the same key may both load it (the
//! second insert wins; the values are equal), but no request waits for
//! another's disk reads.

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard};

use lru::LruCache;

/// A thread-safe LRU cache.
pub struct Lru<K: Hash + Eq, V: Clone> {
    inner: Mutex<LruCache<K, V>>,
}

impl<K: Hash + Eq, V: Clone> Lru<K, V> {
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            inner: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<K, V>> {
        // Every operation is a single call into the LruCache: a panic in
        // another thread cannot leave it half updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value, or `load()`'s, which is then cached.
    pub fn get_or_load<E>(&self, key: &K, load: impl FnOnce() -> Result<V, E>) -> Result<V, E>
    where
        K: Clone,
    {
        if let Some(v) = self.lock().get(key) {
            return Ok(v.clone());
        }
        let v = load()?;
        self.lock().put(key.clone(), v.clone());
        Ok(v)
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    pub fn put(&self, key: K, value: V) {
        self.lock().put(key, value);
    }

    /// Inserts, returning the entry evicted to make room (if any).
    pub fn insert(&self, key: K, value: V) -> Option<(K, V)> {
        let mut cache = self.lock();
        if cache.contains(&key) {
            cache.put(key, value);
            return None;
        }
        cache.push(key, value)
    }

    pub fn remove(&self, key: &K) {
        self.lock().pop(key);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_entries_are_evicted() {
        let c: Lru<u32, u32> = Lru::new(NonZeroUsize::new(2).unwrap());
        let mut loads = 0;
        let get = |k: u32, loads: &mut u32| {
            c.get_or_load(&k, || {
                *loads += 1;
                Ok::<_, ()>(k * 10)
            })
            .unwrap()
        };
        assert_eq!(get(1, &mut loads), 10);
        assert_eq!(get(2, &mut loads), 20);
        assert_eq!(get(1, &mut loads), 10); // hit; 2 is now the oldest
        assert_eq!(get(3, &mut loads), 30); // evicts 2
        assert_eq!(loads, 3);
        assert_eq!(get(1, &mut loads), 10);
        assert_eq!(loads, 3);
        assert_eq!(get(2, &mut loads), 20);
        assert_eq!(loads, 4);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn insert_names_what_it_evicted() {
        let c: Lru<u32, u32> = Lru::new(NonZeroUsize::new(1).unwrap());
        assert_eq!(c.insert(1, 10), None);
        assert_eq!(c.insert(1, 11), None);
        assert_eq!(c.insert(2, 20), Some((1, 11)));
        assert_eq!(c.get(&2), Some(20));
    }

    #[test]
    fn failed_loads_are_not_cached() {
        let c: Lru<u32, u32> = Lru::new(NonZeroUsize::new(2).unwrap());
        assert_eq!(c.get_or_load(&1, || Err("no")), Err("no"));
        assert!(c.is_empty());
    }
}

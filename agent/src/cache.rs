//! Answers kept in memory for `[cache] ttl` (`negative_ttl` for "not found"), so a warm lookup
//! never touches the directory. Keyed by the request itself; values are the finished
//! [`Response`]s behind an `Arc`, so a hit copies a pointer, not a 5,000-member group.
//! "Unavailable" is never kept: the next request asks again.
//!
//! The persistent offline cache (redb) is a separate, later layer.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::CacheConfig;

/// Most entries kept; past it, expired ones are dropped and, if that is not enough, all.
const MAX_ENTRIES: usize = 200_000;

/// When it was stored, the answer, and whether it is a negative one.
type Entry<V> = (Instant, Arc<V>, bool);

#[derive(Debug)]
pub struct Cache<K, V> {
    ttl: CacheConfig,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: Eq + Hash + Clone, V> Cache<K, V> {
    pub fn new(ttl: CacheConfig) -> Cache<K, V> {
        Cache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The answer for `key`, if it was stored less than its time-to-live ago.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let now = Instant::now();
        let entries = self.lock();
        let (stored, value, negative) = entries.get(key)?;
        (now.duration_since(*stored) < self.ttl_of(*negative)).then(|| value.clone())
    }

    /// Stores an answer; `negative` answers ("not found") live for `negative_ttl`.
    pub fn insert(&self, key: K, value: Arc<V>, negative: bool) {
        if self.ttl_of(negative).is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stored, _, negative)| now.duration_since(*stored) < self.ttl_of(*negative));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now, value, negative));
    }

    fn ttl_of(&self, negative: bool) -> Duration {
        if negative { self.ttl.negative_ttl } else { self.ttl.ttl }
    }

    /// A panic elsewhere while holding the lock leaves a map that is still consistent (every
    /// operation on it is a single insert, lookup or retain): keep using it.
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry<V>>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Cache<&'static str, u32> {
        Cache::new(CacheConfig { ttl: Duration::from_secs(300), negative_ttl: Duration::from_secs(30) })
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_is_served_until_its_ttl_runs_out() {
        let cache = cache();
        cache.insert("alice", Arc::new(1), false);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cache.get(&"alice").as_deref(), Some(&1));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get(&"alice"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_negative_answer_lives_for_negative_ttl() {
        let cache = cache();
        cache.insert("nobody", Arc::new(0), true);
        tokio::time::advance(Duration::from_secs(29)).await;
        assert!(cache.get(&"nobody").is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(cache.get(&"nobody").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_ttl_keeps_nothing() {
        let cache: Cache<&str, u32> = Cache::new(CacheConfig { ttl: Duration::ZERO, negative_ttl: Duration::ZERO });
        cache.insert("alice", Arc::new(1), false);
        assert!(cache.get(&"alice").is_none());
    }
}

//! Answers kept in memory for `[cache] ttl` (`negative_ttl` for "not found"), so a warm lookup
//! never touches the directory. Values sit behind an `Arc`, so a hit copies a pointer, not a
//! 5,000-member group. "Unavailable" is never kept: the next request asks again.
//!
//! Concurrent misses for one key share a single fetch ([`Cache::get_or_fetch`]): a burst of
//! logins asking for the same user costs the directory one search.
//!
//! What must survive a restart (for offline use) is kept on disk by [`super::store`], a separate
//! layer the service consults after this one.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;

use crate::config::CacheConfig;

/// Most entries kept; past it, expired ones are dropped and, if that is not enough, all.
const MAX_ENTRIES: usize = 200_000;

/// When it was stored, the answer, and whether it is a negative one.
type Entry<V> = (Instant, Arc<V>, bool);

/// How long a fetched value may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// For `ttl`.
    Positive,
    /// For `negative_ttl` ("not found").
    Negative,
    /// Not at all (the directory could not be asked).
    Never,
}

/// A fetch in progress; everyone who misses meanwhile waits on the same cell.
type InFlight<V> = Arc<OnceCell<Arc<V>>>;

#[derive(Debug)]
pub struct Cache<K, V> {
    ttl: CacheConfig,
    entries: Mutex<HashMap<K, Entry<V>>>,
    in_flight: Mutex<HashMap<K, InFlight<V>>>,
    /// Woken on every insert and clear: the snapshot publisher waits on it (a stored permit, so
    /// a change between two waits is never missed).
    changed: Arc<Notify>,
}

/// A positive entry as [`Cache::positive_entries`] lists it.
pub struct Listed<K, V> {
    pub key: K,
    pub value: Arc<V>,
    /// When it stops being fresh (in the past for an expired entry not yet dropped).
    pub expires: Instant,
}

impl<K: Eq + Hash + Clone, V> Cache<K, V> {
    pub fn new(ttl: CacheConfig) -> Cache<K, V> {
        Cache::notifying(ttl, Arc::default())
    }

    /// A cache that wakes `changed` whenever its contents change.
    pub fn notifying(ttl: CacheConfig, changed: Arc<Notify>) -> Cache<K, V> {
        Cache { ttl, entries: Mutex::default(), in_flight: Mutex::default(), changed }
    }

    /// Every positive entry held, fresh or expired but not yet dropped, with its expiry: what
    /// the snapshot for the NSS module is made of ("not found" answers never go there).
    pub fn positive_entries(&self) -> Vec<Listed<K, V>> {
        let entries = self.lock();
        entries
            .iter()
            .filter(|(_, (_, _, negative))| !negative)
            .map(|(key, (stored, value, _))| Listed {
                key: key.clone(),
                value: value.clone(),
                expires: *stored + self.ttl.ttl,
            })
            .collect()
    }

    /// The fresh value for `key`, or the result of `fetch()`, shared with every concurrent
    /// caller for the same key and kept as `keep` says. If the caller running the fetch is
    /// cancelled, a waiting caller runs its own. `fetch` is a closure so the future is only
    /// built on a miss, once, inside the shared cell (futures are large; copies are not free).
    pub async fn get_or_fetch<F: Future<Output = V>>(
        &self,
        key: K,
        fetch: impl FnOnce() -> F,
        keep: impl Fn(&V) -> Keep,
    ) -> Arc<V> {
        if let Some(hit) = self.get(&key) {
            return hit;
        }
        let cell = relock(&self.in_flight).entry(key.clone()).or_default().clone();
        let value = cell.get_or_init(|| async { Arc::new(fetch().await) }).await.clone();
        let mut in_flight = relock(&self.in_flight);
        // The first caller to get here stores the value and retires the cell.
        if in_flight.get(&key).is_some_and(|current| Arc::ptr_eq(current, &cell)) {
            match keep(&value) {
                Keep::Positive => self.insert(key.clone(), value.clone(), false),
                Keep::Negative => self.insert(key.clone(), value.clone(), true),
                Keep::Never => {}
            }
            in_flight.remove(&key);
        }
        value
    }

    /// The answer for `key`, if it was stored less than its time-to-live ago.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.get_with_age(key).map(|(value, _)| value)
    }

    /// The fresh answer for `key` and how old it is (for refreshing before it expires).
    pub fn get_with_age(&self, key: &K) -> Option<(Arc<V>, Duration)> {
        let now = Instant::now();
        let entries = self.lock();
        let (stored, value, negative) = entries.get(key)?;
        let age = now.duration_since(*stored);
        (age < self.ttl_of(*negative)).then(|| (value.clone(), age))
    }

    /// Stores an answer; `negative` answers ("not found") live for `negative_ttl`.
    pub fn insert(&self, key: K, value: Arc<V>, negative: bool) {
        self.insert_aged(key, value, negative, Duration::ZERO);
    }

    /// Stores an answer that was fetched `age` ago (read back from disk), so it expires when
    /// it would have had it never left memory.
    pub fn insert_aged(&self, key: K, value: Arc<V>, negative: bool, age: Duration) {
        if age >= self.ttl_of(negative) {
            return;
        }
        let now = Instant::now();
        let stored_at = now.checked_sub(age).unwrap_or(now);
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (stored, _, negative)| now.duration_since(*stored) < self.ttl_of(*negative));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let replaced = entries.insert(key, (stored_at, value, negative));
        drop(entries);
        // A "not found" changes what the snapshot holds only if it replaces a positive entry.
        if !negative || replaced.is_some_and(|(_, _, was_negative)| !was_negative) {
            self.changed.notify_one();
        }
    }

    /// Entries held, fresh or not yet dropped.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets everything (an invalidation): the next lookups go to the disk cache, which
    /// knows what is stale, or to the directory.
    pub fn clear(&self) {
        self.lock().clear();
        self.changed.notify_one();
    }

    fn ttl_of(&self, negative: bool) -> Duration {
        if negative { self.ttl.negative_ttl } else { self.ttl.ttl }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry<V>>> {
        relock(&self.entries)
    }
}

/// A panic elsewhere while holding a lock leaves these maps consistent (every operation on
/// them is a single insert, lookup or retain): keep using them.
fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> Cache<&'static str, u32> {
        Cache::new(CacheConfig {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(30),
            enumerate: false,
        })
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

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch() {
        let cache = cache();
        let fetches = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
            7
        };
        let (a, b, c) = tokio::join!(
            cache.get_or_fetch("alice", fetch, |_| Keep::Positive),
            cache.get_or_fetch("alice", fetch, |_| Keep::Positive),
            cache.get_or_fetch("alice", fetch, |_| Keep::Positive),
        );
        assert_eq!((*a, *b, *c), (7, 7, 7));
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(cache.get(&"alice").as_deref(), Some(&7));
        assert!(relock(&cache.in_flight).is_empty());
    }

    #[tokio::test]
    async fn a_value_marked_never_is_not_kept() {
        let cache = cache();
        assert_eq!(*cache.get_or_fetch("bob", || async { 0 }, |_| Keep::Never).await, 0);
        assert!(cache.get(&"bob").is_none());
        assert_eq!(*cache.get_or_fetch("bob", || async { 1 }, |_| Keep::Never).await, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_ttl_keeps_nothing() {
        let cache: Cache<&str, u32> =
            Cache::new(CacheConfig { ttl: Duration::ZERO, negative_ttl: Duration::ZERO, enumerate: false });
        cache.insert("alice", Arc::new(1), false);
        assert!(cache.get(&"alice").is_none());
    }
}

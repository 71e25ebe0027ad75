//! Failed logins, remembered per account and per (non-root) caller, so online guessing stops
//! after a few tries while a user who mistypes twice never notices.
//!
//! A key that has `max` failures within `window` is refused until the oldest of them is older
//! than `window`. Root callers are not limited as callers: sshd and login run as root for
//! every user, and limiting them would let one attacker lock everybody out. A success clears
//! the account's failures.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Most keys remembered per kind; past it, keys whose failures have all expired are dropped.
const MAX_KEYS: usize = 100_000;

/// How many failures a non-root caller may have, as a multiple of the per-account limit.
const CALLER_FACTOR: u32 = 4;

#[derive(Debug)]
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    accounts: Mutex<HashMap<String, VecDeque<Instant>>>,
    callers: Mutex<HashMap<u32, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> FailureLimiter {
        FailureLimiter { max, window, accounts: Mutex::default(), callers: Mutex::default() }
    }

    /// `Err(wait)` when `user` or the caller has used up its failures; `wait` is how long until
    /// the next attempt is allowed.
    pub fn check(&self, user: &str, caller_uid: u32) -> Result<(), Duration> {
        let now = Instant::now();
        let account = retry_after(&self.accounts, user, self.max, self.window, now);
        let caller = if caller_uid == 0 {
            None
        } else {
            retry_after(&self.callers, &caller_uid, self.max * CALLER_FACTOR, self.window, now)
        };
        match account.max(caller) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, user: &str, caller_uid: u32) {
        let now = Instant::now();
        record(&self.accounts, user.to_owned(), self.max, self.window, now);
        if caller_uid != 0 {
            record(&self.callers, caller_uid, self.max * CALLER_FACTOR, self.window, now);
        }
    }

    pub fn record_success(&self, user: &str) {
        lock(&self.accounts).remove(user);
    }
}

fn lock<K>(map: &Mutex<HashMap<K, VecDeque<Instant>>>) -> std::sync::MutexGuard<'_, HashMap<K, VecDeque<Instant>>> {
    // Every operation leaves the map consistent; a panic elsewhere does not make it unusable.
    map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn retry_after<K, Q>(
    map: &Mutex<HashMap<K, VecDeque<Instant>>>,
    key: &Q,
    max: u32,
    window: Duration,
    now: Instant,
) -> Option<Duration>
where
    K: Eq + Hash + std::borrow::Borrow<Q>,
    Q: Eq + Hash + ?Sized,
{
    let map = lock(map);
    let failures = map.get(key)?;
    let recent: Vec<&Instant> = failures.iter().filter(|t| now.duration_since(**t) < window).collect();
    if recent.len() < max as usize {
        return None;
    }
    recent.first().map(|oldest| window.saturating_sub(now.duration_since(**oldest)))
}

fn record<K: Eq + Hash>(map: &Mutex<HashMap<K, VecDeque<Instant>>>, key: K, max: u32, window: Duration, now: Instant) {
    let mut map = lock(map);
    if map.len() >= MAX_KEYS {
        map.retain(|_, failures| failures.back().is_some_and(|last| now.duration_since(*last) < window));
    }
    let failures = map.entry(key).or_default();
    failures.push_back(now);
    while failures.len() > max as usize {
        failures.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_account_is_refused_after_max_failures_until_the_window_passes() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(300));
        for _ in 0..2 {
            limiter.record_failure("alice", 0);
            assert!(limiter.check("alice", 0).is_ok(), "two mistakes must not lock anyone out");
        }
        limiter.record_failure("alice", 0);
        assert_eq!(limiter.check("alice", 0), Err(Duration::from_secs(300)));
        assert!(limiter.check("bob", 0).is_ok());
        tokio::time::advance(Duration::from_secs(300)).await;
        assert!(limiter.check("alice", 0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_forgets_the_accounts_failures() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(300));
        limiter.record_failure("alice", 0);
        limiter.record_failure("alice", 0);
        limiter.record_success("alice");
        limiter.record_failure("alice", 0);
        limiter.record_failure("alice", 0);
        assert!(limiter.check("alice", 0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_root_caller_guessing_many_accounts_is_limited_but_root_is_not() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        for i in 0..8 {
            let user = format!("user{i}");
            limiter.record_failure(&user, 1000);
            limiter.record_failure(&user, 0);
        }
        assert!(limiter.check("fresh", 1000).is_err());
        assert!(limiter.check("fresh", 0).is_ok());
    }
}

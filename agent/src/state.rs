//! Online or offline: whether the agent asks the directory at all.
//!
//! Any request that finds the directory unreachable or silent (a timeout) takes the agent
//! offline at once. From then on requests are answered from what is cached and never wait
//! on the directory; a prober asks it again after 1 s, doubling up to
//! `offline.probe_interval`, with jitter so a fleet of laptops does not knock in step. The
//! first answer brings the agent back online.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::directory::{Directory, DirectoryError};
use crate::metrics::Metrics;

/// The prober's first wait.
const FIRST_PROBE: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Health {
    online: AtomicBool,
    /// Since when the current state holds, for `lanyardctl status` and the logs.
    since: Mutex<Instant>,
    went_offline: Notify,
    probe_interval: Duration,
    /// When the directory last answered (Unix seconds), for `lanyardctl status`.
    last_contact: AtomicU64,
    metrics: Arc<Metrics>,
}

impl Health {
    pub fn new(probe_interval: Duration) -> Health {
        Health::with_metrics(probe_interval, Arc::default())
    }

    /// Transitions are recorded in `metrics` (the offline gauge and time offline).
    pub fn with_metrics(probe_interval: Duration, metrics: Arc<Metrics>) -> Health {
        Health {
            online: AtomicBool::new(true),
            since: Mutex::new(Instant::now()),
            went_offline: Notify::new(),
            probe_interval,
            last_contact: AtomicU64::new(0),
            metrics,
        }
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Acquire)
    }

    /// Records what a directory operation said about reachability.
    pub fn observe<T>(&self, result: &Result<T, DirectoryError>) {
        match result {
            Err(e) if e.is_unreachable() => self.set_offline(e),
            // A server answered (even with an error result): it is reachable.
            _ => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                self.last_contact.store(now, Ordering::Relaxed);
                self.set_online();
            }
        }
    }

    /// When the directory last answered, if it has since the start.
    pub fn last_contact(&self) -> Option<u64> {
        Some(self.last_contact.load(Ordering::Relaxed)).filter(|t| *t != 0)
    }

    /// How long the current state (online or offline) has held.
    pub fn state_age(&self) -> Duration {
        self.lock_since().elapsed()
    }

    fn set_offline(&self, why: &DirectoryError) {
        if self.online.swap(false, Ordering::AcqRel) {
            *self.lock_since() = Instant::now();
            self.metrics.set_offline(true);
            warn!("directory unreachable, now offline: answering from the cache until it returns ({why})");
            self.went_offline.notify_one();
        }
    }

    fn set_online(&self) {
        if !self.online.swap(true, Ordering::AcqRel) {
            let offline_for = self.lock_since().elapsed();
            *self.lock_since() = Instant::now();
            self.metrics.set_offline(false);
            info!("directory reachable again, back online after {offline_for:.1?}");
        }
    }

    fn lock_since(&self) -> std::sync::MutexGuard<'_, Instant> {
        self.since.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs for the agent's life: whenever it goes offline, probes until it is back.
    pub async fn probe_forever<D: Directory>(&self, directory: &D) {
        loop {
            if self.is_online() {
                self.went_offline.notified().await;
            }
            let mut wait = FIRST_PROBE.min(self.probe_interval);
            while !self.is_online() {
                tokio::time::sleep(jittered(wait)).await;
                let result = directory.probe().await;
                if result.is_ok() {
                    self.set_online();
                }
                wait = (wait * 2).min(self.probe_interval);
            }
        }
    }
}

/// `wait` shortened by up to a fifth, at random enough that hosts drift apart.
fn jittered(wait: Duration) -> Duration {
    // No RNG dependency for this: the clock's nanoseconds and the pid are random enough to
    // keep machines that lost the network together from probing in lockstep.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let seed = u64::from(nanos) ^ u64::from(std::process::id()).rotate_left(17);
    let fifth = wait / 5;
    wait - fifth.mul_f64((seed % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_directory_takes_the_agent_offline_and_any_answer_brings_it_back() {
        let health = Health::new(Duration::from_secs(5));
        assert!(health.is_online());
        health.observe::<()>(&Err(DirectoryError::Timeout));
        assert!(!health.is_online());
        health.observe::<()>(&Err(DirectoryError::Server("size limit".into())));
        assert!(health.is_online(), "a server that answers with an error is reachable");
        health.observe::<()>(&Err(DirectoryError::Unreachable("refused".into())));
        health.observe(&Ok(()));
        assert!(health.is_online());
    }

    #[test]
    fn jitter_shortens_by_at_most_a_fifth() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(5));
            assert!(wait <= Duration::from_secs(5) && wait >= Duration::from_secs(4), "{wait:?}");
        }
    }
}

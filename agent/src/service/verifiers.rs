//! Offline logins: an Argon2id verifier of the password is kept after each successful online
//! login (never the password), and checked when the directory cannot be reached. The rules
//! (`offline.max_age`, `max_failures`, `lockout`) live in [`crate::offline`]; this file runs
//! them off the request thread and keeps the disk cache up to date.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Notify, Semaphore};

use lanyard_proto::{Response, Secret};
use tracing::{debug, warn};

use super::{Persist, Service, now_secs};
use crate::cache::Write;
use crate::directory::Directory;
use crate::offline::{self, OfflineCheck};

/// How often a user's verifier is made anew from a successful online login.
const REHASH_EVERY: Duration = Duration::from_secs(600);

/// The longest an offline check waits for verifiers still being made.
const SETTLE: Duration = Duration::from_secs(2);

/// One Argon2id hash at a time in the whole agent: each takes 19 MiB for its ~40 ms, so a
/// burst of logins by different users hashing in parallel (one blocking thread each) would add
/// 19 MiB of peak memory per login. The hashes queue instead: making a verifier is off the
/// login's path, and an offline check waits at most a few hashes.
static HASHING: Semaphore = Semaphore::const_new(1);

/// Runs `hash` on a blocking thread once no other hash runs.
async fn hash_alone<T: Send + 'static>(hash: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    // Never closed, so acquire cannot fail; if it did, hashing anyway is still correct.
    let _permit = HASHING.acquire().await.ok();
    tokio::task::spawn_blocking(hash).await.ok()
}

/// Verifiers being made on blocking threads, and a way to wait until there are none.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn start(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn finish(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a finish in between is not missed.
            notified.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// A verifier of `password` for `user`, or its removal if one cannot be made: better no
/// offline login than one with an older password.
fn verifier_write(user: String, password: &Secret) -> Write {
    match offline::make(password, now_secs()) {
        Ok(verifier) => Write::Verifier(user, verifier),
        Err(e) => {
            warn!(user, "cannot keep an offline password verifier: {e}");
            Write::RemoveVerifier(user)
        }
    }
}

impl<D: Directory> Service<D> {
    /// Whether the user's verifier was made recently enough that this login need not make
    /// another: Argon2 costs ~40 ms of CPU, and a burst of logins must not queue seconds of
    /// hashing. A password changed elsewhere reaches the verifier at the first login after
    /// [`REHASH_EVERY`]; one changed through Lanyard replaces it at once.
    pub(super) fn verifier_is_recent(&self, user: &str) -> bool {
        self.lock_verifiers_made().get(user).is_some_and(|made| made.elapsed() < REHASH_EVERY)
    }

    pub(super) fn lock_verifiers_made(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.verifiers_made.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the user's verifier with one of `password`, in the background: hashing takes
    /// ~40 ms of CPU, which must not hold up the login that is answering now.
    pub(super) fn remember_password(&self, user: &str, password: &Secret) {
        let Some(persist) = &self.persist else { return };
        self.lock_verifiers_made().insert(user.to_owned(), Instant::now());
        let (user, password, writer) = (user.to_owned(), password.clone(), persist.writer.clone());
        let in_flight = self.verifiers_in_flight.clone();
        in_flight.start();
        tokio::spawn(async move {
            if let Some(write) = hash_alone(move || verifier_write(user, &password)).await {
                writer.send(write);
            }
            in_flight.finish();
        });
    }

    /// At shutdown: waits (briefly) for verifiers still being made, so their writes are queued
    /// before the writer's last commit.
    pub async fn finish_verifiers(&self) {
        if tokio::time::timeout(SETTLE, self.verifiers_in_flight.idle()).await.is_err() {
            warn!("stopping with offline verifiers still being made; they are lost");
        }
    }

    /// Waits (briefly) for verifiers still being made and their writes to land, so an
    /// offline check right after an online login (the network dropped a moment later) sees
    /// the new verifier.
    async fn settle(&self, persist: &Persist) {
        if tokio::time::timeout(SETTLE, self.verifiers_in_flight.idle()).await.is_err() {
            warn!("offline login: verifiers still being made after {SETTLE:?}; going on without them");
        }
        persist.writer.flush().await;
    }

    /// The same, finished and on disk before it returns: after a password change the old
    /// password must stop working offline at once.
    pub(super) async fn remember_password_now(&self, user: &str, password: &Secret) {
        let Some(persist) = &self.persist else { return };
        self.lock_verifiers_made().insert(user.to_owned(), Instant::now());
        let (owned, password) = (user.to_owned(), password.clone());
        let write = hash_alone(move || verifier_write(owned, &password))
            .await
            .unwrap_or_else(|| Write::RemoveVerifier(user.to_owned()));
        persist.writer.send(write);
        if !persist.writer.flush().await {
            warn!(user, "the new offline password verifier could not be written");
        }
    }

    pub(super) fn forget_password(&self, user: &str) {
        self.lock_verifiers_made().remove(user);
        self.write(Write::RemoveVerifier(user.to_owned()));
    }

    pub(super) async fn has_offline_password(&self, user: &str) -> bool {
        let Some(persist) = &self.persist else { return false };
        self.settle(persist).await;
        matches!(persist.store.verifier(user), Ok(Some(_)))
    }

    /// Checks `password` against the user's verifier. One check at a time (they update the
    /// verifier's failure count), each written to disk before the answer goes out, so a
    /// lockout holds even across a crash.
    pub(super) async fn authenticate_offline(&self, user: &str, password: &Secret) -> Response {
        let Some(persist) = &self.persist else {
            return Response::Unavailable("offline, and no disk cache for offline logins".into());
        };
        let _one_at_a_time = self.offline_checks.lock().await;
        self.settle(persist).await;
        let mut verifier = match persist.store.verifier(user) {
            Ok(Some(verifier)) => verifier,
            Ok(None) => return Response::Unavailable("offline, and no offline login for this account".into()),
            Err(e) => {
                warn!(user, "offline login: cannot read the verifier: {e}");
                return Response::Unavailable("offline, and the offline login cannot be read".into());
            }
        };
        let (rules, password, before) = (self.offline, password.clone(), verifier.clone());
        let checked = hash_alone(move || {
            let outcome = offline::check(&mut verifier, &password, now_secs(), &rules);
            (verifier, outcome)
        })
        .await;
        let Some((verifier, outcome)) = checked else {
            return Response::Unavailable("offline password check failed".into());
        };
        if verifier != before {
            persist.writer.send(Write::Verifier(user.to_owned(), verifier));
            if !persist.writer.flush().await {
                warn!(user, "offline login: the updated verifier could not be written");
            }
        }
        debug!(user, ?outcome, "offline password check");
        match outcome {
            OfflineCheck::Accepted => Response::Authenticated { offline: true },
            OfflineCheck::Rejected => Response::WrongPassword,
            OfflineCheck::Expired => {
                Response::Unavailable("offline, and the last online login is older than offline.max_age".into())
            }
            OfflineCheck::LockedOut { until } => Response::TooManyAttempts {
                retry_after_secs: Duration::from_secs(until.saturating_sub(now_secs())).as_secs().max(1) as u32,
            },
        }
    }
}

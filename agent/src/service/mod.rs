//! Requests to responses. Nothing here knows about sockets; the handler passes a decoded
//! [`Request`] and writes back what it gets.
//!
//! - `lookup`: users and groups, from memory, then the disk cache, then the directory;
//!   offline, from what is cached at any age. Stale answers are served at once and refreshed
//!   in the background (`refresher`).
//! - `pam`: logins, account checks, password changes, sessions; `verifiers`: the offline
//!   password verifiers behind offline logins.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lanyard_proto::{Group, Invalidation, Passwd, Request, Response};
use tokio::sync::mpsc;
use tracing::warn;

use crate::cache::{Cache, Store, StoreKey, Write, WriterHandle};
use crate::config::{CacheConfig, Config, OfflineConfig, PamConfig};
use crate::directory::{Directory, DirectoryError};
use crate::metrics::Metrics;
use crate::policy::Caller;
use crate::ratelimit::FailureLimiter;
use crate::state::Health;

mod admin;
mod lookup;
mod pam;
mod snapshot;
mod verifiers;

pub use lookup::Refresh;

/// Enumeration pages are cut at about this many bytes, so one huge directory is many modest
/// frames, never one giant one.
const PAGE_BYTES: usize = 256 * 1024;

/// Background refreshes waiting at most; past it, a refresh is skipped (the next lookup of a
/// stale entry asks again).
const REFRESH_QUEUE: usize = 1024;

/// What the handler writes back: one frame, or an enumeration written as a stream of pages.
#[derive(Debug)]
pub enum Reply {
    One(Arc<Response>),
    /// Always `Ok`: a failed enumeration is a [`Reply::One`] "unavailable".
    Users(Arc<Fetched<Passwd>>),
    Groups(Arc<Fetched<Group>>),
}

/// A whole enumeration as the directory returned it.
pub type Fetched<T> = Result<Vec<T>, DirectoryError>;

impl Reply {
    /// The enumeration's pages then [`Response::EndOfPages`], each built only when the one
    /// before it has been written, so the whole directory is never copied at once. Nothing
    /// for [`Reply::One`].
    pub fn pages(&self) -> Box<dyn Iterator<Item = Response> + Send + '_> {
        match self {
            Reply::One(_) => Box::new(std::iter::empty()),
            Reply::Users(users) => Box::new(pages(fetched(users), Response::UserPage, passwd_size)),
            Reply::Groups(groups) => Box::new(pages(fetched(groups), Response::GroupPage, group_size)),
        }
    }

    /// For logs.
    pub fn summary(&self) -> String {
        match self {
            Reply::One(response) => response.summary(),
            Reply::Users(users) => format!("{} users in pages", fetched(users).len()),
            Reply::Groups(groups) => format!("{} groups in pages", fetched(groups).len()),
        }
    }
}

/// The disk cache and its writer. The agent runs without them when the cache cannot be
/// opened (and says so): memory and the directory still answer.
#[derive(Debug)]
pub struct Persist {
    pub store: Arc<Store>,
    pub writer: WriterHandle,
}

pub struct Service<D> {
    directory: D,
    health: Arc<Health>,
    persist: Option<Persist>,
    metrics: Arc<Metrics>,
    answers: Cache<StoreKey, Response>,
    users: Cache<(), Fetched<Passwd>>,
    groups: Cache<(), Fetched<Group>>,
    ttl: CacheConfig,
    offline: OfflineConfig,
    pam: PamConfig,
    limiter: FailureLimiter,
    /// One offline password check at a time: each reads, updates and writes a verifier's
    /// failure count, and two at once would both count from the same number.
    offline_checks: tokio::sync::Mutex<()>,
    verifiers_in_flight: Arc<verifiers::InFlight>,
    /// When each user's verifier was last made (in this run).
    verifiers_made: Mutex<std::collections::HashMap<String, tokio::time::Instant>>,
    refresh_tx: mpsc::Sender<Refresh>,
    refresh_rx: Mutex<Option<mpsc::Receiver<Refresh>>>,
    /// Refreshes queued and not yet done, so a hot stale entry is refreshed once.
    refreshing: Mutex<HashSet<Refresh>>,
    /// This machine's name, for `{host}` in `pam.access_filter`.
    host: String,
    /// Woken by every change to the three caches above, for the snapshot publisher.
    snapshot_changed: Arc<tokio::sync::Notify>,
    /// Where snapshots go, once [`Service::publish_snapshots_to`] was called.
    publisher: Mutex<Option<snapshot::SharedPublisher>>,
}

impl<D: Directory> Service<D> {
    pub fn new(directory: D, config: &Config, health: Arc<Health>, persist: Option<Persist>) -> Service<D> {
        Service::with_metrics(directory, config, health, persist, Arc::default())
    }

    /// Like [`Service::new`], recording into `metrics`, which the directory and `health` may
    /// share.
    pub fn with_metrics(
        directory: D,
        config: &Config,
        health: Arc<Health>,
        persist: Option<Persist>,
        metrics: Arc<Metrics>,
    ) -> Service<D> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "localhost".into(), |h| h.trim().to_owned());
        let (refresh_tx, refresh_rx) = mpsc::channel(REFRESH_QUEUE);
        let snapshot_changed = Arc::new(tokio::sync::Notify::new());
        Service {
            directory,
            health,
            persist,
            metrics,
            answers: Cache::notifying(config.cache, snapshot_changed.clone()),
            users: Cache::notifying(config.cache, snapshot_changed.clone()),
            groups: Cache::notifying(config.cache, snapshot_changed.clone()),
            ttl: config.cache,
            offline: config.offline,
            limiter: FailureLimiter::new(config.pam.max_failures, config.pam.failure_window),
            pam: config.pam.clone(),
            offline_checks: tokio::sync::Mutex::new(()),
            verifiers_in_flight: Arc::default(),
            verifiers_made: Mutex::default(),
            refresh_tx,
            refresh_rx: Mutex::new(Some(refresh_rx)),
            refreshing: Mutex::default(),
            host,
            snapshot_changed,
            publisher: Mutex::default(),
        }
    }

    pub fn directory(&self) -> &D {
        &self.directory
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The lookup a request makes, if it is one: what to finish in the background when the
    /// request's budget runs out ([`Service::finish_in_background`]).
    pub fn lookup_key(request: &Request) -> Option<StoreKey> {
        Some(match request {
            Request::UserByName(name) => StoreKey::UserByName(name.clone()),
            Request::UserByUid(uid) => StoreKey::UserByUid(*uid),
            Request::GroupByName(name) => StoreKey::GroupByName(name.clone()),
            Request::GroupByGid(gid) => StoreKey::GroupByGid(*gid),
            Request::GroupsOfUser(name) => StoreKey::GroupsOfUser(name.clone()),
            _ => return None,
        })
    }

    /// A lookup that ran out of its request's budget (a group of thousands of members to look
    /// up one by one) goes on in the background refresher, which has none, and lands in memory:
    /// the next caller gets it instead of starting it over and being cut off again.
    pub fn finish_in_background(&self, key: StoreKey) {
        // What `lookup` refuses before any traffic never reaches the directory from here either.
        let askable = match &key {
            StoreKey::UserByName(name) | StoreKey::GroupByName(name) | StoreKey::GroupsOfUser(name) => {
                lanyard_proto::name::is_valid_name(name)
            }
            StoreKey::UserByUid(id) | StoreKey::GroupByGid(id) => *id != 0,
        };
        if askable && self.health.is_online() {
            self.queue_refresh(key);
        }
    }

    pub async fn handle(&self, request: Request, caller: Caller) -> Reply {
        let one = |response: Response| Reply::One(Arc::new(response));
        match request {
            Request::UserByName(name) => Reply::One(self.lookup(StoreKey::UserByName(name)).await),
            Request::UserByUid(uid) => Reply::One(self.lookup(StoreKey::UserByUid(uid)).await),
            Request::GroupByName(name) => Reply::One(self.lookup(StoreKey::GroupByName(name)).await),
            Request::GroupByGid(gid) => Reply::One(self.lookup(StoreKey::GroupByGid(gid)).await),
            Request::GroupsOfUser(name) => Reply::One(self.lookup(StoreKey::GroupsOfUser(name)).await),
            Request::EnumerateUsers => self.enumerate_users().await,
            Request::EnumerateGroups => self.enumerate_groups().await,
            Request::Authenticate { user, password, context } => {
                one(self.authenticate(caller, &user, &password, &context).await)
            }
            Request::CheckAccount { user, context } => one(self.check_account(caller, &user, &context).await),
            Request::ChangePassword { user, old, new, context } => {
                one(self.change_password(caller, &user, old.as_ref(), &new, &context).await)
            }
            Request::OpenSession { user, context: _ } => one(self.open_session(caller, &user).await),
            Request::Invalidate(what) => one(self.invalidate(caller, what).await),
            Request::Status => one(self.status()),
            Request::Metrics => one(Response::Metrics(self.metrics.render())),
            Request::Trace(lookup) => one(self.trace(lookup).await),
            Request::ClearCache => one(self.clear_cache(caller).await),
        }
    }

    /// Marks cached entries stale: memory forgets them, the disk cache keeps them for
    /// offline use but no longer calls them fresh, and the NSS module's snapshot no longer
    /// holds them, all before the reply. Root only.
    ///
    /// The disk is marked first (waiting for the writer): a lookup between clearing memory and
    /// marking the disk would read the entry back from disk as fresh, and the snapshot would
    /// hand it to every process for another `ttl`. The listings go too, whatever was named:
    /// the snapshot is built from them as well.
    async fn invalidate(&self, caller: Caller, what: Invalidation) -> Response {
        if !caller.is_root() {
            return Response::Refused("only root may invalidate cached entries".into());
        }
        if let Some(persist) = &self.persist {
            persist.writer.send(Write::Invalidate(what));
            if !persist.writer.flush().await {
                warn!("the disk cache could not be marked stale; entries there stay fresh until their ttl");
            }
        }
        self.answers.clear();
        self.users.clear();
        self.groups.clear();
        self.publish_snapshot_now();
        Response::Invalidated
    }

    /// Queues a write to the disk cache, if there is one. Never waits.
    fn write(&self, write: Write) {
        if let Some(persist) = &self.persist {
            persist.writer.send(write);
        }
    }

    fn store(&self) -> Option<&Store> {
        self.persist.as_ref().map(|p| &*p.store)
    }
}

/// Wall-clock seconds since the Unix epoch: what the disk cache records, because it must mean
/// the same after a restart.
fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How old something fetched at `fetched_at` is. A time in the future (the clock was set
/// back) counts as just fetched for serving, which the caller pairs with a refresh.
fn age_of(fetched_at: u64) -> Duration {
    Duration::from_secs(now_secs().saturating_sub(fetched_at))
}

fn fetched<T>(all: &Fetched<T>) -> &[T] {
    all.as_deref().unwrap_or_default()
}

/// Cuts `entries` into pages of about [`PAGE_BYTES`], lazily, and closes with `EndOfPages`.
fn pages<'a, T: Clone + Sync>(
    entries: &'a [T],
    page: fn(Vec<T>) -> Response,
    size: fn(&T) -> usize,
) -> impl Iterator<Item = Response> + Send + 'a {
    let mut start = 0;
    let mut ended = false;
    std::iter::from_fn(move || {
        if start >= entries.len() {
            return (!std::mem::replace(&mut ended, true)).then_some(Response::EndOfPages);
        }
        let mut end = start;
        let mut bytes = 0;
        while end < entries.len() && (end == start || bytes + size(&entries[end]) <= PAGE_BYTES) {
            bytes += size(&entries[end]);
            end += 1;
        }
        let chunk = entries[start..end].to_vec();
        start = end;
        Some(page(chunk))
    })
}

fn passwd_size(p: &Passwd) -> usize {
    16 + p.name.len() + p.gecos.len() + p.home.len() + p.shell.len()
}

fn group_size(g: &Group) -> usize {
    16 + g.name.len() + g.members.iter().map(|m| m.len() + 1).sum::<usize>()
}

#[cfg(test)]
mod tests;

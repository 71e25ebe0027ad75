//! Users and groups: memory, then the disk cache, then the directory.
//!
//! - Fresh in memory: answered at once; past three quarters of its `ttl` it is refreshed in
//!   the background, so entries in use rarely expire at all.
//! - On disk: a fresh entry is answered (and kept in memory for the rest of its `ttl`); a
//!   stale one (older than `ttl`, or fetched "in the future" after the clock was set back) is
//!   answered at once and refreshed in the background; an invalidated one is asked of the
//!   directory first, and answered only if the directory cannot answer.
//! - Neither: the directory is asked, once however many ask at the same time; what it
//!   answers goes to memory and, batched, to disk.
//! - Offline: memory or disk at any age; nothing cached is "unavailable", at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Group, Passwd, Response, Source};
use tracing::debug;

use super::{Fetched, Reply, Service, age_of, now_secs};
use crate::cache::{Cache, Keep, StoreKey, Stored, Write};
use crate::directory::{Directory, DirectoryError};

/// Work for the background refresher.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refresh {
    Answer(StoreKey),
    Users,
    Groups,
}

impl<D: Directory> Service<D> {
    pub(super) async fn lookup(&self, key: StoreKey) -> Arc<Response> {
        self.lookup_traced(key).await.0
    }

    /// A lookup's answer and where it came from.
    pub(super) async fn lookup_traced(&self, key: StoreKey) -> (Arc<Response>, Source) {
        self.metrics.lookups.inc();
        match &key {
            // Refused before any traffic: such a name cannot exist, and it cannot reach a filter.
            StoreKey::UserByName(name) | StoreKey::GroupByName(name) | StoreKey::GroupsOfUser(name)
                if !is_valid_name(name) =>
            {
                return (Arc::new(Response::NotFound), Source::Nowhere);
            }
            // Root is the machine's own; the directory is never asked for id 0.
            StoreKey::UserByUid(0) | StoreKey::GroupByGid(0) => return (Arc::new(Response::NotFound), Source::Nowhere),
            _ => {}
        }
        if let Some((hit, age)) = self.answers.get_with_age(&key) {
            if age > self.ttl.ttl * 3 / 4 && !matches!(*hit, Response::NotFound) && self.health.is_online() {
                self.queue(Refresh::Answer(key));
            }
            self.metrics.cache_memory_hits.inc();
            return (hit, Source::Memory { age_secs: age.as_secs() });
        }
        let stored = self.stored_answer(&key);
        if !self.health.is_online() {
            return self.offline_answer(stored);
        }
        // Invalidated by an administrator, who expects the directory's answer next: asked now,
        // and the stored entry only if the directory cannot answer.
        let stored = match stored {
            Some(stored) if stored.stale => {
                self.metrics.cache_misses.inc();
                let response = self.answers.get_or_fetch(key.clone(), || self.ask_directory(&key), keep).await;
                if matches!(*response, Response::Unavailable(_)) {
                    return self.offline_answer(Some(stored));
                }
                return (response, Source::Directory);
            }
            stored => stored,
        };
        if let Some(stored) = stored {
            let age = age_of(stored.fetched_at);
            let response = Arc::new(stored.value);
            let stale = stored.fetched_at > now_secs() || age >= self.ttl.ttl;
            if stale {
                self.metrics.cache_stale_answers.inc();
                self.queue(Refresh::Answer(key));
            } else {
                self.metrics.cache_disk_hits.inc();
                self.answers.insert_aged(key, response.clone(), false, age);
            }
            return (response, Source::Disk { fetched_at: stored.fetched_at, stale });
        }
        self.metrics.cache_misses.inc();
        let response = self.answers.get_or_fetch(key.clone(), || self.ask_directory(&key), keep).await;
        if matches!(*response, Response::Unavailable(_)) && !self.health.is_online() {
            // The directory just went away; a concurrent writer may have stored this meanwhile.
            return self.offline_answer(self.stored_answer(&key));
        }
        (response, Source::Directory)
    }

    /// Offline: what the disk holds, at any age, or "unavailable".
    fn offline_answer(&self, stored: Option<Stored<Response>>) -> (Arc<Response>, Source) {
        match stored {
            Some(stored) => {
                self.metrics.cache_stale_answers.inc();
                let source = Source::Disk { fetched_at: stored.fetched_at, stale: true };
                (Arc::new(stored.value), source)
            }
            None => (Arc::new(offline_and_not_cached()), Source::Nowhere),
        }
    }

    fn stored_answer(&self, key: &StoreKey) -> Option<Stored<Response>> {
        let store = self.store()?;
        store.answer(key).inspect_err(|e| debug!(?key, "disk cache read failed: {e}")).ok().flatten()
    }

    /// Asks the directory, records whether it answered, and keeps what it said on disk.
    async fn ask_directory(&self, key: &StoreKey) -> Response {
        let result = self.fetch(key).await;
        self.health.observe(&result);
        match result {
            Ok(response) => {
                self.remember(key, &response);
                response
            }
            Err(e) => Response::Unavailable(e.public_reason().to_owned()),
        }
    }

    async fn fetch(&self, key: &StoreKey) -> Result<Response, DirectoryError> {
        let user = |found: Option<Passwd>| found.map_or(Response::NotFound, Response::User);
        let group = |found: Option<Group>| found.map_or(Response::NotFound, Response::Group);
        Ok(match key {
            StoreKey::UserByName(name) => user(self.directory.user_by_name(name).await?),
            StoreKey::UserByUid(uid) => user(self.directory.user_by_uid(*uid).await?),
            StoreKey::GroupByName(name) => group(self.directory.group_by_name(name).await?),
            StoreKey::GroupByGid(gid) => group(self.directory.group_by_gid(*gid).await?),
            // initgroups: the gids of every group that lists the name, as nslcd answers, so a
            // local user named in a directory group gets that group too. "Not found" only for
            // a name in no group that is not a directory user either.
            StoreKey::GroupsOfUser(name) => match self.directory.groups_of_user(name).await? {
                gids if !gids.is_empty() => Response::GroupIds(gids),
                _ => match self.directory.user_by_name(name).await? {
                    Some(_) => Response::GroupIds(Vec::new()),
                    None => Response::NotFound,
                },
            },
        })
    }

    /// Writes a directory answer to disk, with the same entry under its other key (a user
    /// looked up by name is then also known by uid, offline too). A "not found" removes what
    /// the disk had, so a deleted account is not served offline.
    fn remember(&self, key: &StoreKey, response: &Response) {
        let stored = |value: Response| Stored { fetched_at: now_secs(), stale: false, value };
        match response {
            Response::NotFound => self.write(Write::RemoveAnswer(key.clone())),
            Response::User(user) => {
                self.write(Write::Answer(StoreKey::UserByName(user.name.clone()), stored(response.clone())));
                self.write(Write::Answer(StoreKey::UserByUid(user.uid), stored(response.clone())));
            }
            Response::Group(group) => {
                self.write(Write::Answer(StoreKey::GroupByName(group.name.clone()), stored(response.clone())));
                self.write(Write::Answer(StoreKey::GroupByGid(group.gid), stored(response.clone())));
            }
            Response::GroupIds(_) => self.write(Write::Answer(key.clone(), stored(response.clone()))),
            _ => {}
        }
    }

    pub(super) async fn enumerate_users(&self) -> Reply {
        let all = self
            .enumerate(&self.users, Refresh::Users, || self.store()?.users().ok().flatten(), || self.fetch_all_users())
            .await;
        match &*all {
            Ok(_) => Reply::Users(all),
            Err(e) => Reply::One(Arc::new(Response::Unavailable(e.public_reason().to_owned()))),
        }
    }

    pub(super) async fn enumerate_groups(&self) -> Reply {
        let all = self
            .enumerate(
                &self.groups,
                Refresh::Groups,
                || self.store()?.groups().ok().flatten(),
                || self.fetch_all_groups(),
            )
            .await;
        match &*all {
            Ok(_) => Reply::Groups(all),
            Err(e) => Reply::One(Arc::new(Response::Unavailable(e.public_reason().to_owned()))),
        }
    }

    /// The same layers as a lookup, for a whole listing.
    async fn enumerate<T, F>(
        &self,
        memory: &Cache<(), Fetched<T>>,
        refresh: Refresh,
        stored: impl FnOnce() -> Option<Stored<Vec<T>>>,
        fetch: impl FnOnce() -> F,
    ) -> Arc<Fetched<T>>
    where
        F: Future<Output = Fetched<T>>,
    {
        if let Some((hit, age)) = memory.get_with_age(&()) {
            if age > self.ttl.ttl * 3 / 4 && self.health.is_online() {
                self.queue(refresh);
            }
            return hit;
        }
        let stored = stored();
        if !self.health.is_online() {
            return Arc::new(stored.map(|s| s.value).ok_or(offline_error()));
        }
        if let Some(stored) = stored {
            let age = age_of(stored.fetched_at);
            let all = Arc::new(Ok(stored.value));
            if stored.stale || stored.fetched_at > now_secs() || age >= self.ttl.ttl {
                self.queue(refresh);
            } else {
                memory.insert_aged((), all.clone(), false, age);
            }
            return all;
        }
        memory.get_or_fetch((), fetch, |all| if all.is_ok() { Keep::Positive } else { Keep::Never }).await
    }

    async fn fetch_all_users(&self) -> Fetched<Passwd> {
        let result = self.directory.all_users().await;
        self.health.observe(&result);
        if let Ok(users) = &result {
            self.write(Write::Users(Stored { fetched_at: now_secs(), stale: false, value: users.clone() }));
        }
        result
    }

    async fn fetch_all_groups(&self) -> Fetched<Group> {
        let result = self.directory.all_groups().await;
        self.health.observe(&result);
        if let Ok(groups) = &result {
            self.write(Write::Groups(Stored { fetched_at: now_secs(), stale: false, value: groups.clone() }));
        }
        result
    }

    /// Asks the refresher to fetch this answer again, once, without waiting for it.
    pub(super) fn queue_refresh(&self, key: StoreKey) {
        self.queue(Refresh::Answer(key));
    }

    /// Asks the refresher to fetch `what` again, once, without waiting for it.
    fn queue(&self, what: Refresh) {
        let mut refreshing = self.refreshing.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if refreshing.insert(what.clone()) && self.refresh_tx.try_send(what.clone()).is_err() {
            refreshing.remove(&what);
        }
    }

    /// Runs the background refreshes for the agent's life. Call once, with the service shared.
    pub async fn refresher(self: Arc<Self>) {
        let Some(mut queued) = self.refresh_rx.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take() else {
            return;
        };
        while let Some(what) = queued.recv().await {
            if self.health.is_online() {
                match &what {
                    Refresh::Answer(key) => {
                        let response = Arc::new(self.ask_directory(key).await);
                        let keep = keep(&response);
                        if keep != Keep::Never {
                            self.answers.insert(key.clone(), response, keep == Keep::Negative);
                        }
                    }
                    Refresh::Users => _ = refresh_listing(&self.users, self.fetch_all_users().await),
                    Refresh::Groups => _ = refresh_listing(&self.groups, self.fetch_all_groups().await),
                }
            }
            self.refreshing.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&what);
        }
    }

    /// `cache.enumerate`: every user and group fetched now and again before they expire, for
    /// the agent's life, so memory (and the NSS module's snapshot) holds the whole directory.
    /// While the directory is away, tried again every [`LISTING_RETRY`].
    pub async fn keep_listings_fresh(self: Arc<Self>) {
        if !self.ttl.enumerate {
            return;
        }
        loop {
            let fetched = self.health.is_online()
                && refresh_listing(&self.users, self.fetch_all_users().await)
                && refresh_listing(&self.groups, self.fetch_all_groups().await);
            let next = if fetched { self.ttl.ttl * 3 / 4 } else { LISTING_RETRY };
            // Never a busy loop, whatever the ttl.
            tokio::time::sleep(next.max(Duration::from_secs(1))).await;
        }
    }
}

/// How soon `cache.enumerate` tries again after the directory did not answer.
const LISTING_RETRY: Duration = Duration::from_secs(10);

/// Keeps a fetched listing; whether there was one to keep.
fn refresh_listing<T>(memory: &Cache<(), Fetched<T>>, fetched: Fetched<T>) -> bool {
    let ok = fetched.is_ok();
    if ok {
        memory.insert((), Arc::new(fetched), false);
    }
    ok
}

/// How long a directory answer may be kept in memory.
fn keep(response: &Response) -> Keep {
    match response {
        Response::NotFound => Keep::Negative,
        Response::Unavailable(_) | Response::Refused(_) => Keep::Never,
        _ => Keep::Positive,
    }
}

/// Offline with nothing on disk: the directory may well know the name, so this is
/// "unavailable", never "not found" (DESIGN.md's status mapping).
fn offline_and_not_cached() -> Response {
    Response::Unavailable(offline_error().public_reason().to_owned())
}

fn offline_error() -> DirectoryError {
    DirectoryError::Unreachable("offline, and not in the cache".into())
}

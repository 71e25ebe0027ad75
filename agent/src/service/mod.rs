//! Requests to responses: the cache first, then the directory. Nothing here knows about
//! sockets; the handler passes a decoded [`Request`] and writes back what it gets.

use std::future::Future;
use std::sync::Arc;

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Group, Passwd, Request, Response};

use crate::cache::{Cache, Keep};
use crate::config::{CacheConfig, PamConfig};
use crate::directory::{Directory, DirectoryError};
use crate::policy::Caller;
use crate::ratelimit::FailureLimiter;

mod pam;

/// Enumeration pages are cut at about this many bytes, so one huge directory is many modest
/// frames, never one giant one.
const PAGE_BYTES: usize = 256 * 1024;

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

/// What a lookup answer is stored under: the lookup requests, without anything else a request
/// may carry (credentials never become cache keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Lookup {
    UserByName(String),
    UserByUid(u32),
    GroupByName(String),
    GroupByGid(u32),
    GroupsOfUser(String),
}

pub struct Service<D> {
    directory: D,
    answers: Cache<Lookup, Response>,
    users: Cache<(), Fetched<Passwd>>,
    groups: Cache<(), Fetched<Group>>,
    pam: PamConfig,
    limiter: FailureLimiter,
    /// This machine's name, for `{host}` in `pam.access_filter`.
    host: String,
}

impl<D: Directory> Service<D> {
    pub fn new(directory: D, ttl: CacheConfig, pam: PamConfig) -> Service<D> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_or_else(|_| "localhost".into(), |h| h.trim().to_owned());
        Service {
            directory,
            answers: Cache::new(ttl),
            users: Cache::new(ttl),
            groups: Cache::new(ttl),
            limiter: FailureLimiter::new(pam.max_failures, pam.failure_window),
            pam,
            host,
        }
    }

    pub fn directory(&self) -> &D {
        &self.directory
    }

    pub async fn handle(&self, request: Request, caller: Caller) -> Reply {
        match request {
            Request::Authenticate { user, password, context } => {
                Reply::One(Arc::new(self.authenticate(caller, &user, &password, &context).await))
            }
            Request::CheckAccount { user, context } => {
                Reply::One(Arc::new(self.check_account(caller, &user, &context).await))
            }
            Request::ChangePassword { user, old, new, context } => {
                Reply::One(Arc::new(self.change_password(caller, &user, old.as_ref(), &new, &context).await))
            }
            Request::OpenSession { user, context: _ } => Reply::One(Arc::new(self.open_session(caller, &user).await)),
            Request::EnumerateUsers => {
                let users = self.all(&self.users, || self.directory.all_users()).await;
                match &*users {
                    Ok(_) => Reply::Users(users),
                    Err(e) => Reply::One(Arc::new(Response::Unavailable(e.public_reason().to_owned()))),
                }
            }
            Request::EnumerateGroups => {
                let groups = self.all(&self.groups, || self.directory.all_groups()).await;
                match &*groups {
                    Ok(_) => Reply::Groups(groups),
                    Err(e) => Reply::One(Arc::new(Response::Unavailable(e.public_reason().to_owned()))),
                }
            }
            lookup => Reply::One(self.lookup(lookup).await),
        }
    }

    async fn lookup(&self, request: Request) -> Arc<Response> {
        let key = match request {
            Request::UserByName(name) => Lookup::UserByName(name),
            Request::UserByUid(uid) => Lookup::UserByUid(uid),
            Request::GroupByName(name) => Lookup::GroupByName(name),
            Request::GroupByGid(gid) => Lookup::GroupByGid(gid),
            Request::GroupsOfUser(name) => Lookup::GroupsOfUser(name),
            _ => return Arc::new(Response::Refused("not a lookup".into())),
        };
        self.lookup_cached(key).await
    }

    /// A lookup's answer, from memory when it is fresh.
    async fn lookup_cached(&self, key: Lookup) -> Arc<Response> {
        match &key {
            // Refused before any traffic: such a name cannot exist, and it cannot reach a filter.
            Lookup::UserByName(name) | Lookup::GroupByName(name) | Lookup::GroupsOfUser(name)
                if !is_valid_name(name) =>
            {
                Arc::new(Response::NotFound)
            }
            // Root is the machine's own; the directory is never asked for id 0.
            Lookup::UserByUid(0) | Lookup::GroupByGid(0) => Arc::new(Response::NotFound),
            Lookup::UserByName(name) => self.cached(key.clone(), || self.user_by_name(name)).await,
            Lookup::UserByUid(uid) => {
                self.cached(key.clone(), || found(self.directory.user_by_uid(*uid), Response::User)).await
            }
            Lookup::GroupByName(name) => {
                self.cached(key.clone(), || found(self.directory.group_by_name(name), Response::Group)).await
            }
            Lookup::GroupByGid(gid) => {
                self.cached(key.clone(), || found(self.directory.group_by_gid(*gid), Response::Group)).await
            }
            Lookup::GroupsOfUser(name) => self.cached(key.clone(), || self.groups_of_user(name)).await,
        }
    }

    /// initgroups: the gids of every group that lists the name, as nslcd answers, so a local
    /// user named in a directory group gets that group too. "Not found" only for a name that
    /// is in no group and is not a directory user, so the caller's other sources decide.
    async fn groups_of_user(&self, name: &str) -> Response {
        match self.directory.groups_of_user(name).await {
            Err(e) => Response::Unavailable(e.public_reason().to_owned()),
            Ok(gids) if !gids.is_empty() => Response::GroupIds(gids),
            Ok(_) => match &*self.cached(Lookup::UserByName(name.to_owned()), || self.user_by_name(name)).await {
                Response::User(_) => Response::GroupIds(Vec::new()),
                other => other.clone(),
            },
        }
    }

    async fn user_by_name(&self, name: &str) -> Response {
        found(self.directory.user_by_name(name), Response::User).await
    }

    async fn cached<F: Future<Output = Response>>(&self, key: Lookup, fetch: impl FnOnce() -> F) -> Arc<Response> {
        self.answers
            .get_or_fetch(key, fetch, |response| match response {
                Response::NotFound => Keep::Negative,
                Response::Unavailable(_) | Response::Refused(_) => Keep::Never,
                _ => Keep::Positive,
            })
            .await
    }

    /// Everything, from memory while fresh; one directory enumeration however many ask at once.
    async fn all<T, F: Future<Output = Fetched<T>>>(
        &self,
        cache: &Cache<(), Fetched<T>>,
        fetch: impl FnOnce() -> F,
    ) -> Arc<Fetched<T>> {
        cache.get_or_fetch((), fetch, |all| if all.is_ok() { Keep::Positive } else { Keep::Never }).await
    }
}

fn fetched<T>(all: &Fetched<T>) -> &[T] {
    all.as_deref().unwrap_or_default()
}

/// `Some` becomes `wrap(value)`, `None` becomes "not found", an error "unavailable".
async fn found<T>(
    lookup: impl Future<Output = Result<Option<T>, DirectoryError>>,
    wrap: fn(T) -> Response,
) -> Response {
    match lookup.await {
        Ok(Some(value)) => wrap(value),
        Ok(None) => Response::NotFound,
        Err(e) => Response::Unavailable(e.public_reason().to_owned()),
    }
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

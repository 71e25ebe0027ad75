//! Requests to responses: the cache first, then the directory. Nothing here knows about
//! sockets; the handler passes a decoded [`Request`] and writes back what it gets.

use std::future::Future;
use std::sync::Arc;

use lanyard_proto::name::is_valid_name;
use lanyard_proto::{Group, Passwd, Request, Response};

use crate::cache::Cache;
use crate::config::CacheConfig;
use crate::directory::{Directory, DirectoryError};

/// Enumeration pages are cut at about this many bytes, so one huge directory is many modest
/// frames, never one giant one.
const PAGE_BYTES: usize = 256 * 1024;

/// What the handler writes back: one frame, or a stream of pages.
#[derive(Debug)]
pub enum Reply {
    One(Arc<Response>),
    /// Enumeration: the pages, then [`Response::EndOfPages`] (included).
    Pages(Vec<Response>),
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
    users: Cache<(), Vec<Passwd>>,
    groups: Cache<(), Vec<Group>>,
}

impl<D: Directory> Service<D> {
    pub fn new(directory: D, ttl: CacheConfig) -> Service<D> {
        Service { directory, answers: Cache::new(ttl), users: Cache::new(ttl), groups: Cache::new(ttl) }
    }

    pub fn directory(&self) -> &D {
        &self.directory
    }

    pub async fn handle(&self, request: Request) -> Reply {
        match request {
            Request::EnumerateUsers => Reply::Pages(match self.all(&self.users, self.directory.all_users()).await {
                Ok(users) => pages(&users, Response::UserPage, passwd_size),
                Err(e) => vec![Response::Unavailable(e.to_string())],
            }),
            Request::EnumerateGroups => Reply::Pages(match self.all(&self.groups, self.directory.all_groups()).await {
                Ok(groups) => pages(&groups, Response::GroupPage, group_size),
                Err(e) => vec![Response::Unavailable(e.to_string())],
            }),
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
        match &key {
            // Refused before any traffic: such a name cannot exist, and it cannot reach a filter.
            Lookup::UserByName(name) | Lookup::GroupByName(name) | Lookup::GroupsOfUser(name)
                if !is_valid_name(name) =>
            {
                Arc::new(Response::NotFound)
            }
            // Root is the machine's own; the directory is never asked for id 0.
            Lookup::UserByUid(0) | Lookup::GroupByGid(0) => Arc::new(Response::NotFound),
            Lookup::UserByName(name) => {
                self.cached(key.clone(), found(self.directory.user_by_name(name), Response::User)).await
            }
            Lookup::UserByUid(uid) => {
                self.cached(key.clone(), found(self.directory.user_by_uid(*uid), Response::User)).await
            }
            Lookup::GroupByName(name) => {
                self.cached(key.clone(), found(self.directory.group_by_name(name), Response::Group)).await
            }
            Lookup::GroupByGid(gid) => {
                self.cached(key.clone(), found(self.directory.group_by_gid(*gid), Response::Group)).await
            }
            Lookup::GroupsOfUser(name) => self.cached(key.clone(), self.groups_of_user(name)).await,
        }
    }

    /// initgroups: "not found" for a user the directory does not know, so the caller's other
    /// sources decide; otherwise the gids of every group that lists the user.
    async fn groups_of_user(&self, name: &str) -> Response {
        let user = self
            .cached(Lookup::UserByName(name.to_owned()), found(self.directory.user_by_name(name), Response::User))
            .await;
        match &*user {
            Response::User(_) => match self.directory.groups_of_user(name).await {
                Ok(gids) => Response::GroupIds(gids),
                Err(e) => Response::Unavailable(e.to_string()),
            },
            other => other.clone(),
        }
    }

    async fn cached(&self, key: Lookup, fetch: impl Future<Output = Response>) -> Arc<Response> {
        if let Some(hit) = self.answers.get(&key) {
            return hit;
        }
        let response = Arc::new(fetch.await);
        match &*response {
            Response::NotFound => self.answers.insert(key, response.clone(), true),
            Response::Unavailable(_) | Response::Refused(_) => {}
            _ => self.answers.insert(key, response.clone(), false),
        }
        response
    }

    async fn all<T>(
        &self,
        cache: &Cache<(), Vec<T>>,
        fetch: impl Future<Output = Result<Vec<T>, DirectoryError>>,
    ) -> Result<Arc<Vec<T>>, DirectoryError> {
        if let Some(hit) = cache.get(&()) {
            return Ok(hit);
        }
        let all = Arc::new(fetch.await?);
        cache.insert((), all.clone(), false);
        Ok(all)
    }
}

/// `Some` becomes `wrap(value)`, `None` becomes "not found", an error "unavailable".
async fn found<T>(
    lookup: impl Future<Output = Result<Option<T>, DirectoryError>>,
    wrap: fn(T) -> Response,
) -> Response {
    match lookup.await {
        Ok(Some(value)) => wrap(value),
        Ok(None) => Response::NotFound,
        Err(e) => Response::Unavailable(e.to_string()),
    }
}

fn pages<T: Clone>(entries: &[T], page: fn(Vec<T>) -> Response, size: fn(&T) -> usize) -> Vec<Response> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let entry_bytes = size(entry);
        if !current.is_empty() && bytes + entry_bytes > PAGE_BYTES {
            out.push(page(std::mem::take(&mut current)));
            bytes = 0;
        }
        bytes += entry_bytes;
        current.push(entry.clone());
    }
    if !current.is_empty() {
        out.push(page(current));
    }
    out.push(Response::EndOfPages);
    out
}

fn passwd_size(p: &Passwd) -> usize {
    16 + p.name.len() + p.gecos.len() + p.home.len() + p.shell.len()
}

fn group_size(g: &Group) -> usize {
    16 + g.name.len() + g.members.iter().map(|m| m.len() + 1).sum::<usize>()
}

#[cfg(test)]
mod tests;

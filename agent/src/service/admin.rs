//! What `lanyardctl` asks: status, metrics, where an answer came from, and wiping the cache.

use std::sync::Arc;

use lanyard_proto::{AgentStatus, Lookup, Response, Source, TracedAnswer};
use tracing::warn;

use super::Service;
use crate::cache::Write;
use crate::directory::Directory;
use crate::policy::Caller;

impl<D: Directory> Service<D> {
    pub(super) fn status(&self) -> Response {
        let mut status = AgentStatus {
            online: self.health.is_online(),
            state_secs: self.health.state_age().as_secs(),
            server: self.directory.server_in_use(),
            last_contact: self.health.last_contact(),
            memory_answers: self.answers.len() as u64,
            ..AgentStatus::default()
        };
        if let Some(store) = self.store() {
            match store.summary() {
                Ok(summary) => {
                    status.disk_answers = summary.answers;
                    status.disk_users = summary.users;
                    status.disk_groups = summary.groups;
                    status.offline_verifiers = summary.verifiers;
                    status.oldest_answer = summary.oldest;
                    status.newest_answer = summary.newest;
                }
                Err(e) => warn!("status: cannot read the disk cache: {e}"),
            }
        }
        Response::Status(Box::new(status))
    }

    /// A lookup with where its answer came from.
    pub(super) async fn trace(&self, lookup: Lookup) -> Response {
        let (response, source): (Arc<Response>, Source) = self.lookup_traced(lookup).await;
        let answer = match &*response {
            Response::User(user) => TracedAnswer::User(user.clone()),
            Response::Group(group) => TracedAnswer::Group(group.clone()),
            Response::GroupIds(gids) => TracedAnswer::GroupIds(gids.clone()),
            Response::NotFound => TracedAnswer::NotFound,
            Response::Unavailable(why) => TracedAnswer::Unavailable(why.clone()),
            other => TracedAnswer::Unavailable(other.summary()),
        };
        Response::Traced { answer, source }
    }

    /// Wipes memory and disk, offline verifiers included. Root only.
    pub(super) async fn clear_cache(&self, caller: Caller) -> Response {
        if !caller.is_root() {
            return Response::Refused("only root may clear the cache".into());
        }
        self.answers.clear();
        self.users.clear();
        self.groups.clear();
        self.lock_verifiers_made().clear();
        self.publish_snapshot_now();
        if let Some(persist) = &self.persist {
            persist.writer.send(Write::Clear);
            if !persist.writer.flush().await {
                return Response::Unavailable("the disk cache could not be cleared".into());
            }
        }
        Response::Cleared
    }
}

//! Feeds the NSS module's snapshot ([`crate::snapshot`]) from the memory caches: every positive
//! answer held (individual lookups and whole listings), republished shortly after the caches
//! change, and at once after an invalidation, so `lanyardctl cache invalidate` is visible to
//! the next lookup in any process.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use lanyard_proto::Response;
use tracing::{debug, warn};

use super::Service;
use crate::cache::StoreKey;
use crate::directory::Directory;
use crate::snapshot::{Contents, ExpiryClock, Publisher};

/// Changes arriving together (a burst of lookups, a listing) make one file, not one each.
const COALESCE: Duration = Duration::from_millis(50);

pub(super) type SharedPublisher = Arc<Mutex<Publisher>>;

impl<D: Directory> Service<D> {
    /// Publishes snapshots into `dir` (the socket's directory) from now on: at once, then as
    /// [`Service::snapshot_publisher`] sees changes. Call before spawning that.
    pub fn publish_snapshots_to(&self, dir: &Path) {
        let publisher = Arc::new(Mutex::new(Publisher::new(dir)));
        *relock(&self.publisher) = Some(publisher);
        self.publish_snapshot_now();
    }

    /// Republishes after every change to the caches, for the agent's life. Building and
    /// writing run on a blocking thread: a large directory's snapshot takes milliseconds.
    pub async fn snapshot_publisher(self: Arc<Self>) {
        let Some(publisher) = relock(&self.publisher).clone() else { return };
        loop {
            self.snapshot_changed.notified().await;
            tokio::time::sleep(COALESCE).await;
            let contents = self.snapshot_contents();
            let publisher = publisher.clone();
            match tokio::task::spawn_blocking(move || relock(&publisher).publish(&contents)).await {
                Ok(Ok(bytes)) => self.published(bytes),
                Ok(Err(e)) => warn!("cannot publish the snapshot for the NSS module: {e}"),
                Err(e) => warn!("publishing the snapshot failed: {e}"),
            }
        }
    }

    /// Publishes now, on this thread: after an invalidation the caller's reply must mean the
    /// snapshot no longer holds what was invalidated.
    pub(super) fn publish_snapshot_now(&self) {
        let Some(publisher) = relock(&self.publisher).clone() else { return };
        match relock(&publisher).publish(&self.snapshot_contents()) {
            Ok(bytes) => self.published(bytes),
            Err(e) => warn!("cannot publish the snapshot for the NSS module: {e}"),
        }
    }

    fn published(&self, bytes: usize) {
        debug!(bytes, "snapshot published");
        self.metrics.snapshots_published.inc();
        self.metrics.snapshot_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Every positive answer in memory, with its expiry on the snapshot's clock.
    pub(super) fn snapshot_contents(&self) -> Contents {
        let clock = ExpiryClock::now();
        let mut contents = Contents::default();
        for entry in self.answers.positive_entries() {
            let expires = clock.to_ms(entry.expires);
            match (&entry.key, &*entry.value) {
                (_, Response::User(user)) => contents.add_user(user, expires),
                (_, Response::Group(group)) => contents.add_group(group, expires),
                (StoreKey::GroupsOfUser(name), Response::GroupIds(gids)) => {
                    contents.groups_of.insert(name.clone(), (gids.clone(), expires));
                }
                _ => {}
            }
        }
        for entry in self.users.positive_entries() {
            if let Ok(users) = &*entry.value {
                let expires = clock.to_ms(entry.expires);
                contents.complete_users = Some(expires);
                users.iter().for_each(|user| contents.add_user(user, expires));
            }
        }
        for entry in self.groups.positive_entries() {
            if let Ok(groups) = &*entry.value {
                let expires = clock.to_ms(entry.expires);
                contents.complete_groups = Some(expires);
                groups.iter().for_each(|group| contents.add_group(group, expires));
                contents.derive_group_lists(groups, expires);
            }
        }
        contents
    }
}

fn relock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

//! Accepts connections on the agent's socket: reads each caller's credentials, bounds how many
//! connections are served at once, in all and per user, and stops on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::directory::Directory;
use crate::handler;
use crate::policy::Caller;
use crate::service::Service;

/// Connections served at once. Past it the agent stops accepting; callers then wait in the
/// kernel's backlog until their reply deadline and answer "unavailable".
pub const MAX_CONNECTIONS: usize = 512;

/// Connections one non-root uid may hold at once. More are closed at once, so one local user
/// cannot take every slot and stall everybody's lookups. Root (sshd, login, cron) is bounded
/// only by [`MAX_CONNECTIONS`].
pub const MAX_CONNECTIONS_PER_UID: usize = 16;

pub async fn accept_loop<D: Directory>(
    listener: UnixListener,
    service: Arc<Service<D>>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_uid = Arc::new(PerUid::default());
    let own_pid = std::process::id() as i32;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = &mut shutdown => return,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // EMFILE and friends: log and keep serving the connections we have.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let caller = match stream.peer_cred() {
            Ok(cred) => Caller { uid: cred.uid(), pid: cred.pid() },
            Err(e) => {
                warn!("cannot read the caller's credentials, dropping the connection: {e}");
                continue;
            }
        };
        if caller.pid == Some(own_pid) {
            // Our own process asking through nsswitch would wait on itself: refuse at once.
            debug!("refusing a connection from the agent's own process");
            continue;
        }
        let Some(slot) = PerUid::enter(&per_uid, caller.uid) else {
            debug!(uid = caller.uid, "refusing a connection: {MAX_CONNECTIONS_PER_UID} already open for this uid");
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            handler::serve(stream, caller, service).await;
            drop(slot);
            drop(permit);
        });
    }
}

/// Open connections per non-root uid.
#[derive(Debug, Default)]
struct PerUid(Mutex<HashMap<u32, usize>>);

/// One open connection of `uid`; dropping it frees the place.
struct UidSlot {
    counts: Arc<PerUid>,
    uid: u32,
}

impl PerUid {
    fn enter(counts: &Arc<PerUid>, uid: u32) -> Option<UidSlot> {
        if uid != 0 {
            let mut map = counts.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let open = map.entry(uid).or_default();
            if *open >= MAX_CONNECTIONS_PER_UID {
                return None;
            }
            *open += 1;
        }
        Some(UidSlot { counts: counts.clone(), uid })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        if self.uid == 0 {
            return;
        }
        let mut map = self.counts.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(open) = map.get_mut(&self.uid) {
            *open -= 1;
            if *open == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_gets_its_share_of_connections_and_root_is_not_counted() {
        let counts = Arc::new(PerUid::default());
        let held: Vec<UidSlot> = (0..MAX_CONNECTIONS_PER_UID).map(|_| PerUid::enter(&counts, 1000).unwrap()).collect();
        assert!(PerUid::enter(&counts, 1000).is_none());
        assert!(PerUid::enter(&counts, 1001).is_some());
        assert!((0..100).all(|_| PerUid::enter(&counts, 0).is_some()));
        drop(held);
        assert!(PerUid::enter(&counts, 1000).is_some());
        assert!(counts.0.lock().unwrap().is_empty(), "closed connections leave nothing behind");
    }
}

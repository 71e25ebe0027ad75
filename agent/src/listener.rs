//! Accepts connections on the agent's socket: reads each caller's credentials, bounds how many
//! connections are served at once, and stops on shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::directory::Directory;
use crate::handler::{self, Caller};
use crate::service::Service;

/// Connections served at once. Past it the agent stops accepting; the kernel's backlog holds
/// the next few and the modules' connect deadline turns a long wait into "unavailable".
pub const MAX_CONNECTIONS: usize = 512;

pub async fn accept_loop<D: Directory>(
    listener: UnixListener,
    service: Arc<Service<D>>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        let service = service.clone();
        tokio::spawn(async move {
            handler::serve(stream, caller, service).await;
            drop(permit);
        });
    }
}
